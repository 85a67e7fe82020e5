//! Which events go on: the event-type allow-list, excluded source networks, then per-type
//! keep/drop rules on field values.

use crate::records::eve::EveEvent;

use super::config::{EveRules, Filter, FilterAction};

/// Whether `e` passes the rules.
pub fn passes(rules: &EveRules, e: &EveEvent) -> bool {
    if !rules.event_types.is_empty()
        && !rules
            .event_types
            .iter()
            .any(|t| t == "*" || t == e.event_type)
    {
        return false;
    }
    if let Some(src) = e.src_ip {
        if rules.exclude_sources.iter().any(|n| n.contains(src)) {
            return false;
        }
    }
    let applies = |f: &&Filter| f.event_type == "*" || f.event_type == e.event_type;
    let mut keeps = rules
        .filters
        .iter()
        .filter(applies)
        .filter(|f| f.action == FilterAction::Keep)
        .peekable();
    if keeps.peek().is_some() && !keeps.any(|f| matches(f, e)) {
        return false;
    }
    !rules
        .filters
        .iter()
        .filter(applies)
        .any(|f| f.action == FilterAction::Drop && matches(f, e))
}

fn matches(f: &Filter, e: &EveEvent) -> bool {
    let Some(v) = e.field(&f.field) else {
        return false;
    };
    f.values.iter().any(|want| {
        if let Some(suffix) = want.strip_prefix('*') {
            v.ends_with(suffix)
        } else if let Some(prefix) = want.strip_suffix('*') {
            v.starts_with(prefix)
        } else {
            v == *want
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::config::{Net, RawFilter};
    use super::*;
    use crate::sources::eve::parse_line;

    fn ev(s: &str) -> EveEvent {
        parse_line(s.as_bytes(), 1 << 20).expect("event")
    }

    fn rules(filters: &[(&str, &str, &str, &[&str])]) -> EveRules {
        let raw: Vec<RawFilter> = filters
            .iter()
            .map(|(t, a, f, v)| RawFilter {
                event_type: t.to_string(),
                action: a.to_string(),
                field: f.to_string(),
                values: v.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        let mut problems = Vec::new();
        let r = super::super::config::validate_rules(
            &[],
            &[],
            &raw,
            &[],
            None,
            None,
            None,
            &mut |k, m| problems.push(format!("{k}: {m}")),
        );
        assert!(problems.is_empty(), "{problems:?}");
        r
    }

    const DNS: &str = r#"{"timestamp":"2026-03-02T10:00:00Z","event_type":"dns","src_ip":"10.0.0.5","dest_ip":"10.0.0.53","dns":{"type":"query","id":1,"rrname":"updates.example.com","rrtype":"A"}}"#;
    const FLOW: &str = r#"{"timestamp":"2026-03-02T10:00:00Z","event_type":"flow","src_ip":"10.0.0.5","dest_ip":"10.0.0.53","proto":"UDP","flow":{"pkts_toserver":1}}"#;

    #[test]
    fn drop_by_suffix_keep_by_value_and_excluded_sources() {
        let r = rules(&[("dns", "drop", "dns.rrname", &["*.example.com"])]);
        assert!(!passes(&r, &ev(DNS)));
        assert!(passes(&r, &ev(FLOW)), "the rule is for dns only");
        let r = rules(&[("dns", "keep", "dns.rrtype", &["AAAA"])]);
        assert!(!passes(&r, &ev(DNS)));
        let r = rules(&[("dns", "keep", "dns.rrtype", &["A", "AAAA"])]);
        assert!(passes(&r, &ev(DNS)));
        let mut r = rules(&[]);
        r.exclude_sources
            .push(Net::parse("10.0.0.0/24").expect("net"));
        assert!(!passes(&r, &ev(FLOW)));
        let mut r = rules(&[]);
        r.event_types = vec!["dns".into()];
        assert!(passes(&r, &ev(DNS)) && !passes(&r, &ev(FLOW)));
    }
}

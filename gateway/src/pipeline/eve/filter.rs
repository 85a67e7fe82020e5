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

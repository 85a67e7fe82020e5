//! The ARP rules: notable ARP packets from the capture's ARP meter
//! (`netwarden_firmware::meter::arp`) in, alerts naming the attacker and its victims out.
//!
//! Rules, not a model: ARP has no behaviour to learn. A binding either moved or did not, a
//! reply either answered a request or did not; the protocol has no authentication, so those
//! facts are the whole evidence, and the only thing worth tuning is how much of them an
//! operator tolerates (thresholds and an allow-list). A rule also says exactly why it fired,
//! which is what an operator needs to find the port the spoofer sits on. docs/arp.md.
//!
//! Three rules, each alert de-duplicated per attacker MAC and rule (`dedupe`):
//! - **binding_flip**: an IP bound to MAC A is claimed by MAC B while A still claimed it
//!   recently (within `stale_after`; a binding that went stale may move: DHCP, a new NIC). The
//!   address stays *contested* (A the incumbent, B the claimer): A claiming it back is a
//!   restoration (counted, no alert: the victim's own replies or arpspoof's clean-up), B again
//!   is the same incident, a third MAC is a new one.
//! - **unsolicited_replies**: `unsolicited_per_min` replies that answered no request, from one
//!   link-layer source within a minute (poisoning keeps caches poisoned by repeating itself).
//! - **many_ips**: one MAC claims `max_ips_per_mac` IPs (a spoofer posing as many hosts).
//!
//! The attacker's own address is an IP its MAC holds uncontested (learnt from its own ARP, as
//! when it first resolves its victims). Memory is bounded: [`MAX_MACS`] MACs and as many
//! contested bindings, evictions counted.

pub mod config;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use netwarden_firmware::meter::arp::{ArpEvent, ArpOp, BindingChange, Mac};

use crate::metrics::Metrics;
use crate::records::{Alert, ArpSubject, FlowOrigin, ModelRef, Subject, ARP_DETECTOR};
pub use config::{ArpRules, ArpSettings, MacPattern, RawArp};

/// MACs (and contested bindings) tracked at most.
pub const MAX_MACS: usize = 4096;

/// Addresses listed per MAC at most (own, claimed, targeted).
const MAX_LISTED: usize = 16;

/// Unsolicited replies are counted in windows of this length.
const RATE_WINDOW_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    BindingFlip,
    UnsolicitedReplies,
    ManyIps,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::BindingFlip => "binding_flip",
            Rule::UnsolicitedReplies => "unsolicited_replies",
            Rule::ManyIps => "many_ips",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn severity(self) -> &'static str {
        match self {
            Rule::BindingFlip | Rule::ManyIps => "high",
            Rule::UnsolicitedReplies => "medium",
        }
    }
}

/// What the rules remember about one MAC.
#[derive(Debug, Default)]
struct MacState {
    /// IPs it claimed that nobody else held recently.
    own: Vec<Ipv4Addr>,
    /// IPs it took over from another MAC, and that MAC.
    took: Vec<(Ipv4Addr, Mac)>,
    /// IPs it claimed (any).
    claimed: Vec<Ipv4Addr>,
    /// Target addresses of its replies.
    targets: Vec<Ipv4Addr>,
    first_ms: u64,
    last_ms: u64,
    packets: u64,
    flips: u64,
    window_start_ms: u64,
    window_unsolicited: u32,
    /// Per rule: last alert time and packets folded since.
    last_alert: [Option<u64>; 3],
    suppressed: [u64; 3],
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) && v.len() < MAX_LISTED {
        v.push(x);
    }
}

/// An address whose binding moved to a MAC that is not its recent owner.
#[derive(Debug, Clone, Copy)]
struct Contest {
    incumbent: Mac,
    last_ms: u64,
}

pub fn mac_string(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The ARP rules of one gateway (all capture sources; state is keyed by VLAN).
#[derive(Debug)]
pub struct ArpDetector {
    rules: ArpRules,
    site: String,
    device: String,
    metrics: Arc<Metrics>,
    macs: HashMap<(u16, Mac), MacState>,
    contests: HashMap<(u16, Ipv4Addr), Contest>,
    id: fn() -> String,
    now: fn() -> u64,
}

impl ArpDetector {
    pub fn new(rules: ArpRules, site: &str, device: &str, metrics: Arc<Metrics>) -> Self {
        ArpDetector {
            rules,
            site: site.to_string(),
            device: device.to_string(),
            metrics,
            macs: HashMap::new(),
            contests: HashMap::new(),
            id: || uuid::Uuid::now_v7().to_string(),
            now: crate::now_ms,
        }
    }

    /// Alerts stamped by this clock instead of the wall clock (replays, tests); the incident's
    /// own times are always packet times.
    pub fn with_clock(mut self, now: fn() -> u64) -> Self {
        self.now = now;
        self
    }

    pub fn rules(&self) -> &ArpRules {
        &self.rules
    }

    /// Applies the rules to the events of one capture, in order; alerts go to `alerts`.
    pub fn ingest(
        &mut self,
        origin: &FlowOrigin,
        events: &[ArpEvent],
        alerts: &mut impl FnMut(Alert),
    ) {
        if !self.rules.enabled {
            return;
        }
        for e in events {
            self.ingest_one(origin, e, alerts);
        }
    }

    fn allowed(&self, e: &ArpEvent) -> bool {
        let f = &e.frame;
        let mac_ok = |m: &Mac| self.rules.allow_macs.iter().any(|p| p.matches(m));
        mac_ok(&f.sender_mac)
            || f.link_src.as_ref().is_some_and(mac_ok)
            || self.rules.allow_ips.contains(&f.sender_ip)
    }

    fn ingest_one(&mut self, origin: &FlowOrigin, e: &ArpEvent, alerts: &mut impl FnMut(Alert)) {
        if self.allowed(e) {
            self.metrics.add(&self.metrics.arp_allowed, 1);
            return;
        }
        let f = e.frame;
        let vlan = f.vlan.unwrap_or(0);
        let ts = e.ts_ms;
        let sender = (vlan, f.sender_mac);
        let replied_to = (f.op == ArpOp::Reply && f.target_ip != f.sender_ip)
            .then_some(f.target_ip)
            .filter(|ip| !ip.is_unspecified());
        {
            let s = self.mac(sender, ts);
            s.packets += 1;
            if let Some(t) = replied_to {
                push_unique(&mut s.targets, t);
            }
        }
        let mut fired: Vec<Rule> = Vec::new();
        match e.binding {
            BindingChange::New => {
                if !self.contests.contains_key(&(vlan, f.sender_ip)) {
                    push_unique(&mut self.mac(sender, ts).own, f.sender_ip);
                }
                push_unique(&mut self.mac(sender, ts).claimed, f.sender_ip);
            }
            BindingChange::Changed { old } => {
                if self.flip(vlan, f.sender_ip, f.sender_mac, old.mac, old.last_ms, ts) {
                    fired.push(Rule::BindingFlip);
                }
            }
            BindingChange::None | BindingChange::Same => {}
        }
        if matches!(
            e.binding,
            BindingChange::New | BindingChange::Changed { .. }
        ) && e.sender_claims >= self.rules.max_ips_per_mac
        {
            fired.push(Rule::ManyIps);
        }
        if e.unsolicited && f.op == ArpOp::Reply {
            let actor = (vlan, f.link_src.unwrap_or(f.sender_mac));
            let limit = self.rules.unsolicited_per_min;
            let s = self.mac(actor, ts);
            if ts.saturating_sub(s.window_start_ms) >= RATE_WINDOW_MS || s.window_unsolicited == 0 {
                s.window_start_ms = ts;
                s.window_unsolicited = 0;
            }
            s.window_unsolicited += 1;
            if actor.1 != f.sender_mac {
                // A reply forged in another's name: the actor sent it, towards the target.
                s.packets += 1;
                if let Some(t) = replied_to {
                    push_unique(&mut s.targets, t);
                }
            }
            if s.window_unsolicited >= limit {
                self.raise(origin, actor, Rule::UnsolicitedReplies, ts, alerts);
            }
        }
        for rule in fired {
            self.raise(origin, sender, rule, ts, alerts);
        }
    }

    /// A binding of `ip` moved from `old_mac` to `new_mac`; true when that is an attack.
    fn flip(
        &mut self,
        vlan: u16,
        ip: Ipv4Addr,
        new_mac: Mac,
        old_mac: Mac,
        old_last_ms: u64,
        ts: u64,
    ) -> bool {
        let stale = self.rules.stale_after.as_millis() as u64;
        let key = (vlan, ip);
        let contest = self
            .contests
            .get(&key)
            .copied()
            .filter(|c| ts.saturating_sub(c.last_ms) < stale);
        let incumbent = match contest {
            Some(c) if c.incumbent == new_mac => {
                self.metrics.add(&self.metrics.arp_flips_restored, 1);
                if let Some(c) = self.contests.get_mut(&key) {
                    c.last_ms = ts;
                }
                return false;
            }
            Some(c) => c.incumbent,
            None if ts.saturating_sub(old_last_ms) >= stale => {
                // The old owner went quiet long ago: the address was given to someone else.
                self.metrics.add(&self.metrics.arp_rebinds, 1);
                self.contests.remove(&key);
                if let Some(s) = self.macs.get_mut(&(vlan, old_mac)) {
                    s.own.retain(|x| *x != ip);
                }
                let s = self.mac((vlan, new_mac), ts);
                push_unique(&mut s.own, ip);
                push_unique(&mut s.claimed, ip);
                return false;
            }
            None => old_mac,
        };
        self.metrics.add(&self.metrics.arp_flips, 1);
        if self.contests.len() >= MAX_MACS && !self.contests.contains_key(&key) {
            if let Some(k) = self
                .contests
                .iter()
                .min_by_key(|(_, c)| c.last_ms)
                .map(|(k, _)| *k)
            {
                self.contests.remove(&k);
                self.metrics.add(&self.metrics.arp_state_evictions, 1);
            }
        }
        self.contests.insert(
            key,
            Contest {
                incumbent,
                last_ms: ts,
            },
        );
        let s = self.mac((vlan, new_mac), ts);
        s.flips += 1;
        s.own.retain(|x| *x != ip);
        push_unique(&mut s.claimed, ip);
        if !s.took.iter().any(|(x, _)| *x == ip) && s.took.len() < MAX_LISTED {
            s.took.push((ip, incumbent));
        }
        true
    }

    /// The state of a MAC, created (evicting the longest quiet one when full).
    fn mac(&mut self, key: (u16, Mac), ts: u64) -> &mut MacState {
        if !self.macs.contains_key(&key) && self.macs.len() >= MAX_MACS {
            if let Some(k) = self
                .macs
                .iter()
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(k, _)| *k)
            {
                self.macs.remove(&k);
                self.metrics.add(&self.metrics.arp_state_evictions, 1);
            }
        }
        let s = self.macs.entry(key).or_insert_with(|| MacState {
            first_ms: ts,
            ..MacState::default()
        });
        s.last_ms = s.last_ms.max(ts);
        s
    }

    fn raise(
        &mut self,
        origin: &FlowOrigin,
        key: (u16, Mac),
        rule: Rule,
        ts: u64,
        alerts: &mut impl FnMut(Alert),
    ) {
        let dedupe = self.rules.dedupe.as_millis() as u64;
        let (vlan, mac) = key;
        let contests = &self.contests;
        let Some(s) = self.macs.get_mut(&key) else {
            return;
        };
        let i = rule.index();
        if s.last_alert[i].is_some_and(|t| ts.saturating_sub(t) < dedupe) {
            s.suppressed[i] += 1;
            self.metrics
                .add(&self.metrics.arp_alerts_suppressed_dedupe, 1);
            return;
        }
        let suppressed = std::mem::take(&mut s.suppressed[i]);
        s.last_alert[i] = Some(ts);
        let own = s
            .own
            .iter()
            .find(|ip| {
                contests
                    .get(&(vlan, **ip))
                    .is_none_or(|c| c.incumbent == mac)
            })
            .copied();
        let impersonated: Vec<Ipv4Addr> = match rule {
            Rule::ManyIps => s.claimed.clone(),
            _ => {
                let mut v: Vec<Ipv4Addr> = s.took.iter().map(|(ip, _)| *ip).collect();
                for ip in &s.claimed {
                    if Some(*ip) != own {
                        push_unique(&mut v, *ip);
                    }
                }
                v
            }
        };
        let previous: Vec<String> = s.took.iter().map(|(_, m)| mac_string(m)).collect();
        let (score, threshold) = match rule {
            Rule::BindingFlip => (s.flips as f32, 1.0),
            Rule::UnsolicitedReplies => (
                s.window_unsolicited as f32,
                self.rules.unsolicited_per_min as f32,
            ),
            Rule::ManyIps => (
                s.claimed.len() as f32,
                f32::from(self.rules.max_ips_per_mac),
            ),
        };
        let list = |v: &[Ipv4Addr]| v.iter().map(|ip| ip.to_string()).collect::<Vec<_>>();
        let who = match own {
            Some(ip) => format!("{} ({ip})", mac_string(&mac)),
            None => mac_string(&mac),
        };
        let what = match rule {
            Rule::BindingFlip => "took over the ARP binding of",
            Rule::UnsolicitedReplies => "sends unsolicited ARP replies claiming",
            Rule::ManyIps => "claims",
        };
        let targets = if s.targets.is_empty() {
            String::new()
        } else {
            format!(" towards {}", list(&s.targets).join(", "))
        };
        let summary = format!(
            "ARP spoofing suspected ({}): {who} {what} {}{targets}; {} packets, {} flips",
            rule.name(),
            list(&impersonated).join(", "),
            s.packets,
            s.flips
        );
        let subject = ArpSubject {
            interface: origin.to_string(),
            vlan: (vlan != 0).then_some(vlan),
            rule: rule.name().to_string(),
            attacker_mac: mac_string(&mac),
            attacker_ip: own.map(|ip| ip.to_string()),
            impersonated: list(&impersonated),
            previous_macs: previous,
            targets: list(&s.targets),
            first_ms: s.first_ms,
            last_ms: s.last_ms,
            packets: s.packets,
        };
        self.metrics.add(&self.metrics.arp_alerts_raised, 1);
        let now = (self.now)();
        alerts(Alert {
            id: (self.id)(),
            ts_ms: now,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(now),
            )
            .to_string(),
            site: self.site.clone(),
            device: self.device.clone(),
            detector: ARP_DETECTOR.to_string(),
            model: ModelRef {
                name: "arp-rules".into(),
                version: "1".into(),
            },
            severity: rule.severity().to_string(),
            score,
            threshold,
            subject: Subject::Arp(subject),
            top_features: Vec::new(),
            suppressed_since_last: suppressed,
            rule: None,
            summary,
            incident: None,
        });
    }
}

#[cfg(test)]
mod tests;

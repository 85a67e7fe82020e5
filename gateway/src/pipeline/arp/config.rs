//! `[arp]`: the ARP rules' thresholds and allow-list, and the capture's ARP table size
//! (docs/arp.md). Every key has a default; the section can be left out.

use std::net::Ipv4Addr;
use std::time::Duration;

use netwarden_firmware::meter::arp::{ArpConfig, Mac};
use serde::Deserialize;

/// Bindings the capture's ARP table can hold at most (3/4 of its 4,096 slots).
pub const MAX_BINDINGS: usize = 3072;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArp {
    /// Raise ARP alerts (default true). The capture accounts ARP either way.
    pub enabled: Option<bool>,
    /// IP-to-MAC bindings kept per capture interface (default 1024, at most 3072).
    pub bindings: Option<usize>,
    /// A reply is solicited when its request came at most this long before (default 5).
    pub solicit_window_secs: Option<u64>,
    /// A binding whose MAC has not claimed it for this long may move to another MAC without an
    /// alert (DHCP giving the address to a new device, a replaced NIC; default 600).
    pub stale_after_secs: Option<u64>,
    /// Unsolicited replies from one MAC within a minute that raise an alert (default 10).
    pub unsolicited_per_min: Option<u32>,
    /// IPs one MAC may claim before an alert (default 4).
    pub max_ips_per_mac: Option<u16>,
    /// One alert per attacker MAC and rule within this window; later ones are counted into
    /// the next (default 300).
    pub dedupe_window_secs: Option<u64>,
    /// MACs (or prefixes: fewer octets) whose claims never alert: VRRP/CARP/HSRP virtual MACs,
    /// proxy-ARP routers, HA pairs (default: VRRP's 00:00:5e:00:01 and HSRPv1's 00:00:0c:07:ac).
    pub allow_macs: Option<Vec<String>>,
    /// IPs expected to move between MACs (virtual IPs of a failover pair).
    pub allow_ips: Option<Vec<String>>,
}

/// A MAC or a MAC prefix from `allow_macs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacPattern {
    octets: Mac,
    len: usize,
}

impl MacPattern {
    pub fn matches(&self, mac: &Mac) -> bool {
        mac[..self.len] == self.octets[..self.len]
    }

    /// `aa:bb:cc:dd:ee:ff`, or a prefix of 1 to 5 octets (`00:00:5e:00:01`); `-` works as `:`.
    pub fn parse(s: &str) -> Option<MacPattern> {
        let mut octets = [0u8; 6];
        let mut len = 0;
        for part in s.trim().split([':', '-']) {
            if len == 6 || part.len() != 2 {
                return None;
            }
            octets[len] = u8::from_str_radix(part, 16).ok()?;
            len += 1;
        }
        (len > 0).then_some(MacPattern { octets, len })
    }
}

/// The rules' settings (validated `[arp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpRules {
    pub enabled: bool,
    pub stale_after: Duration,
    pub unsolicited_per_min: u32,
    pub max_ips_per_mac: u16,
    pub dedupe: Duration,
    pub allow_macs: Vec<MacPattern>,
    pub allow_ips: Vec<Ipv4Addr>,
}

impl Default for ArpRules {
    fn default() -> Self {
        RawArp::default().validate(&mut |_, _| {}).rules
    }
}

/// The validated section: the rules, and what the capture sources' ARP meter needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpSettings {
    pub rules: ArpRules,
    pub meter: ArpConfig,
}

impl Default for ArpSettings {
    fn default() -> Self {
        RawArp::default().validate(&mut |_, _| {})
    }
}

const DEFAULT_ALLOW_MACS: [&str; 2] = ["00:00:5e:00:01", "00:00:0c:07:ac"];

impl RawArp {
    /// The checked section; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> ArpSettings {
        let bindings = self.bindings.unwrap_or(1024);
        if !(1..=MAX_BINDINGS).contains(&bindings) {
            problem("arp.bindings", format!("must be 1 to {MAX_BINDINGS}"));
        }
        let mut secs = |key: &str, v: Option<u64>, default: u64| {
            let v = v.unwrap_or(default);
            if v == 0 {
                problem(key, "must be at least 1".to_string());
            }
            Duration::from_secs(v)
        };
        let solicit = secs("arp.solicit_window_secs", self.solicit_window_secs, 5);
        let stale_after = secs("arp.stale_after_secs", self.stale_after_secs, 600);
        let dedupe = secs("arp.dedupe_window_secs", self.dedupe_window_secs, 300);
        let unsolicited_per_min = self.unsolicited_per_min.unwrap_or(10);
        if unsolicited_per_min == 0 {
            problem("arp.unsolicited_per_min", "must be at least 1".to_string());
        }
        let max_ips_per_mac = self.max_ips_per_mac.unwrap_or(4);
        if max_ips_per_mac < 2 {
            problem(
                "arp.max_ips_per_mac",
                "must be at least 2 (every host claims its own address)".to_string(),
            );
        }
        let default_macs: Vec<String> = DEFAULT_ALLOW_MACS.iter().map(|s| s.to_string()).collect();
        let mut allow_macs = Vec::new();
        for (i, s) in self
            .allow_macs
            .as_ref()
            .unwrap_or(&default_macs)
            .iter()
            .enumerate()
        {
            match MacPattern::parse(s) {
                Some(p) => allow_macs.push(p),
                None => problem(
                    &format!("arp.allow_macs[{i}]"),
                    format!("{s:?} is not a MAC address or prefix (aa:bb:cc or aa:bb:cc:dd:ee:ff)"),
                ),
            }
        }
        let mut allow_ips = Vec::new();
        for (i, s) in self.allow_ips.iter().flatten().enumerate() {
            match s.trim().parse::<Ipv4Addr>() {
                Ok(ip) => allow_ips.push(ip),
                Err(_) => problem(
                    &format!("arp.allow_ips[{i}]"),
                    format!("{s:?} is not an IPv4 address"),
                ),
            }
        }
        ArpSettings {
            rules: ArpRules {
                enabled: self.enabled.unwrap_or(true),
                stale_after,
                unsolicited_per_min: unsolicited_per_min.max(1),
                max_ips_per_mac: max_ips_per_mac.max(2),
                dedupe,
                allow_macs,
                allow_ips,
            },
            meter: ArpConfig {
                solicit_window_ms: solicit.as_millis() as u64,
                max_bindings: bindings.clamp(1, MAX_BINDINGS),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem() {
        let s = ArpSettings::default();
        assert!(s.rules.enabled);
        assert_eq!(s.meter.max_bindings, 1024);
        assert_eq!(s.meter.solicit_window_ms, 5000);
        assert_eq!(s.rules.unsolicited_per_min, 10);
        assert_eq!(s.rules.max_ips_per_mac, 4);
        assert!(s.rules.allow_macs[0].matches(&[0, 0, 0x5e, 0, 1, 7]));
        assert!(!s.rules.allow_macs[0].matches(&[0, 0, 0x5e, 0, 2, 7]));
        let raw: RawArp = toml::from_str(
            "bindings = 0\nstale_after_secs = 0\nunsolicited_per_min = 0\nmax_ips_per_mac = 1\n\
             allow_macs = [\"02:77:00:00:00:0a\", \"zz\"]\nallow_ips = [\"10.0.0.1\", \"::1\"]",
        )
        .expect("toml");
        let mut keys = Vec::new();
        let s = raw.validate(&mut |k, _| keys.push(k.to_string()));
        assert_eq!(
            keys,
            [
                "arp.bindings",
                "arp.stale_after_secs",
                "arp.unsolicited_per_min",
                "arp.max_ips_per_mac",
                "arp.allow_macs[1]",
                "arp.allow_ips[1]"
            ]
        );
        assert!(s.rules.allow_macs[0].matches(&[2, 0x77, 0, 0, 0, 0x0a]));
        assert_eq!(s.rules.allow_ips, [Ipv4Addr::new(10, 0, 0, 1)]);
    }
}

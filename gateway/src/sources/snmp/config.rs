//! The `[snmp]` section: raw TOML (`[[snmp.targets]]`) and its validated form.
//!
//! ```toml
//! [snmp]
//! queue_samples = 4096
//! series_retention_hours = 72
//! [[snmp.targets]]
//! name = "core-sw"                 # optional; the address when absent
//! address = "192.0.2.1:161"        # port optional (161)
//! version = "2c"                   # or "3"
//! community = "public"
//! interfaces = ["eth0", 3]         # ifName/ifDescr or ifIndex; absent = all
//! interval_secs = 10
//! timeout_ms = 2000
//! retries = 1
//! ```
//! For v3: `user`, `auth_protocol` (md5, sha, sha224, sha256, sha384, sha512), `auth_password`,
//! and for authPriv `priv_protocol` (des, aes, aes192, aes256) and `priv_password`. The level
//! follows from what is given: no auth password is noAuthNoPriv, no priv password authNoPriv.
//! Secrets can live outside the config: `community_file`, `auth_password_file` and
//! `priv_password_file` name a file holding the value (one line; a trailing newline is
//! ignored), instead of `community`, `auth_password` and `priv_password`.
//!
//! The credentials (v2c community, v3 user and keys) and the secret files they may come from
//! are in [`super::credentials`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use super::credentials::Credentials;

/// `[snmp]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnmp {
    /// Rate samples queued between the pollers and the store/series task.
    pub queue_samples: Option<usize>,
    /// Samples older than this leave the sled `series` tree.
    pub series_retention_hours: Option<u64>,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
}

/// One `[[snmp.targets]]` entry as written. `Debug` is hand-written (below) so that inline
/// secrets never reach a log line.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: Option<String>,
    pub address: Option<String>,
    pub version: Option<String>,
    pub community: Option<String>,
    pub user: Option<String>,
    pub auth_protocol: Option<String>,
    pub auth_password: Option<String>,
    pub priv_protocol: Option<String>,
    pub priv_password: Option<String>,
    /// Files holding the secrets above (one of the two per secret).
    pub community_file: Option<std::path::PathBuf>,
    pub auth_password_file: Option<std::path::PathBuf>,
    pub priv_password_file: Option<std::path::PathBuf>,
    pub interfaces: Option<Vec<RawInterface>>,
    pub interval_secs: Option<f64>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    /// GetBulk max-repetitions (rows per request).
    pub max_repetitions: Option<u32>,
}

impl std::fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field does not compile until it is listed here.
        let RawTarget {
            name,
            address,
            version,
            community,
            user,
            auth_protocol,
            auth_password,
            priv_protocol,
            priv_password,
            community_file,
            auth_password_file,
            priv_password_file,
            interfaces,
            interval_secs,
            timeout_ms,
            retries,
            max_repetitions,
        } = self;
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        f.debug_struct("RawTarget")
            .field("name", name)
            .field("address", address)
            .field("version", version)
            .field("community", &hidden(community))
            .field("user", user)
            .field("auth_protocol", auth_protocol)
            .field("auth_password", &hidden(auth_password))
            .field("priv_protocol", priv_protocol)
            .field("priv_password", &hidden(priv_password))
            .field("community_file", community_file)
            .field("auth_password_file", auth_password_file)
            .field("priv_password_file", priv_password_file)
            .field("interfaces", interfaces)
            .field("interval_secs", interval_secs)
            .field("timeout_ms", timeout_ms)
            .field("retries", retries)
            .field("max_repetitions", max_repetitions)
            .finish()
    }
}

/// An interface by index (`3`) or by name (`"eth0"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawInterface {
    Index(u32),
    Name(String),
}

/// The validated `[snmp]` section.
#[derive(Debug, Clone, Default)]
pub struct SnmpConfig {
    pub queue_samples: usize,
    pub series_retention: Duration,
    pub targets: Vec<TargetConfig>,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub address: SocketAddr,
    pub credentials: Credentials,
    pub interfaces: Selection,
    pub interval: Duration,
    /// Per request (each GetBulk), not per poll.
    pub timeout: Duration,
    /// Further attempts of a request after a timeout.
    pub retries: u32,
    pub max_repetitions: u32,
}

impl TargetConfig {
    /// The longest step that still gives a rate: an interval and a half plus the longest a
    /// poll can take with its retries. Longer means a poll was lost (see `counter.rs`).
    pub fn max_gap(&self) -> Duration {
        self.interval + self.interval / 2 + self.timeout * (self.retries + 1)
    }

    /// "v2c", "v3 authPriv", ... for logs and status.
    pub fn describe_security(&self) -> String {
        match &self.credentials {
            Credentials::V2c { .. } => "v2c".to_string(),
            Credentials::V3(v3) => format!("v3 {} user {:?}", v3.level(), v3.user),
        }
    }
}

/// Which interfaces of a target are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Matched against ifIndex, ifName and ifDescr.
    Only(Vec<RawInterface>),
}

impl Selection {
    pub fn matches(&self, index: u32, name: Option<&str>, descr: Option<&str>) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(list) => list.iter().any(|sel| match sel {
                RawInterface::Index(i) => *i == index,
                RawInterface::Name(n) => Some(n.as_str()) == name || Some(n.as_str()) == descr,
            }),
        }
    }
}

const MAX_TARGET_NAME: usize = 64;

impl RawSnmp {
    /// Validates the section, reporting every problem through `problem(key, message)`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> SnmpConfig {
        let queue_samples = match self.queue_samples {
            Some(0) => {
                problem("snmp.queue_samples", "must be at least 1".to_string());
                4096
            }
            Some(n) => n,
            None => 4096,
        };
        let retention_hours = self.series_retention_hours.unwrap_or(72);
        if !(1..=24 * 366).contains(&retention_hours) {
            problem(
                "snmp.series_retention_hours",
                format!("{retention_hours} is outside 1 to 8784 (a year)"),
            );
        }
        let mut targets = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, raw) in self.targets.iter().enumerate() {
            let key = |field: &str| format!("snmp.targets[{i}].{field}");
            let raw = raw.with_secret_files(&mut |field: &str, msg| problem(&key(field), msg));
            if let Some(t) = raw.validate(i, problem) {
                if !names.insert(t.name.clone()) {
                    problem(
                        &key("name"),
                        format!("{:?} names two targets; names must be unique", t.name),
                    );
                }
                targets.push(t);
            }
        }
        SnmpConfig {
            queue_samples,
            series_retention: Duration::from_secs(retention_hours.clamp(1, 24 * 366) * 3600),
            targets,
        }
    }
}

impl RawTarget {
    fn validate(&self, i: usize, problem: &mut impl FnMut(&str, String)) -> Option<TargetConfig> {
        let key = |field: &str| format!("snmp.targets[{i}].{field}");
        let mut bad = 0usize;
        let mut report = |field: &str, msg: String| {
            bad += 1;
            problem(&key(field), msg);
        };

        let address = match self.address.as_deref() {
            None => {
                report("address", "is required (host or host:port)".to_string());
                None
            }
            Some(a) => match resolve(a) {
                Ok(sa) => Some(sa),
                Err(msg) => {
                    report("address", msg);
                    None
                }
            },
        };
        let name = self
            .name
            .clone()
            .or_else(|| self.address.clone())
            .unwrap_or_default();
        if name.is_empty() || name.len() > MAX_TARGET_NAME || name.contains(['\0', '/']) {
            report(
                "name",
                format!("{name:?} must be 1 to {MAX_TARGET_NAME} characters, without '/' or NUL"),
            );
        }

        let credentials = match self.version.as_deref().unwrap_or("2c") {
            "2c" | "v2c" | "2" => {
                for (field, set) in [
                    ("user", self.user.is_some()),
                    ("auth_protocol", self.auth_protocol.is_some()),
                    ("auth_password", self.auth_password.is_some()),
                    ("priv_protocol", self.priv_protocol.is_some()),
                    ("priv_password", self.priv_password.is_some()),
                ] {
                    if set {
                        report(field, "is for version \"3\" only".to_string());
                    }
                }
                match &self.community {
                    Some(c) if !c.is_empty() => Some(Credentials::V2c {
                        community: c.clone(),
                    }),
                    _ => {
                        report("community", "is required for version \"2c\"".to_string());
                        None
                    }
                }
            }
            "3" | "v3" => {
                if self.community.is_some() {
                    report("community", "is for version \"2c\" only".to_string());
                }
                self.v3_credentials(&mut report)
            }
            other => {
                report(
                    "version",
                    format!("{other:?} is not supported; use \"2c\" or \"3\""),
                );
                None
            }
        };

        let interfaces = match &self.interfaces {
            None => Selection::All,
            Some(list) if list.is_empty() => {
                report(
                    "interfaces",
                    "is empty; leave it out to poll all interfaces".to_string(),
                );
                Selection::All
            }
            Some(list) => Selection::Only(list.clone()),
        };
        let interval_secs = self.interval_secs.unwrap_or(10.0);
        if !(1.0..=3600.0).contains(&interval_secs) {
            report(
                "interval_secs",
                format!("{interval_secs} is outside 1 to 3600"),
            );
        }
        let timeout_ms = self.timeout_ms.unwrap_or(2000);
        if !(50..=60_000).contains(&timeout_ms) {
            report("timeout_ms", format!("{timeout_ms} is outside 50 to 60000"));
        }
        let retries = self.retries.unwrap_or(1);
        if retries > 10 {
            report("retries", format!("{retries} is more than 10"));
        }
        let max_repetitions = self.max_repetitions.unwrap_or(20);
        if !(1..=200).contains(&max_repetitions) {
            report(
                "max_repetitions",
                format!("{max_repetitions} is outside 1 to 200"),
            );
        }
        let interval = Duration::from_secs_f64(interval_secs.clamp(1.0, 3600.0));
        let timeout = Duration::from_millis(timeout_ms);
        if bad == 0 && timeout * (retries + 1) * 2 > interval {
            problem(
                &key("timeout_ms"),
                format!(
                    "{timeout_ms} ms x {} attempts is more than half the {interval_secs} s interval; \
                     a poll (several requests) would overrun it",
                    retries + 1
                ),
            );
            bad += 1;
        }
        if bad > 0 {
            return None;
        }
        Some(TargetConfig {
            name,
            address: address?,
            credentials: credentials?,
            interfaces,
            interval,
            timeout,
            retries,
            max_repetitions,
        })
    }
}

/// `host`, `host:port`, `[v6]:port`; the port defaults to 161. Names are resolved once, here.
fn resolve(a: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = a.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = a.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 161));
    }
    let with_port = if a.contains(':') {
        a.to_string()
    } else {
        format!("{a}:161")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{a:?} is not an address or a resolvable host ({e})"))?
        .next()
        .ok_or_else(|| format!("{a:?} resolves to no address"))
}

#[cfg(test)]
pub(in crate::sources::snmp) mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_inline_secrets() {
        let raw = RawTarget {
            name: Some("r1".into()),
            community: Some("c0mmunity-s3cret".into()),
            user: Some("monitor".into()),
            auth_password: Some("auth-s3cret".into()),
            priv_password: Some("priv-s3cret".into()),
            ..RawTarget::default()
        };
        let shown = format!(
            "{raw:?} {:?}",
            RawSnmp {
                targets: vec![raw.clone()],
                ..RawSnmp::default()
            }
        );
        for secret in ["c0mmunity-s3cret", "auth-s3cret", "priv-s3cret"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(
            shown.contains("\"monitor\"") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    pub(in crate::sources::snmp) fn validate(toml_text: &str) -> (SnmpConfig, Vec<String>) {
        #[derive(Deserialize)]
        struct Wrap {
            snmp: RawSnmp,
        }
        let w: Wrap = toml::from_str(toml_text).expect("parses");
        let mut problems = Vec::new();
        let c = w
            .snmp
            .validate(&mut |k: &str, m: String| problems.push(format!("{k}: {m}")));
        (c, problems)
    }

    #[test]
    fn v2c_target_with_defaults() {
        let (c, p) = validate(
            r#"
            [[snmp.targets]]
            address = "127.0.0.1"
            community = "public"
            "#,
        );
        assert!(p.is_empty(), "{p:?}");
        let t = &c.targets[0];
        assert_eq!(t.name, "127.0.0.1");
        assert_eq!(t.address, "127.0.0.1:161".parse().expect("addr"));
        assert_eq!(t.interval, Duration::from_secs(10));
        assert_eq!(t.interfaces, Selection::All);
        assert_eq!(t.describe_security(), "v2c");
    }

    #[test]
    fn v3_auth_priv_and_mixed_interface_selection() {
        let (c, p) = validate(
            r#"
            [[snmp.targets]]
            name = "edge"
            address = "127.0.0.1:1161"
            version = "3"
            user = "nw"
            auth_protocol = "SHA256"
            auth_password = "authpass123"
            priv_protocol = "aes"
            priv_password = "privpass123"
            interfaces = ["eth0", 3]
            "#,
        );
        assert!(p.is_empty(), "{p:?}");
        let t = &c.targets[0];
        assert_eq!(t.describe_security(), "v3 authPriv user \"nw\"");
        assert!(t.interfaces.matches(3, None, None));
        assert!(t.interfaces.matches(7, Some("eth0"), None));
        assert!(!t.interfaces.matches(7, Some("eth1"), Some("eth1")));
        assert!(!format!("{:?}", t.credentials).contains("pass"));
    }

    #[test]
    fn every_target_problem_is_reported() {
        let (c, p) = validate(
            r#"
            [[snmp.targets]]
            address = "not an address:x"
            version = "3"
            auth_password = "short"
            [[snmp.targets]]
            address = "127.0.0.1"
            version = "1"
            interval_secs = 0.1
            [[snmp.targets]]
            address = "127.0.0.1"
            community = "c"
            timeout_ms = 5000
            retries = 2
            "#,
        );
        assert!(c.targets.is_empty());
        let keys: Vec<_> = p
            .iter()
            .map(|s| s.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "snmp.targets[0].address",
                "snmp.targets[0].user",
                "snmp.targets[1].version",
                "snmp.targets[1].interval_secs",
                "snmp.targets[2].timeout_ms",
            ],
            "{p:#?}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let (_, p) = validate(
            r#"
            [[snmp.targets]]
            address = "127.0.0.1:1"
            name = "a"
            community = "c"
            [[snmp.targets]]
            address = "127.0.0.1:2"
            name = "a"
            community = "c"
            "#,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("unique"), "{p:?}");
    }
}

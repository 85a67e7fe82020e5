//! `[mqtt]`: the broker URL, topic prefix, TLS files and credentials, turned into a checked
//! [`MqttConfig`]. Validation reports every problem, each under its own key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The environment variable a password is read from when `mqtt.password_file` is not set.
pub const PASSWORD_ENV: &str = "NETWARDEN_MQTT_PASSWORD";
/// The environment variable a user name is read from when `mqtt.username` is not set.
pub const USERNAME_ENV: &str = "NETWARDEN_MQTT_USERNAME";

/// `mqtt.ack_hold_secs` when not set.
pub const ACK_HOLD_DEFAULT_SECS: u64 = 5;
/// `mqtt.ack_hold_secs` at most (entries held count against the outbox cap).
pub const ACK_HOLD_MAX_SECS: u64 = 3600;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host:port`; absent means alerts stay in the local outbox and the log.
    pub url: Option<String>,
    pub topic_prefix: Option<String>,
    pub client_id: Option<String>,
    pub keep_alive_secs: Option<u64>,
    /// Seconds an acknowledged alert stays in the outbox, while the connection stays up,
    /// before it leaves it; a broken connection sends it again (default 5).
    pub ack_hold_secs: Option<u64>,
    /// PEM CA certificate for `mqtts://` (required with TLS).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that require client certificates.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// User name (or `NETWARDEN_MQTT_USERNAME`).
    pub username: Option<String>,
    /// File holding the password (or `NETWARDEN_MQTT_PASSWORD`); never in the config itself.
    pub password_file: Option<PathBuf>,
}

/// A secret (password, private key): compared and cloned, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// TLS material, read and checked when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    /// PEM CA certificate(s) the broker's certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// PEM client certificate chain and private key, for brokers that require client certs.
    pub client: Option<(Vec<u8>, Secret)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// `netwarden/<site>/<device>` (no trailing slash).
    pub prefix: String,
    pub keep_alive: Duration,
    /// `Some` for `mqtts://`.
    pub tls: Option<TlsFiles>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// How long an acknowledged entry stays in the outbox, while the connection stays up,
    /// before it leaves it (see the module docs of `sinks::mqtt`).
    pub ack_hold: Duration,
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Reads a PEM file that must hold a `label` block.
fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, String> {
    let pem = read_file(path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ") && text.contains(label) {
        Ok(pem)
    } else {
        Err(format!("{} holds no PEM {label} block", path.display()))
    }
}

impl RawMqtt {
    /// The checked `[mqtt]` section: `None` when no URL is set (MQTT is off) or a problem was
    /// reported. Every problem is reported, each with its key.
    pub fn validate(
        &self,
        site: &str,
        device: &str,
        problem: &mut impl FnMut(&str, String),
    ) -> Option<MqttConfig> {
        self.validate_env(site, device, &|k| std::env::var(k).ok(), problem)
    }

    /// Like [`RawMqtt::validate`], with the environment given (for tests).
    pub fn validate_env(
        &self,
        site: &str,
        device: &str,
        env: &dyn Fn(&str) -> Option<String>,
        problem: &mut impl FnMut(&str, String),
    ) -> Option<MqttConfig> {
        let url = self.url.as_deref()?;
        let mut ok = true;
        let mut report = |key: &str, message: String| {
            ok = false;
            problem(key, message);
        };
        // Messages show the URL without any credentials it holds.
        let shown = redact_url(url);
        let parsed = match url::Url::parse(url) {
            Ok(u) => Some(u),
            Err(e) => {
                report(
                    "mqtt.url",
                    format!(
                    "{shown:?} is not a URL ({e}); expected mqtt://host:port or mqtts://host:port"
                ),
                );
                None
            }
        };
        let mut tls_wanted = None;
        let mut host = String::new();
        if let Some(parsed) = &parsed {
            match parsed.scheme() {
                "mqtt" | "tcp" => tls_wanted = Some(false),
                "mqtts" | "ssl" => tls_wanted = Some(true),
                other => report(
                    "mqtt.url",
                    format!("{shown:?}: scheme {other:?} is not mqtt:// or mqtts://"),
                ),
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                report("mqtt.url", format!(
                    "{shown:?}: put no credentials in the URL; use mqtt.username and mqtt.password_file or {PASSWORD_ENV}"
                ));
            }
            match parsed.host_str().filter(|h| !h.is_empty()) {
                Some(h) => host = h.trim_start_matches('[').trim_end_matches(']').to_string(),
                None => report("mqtt.url", format!("{shown:?} has no host")),
            }
        }
        let prefix = self
            .topic_prefix
            .clone()
            .unwrap_or_else(|| crate::records::topic::default_prefix(site, device))
            .trim_end_matches('/')
            .to_string();
        if prefix.contains(['+', '#']) {
            report(
                "mqtt.topic_prefix",
                format!("topic prefix {prefix:?} may not contain wildcards"),
            );
        }
        let mut tls = None;
        if tls_wanted == Some(true) {
            let ca = match &self.ca_file {
                None => {
                    report("mqtt.ca_file", format!(
                        "{shown:?} is TLS: set mqtt.ca_file to the PEM CA certificate that signed the broker's certificate"
                    ));
                    None
                }
                Some(f) => read_pem(f, "CERTIFICATE")
                    .map_err(|e| report("mqtt.ca_file", e))
                    .ok()
                    .map(|pem| (f.clone(), pem)),
            };
            let client = match (&self.client_cert_file, &self.client_key_file) {
                (None, None) => None,
                (Some(cert), Some(key)) => {
                    let cert = read_pem(cert, "CERTIFICATE")
                        .map_err(|e| report("mqtt.client_cert_file", e))
                        .ok();
                    let key = read_pem(key, "PRIVATE KEY")
                        .map_err(|e| report("mqtt.client_key_file", e))
                        .ok();
                    cert.zip(key).map(|(c, k)| (c, Secret::new(k)))
                }
                _ => {
                    report(
                        "mqtt.client_cert_file",
                        "set both mqtt.client_cert_file and mqtt.client_key_file, or neither"
                            .to_string(),
                    );
                    None
                }
            };
            tls = ca.map(|(ca_file, ca_pem)| TlsFiles {
                ca_file,
                ca_pem,
                client,
            });
        } else if tls_wanted == Some(false)
            && (self.ca_file.is_some() || self.client_cert_file.is_some())
        {
            report("mqtt.ca_file", format!(
                "{shown:?} is plain mqtt:// but mqtt.ca_file or a client certificate is set; use mqtts://"
            ));
        }
        let username = self
            .username
            .clone()
            .or_else(|| env(USERNAME_ENV))
            .filter(|u| !u.is_empty());
        let password = match &self.password_file {
            Some(path) => match read_file(path) {
                Ok(mut bytes) => {
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    Some(Secret::new(bytes))
                }
                Err(e) => {
                    report("mqtt.password_file", e);
                    None
                }
            },
            None => env(PASSWORD_ENV).map(|p| Secret::new(p.into_bytes())),
        };
        let ack_hold_secs = self.ack_hold_secs.unwrap_or(ACK_HOLD_DEFAULT_SECS);
        if ack_hold_secs > ACK_HOLD_MAX_SECS {
            report("mqtt.ack_hold_secs", format!(
                "{ack_hold_secs} is more than {ACK_HOLD_MAX_SECS}; it should just exceed the broker's save interval"
            ));
        }
        if (password.is_some() || self.password_file.is_some()) && username.is_none() {
            report(
                "mqtt.username",
                format!(
                    "a password is set (mqtt.password_file or {PASSWORD_ENV}) but no mqtt.username"
                ),
            );
        }
        let port = parsed
            .as_ref()
            .and_then(|p| p.port())
            .unwrap_or(if tls_wanted == Some(true) { 8883 } else { 1883 });
        ok.then(|| MqttConfig {
            host,
            port,
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("netwarden-{site}-{device}")),
            prefix,
            keep_alive: Duration::from_secs(self.keep_alive_secs.unwrap_or(30).max(5)),
            tls,
            username,
            password,
            ack_hold: Duration::from_secs(ack_hold_secs),
        })
    }
}

impl MqttConfig {
    /// The checked config for `url`, or every problem as `key: message` lines (tests and
    /// callers outside the config file).
    pub fn from_raw_env(
        raw: &RawMqtt,
        url: &str,
        site: &str,
        device: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MqttConfig, String> {
        let raw = RawMqtt {
            url: Some(url.to_string()),
            ..raw.clone()
        };
        let mut problems = Vec::new();
        let c = raw.validate_env(site, device, env, &mut |k, m| {
            problems.push(format!("{k}: {m}"))
        });
        c.ok_or_else(|| problems.join("\n"))
    }

    pub fn alert_topic(&self, severity: &str) -> String {
        crate::records::topic::alert_topic(&self.prefix, severity)
    }

    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn heartbeat_topic(&self) -> String {
        format!("{}/heartbeat", self.prefix)
    }

    /// Retained report of alerts dropped from the full outbox.
    pub fn outbox_status_topic(&self) -> String {
        format!("{}/status/outbox", self.prefix)
    }

    /// `mqtt://host:port` or `mqtts://host:port`, for logs (no credentials).
    pub fn describe(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// `scheme://<credentials>@host...` when the URL has a user or password part.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://<credentials>@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mqtt_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let raw = RawMqtt {
            url: Some("mqtts://u:hunter2@broker".into()),
            topic_prefix: Some("a/#".into()),
            ack_hold_secs: Some(ACK_HOLD_MAX_SECS + 1),
            ca_file: Some(not_pem.clone()),
            client_cert_file: Some(not_pem),
            password_file: Some(dir.path().join("missing")),
            ..RawMqtt::default()
        };
        let mut problems = Vec::new();
        let c = raw.validate_env("s", "d", &|_| None, &mut |k, m| {
            problems.push((k.to_string(), m))
        });
        assert!(c.is_none());
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mqtt.url",
                "mqtt.topic_prefix",
                "mqtt.ca_file",
                "mqtt.client_cert_file",
                "mqtt.password_file",
                "mqtt.ack_hold_secs",
                "mqtt.username",
            ],
            "{problems:?}"
        );
        assert!(
            problems.iter().all(|(_, m)| !m.contains("hunter2")),
            "{problems:?}"
        );
    }

    #[test]
    fn no_url_means_off_and_no_problem() {
        let raw = RawMqtt {
            ack_hold_secs: Some(ACK_HOLD_MAX_SECS + 1),
            ..RawMqtt::default()
        };
        let mut n = 0;
        assert!(raw
            .validate_env("s", "d", &|_| None, &mut |_, _| n += 1)
            .is_none());
        assert_eq!(n, 0);
    }

    #[test]
    fn ack_hold_has_a_default_and_a_limit() {
        let c = MqttConfig::from_raw_env(&RawMqtt::default(), "mqtt://h", "a", "b", &no_env)
            .expect("valid");
        assert_eq!(c.ack_hold, Duration::from_secs(ACK_HOLD_DEFAULT_SECS));
        let raw = RawMqtt {
            ack_hold_secs: Some(ACK_HOLD_MAX_SECS + 1),
            ..RawMqtt::default()
        };
        let e =
            MqttConfig::from_raw_env(&raw, "mqtt://h", "a", "b", &no_env).expect_err("too long");
        assert!(e.contains("mqtt.ack_hold_secs"), "{e}");
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_parsing_and_topics() {
        let c = MqttConfig::from_raw_env(
            &RawMqtt::default(),
            "mqtt://127.0.0.1:1884",
            "hq",
            "r1",
            &no_env,
        )
        .expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1884));
        assert_eq!(c.alert_topic("high"), "netwarden/hq/r1/alerts/high");
        assert_eq!(c.status_topic(), "netwarden/hq/r1/status");
        assert_eq!(c.outbox_status_topic(), "netwarden/hq/r1/status/outbox");
        let bad = |url: &str| MqttConfig::from_raw_env(&RawMqtt::default(), url, "a", "b", &no_env);
        assert!(bad("http://x").is_err());
        assert!(bad("mqtt://").is_err());
        let e = bad("mqtt://u:hunter2@host").expect_err("credentials in the URL");
        assert!(e.contains("no credentials in the URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = bad("http://u:hunter2@host/x").expect_err("scheme");
        assert!(
            !e.contains("hunter2") && e.contains("<credentials>@host/x"),
            "{e}"
        );
        let e = bad("mqtts://host").expect_err("TLS without a CA");
        assert!(e.contains("mqtt.ca_file"), "{e}");
    }

    #[test]
    fn tls_and_credentials_from_files_and_env_are_never_printed() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nKEYSECRET\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2-file\n").expect("write");
        let raw = RawMqtt {
            ca_file: Some(ca.clone()),
            client_cert_file: Some(ca.clone()),
            client_key_file: Some(key),
            username: Some("gw".into()),
            password_file: Some(pw),
            ..RawMqtt::default()
        };
        let c = MqttConfig::from_raw_env(&raw, "mqtts://broker.example", "hq", "r1", &no_env)
            .expect("valid");
        assert_eq!(c.port, 8883, "mqtts defaults to 8883");
        assert_eq!(
            c.password.as_ref().map(|p| p.expose()),
            Some(&b"hunter2-file"[..])
        );
        let shown = format!("{c:?} {}", c.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("KEYSECRET"), "{shown}");
        assert_eq!(c.describe(), "mqtts://broker.example:8883");

        let env = |k: &str| match k {
            PASSWORD_ENV => Some("hunter2-env".to_string()),
            USERNAME_ENV => Some("gw-env".to_string()),
            _ => None,
        };
        let c = MqttConfig::from_raw_env(&RawMqtt::default(), "mqtt://h", "a", "b", &env)
            .expect("valid");
        assert_eq!(c.username.as_deref(), Some("gw-env"));
        assert_eq!(
            c.password.as_ref().map(|p| p.expose()),
            Some(&b"hunter2-env"[..])
        );
        assert!(!format!("{c:?}").contains("hunter2"));

        let only_pw = |k: &str| (k == PASSWORD_ENV).then(|| "x".to_string());
        let e = MqttConfig::from_raw_env(&RawMqtt::default(), "mqtt://h", "a", "b", &only_pw)
            .expect_err("password without user");
        assert!(e.contains("no mqtt.username"), "{e}");

        let raw = RawMqtt {
            ca_file: Some(dir.path().join("pw")),
            ..RawMqtt::default()
        };
        let e =
            MqttConfig::from_raw_env(&raw, "mqtts://h", "a", "b", &no_env).expect_err("not a PEM");
        assert!(e.contains("no PEM CERTIFICATE"), "{e}");
    }
}

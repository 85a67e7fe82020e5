//! SNMP security: a v2c community or v3 user credentials (auth and privacy protocols and
//! passwords), read from the config or from secret files, never printed (`Debug` is
//! hand-written).

use super::config::RawTarget;

#[derive(Clone)]
pub enum Credentials {
    V2c { community: String },
    V3(V3Credentials),
}

// Hand-written so that secrets never reach a log line.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::V2c { .. } => f.write_str("V2c { community: <hidden> }"),
            Credentials::V3(v3) => write!(f, "V3 {{ user: {:?}, level: {} }}", v3.user, v3.level()),
        }
    }
}

#[derive(Clone)]
pub struct V3Credentials {
    pub user: String,
    /// `None`: noAuthNoPriv.
    pub auth: Option<(AuthProtocol, String)>,
    /// `None`: no privacy (authNoPriv or noAuthNoPriv).
    pub privacy: Option<(PrivProtocol, String)>,
}

impl std::fmt::Debug for V3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "V3Credentials {{ user: {:?}, level: {} }}",
            self.user,
            self.level()
        )
    }
}

impl V3Credentials {
    pub fn level(&self) -> &'static str {
        match (&self.auth, &self.privacy) {
            (None, _) => "noAuthNoPriv",
            (Some(_), None) => "authNoPriv",
            (Some(_), Some(_)) => "authPriv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    Des,
    Aes128,
    Aes192,
    Aes256,
}

impl RawTarget {
    /// A copy with each `*_file` secret read into its field.
    pub(super) fn with_secret_files(&self, report: &mut impl FnMut(&str, String)) -> RawTarget {
        let mut t = self.clone();
        let pairs: [(&str, &Option<std::path::PathBuf>, &mut Option<String>); 3] = [
            ("community", &self.community_file, &mut t.community),
            (
                "auth_password",
                &self.auth_password_file,
                &mut t.auth_password,
            ),
            (
                "priv_password",
                &self.priv_password_file,
                &mut t.priv_password,
            ),
        ];
        for (field, file, value) in pairs {
            let Some(path) = file else { continue };
            if value.is_some() {
                report(
                    &format!("{field}_file"),
                    format!("set {field} or {field}_file, not both"),
                );
                continue;
            }
            match std::fs::read_to_string(path) {
                Ok(text) => *value = Some(text.trim_end_matches(['\n', '\r']).to_string()),
                Err(e) => report(
                    &format!("{field}_file"),
                    format!("cannot read {}: {e}", path.display()),
                ),
            }
        }
        t
    }

    pub(super) fn v3_credentials(
        &self,
        report: &mut impl FnMut(&str, String),
    ) -> Option<Credentials> {
        let user = match &self.user {
            Some(u) if !u.is_empty() => u.clone(),
            _ => {
                report("user", "is required for version \"3\"".to_string());
                return None;
            }
        };
        let auth = match (&self.auth_password, self.auth_protocol.as_deref()) {
            (None, None) => None,
            (None, Some(_)) => {
                report(
                    "auth_password",
                    "is required when auth_protocol is set".to_string(),
                );
                return None;
            }
            (Some(pw), proto) => {
                if pw.len() < 8 {
                    report(
                        "auth_password",
                        "must be at least 8 characters (RFC 3414)".to_string(),
                    );
                }
                let p = match proto.unwrap_or("sha").to_ascii_lowercase().as_str() {
                    "md5" => AuthProtocol::Md5,
                    "sha" | "sha1" => AuthProtocol::Sha1,
                    "sha224" => AuthProtocol::Sha224,
                    "sha256" => AuthProtocol::Sha256,
                    "sha384" => AuthProtocol::Sha384,
                    "sha512" => AuthProtocol::Sha512,
                    other => {
                        report(
                            "auth_protocol",
                            format!(
                                "{other:?} is not one of md5, sha, sha224, sha256, sha384, sha512"
                            ),
                        );
                        return None;
                    }
                };
                Some((p, pw.clone()))
            }
        };
        let privacy = match (&self.priv_password, self.priv_protocol.as_deref()) {
            (None, None) => None,
            (None, Some(_)) => {
                report(
                    "priv_password",
                    "is required when priv_protocol is set".to_string(),
                );
                return None;
            }
            (Some(pw), proto) => {
                if auth.is_none() {
                    report(
                        "priv_password",
                        "privacy needs authentication: set auth_password too".to_string(),
                    );
                }
                if pw.len() < 8 {
                    report(
                        "priv_password",
                        "must be at least 8 characters (RFC 3414)".to_string(),
                    );
                }
                let p = match proto.unwrap_or("aes").to_ascii_lowercase().as_str() {
                    "des" => PrivProtocol::Des,
                    "aes" | "aes128" => PrivProtocol::Aes128,
                    "aes192" => PrivProtocol::Aes192,
                    "aes256" => PrivProtocol::Aes256,
                    other => {
                        report(
                            "priv_protocol",
                            format!("{other:?} is not one of des, aes, aes192, aes256"),
                        );
                        return None;
                    }
                };
                Some((p, pw.clone()))
            }
        };
        Some(Credentials::V3(V3Credentials {
            user,
            auth,
            privacy,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::snmp::config::tests::validate;

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let auth = dir.path().join("auth");
        let privp = dir.path().join("priv");
        std::fs::write(&auth, "authpass-from-file\n").expect("write");
        std::fs::write(&privp, "privpass-from-file").expect("write");
        let (c, p) = validate(&format!(
            r#"
            [[snmp.targets]]
            address = "127.0.0.1"
            version = "3"
            user = "nw"
            auth_protocol = "sha"
            auth_password_file = "{}"
            priv_protocol = "aes"
            priv_password_file = "{}"
            "#,
            auth.display(),
            privp.display()
        ));
        assert!(p.is_empty(), "{p:?}");
        let Credentials::V3(v3) = &c.targets[0].credentials else {
            panic!("v3 expected");
        };
        assert_eq!(v3.level(), "authPriv");
        let (_, p) = validate(&format!(
            r#"
            [[snmp.targets]]
            address = "127.0.0.1"
            community = "x"
            community_file = "{}"
            [[snmp.targets]]
            address = "127.0.0.2"
            community_file = "/nonexistent/netwarden-community"
            "#,
            auth.display()
        ));
        let text = format!("{p:?}");
        assert!(
            text.contains("community or community_file, not both"),
            "{text}"
        );
        assert!(
            text.contains("cannot read /nonexistent/netwarden-community"),
            "{text}"
        );
    }
}

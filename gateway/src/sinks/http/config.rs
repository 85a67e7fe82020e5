//! `[http]`: where the API and dashboard listen, and the bearer token that guards them.
//!
//! Security default: loopback only. Binding to any other address needs a token (from
//! `http.token_file` or the `NETWARDEN_HTTP_TOKEN` environment variable); without one the
//! configuration is invalid and the daemon refuses to start.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The default listen address: this host only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable that may carry the token.
pub const TOKEN_ENV: &str = "NETWARDEN_HTTP_TOKEN";
/// Tokens shorter than this are refused (a guessable token on an exposed port is no guard).
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// `ADDR:PORT`, or `off` to serve nothing.
    pub listen: Option<String>,
    /// A file whose first line is the bearer token.
    pub token_file: Option<PathBuf>,
}

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(s: impl Into<String>) -> Token {
        Token(s.into())
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let want = self.0.as_bytes();
        if want.len() != presented.len() {
            return false;
        }
        want.iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The validated `[http]` section.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `None`: the HTTP server is off.
    pub listen: Option<SocketAddr>,
    /// Required on every API request when set (always set when `listen` is not loopback).
    pub token: Option<Token>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.parse().ok(),
            token: None,
        }
    }
}

impl RawHttp {
    /// Validates, reading the token from `token_file` or `env_token` (the environment
    /// variable's value, passed in so tests do not depend on the process environment).
    pub fn validate(
        &self,
        env_token: Option<String>,
        problem: &mut impl FnMut(&str, String),
    ) -> HttpConfig {
        let listen = match self.listen.as_deref().unwrap_or(DEFAULT_LISTEN).trim() {
            "off" | "none" | "" => None,
            s => match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(e) => {
                    problem(
                        "http.listen",
                        format!("{s:?} is not an address:port or \"off\" ({e})"),
                    );
                    None
                }
            },
        };
        let token = match &self.token_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_string()),
                Err(e) => {
                    problem(
                        "http.token_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            },
            None => env_token.map(|t| t.trim().to_string()),
        };
        if let Some(t) = &token {
            if t.len() < MIN_TOKEN_LEN {
                problem(
                    "http.token_file",
                    format!(
                        "the HTTP token must be at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 24`)"
                    ),
                );
            }
        }
        if let Some(addr) = listen {
            if !addr.ip().is_loopback() && token.is_none() {
                problem(
                    "http.listen",
                    format!(
                        "{addr} is reachable from other hosts, and no token is set: refusing to serve the API unauthenticated. Set http.token_file (or {TOKEN_ENV}), or listen on 127.0.0.1"
                    ),
                );
            }
        }
        HttpConfig {
            listen,
            token: token.map(Token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &RawHttp, env: Option<&str>) -> Result<HttpConfig, Vec<String>> {
        let mut problems = Vec::new();
        let c = raw.validate(env.map(str::to_string), &mut |k, m| {
            problems.push(format!("{k}: {m}"))
        });
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn loopback_by_default_without_token() {
        let c = check(&RawHttp::default(), None).expect("valid");
        assert_eq!(c.listen, Some("127.0.0.1:8080".parse().expect("addr")));
        assert!(c.token.is_none());
    }

    #[test]
    fn exposed_without_token_is_refused_with_a_clear_error() {
        let raw = RawHttp {
            listen: Some("0.0.0.0:8080".into()),
            token_file: None,
        };
        let p = check(&raw, None).expect_err("refused");
        assert!(
            p[0].contains("refusing to serve the API unauthenticated"),
            "{p:?}"
        );
        let c = check(&raw, Some("0123456789abcdef0123")).expect("env token");
        assert!(c.token.is_some());
        assert_eq!(format!("{:?}", c.token), "Some(Token(<redacted>))");
    }

    #[test]
    fn off_disables_and_short_or_missing_token_files_are_errors() {
        let off = RawHttp {
            listen: Some("off".into()),
            token_file: None,
        };
        assert_eq!(check(&off, None).expect("off").listen, None);
        let dir = tempfile::tempdir().expect("tmp");
        let short = dir.path().join("t");
        std::fs::write(&short, "abc\n").expect("write");
        let raw = RawHttp {
            listen: None,
            token_file: Some(short),
        };
        assert!(check(&raw, None).expect_err("short")[0].contains("at least 16"));
        let raw = RawHttp {
            listen: None,
            token_file: Some(dir.path().join("missing")),
        };
        assert!(check(&raw, None).expect_err("missing")[0].contains("cannot read"));
    }

    #[test]
    fn token_comparison() {
        let t = Token::new("0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcde"));
    }
}

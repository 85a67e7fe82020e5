//! `[bundles]`: which bundle signatures are trusted (docs/keys.md).

use serde::Deserialize;

use super::{PublicKey, Trust};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBundles {
    /// ed25519 public keys (base64 of the raw 32 bytes) whose signatures are trusted.
    pub trusted_keys: Option<Vec<String>>,
    /// Accept unsigned bundles even when keys are trusted (e.g. locally calibrated ones).
    pub allow_unsigned: Option<bool>,
}

impl RawBundles {
    /// The trust rule; every bad key goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> Trust {
        let mut trust = Trust {
            keys: Vec::new(),
            allow_unsigned: self.allow_unsigned.unwrap_or(false),
        };
        for (i, k) in self.trusted_keys.iter().flatten().enumerate() {
            match PublicKey::from_base64(k) {
                Ok(k) => trust.keys.push(k),
                Err(e) => problem(&format!("bundles.trusted_keys[{i}]"), e.to_string()),
            }
        }
        trust
    }
}

//! Bundle signatures: `manifest.sig` is an ed25519 signature over the exact bytes of
//! `manifest.json`, which holds the SHA-256 of `model.onnx`, so one signature covers both.
//!
//! Encodings (shared with `models/`, see docs/keys.md):
//! - a public key is the standard base64 (padded) of the raw 32-byte ed25519 key, as written in
//!   `NAME.pub` and in the config's `bundles.trusted_keys`;
//! - `manifest.sig` is one line: the standard base64 of the raw 64-byte signature.
//!
//! The rule ([`Trust::check`]): a bundle that carries a signature must verify against one of the
//! trusted keys, and a malformed `manifest.sig` is always refused. An unsigned bundle is accepted
//! only when no key is trusted (a gateway that was never given a key) or when the operator set
//! `bundles.allow_unsigned`. A signed bundle on a gateway with no trusted keys loads, reported as
//! "signed, not verified".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519};

/// File name of the signature inside a bundle directory.
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// One trusted ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    raw: [u8; 32],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Parses the base64 form (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<PublicKey, SignatureError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| SignatureError::KeyFormat(format!("not base64: {e}")))?;
        let raw: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SignatureError::KeyFormat(format!(
                "{} bytes; an ed25519 public key is 32 bytes",
                bytes.len()
            ))
        })?;
        Ok(PublicKey { raw })
    }

    /// A key given on the command line: a path to a `.pub` file, or the base64 text itself.
    pub fn from_arg(arg: &str) -> Result<PublicKey, SignatureError> {
        let path = std::path::Path::new(arg);
        if path.is_file() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SignatureError::KeyFormat(format!("cannot read {arg}: {e}")))?;
            return PublicKey::from_base64(&text);
        }
        PublicKey::from_base64(arg)
    }

    /// Short, stable name for logs: the first 8 base64 characters of the key.
    pub fn id(&self) -> String {
        STANDARD.encode(self.raw)[..8].to_string()
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key: {0}")]
    KeyFormat(String),
    #[error("manifest.sig is malformed: {0}")]
    Malformed(String),
    #[error("manifest.sig does not verify against any of the {0} trusted key(s): the manifest was altered or signed with another key")]
    Mismatch(usize),
    #[error("the bundle is unsigned (no manifest.sig) and this gateway trusts {0} key(s); sign it (`python -m netwarden_models sign`) or set bundles.allow_unsigned")]
    Unsigned(usize),
}

/// How a loaded bundle's signature turned out (reported by `model check`, the log and stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Compiled into the binary: as trusted as the binary itself.
    Builtin,
    /// Verified with the trusted key of this id.
    Verified { key_id: String },
    /// Signed, but this gateway trusts no key, so it could not be checked.
    SignedNotVerified,
    /// No `manifest.sig`, accepted by the rule above.
    Unsigned,
    /// Built from parts in memory (tests, calibration before writing).
    NotChecked,
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureStatus::Builtin => f.write_str("built in"),
            SignatureStatus::Verified { key_id } => write!(f, "signature verified (key {key_id})"),
            SignatureStatus::SignedNotVerified => {
                f.write_str("signed, not verified (no trusted keys configured)")
            }
            SignatureStatus::Unsigned => f.write_str("unsigned"),
            SignatureStatus::NotChecked => f.write_str("not checked"),
        }
    }
}

/// The keys a gateway trusts, and whether unsigned bundles are acceptable anyway.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub keys: Vec<PublicKey>,
    pub allow_unsigned: bool,
}

impl Trust {
    /// Trusts nothing in particular: signed bundles load unverified, unsigned ones load.
    pub fn none() -> Trust {
        Trust::default()
    }

    pub fn keys(keys: Vec<PublicKey>) -> Trust {
        Trust {
            keys,
            allow_unsigned: false,
        }
    }

    /// Applies the rule to a manifest and the contents of `manifest.sig` (if present).
    pub fn check(
        &self,
        manifest: &[u8],
        signature_file: Option<&[u8]>,
    ) -> Result<SignatureStatus, SignatureError> {
        let Some(sig_text) = signature_file else {
            if self.keys.is_empty() || self.allow_unsigned {
                return Ok(SignatureStatus::Unsigned);
            }
            return Err(SignatureError::Unsigned(self.keys.len()));
        };
        let text = std::str::from_utf8(sig_text)
            .map_err(|_| SignatureError::Malformed("not text".into()))?;
        let sig = STANDARD
            .decode(text.trim())
            .map_err(|e| SignatureError::Malformed(format!("not base64: {e}")))?;
        if sig.len() != 64 {
            return Err(SignatureError::Malformed(format!(
                "{} bytes; an ed25519 signature is 64 bytes",
                sig.len()
            )));
        }
        if self.keys.is_empty() {
            return Ok(SignatureStatus::SignedNotVerified);
        }
        self.keys
            .iter()
            .find(|k| k.verifies(manifest, &sig))
            .map(|k| SignatureStatus::Verified { key_id: k.id() })
            .ok_or(SignatureError::Mismatch(self.keys.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn keypair() -> (Ed25519KeyPair, PublicKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pkcs8");
        let public = PublicKey::from_base64(&STANDARD.encode(pair.public_key().as_ref()))
            .expect("public key");
        (pair, public)
    }

    fn sign(pair: &Ed25519KeyPair, msg: &[u8]) -> Vec<u8> {
        format!("{}\n", STANDARD.encode(pair.sign(msg).as_ref())).into_bytes()
    }

    #[test]
    fn good_signature_verifies_with_any_trusted_key() {
        let (pair, public) = keypair();
        let (_, other) = keypair();
        let msg = br#"{"name":"x"}"#;
        let trust = Trust::keys(vec![other, public.clone()]);
        let status = trust.check(msg, Some(&sign(&pair, msg))).expect("verifies");
        assert_eq!(
            status,
            SignatureStatus::Verified {
                key_id: public.id()
            }
        );
    }

    #[test]
    fn altered_manifest_or_wrong_key_is_refused() {
        let (pair, public) = keypair();
        let (_, other) = keypair();
        let sig = sign(&pair, b"{\"threshold\":0.1}");
        let err = Trust::keys(vec![public])
            .check(b"{\"threshold\":0.9}", Some(&sig))
            .expect_err("altered");
        assert_eq!(err, SignatureError::Mismatch(1));
        let err = Trust::keys(vec![other])
            .check(b"{\"threshold\":0.1}", Some(&sig))
            .expect_err("wrong key");
        assert_eq!(err, SignatureError::Mismatch(1));
    }

    #[test]
    fn unsigned_only_without_keys_or_when_allowed() {
        let (_, public) = keypair();
        assert_eq!(
            Trust::none().check(b"{}", None),
            Ok(SignatureStatus::Unsigned)
        );
        let strict = Trust::keys(vec![public]);
        assert_eq!(strict.check(b"{}", None), Err(SignatureError::Unsigned(1)));
        let lax = Trust {
            allow_unsigned: true,
            ..strict
        };
        assert_eq!(lax.check(b"{}", None), Ok(SignatureStatus::Unsigned));
    }

    #[test]
    fn malformed_signature_is_refused_even_without_keys() {
        let err = Trust::none()
            .check(b"{}", Some(b"not base64!\n"))
            .expect_err("garbage");
        assert!(matches!(err, SignatureError::Malformed(_)), "{err}");
        let short = STANDARD.encode([0u8; 10]);
        let err = Trust::none()
            .check(b"{}", Some(short.as_bytes()))
            .expect_err("short");
        assert!(err.to_string().contains("64 bytes"), "{err}");
        let (pair, _) = keypair();
        assert_eq!(
            Trust::none().check(b"{}", Some(&sign(&pair, b"{}"))),
            Ok(SignatureStatus::SignedNotVerified)
        );
    }

    #[test]
    fn key_parsing_says_what_is_wrong() {
        assert!(PublicKey::from_base64("@@@").is_err());
        let err = PublicKey::from_base64(&STANDARD.encode([1u8; 31])).expect_err("short");
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let k = PublicKey::from_base64(&format!("  {}\n", STANDARD.encode([7u8; 32])))
            .expect("whitespace ignored");
        assert_eq!(k.id().len(), 8);
    }
}

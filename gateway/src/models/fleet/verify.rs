//! Verifies a complete set before anything else happens to it, each check named in the
//! refusal: `signature` (ed25519 against the trusted keys), `manifest` (it parses), `sha256`
//! (of the model), `version` (strictly newer than any this gateway has run for the detector),
//! `expiry` (optional `expires_utc` in the signed manifest), `kind`, `schema`, `shapes` (the
//! model's input and output widths), `finite` and `golden` (the golden vectors reproduce in
//! tract). Only a set that passes all of them is written to disk and shadowed.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

use super::wire::{hex, SetManifest};
use crate::models::bundle::{Bundle, BundleError};
use crate::models::manifest::KIND_FLOW;
use crate::models::{Manifest, SignatureStatus, Trust};

/// Why a set was refused: the check that failed and the details.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub check: String,
    pub reason: String,
}

impl Refusal {
    pub fn new(check: &str, reason: impl Into<String>) -> Refusal {
        Refusal {
            check: check.to_string(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.reason)
    }
}

/// A verified flow bundle, ready to shadow.
#[derive(Debug)]
pub struct Verified {
    pub bundle: Bundle,
    pub key_id: String,
}

/// Compares dotted numeric versions (`2026.11.23.1`); `None` when either is not one.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parse =
        |s: &str| -> Option<Vec<u64>> { s.split('.').map(|p| p.parse::<u64>().ok()).collect() };
    let (a, b) = (parse(a)?, parse(b)?);
    let n = a.len().max(b.len());
    let at = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
    Some(
        (0..n)
            .map(|i| at(&a, i).cmp(&at(&b, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
    )
}

/// The checks that need no model run: signature, manifest, hash, version, expiry, kind.
/// `highest` is the newest version this gateway has run (or verified) for the detector.
pub fn check_set(
    set: &SetManifest,
    model: &[u8],
    trust: &Trust,
    highest: Option<&str>,
    now_ms: u64,
) -> Result<(Manifest, String), Refusal> {
    if trust.keys.is_empty() {
        return Err(Refusal::new(
            "signature",
            "this gateway trusts no key ([bundles] trusted_keys); fleet bundles must be signed",
        ));
    }
    let key_id = match trust.check(set.manifest.as_bytes(), Some(set.signature.as_bytes())) {
        Ok(SignatureStatus::Verified { key_id }) => key_id,
        Ok(other) => return Err(Refusal::new("signature", format!("not verified ({other})"))),
        Err(e) => return Err(Refusal::new("signature", e.to_string())),
    };
    let m: Manifest = serde_json::from_str(&set.manifest)
        .map_err(|e| Refusal::new("manifest", format!("manifest.json is not valid: {e}")))?;
    let actual = hex(&Sha256::digest(model));
    if !actual.eq_ignore_ascii_case(&m.model.sha256) {
        return Err(Refusal::new(
            "sha256",
            format!(
                "model SHA-256 is {actual}, the signed manifest says {}",
                m.model.sha256
            ),
        ));
    }
    if let Some(h) = highest {
        match compare_versions(&m.version, h) {
            Some(Ordering::Greater) => {}
            Some(_) => {
                return Err(Refusal::new(
                    "version",
                    format!(
                        "{} is not newer than {h}, the newest this gateway has run",
                        m.version
                    ),
                ))
            }
            None => {
                return Err(Refusal::new(
                    "version",
                    format!("{:?} or {h:?} is not a dotted numeric version", m.version),
                ))
            }
        }
    } else if compare_versions(&m.version, "0").is_none() {
        return Err(Refusal::new(
            "version",
            format!("{:?} is not a dotted numeric version", m.version),
        ));
    }
    check_expiry(&set.manifest, now_ms)?;
    if set.detector != "flow" {
        return Err(Refusal::new(
            "kind",
            format!(
                "delivery of {} bundles is not supported yet (flow only)",
                set.detector
            ),
        ));
    }
    if m.kind != KIND_FLOW {
        return Err(Refusal::new(
            "kind",
            format!(
                "bundle kind {:?} sent to the flow detector ({KIND_FLOW})",
                m.kind
            ),
        ));
    }
    Ok((m, key_id))
}

fn check_expiry(manifest: &str, now_ms: u64) -> Result<(), Refusal> {
    let v: serde_json::Value =
        serde_json::from_str(manifest).map_err(|e| Refusal::new("manifest", e.to_string()))?;
    let Some(exp) = v.get("expires_utc") else {
        return Ok(());
    };
    let text = exp
        .as_str()
        .ok_or_else(|| Refusal::new("expiry", "expires_utc is not a string"))?;
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|e| Refusal::new("expiry", format!("expires_utc {text:?}: {e}")))?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if now_ms >= at_ms {
        return Err(Refusal::new(
            "expiry",
            format!("the bundle expired at {text}"),
        ));
    }
    Ok(())
}

/// Every check: [`check_set`], then the gateway's bundle checks (schema, shapes, golden
/// vectors in tract), then the output width and finiteness on the golden inputs.
pub fn verify_flow(
    set: &SetManifest,
    model: &[u8],
    trust: &Trust,
    highest: Option<&str>,
    now_ms: u64,
    batch_size: usize,
) -> Result<Verified, Refusal> {
    let (m, key_id) = check_set(set, model, trust, highest, now_ms)?;
    let mut bundle = Bundle::from_parts(
        &set.manifest,
        model,
        format!("fleet {} {}", m.name, m.version),
        batch_size,
    )
    .map_err(name_bundle_error)?;
    let width = bundle
        .detector
        .output_width()
        .map_err(|e| Refusal::new("shapes", e.to_string()))?;
    let set = bundle.detector.set();
    if width != set.width() {
        return Err(Refusal::new(
            "shapes",
            format!(
                "the model outputs {width} values per row; {} needs {}",
                set.schema(),
                set.width()
            ),
        ));
    }
    bundle.signature = SignatureStatus::Verified {
        key_id: key_id.clone(),
    };
    Ok(Verified { bundle, key_id })
}

/// Names the check a [`BundleError`] belongs to.
fn name_bundle_error(e: BundleError) -> Refusal {
    let check = match &e {
        BundleError::Format(_) | BundleError::Manifest(_) | BundleError::Read { .. } => "manifest",
        BundleError::Kind { .. } => "kind",
        BundleError::Schema { .. } => "schema",
        BundleError::Hash { .. } => "sha256",
        BundleError::Invalid(_) | BundleError::Model(_) | BundleError::SeriesModel(_) => "shapes",
        BundleError::Signature(_) => "signature",
        BundleError::Golden { diff, .. } if diff.is_nan() => "finite",
        BundleError::Golden { .. } => "golden",
    };
    Refusal::new(check, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_component_by_component() {
        assert_eq!(
            compare_versions("2026.11.23.2", "2026.11.23.1"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_versions("2026.11.23.10", "2026.11.23.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_versions("2026.11", "2026.11.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_versions("2025.12.31", "2026.1.1"),
            Some(Ordering::Less)
        );
        assert_eq!(compare_versions("v1", "1"), None);
    }

    #[test]
    fn expiry_is_optional_and_enforced() {
        assert!(check_expiry("{}", 0).is_ok());
        let m = r#"{"expires_utc":"2026-01-01T00:00:00Z"}"#;
        assert!(check_expiry(m, 1_700_000_000_000).is_ok());
        let err = check_expiry(m, 1_800_000_000_000).expect_err("expired");
        assert_eq!(err.check, "expiry");
        assert_eq!(
            check_expiry(r#"{"expires_utc":"soon"}"#, 0)
                .expect_err("bad")
                .check,
            "expiry"
        );
    }
}

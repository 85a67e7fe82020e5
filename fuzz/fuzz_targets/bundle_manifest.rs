//! Model bundle manifests: the signature rule over the raw bytes (`models/signature.rs`), then
//! JSON parsing and every check a flow or series bundle must pass before tract sees its model
//! (`models/bundle.rs`: schema, shapes, threshold, golden vectors, model hash, scaling), and
//! those of a temporal graph bundle (`models/graph_scorer.rs`: schema, classes, threshold).
//! tract itself is not fuzzed here: it loads only models whose manifest (with the model's
//! SHA-256) passed these checks and, where keys are configured, the signature.
//!
//! Input: `manifest.json` bytes, optionally followed by `0x00` and the `manifest.sig` bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwarden::models::bundle::{BUILTIN_MODEL, BUILTIN_SERIES_MODEL};
use netwarden::models::graph_scorer::{check_graph_manifest_text, BUILTIN_GRAPH_MODEL};
use netwarden::models::manifest::{check_flow_manifest, check_series_manifest};
use netwarden::models::{PublicKey, Trust};
use netwarden::pipeline::graph::column_names;

fuzz_target!(|data: &[u8]| {
    let (manifest, sig) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let _ = Trust::none().check(manifest, sig);
    if let Ok(key) = PublicKey::from_base64("ERERERERERERERERERERERERERERERERERERERERERE=") {
        let _ = Trust::keys(vec![key]).check(manifest, sig);
    }
    let Ok(text) = std::str::from_utf8(manifest) else {
        return;
    };
    let _ = check_flow_manifest(text, BUILTIN_MODEL);
    let _ = check_series_manifest(text, BUILTIN_SERIES_MODEL);
    let _ = check_graph_manifest_text(text, BUILTIN_GRAPH_MODEL, &column_names());
});

//! The feature lists the docs give must be the schemas the gateway computes, in their order:
//! `POST /detect` takes rows in that order (docs/http.md), and a trainer writes bundles against
//! the tables in docs/bundle-format.md. Each list is read from the Markdown and compared with
//! `FLOW_FEATURES` / `SERIES_FEATURES` and the shipped bundles' `features.names`, so a doc
//! that drifts (a column moved, renamed, left out) fails here, naming the file.

use std::path::{Path, PathBuf};

use netwarden_firmware::features::FLOW_FEATURES;
use netwarden_firmware::series::SERIES_FEATURES;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
}

/// The `backticked` names after `marker` in the Markdown bullet that starts with `bullet`, up
/// to the `;` that ends the list.
fn bullet_list(doc: &str, bullet: &str, marker: &str) -> Vec<String> {
    let start = doc
        .find(&format!("\n{bullet}"))
        .unwrap_or_else(|| panic!("no bullet starting {bullet:?}"));
    let rest = &doc[start + 1..];
    // The bullet runs until the next line that starts a new bullet or paragraph.
    let end = rest[1..]
        .find("\n- ")
        .into_iter()
        .chain(rest.find("\n\n"))
        .min()
        .map_or(rest.len(), |e| e + 1);
    let bullet_text = &rest[..end];
    let after = bullet_text
        .split_once(marker)
        .unwrap_or_else(|| panic!("bullet {bullet:?} has no {marker:?}"))
        .1;
    let list = after.split(';').next().unwrap_or_default();
    list.split(',')
        .map(|n| n.trim().trim_matches('`').to_string())
        .collect()
}

/// The names of a `| # | name | meaning |` table under `heading`, with their index column.
fn table_names(doc: &str, heading: &str) -> Vec<(usize, String)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| #"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let i = cells[1]
                .parse()
                .unwrap_or_else(|_| panic!("bad index in {l:?}"));
            (i, cells[2].trim_matches('`').to_string())
        })
        .collect()
}

fn manifest_names(bundle: &str) -> Vec<String> {
    let text = read(&format!("models/bundles/{bundle}/manifest.json"));
    let m: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    m["features"]["names"]
        .as_array()
        .expect("features.names")
        .iter()
        .map(|v| v.as_str().expect("a name").to_string())
        .collect()
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn http_md_lists_the_detect_columns_in_schema_order() {
    let doc = read("docs/http.md");
    let flow = bullet_list(&doc, "- `flow_ae`:", "in schema order:");
    assert_eq!(
        flow,
        owned(&FLOW_FEATURES),
        "docs/http.md: the flow_ae columns differ from flow-v1"
    );
    assert_eq!(flow, manifest_names("flow-ae"), "docs/http.md vs flow-ae");
    let series = bullet_list(&doc, "- `series_ae`", "in schema order:");
    assert_eq!(
        series,
        owned(&SERIES_FEATURES),
        "docs/http.md: the series_ae columns differ from series-v1"
    );
    assert_eq!(
        series,
        manifest_names("series-ae"),
        "docs/http.md vs series-ae"
    );
}

#[test]
fn bundle_format_md_tables_are_the_schemas() {
    let doc = read("docs/bundle-format.md");
    for (heading, schema) in [
        ("## Flow feature schema `flow-v1`", &FLOW_FEATURES),
        ("## Interface series schema `series-v1`", &SERIES_FEATURES),
    ] {
        let want: Vec<(usize, String)> = schema
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.to_string()))
            .collect();
        assert_eq!(
            table_names(&doc, heading),
            want,
            "docs/bundle-format.md, {heading}"
        );
    }
}

#[test]
fn bundle_format_md_flow_v2_table_is_the_schema() {
    let doc = read("docs/bundle-format.md");
    let want: Vec<(usize, String)> = netwarden_firmware::features_v2::FLOW_V2_FEATURES
        .iter()
        .enumerate()
        .map(|(i, n)| (i, n.to_string()))
        .collect();
    assert_eq!(
        table_names(&doc, "## Flow feature schema `flow-v2`"),
        want,
        "docs/bundle-format.md, flow-v2"
    );
    let names: Vec<String> = want.into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, manifest_names("flow-ae-v2"), "flow-ae-v2 bundle");
}

#[test]
fn the_list_reader_sees_a_moved_column() {
    // The check above must be able to fail: a doc with two columns swapped reads differently.
    let doc = "x\n- `flow_ae`: rows in schema order: `a`, `c`,\n  `b`; at most 4 rows.\n- next";
    assert_eq!(
        bullet_list(doc, "- `flow_ae`:", "in schema order:"),
        ["a", "c", "b"]
    );
    let table = "## T\n\n| # | name | meaning |\n| --- | --- | --- |\n| 0 | `a` | x |\n| 1 | `b` | y |\n\nafter";
    assert_eq!(
        table_names(table, "## T"),
        [(0, "a".to_string()), (1, "b".to_string())]
    );
}

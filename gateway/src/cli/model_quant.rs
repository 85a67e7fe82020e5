//! The `quantization` lines of `netwarden model check`: what the manifest records of the
//! fp32/int8 measurement (`models/netwarden_models/export/static_int8.py`), read as plain JSON
//! so bundles from before the field (or with the older dynamic-int8 figures) still print.

use serde_json::Value;

/// The lines to print for a manifest's `quantization` section; empty when it has none.
pub fn lines(q: Option<&Value>) -> Vec<String> {
    let Some(q) = q.filter(|q| q.is_object()) else {
        return Vec::new();
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("-").to_string();
    let num = |v: Option<&Value>, digits: usize| {
        v.and_then(Value::as_f64)
            .map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
    };
    let mut out = vec![format!(
        "quantization: ships {}; rule chose {} ({})",
        text(q.get("chosen")),
        text(q.get("rule_chose").or(q.get("chosen"))),
        text(q.get("why"))
    )];
    if q.get("method").is_none() && q.get("ranking").is_none() {
        return out;
    }
    let rank = q.get("ranking");
    let auc = rank.and_then(|r| r.get("roc_auc"));
    let mut figures = format!(
        "quantization: int8 {} {} ({} weights, {} calibration rows, {}): ROC-AUC fp32 {} int8 {}, score Spearman {}, batch independence {}",
        text(q.get("method")),
        text(q.get("format")),
        text(q.get("weights")),
        q.pointer("/calibration/rows")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_string(), |n| n.to_string()),
        text(q.pointer("/calibration/method")),
        num(auc.and_then(|a| a.get("fp32")), 4),
        num(auc.and_then(|a| a.get("int8")), 4),
        num(rank.and_then(|r| r.get("spearman_fp32_int8")), 4),
        q.get("batch_independence_max_abs")
            .and_then(Value::as_f64)
            .map_or_else(|| "-".to_string(), |x| format!("{x:e}")),
    );
    if let Some(b) = q.get("bytes") {
        figures.push_str(&format!(
            ", bytes fp32 {} int8 {}",
            num(b.get("fp32"), 0),
            num(b.get("int8"), 0)
        ));
    }
    out.push(figures);
    if let Some(tract) = q.get("tract").and_then(Value::as_object) {
        let mut rows: Vec<(u64, &Value)> = tract
            .iter()
            .filter_map(|(batch, row)| Some((batch.strip_prefix("batch")?.parse().ok()?, row)))
            .collect();
        rows.sort_by_key(|(batch, _)| *batch);
        let per_batch: Vec<String> = rows
            .into_iter()
            .filter_map(|(batch, row)| {
                let us = row.get("us_per_row").or(row.get("us_per_sample"))?;
                Some(format!(
                    "batch {batch} {}/{}",
                    num(us.get("fp32"), 2),
                    num(us.get("int8"), 2)
                ))
            })
            .collect();
        if !per_batch.is_empty() {
            out.push(format!(
                "quantization: tract us/row fp32/int8 (Python wheel, when measured): {}",
                per_batch.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_section_prints_nothing_and_a_full_one_prints_its_figures() {
        assert!(lines(None).is_empty());
        assert!(lines(Some(&Value::Null)).is_empty());
        let q = serde_json::json!({
            "chosen": "fp32", "rule_chose": "fp32", "why": "int8 is slower in tract",
            "method": "static", "format": "QDQ", "weights": "per-channel",
            "calibration": {"rows": 2000, "method": "minmax"},
            "ranking": {"spearman_fp32_int8": 0.99581, "roc_auc": {"fp32": 0.92838, "int8": 0.93512}},
            "batch_independence_max_abs": 0.0,
            "bytes": {"fp32": 15181, "int8": 13646},
            "tract": {"batch8": {"us_per_row": {"fp32": 9.61, "int8": 9.78}},
                      "batch1": {"us_per_row": {"fp32": 66.31, "int8": 74.99}}}
        });
        let l = lines(Some(&q));
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(
            l[0],
            "quantization: ships fp32; rule chose fp32 (int8 is slower in tract)"
        );
        assert!(l[1].contains("ROC-AUC fp32 0.9284 int8 0.9351"), "{}", l[1]);
        assert!(l[1].contains("batch independence 0e0"), "{}", l[1]);
        assert!(l[1].contains("bytes fp32 15181 int8 13646"), "{}", l[1]);
        assert_eq!(
            l[2],
            "quantization: tract us/row fp32/int8 (Python wheel, when measured): batch 1 66.31/74.99, batch 8 9.61/9.78"
        );
        // An older manifest: the choice and its reason only.
        let old = serde_json::json!({"chosen": "fp32", "measured": false});
        assert_eq!(
            lines(Some(&old)),
            ["quantization: ships fp32; rule chose fp32 (-)"]
        );
    }
}

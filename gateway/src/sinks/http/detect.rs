//! `POST /detect`: score vectors sent as JSON with the daemon's own models, as the seed's Flask
//! API did. Parsing ([`parse_detect`]) is a plain function of the body's bytes (the fuzz target
//! calls it); scoring runs on the HTTP server's own copies of the bundles, loaded on first use,
//! so a client can never slow the NetFlow pipeline down or see its state.
//!
//! Request (one of `flows`, `windows`, `sequence`):
//! ```json
//! {"detector": "flow_ae", "flows": [[8 raw flow-v1 values], ...]}
//! {"detector": "flow_ae", "schema": "flow-v2", "flows": [[17 raw flow-v2 values], ...]}
//! {"detector": "series_ae", "windows": [[[8 raw series-v1 values] x 50], ...]}
//! {"detector": "series_ae", "sequence": [[8 values] x 50]}
//! ```
//! `series_lstm`, the series detector's name before issue 14, is accepted as `series_ae`. Flow
//! rows are of one schema (`schema`, else told by the first row's width) and must be the active
//! flow model's: a mismatch is refused (400 `wrong_schema`), naming the schema it wants.
//! Reply: `{"detector", "model": {"name", "version"}, "threshold", "results": [{"is_anomaly",
//! "error", "threshold", "severity"}]}`, one result per row or window, in order.

use std::sync::{Arc, Mutex};

use netwarden_firmware::series::{judge_window, SeriesRow, SERIES_WIDTH, WINDOW_STEPS};
use netwarden_firmware::Verdict;
use serde::Serialize;
use serde_json::Value;

use crate::models::flow_scorer::{FlowRow, FlowSet, ROW};
use crate::models::{Bundle, ModelSources, SeriesBundle};
use crate::records::{canonical_detector, FLOW_DETECTOR, SERIES_DETECTOR};

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Flow rows per request at most.
pub const MAX_FLOWS: usize = 4096;
/// Series windows per request at most.
pub const MAX_WINDOWS: usize = 64;

/// Which detector a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    Flow,
    Series,
}

impl DetectorKind {
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::Flow => FLOW_DETECTOR,
            DetectorKind::Series => SERIES_DETECTOR,
        }
    }
}

/// A checked request: finite raw feature values, whole rows or windows.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectRequest {
    /// Rows of one schema (its width used, the rest 0).
    Flows(FlowSet, Vec<FlowRow>),
    /// Each window is [`WINDOW_STEPS`] rows, oldest first.
    Windows(Vec<Vec<SeriesRow>>),
}

impl DetectRequest {
    pub fn kind(&self) -> DetectorKind {
        match self {
            DetectRequest::Flows(..) => DetectorKind::Flow,
            DetectRequest::Windows(_) => DetectorKind::Series,
        }
    }
}

/// Why a request was refused; every variant is a 400 except `TooLarge` (413) and
/// `Unavailable` (503).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not valid JSON: NaN and Infinity are not JSON numbers (send finite values)")]
    NonFiniteToken,
    #[error("body must be a JSON object")]
    NotObject,
    #[error("missing \"detector\" (one of \"flow_ae\", \"series_ae\")")]
    MissingDetector,
    #[error("unknown detector {0:?} (known: \"flow_ae\", \"series_ae\")")]
    UnknownDetector(String),
    #[error("unknown field {0:?} (expected \"detector\" and one of \"flows\", \"windows\", \"sequence\")")]
    UnknownField(String),
    #[error("{detector} expects {expected}")]
    MissingItems {
        detector: &'static str,
        expected: &'static str,
    },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    #[error("{path} is not a finite number")]
    NotFinite { path: String },
    #[error("{what} has {got} items, more than the {max} allowed per request")]
    TooMany {
        what: &'static str,
        got: usize,
        max: usize,
    },
    #[error("nothing to score: {0} is empty")]
    Empty(&'static str),
    #[error("unknown schema {0:?} (known: \"flow-v1\", \"flow-v2\")")]
    UnknownSchema(String),
    #[error("the active flow model reads {want} rows ({width} values: {names}); this request sent {sent} rows: send {want} rows (\"schema\": \"{want}\")")]
    WrongSchema {
        want: &'static str,
        width: usize,
        names: String,
        sent: &'static str,
    },
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("model unavailable: {0}")]
    Unavailable(String),
}

impl DetectError {
    /// A short machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            DetectError::Json(_) | DetectError::NonFiniteToken | DetectError::NotObject => {
                "bad_json"
            }
            DetectError::MissingDetector | DetectError::UnknownDetector(_) => "unknown_detector",
            DetectError::UnknownField(_) | DetectError::MissingItems { .. } => "bad_request",
            DetectError::Shape { .. } | DetectError::Empty(_) => "wrong_shape",
            DetectError::UnknownSchema(_) | DetectError::WrongSchema { .. } => "wrong_schema",
            DetectError::NotFinite { .. } => "not_finite",
            DetectError::TooMany { .. } | DetectError::TooLarge => "too_large",
            DetectError::Unavailable(_) => "unavailable",
        }
    }
}

/// Parses and checks a `/detect` body. Never panics, whatever the bytes.
pub fn parse_detect(body: &[u8]) -> Result<DetectRequest, DetectError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DetectError::TooLarge);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        if e.is_syntax() && (text.contains("NaN") || text.contains("Infinity")) {
            DetectError::NonFiniteToken
        } else {
            DetectError::Json(e.to_string())
        }
    })?;
    let Value::Object(obj) = v else {
        return Err(DetectError::NotObject);
    };
    let detector = match obj.get("detector") {
        None => return Err(DetectError::MissingDetector),
        Some(Value::String(s)) if s == FLOW_DETECTOR => DetectorKind::Flow,
        Some(Value::String(s)) if canonical_detector(s) == SERIES_DETECTOR => DetectorKind::Series,
        Some(Value::String(s)) => return Err(DetectError::UnknownDetector(s.clone())),
        Some(other) => return Err(DetectError::UnknownDetector(other.to_string())),
    };
    if let Some(k) = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "detector" | "schema" | "flows" | "windows" | "sequence"
        )
    }) {
        return Err(DetectError::UnknownField(k.clone()));
    }
    match detector {
        DetectorKind::Flow => {
            let Some(flows) = obj.get("flows") else {
                return Err(DetectError::MissingItems {
                    detector: FLOW_DETECTOR,
                    expected: "\"flows\": an array of rows of 8 flow-v1 (or 17 flow-v2) values",
                });
            };
            let rows = array(flows, "flows")?;
            if rows.is_empty() {
                return Err(DetectError::Empty("flows"));
            }
            if rows.len() > MAX_FLOWS {
                return Err(DetectError::TooMany {
                    what: "flows",
                    got: rows.len(),
                    max: MAX_FLOWS,
                });
            }
            let set = match obj.get("schema") {
                None if rows[0].as_array().map(Vec::len) == Some(ROW) => FlowSet::V2,
                None => FlowSet::V1,
                Some(v) => v.as_str().and_then(FlowSet::from_schema).ok_or_else(|| {
                    DetectError::UnknownSchema(v.as_str().map_or(v.to_string(), str::to_string))
                })?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                let mut row = [0f32; ROW];
                values(r, &format!("flows[{i}]"), set.names(), &mut row)?;
                out.push(row);
            }
            Ok(DetectRequest::Flows(set, out))
        }
        DetectorKind::Series => {
            let windows: Vec<(&Value, String)> = match (obj.get("windows"), obj.get("sequence")) {
                (Some(w), None) => array(w, "windows")?
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (w, format!("windows[{i}]")))
                    .collect(),
                (None, Some(s)) => vec![(s, "sequence".to_string())],
                _ => {
                    return Err(DetectError::MissingItems {
                        detector: SERIES_DETECTOR,
                        expected: "either \"windows\" (an array of windows) or \"sequence\" (one window): 50 rows of 8 series-v1 values each",
                    })
                }
            };
            if windows.is_empty() {
                return Err(DetectError::Empty("windows"));
            }
            if windows.len() > MAX_WINDOWS {
                return Err(DetectError::TooMany {
                    what: "windows",
                    got: windows.len(),
                    max: MAX_WINDOWS,
                });
            }
            let names = netwarden_firmware::series::SERIES_FEATURES;
            let mut out = Vec::with_capacity(windows.len());
            for (w, path) in windows {
                let rows = array(w, &path)?;
                if rows.len() != WINDOW_STEPS {
                    return Err(DetectError::Shape {
                        path,
                        message: format!(
                            "a window has {WINDOW_STEPS} rows (oldest first), not {}",
                            rows.len()
                        ),
                    });
                }
                let mut win = Vec::with_capacity(WINDOW_STEPS);
                for (j, r) in rows.iter().enumerate() {
                    let mut row = [0f32; SERIES_WIDTH];
                    values(r, &format!("{path}[{j}]"), &names, &mut row)?;
                    win.push(row);
                }
                out.push(win);
            }
            Ok(DetectRequest::Windows(out))
        }
    }
}

fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, DetectError> {
    v.as_array().ok_or_else(|| DetectError::Shape {
        path: path.to_string(),
        message: format!("expected an array, got {}", kind_of(v)),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One row of `names.len()` finite values into `out`'s first ones.
fn values(v: &Value, path: &str, names: &[&str], out: &mut [f32]) -> Result<(), DetectError> {
    let (items, n) = (array(v, path)?, names.len());
    if items.len() != n {
        return Err(DetectError::Shape {
            path: path.to_string(),
            message: format!(
                "a row has {n} values ({}), not {}",
                names.join(", "),
                items.len()
            ),
        });
    }
    for (i, x) in items.iter().enumerate() {
        let f = x.as_f64().map(|f| f as f32);
        match f {
            Some(f) if f.is_finite() => out[i] = f,
            _ => {
                return Err(DetectError::NotFinite {
                    path: format!("{path}[{i}] ({}: {})", names[i], kind_or_value(x)),
                })
            }
        }
    }
    Ok(())
}

fn kind_or_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_string(),
    }
}

/// One scored row or window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectResult {
    pub is_anomaly: bool,
    pub error: f32,
    pub threshold: f32,
    /// `high`, `medium`, or `none`.
    pub severity: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectReply {
    pub detector: &'static str,
    pub model: crate::records::ModelRef,
    pub threshold: f32,
    pub results: Vec<DetectResult>,
}

/// The HTTP server's own model copies, loaded on first use.
#[derive(Debug)]
pub struct Scorer {
    sources: ModelSources,
    flow: Mutex<Option<Bundle>>,
    series: Mutex<Option<SeriesBundle>>,
}

/// Flow rows per model run in the scorer.
const SCORER_FLOW_BATCH: usize = 256;

impl Scorer {
    pub fn new(sources: ModelSources) -> Arc<Scorer> {
        Arc::new(Scorer {
            sources,
            flow: Mutex::new(None),
            series: Mutex::new(None),
        })
    }

    /// Scores a checked request. Blocking (tract); call it off the async workers.
    pub fn score(&self, req: &DetectRequest) -> Result<DetectReply, DetectError> {
        let unavailable = |e: &dyn std::fmt::Display| DetectError::Unavailable(e.to_string());
        match req {
            DetectRequest::Flows(set, rows) => {
                let mut guard = self.flow.lock().unwrap_or_else(|p| p.into_inner());
                if guard.is_none() {
                    let b = self
                        .sources
                        .load_flow(SCORER_FLOW_BATCH)
                        .map_err(|e| unavailable(&e))?;
                    *guard = Some(b);
                }
                let b = guard.as_mut().ok_or_else(|| unavailable(&"not loaded"))?;
                let det = &mut b.detector;
                if *set != det.set() {
                    return Err(DetectError::WrongSchema {
                        want: det.set().schema(),
                        width: det.width(),
                        names: det.set().names().join(", "),
                        sent: set.schema(),
                    });
                }
                let width = det.width();
                let scaled: Vec<FlowRow> = rows.iter().map(|r| det.scaler().scale(r)).collect();
                let mut out = Vec::with_capacity(rows.len() * width);
                det.run_scaled(&scaled, &mut out)
                    .map_err(|e| unavailable(&e))?;
                let (threshold, high) = (det.threshold, det.high_ratio);
                let results = scaled
                    .iter()
                    .zip(out.chunks(width))
                    .map(|(s, o)| {
                        let v = Verdict::judge_first(s, width, o, threshold, high);
                        result(v.error, v.severity, threshold)
                    })
                    .collect();
                Ok(DetectReply {
                    detector: FLOW_DETECTOR,
                    model: model_ref(&b.manifest),
                    threshold,
                    results,
                })
            }
            DetectRequest::Windows(windows) => {
                let mut guard = self.series.lock().unwrap_or_else(|p| p.into_inner());
                if guard.is_none() {
                    let b = self.sources.load_series().map_err(|e| unavailable(&e))?;
                    *guard = Some(b);
                }
                let b = guard.as_mut().ok_or_else(|| unavailable(&"not loaded"))?;
                let det = &mut b.detector;
                let per = det.window_len();
                let mut scaled = Vec::with_capacity(windows.len() * per);
                for w in windows {
                    det.scale_rows(w.iter(), &mut scaled);
                }
                let mut out = Vec::with_capacity(scaled.len());
                det.run_scaled(&scaled, &mut out)
                    .map_err(|e| unavailable(&e))?;
                let (threshold, high) = (det.threshold, det.high_ratio);
                let results = scaled
                    .chunks(per)
                    .zip(out.chunks(per))
                    .map(|(s, o)| {
                        let v = judge_window(s, o, threshold, high);
                        result(v.error, v.severity, threshold)
                    })
                    .collect();
                Ok(DetectReply {
                    detector: SERIES_DETECTOR,
                    model: model_ref(&b.manifest),
                    threshold,
                    results,
                })
            }
        }
    }
}

fn model_ref(m: &crate::models::Manifest) -> crate::records::ModelRef {
    crate::records::ModelRef {
        name: m.name.clone(),
        version: m.version.clone(),
    }
}

fn result(
    error: f32,
    severity: Option<netwarden_firmware::Severity>,
    threshold: f32,
) -> DetectResult {
    DetectResult {
        is_anomaly: severity.is_some(),
        error,
        threshold,
        severity: severity.map_or("none", |s| s.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> DetectError {
        parse_detect(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn flows_parse_and_bad_shapes_are_named() {
        let ok =
            parse_detect(br#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,8]]}"#).expect("valid");
        assert_eq!(
            ok,
            DetectRequest::Flows(
                FlowSet::V1,
                vec![crate::models::flow_scorer::row_of(&[
                    1., 2., 3., 4., 5., 6., 7., 8.
                ])]
            )
        );
        let v2 = br#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7]]}"#;
        assert!(matches!(
            parse_detect(v2),
            Ok(DetectRequest::Flows(FlowSet::V2, _))
        ));
        let e = err(r#"{"detector":"flow_ae","schema":"flow-v2","flows":[[1,2,3,4,5,6,7,8]]}"#);
        assert!(e.to_string().contains("a row has 17 values"), "{e}");
        let e = err(r#"{"detector":"flow_ae","schema":"flow-v3","flows":[[1]]}"#);
        assert_eq!(e.code(), "wrong_schema");
        let e = err(r#"{"detector":"flow_ae","flows":[[1,2,3]]}"#);
        assert_eq!(e.code(), "wrong_shape");
        assert!(
            e.to_string().contains("flows[0]: a row has 8 values"),
            "{e}"
        );
        let e = err(r#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,null]]}"#);
        assert_eq!(e.code(), "not_finite");
        assert!(e.to_string().contains("flows[0][7]"), "{e}");
        assert_eq!(
            err(r#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,NaN]]}"#),
            DetectError::NonFiniteToken
        );
        assert_eq!(
            err(r#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,1e999]]}"#).code(),
            "bad_json"
        );
        assert_eq!(
            err(r#"{"detector":"flow_ae","flows":[]}"#),
            DetectError::Empty("flows")
        );
        assert_eq!(err(r#"{"detector":"flow_ae"}"#).code(), "bad_request");
    }

    #[test]
    fn unknown_detectors_fields_and_non_objects() {
        assert_eq!(
            err(r#"{"detector":"lof","flows":[]}"#),
            DetectError::UnknownDetector("lof".into())
        );
        assert_eq!(err(r#"{"flows":[]}"#), DetectError::MissingDetector);
        assert_eq!(
            err(r#"{"detector":"flow_ae","flow":[]}"#),
            DetectError::UnknownField("flow".into())
        );
        assert_eq!(err("[1,2]"), DetectError::NotObject);
        assert_eq!(err("{").code(), "bad_json");
        assert_eq!(err("\u{0}\u{ff}").code(), "bad_json");
    }

    #[test]
    fn series_windows_and_single_sequence() {
        let row = "[1,2,3,4,5,6,7,8]";
        let window = format!("[{}]", vec![row; WINDOW_STEPS].join(","));
        let one =
            parse_detect(format!(r#"{{"detector":"series_ae","sequence":{window}}}"#).as_bytes())
                .expect("sequence");
        assert!(matches!(one, DetectRequest::Windows(ref w) if w.len() == 1));
        let two = parse_detect(
            format!(r#"{{"detector":"series_ae","windows":[{window},{window}]}}"#).as_bytes(),
        )
        .expect("windows");
        assert!(
            matches!(two, DetectRequest::Windows(ref w) if w.len() == 2 && w[1].len() == WINDOW_STEPS)
        );
        let short = format!("[{}]", [row; 3].join(","));
        let e = err(&format!(r#"{{"detector":"series_ae","sequence":{short}}}"#));
        assert!(e.to_string().contains("a window has 50 rows"), "{e}");
        let e = err(r#"{"detector":"series_ae","flows":[[1,2,3,4,5,6,7,8]]}"#);
        assert_eq!(e.code(), "bad_request");
    }

    #[test]
    fn the_old_detector_name_series_lstm_is_an_alias_of_series_ae() {
        let row = "[1,2,3,4,5,6,7,8]";
        let window = format!("[{}]", vec![row; WINDOW_STEPS].join(","));
        let body = |detector: &str| format!(r#"{{"detector":"{detector}","sequence":{window}}}"#);
        let old = parse_detect(body("series_lstm").as_bytes()).expect("old name accepted");
        let new = parse_detect(body("series_ae").as_bytes()).expect("new name");
        assert_eq!(old, new);
        // The reply names the detector by its current name.
        let reply = Scorer::new(ModelSources::default())
            .score(&old)
            .expect("scored");
        assert_eq!(reply.detector, SERIES_DETECTOR);
        // Only the one old name is an alias.
        assert_eq!(
            err(&body("series_lst")),
            DetectError::UnknownDetector("series_lst".into())
        );
    }

    #[test]
    fn limits() {
        let rows = vec!["[0,0,0,0,0,0,0,0]"; MAX_FLOWS + 1].join(",");
        let e = err(&format!(r#"{{"detector":"flow_ae","flows":[{rows}]}}"#));
        assert_eq!(e.code(), "too_large");
        assert_eq!(
            parse_detect(&vec![b' '; MAX_BODY_BYTES + 1]),
            Err(DetectError::TooLarge)
        );
    }

    #[test]
    fn scoring_with_the_builtin_models_flags_an_outlier() {
        use crate::models::flow_scorer::row_of;
        let scorer = Scorer::new(ModelSources::default());
        let m = crate::models::bundle::BUILTIN_MANIFEST;
        let manifest: crate::models::Manifest = serde_json::from_str(m).expect("manifest");
        let set = FlowSet::from_schema(&manifest.features.schema).expect("a flow schema");
        let other = [FlowSet::V1, FlowSet::V2].into_iter().find(|s| *s != set);
        let weird = [
            1e9f32, 1e12, 0., 1e6, 1e5, 0., 1e4, 0., 0., 0., 0., 1., 0., 0., 500., 1., 1.,
        ];
        let rows = vec![
            row_of(&manifest.golden.inputs[0]),
            row_of(&weird[..set.width()]),
        ];
        let e = scorer.score(&DetectRequest::Flows(other.expect("other"), rows.clone()));
        let want = format!("reads {} rows ({} values", set.schema(), set.width());
        assert!(e.expect_err("other schema").to_string().contains(&want));
        let reply = scorer
            .score(&DetectRequest::Flows(set, rows))
            .expect("scored");
        assert_eq!(reply.results.len(), 2);
        assert!((reply.threshold - manifest.threshold.value).abs() < 1e-9);
        assert!(reply.results[1].is_anomaly, "{reply:?}");
        assert!(reply.results[1].error > reply.results[0].error);
        assert_ne!(reply.results[1].severity, "none");
        let window = vec![[1e3f32, 1e3, 12.0, 3.0, 0.0, 0.0, 0.0, 0.0]; WINDOW_STEPS];
        let reply = scorer
            .score(&DetectRequest::Windows(vec![window]))
            .expect("series scored");
        assert_eq!(reply.detector, "series_ae");
        assert_eq!(reply.results.len(), 1);
        assert!(reply.results[0].error.is_finite());
    }
}

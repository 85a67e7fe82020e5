//! The model ledger over HTTP (docs/fleet.md, docs/http.md), behind the token like the rest of
//! the API: `GET /models/fleet` (delivered models, states, history, versions on disk),
//! `POST /models/fleet/activate` (`{"version": "..."}`: a delivered version on disk, or
//! `configured`) and `POST /models/fleet/rollback` (the previous version, else the configured
//! bundle). Activation skips the shadow: the bundle is loaded and checked again (signature,
//! hash, golden vectors), then swapped in between two batches on the scoring thread.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{error, AppState};
use crate::models::fleet::wire::FLOW;
use crate::models::fleet::{Candidate, Ledger, CONFIGURED};
use crate::models::{Bundle, ModelSources};

/// What the fleet endpoints need (present when `[fleet]` is enabled).
#[derive(Debug)]
pub struct FleetApi {
    pub ledger: Arc<Ledger>,
    pub candidates: SyncSender<Candidate>,
    pub sources: ModelSources,
    pub batch_size: usize,
}

fn api(s: &AppState) -> Result<Arc<FleetApi>, Box<Response>> {
    s.fleet.clone().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "fleet_off",
            "fleet model delivery is not enabled ([fleet] enabled = true)",
        ))
    })
}

pub async fn status(State(s): State<AppState>) -> Response {
    let f = match api(&s) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    Json(serde_json::json!({
        "detectors": f.ledger.all(),
        "on_disk": { FLOW: f.ledger.versions_on_disk(FLOW) },
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    version: String,
}

pub async fn activate(State(s): State<AppState>, body: Option<Json<ActivateBody>>) -> Response {
    let f = match api(&s) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "send {\"version\": \"...\"} (a delivered version on disk, or \"configured\")",
        );
    };
    swap_to(f, body.version).await
}

pub async fn rollback(State(s): State<AppState>) -> Response {
    let f = match api(&s) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let st = f.ledger.get(FLOW);
    if st.active.is_none() {
        return error(
            StatusCode::CONFLICT,
            "nothing_to_roll_back",
            "the configured model is running; no delivered version to roll back from",
        );
    }
    let target = st.previous.unwrap_or_else(|| CONFIGURED.to_string());
    swap_to(f, target).await
}

async fn swap_to(f: Arc<FleetApi>, version: String) -> Response {
    if version != CONFIGURED && !f.ledger.versions_on_disk(FLOW).contains(&version) {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_version",
            format!("flow version {version:?} is not on disk (GET /models/fleet lists them)"),
        );
    }
    let api = f.clone();
    let v = version.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        if v == CONFIGURED {
            api.sources
                .load_flow(api.batch_size)
                .map_err(|e| e.to_string())
        } else {
            let dir = api.ledger.bundle_dir(FLOW, &v);
            Bundle::load_dir(&dir, api.batch_size, &api.sources.trust).map_err(|e| e.to_string())
        }
    })
    .await;
    let bundle = match loaded {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return error(StatusCode::UNPROCESSABLE_ENTITY, "bundle_refused", e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "load_failed", e),
    };
    let c = Candidate {
        version: version.clone(),
        bundle,
        immediate: true,
    };
    match f.candidates.try_send(c) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "activating": version })),
        )
            .into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the flow thread has a model waiting already; try again",
        ),
    }
}

//! `GET /samples`: the reservoir of feature rows for central training (issue 18).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{error, AppState};
use crate::records::samples::SchemaPick;

/// `GET /samples[?schema=flow-v1|flow-v2|all]`: the reservoir of feature rows for central
/// training, as CSV (what `netwarden samples export` writes): the active flow model's rows
/// unless `schema` says otherwise.
pub(super) async fn samples(
    State(s): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let pick = match q
        .get("schema")
        .map_or(Ok(SchemaPick::Active(None)), |v| SchemaPick::parse(v))
    {
        Ok(p) => p,
        Err(e) => {
            s.metrics.add(&s.metrics.http_bad_requests, 1);
            return error(StatusCode::BAD_REQUEST, "bad_query", e);
        }
    };
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.samples_csv(pick)).await {
        Ok(Ok((text, stats))) => {
            let schema = stats.schema.map_or("all", |s| s.schema());
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::HeaderName::from_static("x-netwarden-schema"),
                        schema,
                    ),
                ],
                text,
            )
                .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
    }
}

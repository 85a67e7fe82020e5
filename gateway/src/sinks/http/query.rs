//! The checks every API handler makes on its query string, in one place: the query parses
//! (unknown parameters refused), `since`/`until` are times ([`crate::records::time`]) in order,
//! enumerations hold a known value, limits are in range. A failed check is a 400 with a JSON
//! error body (`bad_query` or `bad_time`, docs/http.md), returned with `?`.

use std::time::Duration;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::records::time::parse_time;

/// A refused query: status 400 with `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery {
    pub code: &'static str,
    pub message: String,
}

impl BadQuery {
    fn query(message: impl Into<String>) -> BadQuery {
        BadQuery {
            code: "bad_query",
            message: message.into(),
        }
    }

    fn time(message: impl Into<String>) -> BadQuery {
        BadQuery {
            code: "bad_time",
            message: message.into(),
        }
    }
}

impl IntoResponse for BadQuery {
    fn into_response(self) -> Response {
        super::error(StatusCode::BAD_REQUEST, self.code, self.message)
    }
}

/// `Query<T>` whose rejection is our JSON error instead of axum's plain text.
#[derive(Debug)]
pub struct Checked<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Checked<T> {
    type Rejection = BadQuery;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Checked(q))
            .map_err(|e| BadQuery::query(e.body_text()))
    }
}

/// `since`/`until` as Unix ms, `since` < `until`. Without `until`: up to `now_ms` inclusive;
/// without `since`: `default_span` before `until`.
pub fn time_range(
    since: Option<&str>,
    until: Option<&str>,
    default_span: Duration,
    now_ms: u64,
) -> Result<(u64, u64), BadQuery> {
    let parse = |s: &str| parse_time(s, now_ms).map_err(|e| BadQuery::time(e.to_string()));
    let until = match until {
        Some(u) => parse(u)?,
        None => now_ms.saturating_add(1),
    };
    let since = match since {
        Some(s) => parse(s)?,
        None => until.saturating_sub(u64::try_from(default_span.as_millis()).unwrap_or(u64::MAX)),
    };
    if since >= until {
        return Err(BadQuery::time("since must be before until"));
    }
    Ok((since, until))
}

/// `value` if it is absent or one of `allowed`; the error names them all.
pub fn one_of<'a>(
    name: &str,
    value: Option<&'a str>,
    allowed: &[&str],
) -> Result<Option<&'a str>, BadQuery> {
    match value {
        Some(v) if !allowed.contains(&v) => {
            let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            Err(BadQuery::query(format!(
                "{name} {v:?} is not {}",
                list.join(" or ")
            )))
        }
        _ => Ok(value),
    }
}

/// A page size: `default` when absent, else 1 to `max`.
pub fn limit(value: Option<usize>, default: usize, max: usize) -> Result<usize, BadQuery> {
    match value.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n),
        _ => Err(BadQuery::query(format!("limit must be 1 to {max}"))),
    }
}

/// A paging cursor this API handed out (32 hex digits), if one was given.
pub fn cursor(value: Option<&str>) -> Result<Option<[u8; 16]>, BadQuery> {
    value
        .map(|c| {
            decode_cursor(c).ok_or_else(|| BadQuery::query("cursor is not one this API returned"))
        })
        .transpose()
}

pub fn encode_cursor(c: &[u8; 16]) -> String {
    c.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const NOW: u64 = 1_800_000_000_000;
    const HOUR: Duration = Duration::from_secs(3600);

    #[rstest]
    #[case::defaults(None, None, Ok((NOW + 1 - 3_600_000, NOW + 1)))]
    #[case::since_relative(Some("2h"), None, Ok((NOW - 7_200_000, NOW + 1)))]
    #[case::until_only_takes_the_span_before_it(None, Some("1000000000"), Ok((1_000_000_000 - 3_600_000, 1_000_000_000)))]
    #[case::both_absolute(Some("1000"), Some("2000"), Ok((1000, 2000)))]
    #[case::rfc3339(Some("2026-11-23T00:00:00Z"), None, Ok((1_795_392_000_000, NOW + 1)))]
    #[case::reversed(Some("2000"), Some("1000"), Err("since must be before until"))]
    #[case::empty_range(Some("1000"), Some("1000"), Err("since must be before until"))]
    fn time_ranges(
        #[case] since: Option<&str>,
        #[case] until: Option<&str>,
        #[case] want: Result<(u64, u64), &str>,
    ) {
        let got = time_range(since, until, HOUR, NOW);
        match want {
            Ok(r) => assert_eq!(got, Ok(r)),
            Err(m) => assert_eq!(got, Err(BadQuery::time(m))),
        }
    }

    #[rstest]
    #[case::since(Some("yesterday"), None)]
    #[case::until(None, Some("soon"))]
    fn bad_times_are_bad_time_and_name_the_forms(
        #[case] since: Option<&str>,
        #[case] until: Option<&str>,
    ) {
        let e = time_range(since, until, HOUR, NOW).expect_err("refused");
        assert_eq!(e.code, "bad_time");
        assert!(e.message.contains("RFC 3339"), "{}", e.message);
    }

    #[rstest]
    #[case::absent(None, Ok(None))]
    #[case::known(Some("high"), Ok(Some("high")))]
    #[case::unknown(Some("low"), Err(r#"severity "low" is not "high" or "medium""#))]
    #[case::case_matters(Some("HIGH"), Err(r#"severity "HIGH" is not "high" or "medium""#))]
    fn enumerations(#[case] value: Option<&str>, #[case] want: Result<Option<&str>, &str>) {
        let got = one_of("severity", value, &["high", "medium"]);
        assert_eq!(got, want.map_err(BadQuery::query));
    }

    #[rstest]
    #[case::default(None, Ok(100))]
    #[case::one(Some(1), Ok(1))]
    #[case::max(Some(1000), Ok(1000))]
    #[case::zero(Some(0), Err(()))]
    #[case::over(Some(1001), Err(()))]
    fn limits(#[case] value: Option<usize>, #[case] want: Result<usize, ()>) {
        let got = limit(value, 100, 1000);
        match want {
            Ok(n) => assert_eq!(got, Ok(n)),
            Err(()) => assert_eq!(got, Err(BadQuery::query("limit must be 1 to 1000"))),
        }
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = [7u8; 16];
        assert_eq!(cursor(Some(&encode_cursor(&c))), Ok(Some(c)));
        assert_eq!(cursor(None), Ok(None));
        for junk in ["zz".to_string(), "é".repeat(16), "g".repeat(32)] {
            assert_eq!(cursor(Some(&junk)).expect_err("junk").code, "bad_query");
        }
    }
}

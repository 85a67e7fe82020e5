//! Points in time as people type them: the one parser behind the CLI's `--since`/`--until`
//! (`alerts`, `history`, `plot`, `calibrate`) and the HTTP API's `?since=`/`?until=`, so both
//! accept the same forms.

use std::time::{Duration, UNIX_EPOCH};

/// Why a time was refused; the message names the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "{0:?} is not a time: use a duration ago (30s, 15m, 2h, 7d), Unix ms, or RFC 3339 (2026-11-23T10:00:00Z)"
    )]
    Unrecognised(String),
    #[error("{0:?} is before 1970")]
    BeforeEpoch(String),
}

/// Parses `s` into Unix ms. Accepted, in this order:
/// - Unix milliseconds (`1795392000000`);
/// - RFC 3339, `T` or a space between date and time, `Z` or no zone meaning UTC
///   (`2026-11-23T10:00:00Z`, `2026-11-23 10:00:00`);
/// - a duration before `now_ms` in humantime's units (`30s`, `15m`, `2h`, `7d`, `1h 30m`),
///   clamped at 0.
///
/// Leading and trailing whitespace is ignored. Never panics (fuzzed by
/// `fuzz/fuzz_targets/http_detect.rs`).
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, TimeError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return t
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .map_err(|_| TimeError::BeforeEpoch(s.to_string()));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now_ms.saturating_sub(millis(d)));
    }
    Err(TimeError::Unrecognised(s.to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const NOW: u64 = 1_800_000_000_000;

    #[rstest]
    #[case::unix_ms("1234", 1234)]
    #[case::unix_ms_zero("0", 0)]
    #[case::rfc3339_z("2026-11-23T00:00:00Z", 1_795_392_000_000)]
    #[case::rfc3339_fraction("1970-01-01T00:00:01.5Z", 1500)]
    #[case::rfc3339_space_no_zone("2026-11-23 00:00:00", 1_795_392_000_000)]
    #[case::seconds_ago("30s", NOW - 30_000)]
    #[case::minutes_ago("15m", NOW - 900_000)]
    #[case::hours_ago("2h", NOW - 7_200_000)]
    #[case::days_ago("7d", NOW - 7 * 86_400_000)]
    #[case::compound_ago("1h 30m", NOW - 5_400_000)]
    #[case::whitespace_trimmed("  2h\n", NOW - 7_200_000)]
    #[case::longer_ago_than_epoch_clamps("100000d", 0)]
    fn accepted_forms(#[case] input: &str, #[case] want: u64) {
        assert_eq!(parse_time(input, NOW), Ok(want));
    }

    #[rstest]
    #[case::words("yesterday")]
    #[case::empty("")]
    #[case::negative("-5")]
    #[case::unit_unknown("5 fortnights")]
    #[case::date_only("2026-11-23")]
    #[case::ms_overflow("99999999999999999999999")]
    fn refused_forms_name_the_accepted_ones(#[case] input: &str) {
        let e = parse_time(input, NOW).expect_err("refused");
        assert_eq!(e, TimeError::Unrecognised(input.trim().to_string()));
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn the_same_parser_serves_every_caller_so_relative_times_use_the_given_clock() {
        assert_eq!(parse_time("1s", 500), Ok(0));
        assert_eq!(parse_time("1s", 1_500), Ok(500));
    }
}

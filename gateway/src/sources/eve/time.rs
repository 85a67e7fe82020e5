//! EVE timestamps: `2023-02-28T11:34:02.133169+0000` (Suricata writes the zone without a
//! colon), also `+00:00`, `Z`, or no zone (UTC, as 2.x-era records were written).

/// Unix ms of an EVE timestamp, `None` when it is not one (or is before 1970).
pub fn parse_eve_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = rest[1..].replace(':', "");
            if z.len() != 4 || !z.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (h, m): (i64, i64) = (z[..2].parse().ok()?, z[2..].parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    u64::try_from(secs.checked_mul(1000)?.checked_add(millis)?).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 UTC with milliseconds (`2026-03-02T10:00:00.000Z`), for window results.
pub fn format_ms(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("2023-02-28T11:34:02.133169+0000", Some(1_677_584_042_133))]
    #[case("2021-09-12T21:52:02.867400+0800", Some(1_631_454_722_867))]
    #[case("1969-12-31T16:02:41.316317-0800", Some(161_316))]
    #[case("2026-03-02T10:00:00Z", Some(1_772_445_600_000))]
    #[case("2026-03-02T10:00:00+01:00", Some(1_772_442_000_000))]
    #[case("2016-08-22T06:58:20.853189", Some(1_471_849_100_853))]
    #[case("1969-12-31T23:59:59Z", None)]
    #[case("2026-13-02T10:00:00Z", None)]
    #[case("2026-03-02T10:00:00+2", None)]
    #[case("2026-03-02T10:00:00.Z", None)]
    #[case("yesterday", None)]
    #[case("2026-03-02T1é:00:00Z", None)]
    fn parses(#[case] s: &str, #[case] want: Option<u64>) {
        assert_eq!(parse_eve_time(s), want);
    }

    #[test]
    fn formats_back() {
        for ms in [0, 1_772_445_600_123, 1_631_454_722_867, 951_782_400_000] {
            assert_eq!(
                parse_eve_time(&format_ms(ms)),
                Some(ms),
                "{}",
                format_ms(ms)
            );
        }
        assert_eq!(format_ms(1_772_445_600_000), "2026-03-02T10:00:00.000Z");
    }
}

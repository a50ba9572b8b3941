//! Wall-clock times as text, without a date crate.

/// `2026-11-22 11:57:01.692831 UTC` from microseconds since the epoch.
pub fn format_utc_micros(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        us % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(format_utc_micros(0), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(
            format_utc_micros(1_795_348_531_692_831),
            "2026-11-22 11:55:31.692831 UTC"
        );
        assert_eq!(
            format_utc_micros(951_782_400_000_001),
            "2000-02-29 00:00:00.000001 UTC"
        );
    }
}

//! Wall-clock times as text: RFC 3339 in UTC everywhere (`2026-11-22T11:55:31Z`), through
//! humantime.

use std::time::{Duration, UNIX_EPOCH};

/// `2026-11-22T11:55:31.692831Z` from microseconds since the epoch.
pub fn format_rfc3339_micros(us: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// `2026-11-22T11:55:31Z` from seconds since the epoch.
pub fn format_rfc3339_seconds(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339_micros(1_795_348_531_692_831),
            "2026-11-22T11:55:31.692831Z"
        );
        assert_eq!(
            format_rfc3339_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            format_rfc3339_seconds(1_795_348_531),
            "2026-11-22T11:55:31Z"
        );
    }
}

//! Wall-clock times as Docker writes them: nanoseconds since the epoch internally, RFC 3339
//! with Go's trimmed fraction (`2026-11-26T03:54:17.47626593Z`) in inspect answers, and
//! "zero" (`0001-01-01T00:00:00Z`) for a time that never happened, as Go's `time.Time{}`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch; 0 stands for "never".
pub type Nanos = u64;

pub fn now() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Go's `time.RFC3339Nano` in UTC: the fraction loses its trailing zeros, and vanishes when
/// it is zero.
pub fn rfc3339(t: Nanos) -> String {
    if t == 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    let secs = t / 1_000_000_000;
    let nanos = t % 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Proleptic Gregorian date of a day count since 1970-01-01, by whole 400-year eras (146,097
/// days each), so no table of month lengths is needed.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `units.HumanDuration`, which `docker ps` uses for "Up 5 minutes".
pub fn human(elapsed_nanos: u64) -> String {
    let s = elapsed_nanos / 1_000_000_000;
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".to_string(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => plural(s / 60, "minute"),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => plural(s / 3600, "hour"),
        172_800..=1_209_599 => plural(s / 86_400, "day"),
        1_209_600..=5_183_999 => plural(s / 604_800, "week"),
        5_184_000..=63_071_999 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_as_go_does() {
        assert_eq!(rfc3339(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_665_257_476_265_930),
            "2026-11-26T03:54:17.47626593Z"
        );
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(human(0), "Less than a second");
        assert_eq!(human(6_000_000_000), "6 seconds");
        assert_eq!(human(300_000_000_000), "5 minutes");
    }
}

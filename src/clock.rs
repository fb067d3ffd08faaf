//! Wall-clock time as berth records it: milliseconds since the Unix epoch, and RFC 3339 text.
//!
//! Times that travel in Raft commands are read on the leader and carried in the command, so
//! `apply` never reads a clock. Durations inside one process use `Instant` instead.

use crate::raft::state::Millis;

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Milliseconds since the epoch as `2026-11-23T19:40:01.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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

/// Parses Docker's timestamps (`2026-11-26T02:34:11.687090123Z`, any number of fraction
/// digits, `Z` or a `+hh:mm` offset) to milliseconds since the epoch. Docker's "never" is
/// `0001-01-01T00:00:00Z`, which parses to `None`, as does anything malformed.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s.get(4..5)? != "-" || s.get(10..11).map(|t| t.eq_ignore_ascii_case("t")) != Some(true) {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let frac = &fraction[..digits];
        let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 60 + om)
        }
    };
    if y < 1970 {
        return None;
    }
    // Days since the epoch from the civil date (inverse of `rfc3339`'s algorithm).
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
    Millis::try_from(secs * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_462_801_123), "2026-11-23T19:40:01.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn docker_timestamps_parse_whatever_their_precision() {
        assert_eq!(
            parse_rfc3339("2026-11-23T19:40:01.123456789Z"),
            Some(1_795_462_801_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T19:40:01.1Z"),
            Some(1_795_462_801_100)
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T19:40:01Z"),
            Some(1_795_462_801_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T20:40:01.123+01:00"),
            Some(1_795_462_801_123)
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        for ms in [0, 951_782_400_000, 1_795_462_801_123] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
    }
}

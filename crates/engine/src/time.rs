//! Calendar arithmetic on event time (Unix milliseconds, UTC).
//!
//! The engine never reads a clock; these helpers only bucket the times that
//! events carry.

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Start of the hour containing `t`.
pub fn hour_start(t: i64) -> i64 {
    t.div_euclid(HOUR_MS) * HOUR_MS
}

/// Civil date (year, month 1..=12, day) of a day number since 1970-01-01.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date. Inverse of `civil_from_days`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Billing period of `t`: the calendar month, as months since January 1970.
pub fn month_index(t: i64) -> i32 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY_MS));
    ((y - 1970) * 12 + i64::from(m) - 1) as i32
}

/// First millisecond of a month index.
pub fn month_start(index: i32) -> i64 {
    let y = 1970 + i64::from(index.div_euclid(12));
    let m = index.rem_euclid(12) as u32 + 1;
    days_from_civil(y, m, 1) * DAY_MS
}

/// RFC 3339 text of a time, for API output and evidence.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(DAY_MS);
    let ms = t.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let s = ms / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Parses the RFC 3339 subset simguard writes and accepts in query strings:
/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` or a bare date `YYYY-MM-DD`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut t = days_from_civil(y, mo as u32, d as u32) * DAY_MS;
    if b.len() == 10 {
        return Some(t);
    }
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    t += ((h * 60 + mi) * 60 + se) * 1000;
    if b[19] == b'.' {
        let frac = s.get(20..b.len() - 1)?;
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let ms: i64 = format!("{frac:0<3}").get(0..3)?.parse().ok()?;
        t += ms;
    } else if b.len() != 20 {
        return None;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_on_calendar_boundaries() {
        // 2026-01-31T23:59:59.999Z and 2026-02-01T00:00:00Z
        let jan = parse_rfc3339("2026-01-31T23:59:59.999Z").unwrap();
        let feb = parse_rfc3339("2026-02-01T00:00:00Z").unwrap();
        assert_eq!(feb - jan, 1);
        assert_eq!(month_index(feb), month_index(jan) + 1);
        assert_eq!(month_start(month_index(feb)), feb);
        assert_eq!(month_index(0), 0);
        assert_eq!(month_index(-1), -1);
    }

    #[test]
    fn rfc3339_round_trips() {
        for t in [0, 1, 951_782_400_000, 1_779_431_234_567, -86_400_001] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // Leap day.
        assert_eq!(
            rfc3339(parse_rfc3339("2028-02-29").unwrap()),
            "2028-02-29T00:00:00.000Z"
        );
        assert_eq!(parse_rfc3339("2026-13-01"), None);
        assert_eq!(parse_rfc3339("2026-01-01T10:00:00"), None);
    }

    #[test]
    fn hour_start_floors_negative_times() {
        assert_eq!(hour_start(HOUR_MS + 5), HOUR_MS);
        assert_eq!(hour_start(-1), -HOUR_MS);
    }
}

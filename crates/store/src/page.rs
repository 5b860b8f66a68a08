//! Cursors of the newest-first pages (findings, the audit trail, alerts).

use std::fmt;
use std::str::FromStr;

/// Position in a newest-first order (time desc, id desc): the last item of
/// a page. Text form "TIME.ID" (Unix ms and the item's id), handed to
/// clients as `next_cursor` and parsed back from `cursor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// The order's time column: event time for findings and actions, the
    /// start for alerts.
    pub time: i64,
    pub id: u64,
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.time, self.id)
    }
}

impl FromStr for PageCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("cursor {s:?} is not the next_cursor of a page");
        let (t, i) = s.split_once('.').ok_or_else(bad)?;
        Ok(PageCursor {
            time: t.parse().map_err(|_| bad())?,
            id: i.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = PageCursor {
            time: 1_790_000_000_123,
            id: 42 << 8,
        };
        assert_eq!(c.to_string().parse::<PageCursor>(), Ok(c));
        for bad in ["", "12", "a.b", "1.-2", "1.2.3"] {
            assert!(bad.parse::<PageCursor>().is_err(), "{bad}");
        }
    }
}

//! Daily time windows (UTC) in which a load should run.

use std::fmt;
use std::str::FromStr;

use daisee_hal::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// From one time of day to another, UTC; `22:00-06:00` runs over midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    from_ms: i64,
    to_ms: i64,
}

/// A window that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError(String);

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a window like \"08:00-12:30\" (UTC)", self.0)
    }
}

impl std::error::Error for WindowError {}

impl Window {
    /// Whether `at` falls in the window (its start included, its end not).
    pub fn contains(&self, at: Timestamp) -> bool {
        let t = at.millis_of_day();
        if self.from_ms <= self.to_ms {
            (self.from_ms..self.to_ms).contains(&t)
        } else {
            t >= self.from_ms || t < self.to_ms
        }
    }
}

impl FromStr for Window {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, WindowError> {
        let bad = || WindowError(s.to_owned());
        let time = |hm: &str| -> Option<i64> {
            let (h, m) = hm.trim().split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60)
                .then_some((h * 60 + m) * 60_000)
        };
        let (from, to) = s.split_once('-').ok_or_else(bad)?;
        let (from_ms, to_ms) = (time(from).ok_or_else(bad)?, time(to).ok_or_else(bad)?);
        // An empty window (or a whole day written 24:00-00:00): say so rather than never run.
        if from_ms % DAY_MS == to_ms % DAY_MS {
            return Err(bad());
        }
        Ok(Self {
            from_ms: from_ms % DAY_MS,
            to_ms: if to_ms == DAY_MS { DAY_MS } else { to_ms },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: i64 = 1_795_564_800_000;

    fn at(h: i64, m: i64) -> Timestamp {
        Timestamp(MIDNIGHT + (h * 60 + m) * 60_000)
    }

    #[test]
    fn windows_in_a_day_and_over_midnight() {
        let day: Window = "08:00-12:30".parse().unwrap();
        assert!(!day.contains(at(7, 59)));
        assert!(day.contains(at(8, 0)));
        assert!(!day.contains(at(12, 30)));
        let night: Window = "22:00-06:00".parse().unwrap();
        assert!(night.contains(at(23, 0)) && night.contains(at(5, 59)));
        assert!(!night.contains(at(6, 0)) && !night.contains(at(12, 0)));
        let evening: Window = "18:00-24:00".parse().unwrap();
        assert!(evening.contains(at(23, 59)) && !evening.contains(at(0, 0)));
    }

    #[test]
    fn bad_windows_are_refused() {
        for bad in [
            "8-12",
            "08:00",
            "25:00-26:00",
            "08:00-08:00",
            "08:60-09:00",
            "24:00-00:00",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }
}

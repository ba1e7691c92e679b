//! The maintenance window: the minutes of each day, in UTC, when the gateway may install an
//! update and reboot (`"02:00-05:00"`; `"23:00-01:00"` spans midnight).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

const DAY_MIN: u32 = 24 * 60;

/// A daily window, from its first minute up to (not including) its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u32,
    end: u32,
}

/// Why a text is not a window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a window of the day in UTC such as \"02:00-05:00\"")]
pub struct BadWindow;

impl FromStr for Window {
    type Err = BadWindow;

    fn from_str(text: &str) -> Result<Self, BadWindow> {
        let (start, end) = text.split_once('-').ok_or(BadWindow)?;
        let (start, end) = (minute(start)?, minute(end)?);
        if start == end {
            return Err(BadWindow);
        }
        Ok(Window { start, end })
    }
}

/// `HH:MM` as minutes since midnight; `24:00` is the end of the day.
fn minute(text: &str) -> Result<u32, BadWindow> {
    let (h, m) = text.trim().split_once(':').ok_or(BadWindow)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(BadWindow);
    }
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| BadWindow)?,
        m.parse().map_err(|_| BadWindow)?,
    );
    match (h, m) {
        (24, 0) => Ok(DAY_MIN),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(BadWindow),
    }
}

impl Window {
    /// How long from `ms_of_day` (milliseconds since midnight UTC) until the window opens: zero
    /// when it is open.
    pub fn until_open(&self, ms_of_day: u64) -> Duration {
        let now = ms_of_day % (u64::from(DAY_MIN) * 60_000);
        let minute = u32::try_from(now / 60_000).unwrap_or(0);
        let open = if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        };
        if open {
            return Duration::ZERO;
        }
        let start_ms = u64::from(self.start) * 60_000;
        let day_ms = u64::from(DAY_MIN) * 60_000;
        Duration::from_millis((start_ms + day_ms - now) % day_ms)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn a_window_is_open_from_its_start_to_its_end_even_across_midnight() {
        let night: Window = "02:00-05:00".parse().unwrap();
        assert_eq!(night.until_open(3 * 60 * MIN), Duration::ZERO);
        assert_eq!(night.until_open(2 * 60 * MIN), Duration::ZERO);
        assert_eq!(
            night.until_open(5 * 60 * MIN),
            Duration::from_secs(21 * 3600)
        );
        assert_eq!(
            night.until_open(60 * MIN + 30_000),
            Duration::from_secs(59 * 60 + 30)
        );
        let late: Window = "23:00-01:00".parse().unwrap();
        assert_eq!(late.until_open(30 * MIN), Duration::ZERO);
        assert_eq!(late.until_open(23 * 60 * MIN), Duration::ZERO);
        assert_eq!(late.until_open(60 * MIN), Duration::from_secs(22 * 3600));
        let day: Window = "00:00-24:00".parse().unwrap();
        assert_eq!(day.until_open(23 * 60 * MIN + 59 * MIN), Duration::ZERO);
        assert_eq!(day.to_string(), "00:00-24:00");
    }

    #[test]
    fn anything_but_two_times_of_day_is_refused() {
        for text in [
            "",
            "02:00",
            "2:00-05:00",
            "02:00-05:60",
            "25:00-01:00",
            "03:00-03:00",
            "a-b",
        ] {
            assert_eq!(text.parse::<Window>(), Err(BadWindow), "{text:?}");
        }
    }
}

//! The `[store]` table: where and how the history is kept.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::{ConfigError, Locator};

/// Where and how the history is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The data directory (the history is `history.sqlite` in it).
    pub dir: PathBuf,
    /// How long raw samples are kept.
    pub retention: Duration,
    /// How often buffered samples are written (and acknowledged).
    pub flush_interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreTable {
    dir: String,
    retention_days: Option<u32>,
    flush_interval_ms: Option<u64>,
}

/// The store's settings, with their defaults.
pub(super) fn store(
    at: &Locator<'_>,
    table: &Spanned<StoreTable>,
) -> Result<StoreConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "store"), table.get_ref());
    let days = t.retention_days.unwrap_or(30);
    if !(1..=3650).contains(&days) {
        return Err(at.error("retention_days", format!("{days} is outside 1 to 3650")));
    }
    let flush = t.flush_interval_ms.unwrap_or(60_000);
    if !(100..=600_000).contains(&flush) {
        return Err(at.error(
            "flush_interval_ms",
            format!("{flush} is outside 100 ms to 10 min"),
        ));
    }
    Ok(StoreConfig {
        dir: PathBuf::from(&t.dir),
        retention: Duration::from_secs(u64::from(days) * 86_400),
        flush_interval: Duration::from_millis(flush),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn the_store_has_defaults_and_bounds() {
        let c = Config::parse("[store]\ndir = \"/data\"\n").unwrap();
        let store = c.store.unwrap();
        assert_eq!(store.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(store.flush_interval, Duration::from_secs(60));
        let e = Config::parse("[store]\ndir = \"/data\"\nretention_days = 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("store.retention_days"))
        );
    }
}

//! The gateway's updates, without RAUC: the feed of signed bundles and which one is this
//! gateway's update, bundle versions, the daily maintenance window, resumable downloads and the
//! backoff between attempts. The agent's update task drives RAUC with them.

mod feed;
mod fetch;
#[cfg(feature = "server")]
pub mod server;
mod version;
mod window;

use std::time::Duration;

pub use feed::{Feed, FeedError, MAX_BUNDLE_BYTES, MAX_FEED_BYTES, Offer, Running};
pub use fetch::{FetchError, Fetcher, bundle_file, remove_downloads};
pub use reqwest::Url;
pub use version::{BadVersion, Version};
pub use window::{BadWindow, Window};

/// The wait before attempt `failures + 1` after `failures` failed ones: a minute, doubling, at
/// most six hours, so a fleet whose server is down does not hammer it when it returns.
pub fn backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(60);
    const MOST: Duration = Duration::from_secs(6 * 3600);
    FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_six_hours() {
        let waits: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs() / 60).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
        assert_eq!(backoff(0), Duration::from_secs(60));
        assert_eq!(backoff(u32::MAX).as_secs(), 6 * 3600);
    }
}

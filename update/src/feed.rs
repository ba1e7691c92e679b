//! The feed: a small JSON document at a URL the user configures, listing the bundles on offer,
//! each for one machine (RAUC's compatible string), in some channels, at a URL. It is not signed:
//! every bundle is, and RAUC checks that; the feed only says where to look.
//!
//! ```json
//! {"bundles": [{"version": "0.2.0", "compatible": "daisee-gateway-rpi4",
//!               "channels": ["stable", "testing"], "url": "rpi4/daisee-0.2.0.raucb",
//!               "size": 89128960}]}
//! ```
//!
//! A relative `url` is resolved against the feed's own.

use reqwest::Url;
use serde::Deserialize;

use crate::Version;

/// The largest feed read, in bytes.
pub const MAX_FEED_BYTES: usize = 1024 * 1024;
/// The most bundles a feed may list.
const MAX_OFFERS: usize = 10_000;
/// The largest bundle a feed may offer, in bytes: far above a slot, far below a disk.
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// A bundle on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The version of the root it carries.
    pub version: Version,
    /// The machine it is for (RAUC's compatible string).
    pub compatible: String,
    /// The channels it is offered in (`stable`, `testing`).
    pub channels: Vec<String>,
    /// Where it is.
    pub url: Url,
    /// Its size in bytes.
    pub size: u64,
}

/// A feed, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    offers: Vec<Offer>,
}

/// What a gateway runs, for choosing its update.
#[derive(Debug, Clone, Copy)]
pub struct Running<'a> {
    /// Its machine (RAUC's compatible string).
    pub compatible: &'a str,
    /// The channel it follows.
    pub channel: &'a str,
    /// The version of the root it booted.
    pub version: &'a Version,
    /// Versions it will not install again by itself (one that was rolled back).
    pub skipped: &'a [Version],
    /// Bundles it refused (another machine's, not the version the feed said).
    pub refused: &'a [Url],
}

/// Why a feed was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Not the JSON of a feed.
    #[error("the feed is not a feed: {0}")]
    Syntax(String),
    /// One of its bundles is wrong.
    #[error("the feed's bundle {index}: {reason}")]
    Offer {
        /// Its place in the list, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Larger than [`MAX_FEED_BYTES`] or [`MAX_OFFERS`] bundles.
    #[error("the feed is too large (at most {MAX_FEED_BYTES} bytes and {MAX_OFFERS} bundles)")]
    TooLarge,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedFile {
    bundles: Vec<OfferFile>,
}

#[derive(Deserialize)]
struct OfferFile {
    version: String,
    compatible: String,
    channels: Vec<String>,
    url: String,
    size: u64,
}

impl Feed {
    /// Reads the feed found at `base` (which relative bundle URLs are resolved against).
    pub fn parse(bytes: &[u8], base: &Url) -> Result<Self, FeedError> {
        if bytes.len() > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge);
        }
        let file: FeedFile =
            serde_json::from_slice(bytes).map_err(|e| FeedError::Syntax(e.to_string()))?;
        if file.bundles.len() > MAX_OFFERS {
            return Err(FeedError::TooLarge);
        }
        let offers = file
            .bundles
            .into_iter()
            .enumerate()
            .map(|(index, o)| offer(o, base).map_err(|reason| FeedError::Offer { index, reason }))
            .collect::<Result<_, _>>()?;
        Ok(Feed { offers })
    }

    /// The update for a gateway: the newest bundle for its machine and channel that is newer
    /// than what it runs, neither skipped nor refused.
    pub fn update_for(&self, running: Running<'_>) -> Option<&Offer> {
        self.offers
            .iter()
            .filter(|o| o.compatible == running.compatible)
            .filter(|o| o.channels.iter().any(|c| c == running.channel))
            .filter(|o| o.version > *running.version && !running.skipped.contains(&o.version))
            .filter(|o| !running.refused.contains(&o.url))
            .max_by(|a, b| a.version.cmp(&b.version))
    }
}

/// One listed bundle, checked.
fn offer(o: OfferFile, base: &Url) -> Result<Offer, String> {
    let version = o.version.parse::<Version>().map_err(|e| e.to_string())?;
    if o.compatible.is_empty() || o.compatible.len() > 128 {
        return Err("its compatible string is empty or longer than 128 bytes".into());
    }
    let url = base
        .join(&o.url)
        .map_err(|e| format!("its url does not resolve ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("its url is {}, not http or https", url.scheme()));
    }
    if o.size == 0 || o.size > MAX_BUNDLE_BYTES {
        return Err(format!(
            "its size is not between 1 and {MAX_BUNDLE_BYTES} bytes"
        ));
    }
    Ok(Offer {
        version,
        compatible: o.compatible,
        channels: o.channels,
        url,
        size: o.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"{"bundles": [
        {"version": "1.0.0", "compatible": "pc", "channels": ["stable"], "url": "pc-1.0.0.raucb", "size": 10},
        {"version": "1.1.0", "compatible": "pc", "channels": ["stable", "testing"], "url": "pc-1.1.0.raucb", "size": 10},
        {"version": "1.2.0-rc.1", "compatible": "pc", "channels": ["testing"], "url": "https://cdn.example/pc-1.2.0-rc.1.raucb", "size": 10},
        {"version": "9.0.0", "compatible": "pi", "channels": ["stable"], "url": "/pi/9.raucb", "size": 10}
    ]}"#;

    fn base() -> Url {
        "http://updates.example/daisee/feed.json".parse().unwrap()
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn update<'f>(
        feed: &'f Feed,
        channel: &str,
        running: &str,
        skipped: &[Version],
    ) -> Option<&'f Offer> {
        feed.update_for(Running {
            compatible: "pc",
            channel,
            version: &version(running),
            skipped,
            refused: &[],
        })
    }

    #[test]
    fn the_newest_bundle_for_the_machine_and_channel_that_is_newer_is_the_update() {
        let feed = Feed::parse(FEED.as_bytes(), &base()).unwrap();
        let stable = update(&feed, "stable", "1.0.0", &[]).unwrap();
        assert_eq!(stable.version, version("1.1.0"));
        assert_eq!(
            stable.url.as_str(),
            "http://updates.example/daisee/pc-1.1.0.raucb"
        );
        let testing = update(&feed, "testing", "1.0.0", &[]).unwrap();
        assert_eq!(
            testing.url.as_str(),
            "https://cdn.example/pc-1.2.0-rc.1.raucb"
        );
        // Nothing older, nothing equal, nothing for another machine (the pi's 9.0.0).
        assert_eq!(update(&feed, "stable", "1.1.0", &[]), None);
        assert_eq!(update(&feed, "stable", "2.0", &[]), None);
        assert_eq!(update(&feed, "nightly", "0.1", &[]), None);
        // A version rolled back is not offered again; the one before it is.
        let skipped = [version("1.2.0-rc.1")];
        let after_rollback = update(&feed, "testing", "1.0.0", &skipped).unwrap();
        assert_eq!(after_rollback.version, version("1.1.0"));
        // A bundle refused is not offered again; another of the same version is.
        let refused = [stable.url.clone()];
        let running = version("1.0.0");
        let other = feed.update_for(Running {
            compatible: "pc",
            channel: "testing",
            version: &running,
            skipped: &[],
            refused: std::slice::from_ref(&testing.url),
        });
        assert_eq!(other.map(|o| &o.version), Some(&version("1.1.0")));
        let none = feed.update_for(Running {
            compatible: "pc",
            channel: "stable",
            version: &running,
            skipped: &[],
            refused: &refused,
        });
        assert_eq!(none, None);
    }

    #[test]
    fn a_wrong_feed_is_refused_with_its_reason() {
        let cases = [
            ("[]", "not a feed"),
            ("{\"bundles\": [], \"signature\": 1}", "unknown field"),
            (
                &FEED.replace("\"1.1.0\"", "\"latest\""),
                "bundle 1: \"latest\" is not a version",
            ),
            (
                &FEED
                    .replace("pi-", "x")
                    .replace("\"/pi/9.raucb\"", "\"file:///etc/shadow\""),
                "bundle 3: its url is file",
            ),
            (
                &FEED.replace("\"size\": 10}", "\"size\": 0}"),
                "bundle 0: its size",
            ),
            (
                &FEED.replace("\"compatible\": \"pc\"", "\"compatible\": \"\""),
                "bundle 0: its compatible",
            ),
        ];
        for (text, reason) in cases {
            let e = Feed::parse(text.as_bytes(), &base())
                .unwrap_err()
                .to_string();
            assert!(e.contains(reason), "{reason:?} in {e:?}");
        }
        let huge = format!(
            "{{\"bundles\": [], \"x\": \"{}\"}}",
            "x".repeat(MAX_FEED_BYTES)
        );
        assert_eq!(
            Feed::parse(huge.as_bytes(), &base()),
            Err(FeedError::TooLarge)
        );
    }
}

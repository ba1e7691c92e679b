//! The `[update]` table: where the gateway looks for new bundles, how often, and what it does
//! with one it finds (nothing, download it, or install it in its maintenance window).

use std::path::PathBuf;
use std::time::Duration;

use daisee_update::{Url, Window};
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, quote};

/// What the gateway does with an update it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auto {
    /// Says so on D-Bus; installs only when asked.
    Off,
    /// Downloads it to the data directory; installs only when asked.
    Download,
    /// Installs it in the maintenance window and reboots into it.
    Install,
}

/// Automatic updates from a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConfig {
    /// The feed's URL.
    pub feed: Url,
    /// The channel followed (`stable`, `testing`).
    pub channel: String,
    /// Time between two checks of the feed.
    pub check_every: Duration,
    /// When an update may be installed, in UTC.
    pub window: Window,
    /// What to do with an update found.
    pub auto: Auto,
    /// The HTTP(S) proxy the feed and the bundles are fetched through; with one, bundles are
    /// downloaded (RAUC's own streaming does not take a proxy per install).
    pub proxy: Option<Url>,
    /// Where bundles are downloaded: `bundles` in the store's directory, if there is a store.
    pub downloads: Option<PathBuf>,
}

impl UpdateConfig {
    /// Whether bundles are downloaded before they are installed, rather than streamed by RAUC.
    pub fn downloads_first(&self) -> bool {
        self.auto == Auto::Download || self.proxy.is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTable {
    feed: String,
    channel: Option<String>,
    check_every_h: Option<u32>,
    window: Option<String>,
    auto: Option<AutoValue>,
    proxy: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AutoValue {
    Flag(bool),
    Word(String),
}

/// The update settings, checked, with their defaults.
pub(super) fn update(
    at: &Locator<'_>,
    table: &Spanned<UpdateTable>,
    store: Option<&std::path::Path>,
) -> Result<UpdateConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "update"), table.get_ref());
    let feed = check::http_url(&at, "feed", &t.feed)?;
    let channel = t.channel.clone().unwrap_or_else(|| "stable".into());
    check::name(&at, "channel", &channel)?;
    let hours = t.check_every_h.unwrap_or(6);
    if !(1..=168).contains(&hours) {
        return Err(at.error(
            "check_every_h",
            format!("{hours} is outside 1 to 168 hours"),
        ));
    }
    let window = t.window.as_deref().unwrap_or("01:00-05:00");
    let window = window
        .parse::<Window>()
        .map_err(|e| at.error("window", format!("{}: {e}", quote(window))))?;
    let auto = match &t.auto {
        None => Auto::Install,
        Some(AutoValue::Flag(false)) => Auto::Off,
        Some(AutoValue::Word(w)) if w == "download" => Auto::Download,
        Some(AutoValue::Word(w)) if w == "install" => Auto::Install,
        Some(AutoValue::Flag(true)) => {
            return Err(at.error(
                "auto",
                "true is not a mode: false, \"download\" or \"install\"",
            ));
        }
        Some(AutoValue::Word(w)) => {
            return Err(at.error(
                "auto",
                format!("{} is not false, \"download\" or \"install\"", quote(w)),
            ));
        }
    };
    let proxy = t
        .proxy
        .as_deref()
        .map(|p| check::http_url(&at, "proxy", p))
        .transpose()?;
    let config = UpdateConfig {
        feed,
        channel,
        check_every: Duration::from_secs(u64::from(hours) * 3600),
        window,
        auto,
        proxy,
        downloads: store.map(|dir| dir.join("bundles")),
    };
    if config.downloads_first() && config.downloads.is_none() {
        let why = if config.auto == Auto::Download {
            "auto = \"download\""
        } else {
            "a proxy"
        };
        return Err(at.error(
            "",
            format!("{why} needs a [store]: bundles are downloaded into its directory"),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Auto;
    use crate::config::Config;
    use crate::config::dialogue::tests::SITE;

    const UPDATE: &str = "\n[update]\nfeed = \"https://updates.example/daisee/feed.json\"\n";

    fn with(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(&format!("{SITE}{UPDATE}{extra}"))
    }

    #[test]
    fn a_feed_alone_installs_stable_updates_at_night() {
        let u = with("").unwrap().update.unwrap();
        assert_eq!(u.channel, "stable");
        assert_eq!(u.check_every, Duration::from_secs(6 * 3600));
        assert_eq!(u.window.to_string(), "01:00-05:00");
        assert_eq!(u.auto, Auto::Install);
        assert!(!u.downloads_first());
        assert_eq!(u.downloads.unwrap(), std::path::Path::new("/data/bundles"));
        let u = with("auto = \"download\"\nchannel = \"testing\"\nwindow = \"23:30-00:30\"\n")
            .unwrap()
            .update
            .unwrap();
        assert_eq!((u.auto, u.channel.as_str()), (Auto::Download, "testing"));
        assert!(u.downloads_first());
        assert_eq!(
            with("auto = false\n").unwrap().update.unwrap().auto,
            Auto::Off
        );
        let u = with("proxy = \"http://proxy.lan:3128\"\n")
            .unwrap()
            .update
            .unwrap();
        assert!(u.downloads_first());
    }

    #[test]
    fn wrong_settings_are_named() {
        for (extra, key, reason) in [
            ("auto = true\n", "update.auto", "true is not a mode"),
            ("auto = \"yes\"\n", "update.auto", "`yes` is not false"),
            ("window = \"night\"\n", "update.window", "not a window"),
            (
                "check_every_h = 0\n",
                "update.check_every_h",
                "outside 1 to 168",
            ),
            (
                "proxy = \"proxy.lan:3128\"\n",
                "update.proxy",
                "not an http",
            ),
            ("channel = \"\"\n", "update.channel", "empty"),
        ] {
            let e = with(extra).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.to_string().contains(reason), "{reason:?} in {e}");
        }
        let e = Config::parse(&format!(
            "{SITE}{}",
            UPDATE.replace("https://updates", "ftp://updates")
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("update.feed"), "{e}");
        let no_store = format!("{SITE}{UPDATE}auto = \"download\"\n")
            .replace("[store]\ndir = \"/data\"\n", "");
        let e = Config::parse(&no_store).unwrap_err();
        assert!(e.to_string().contains("needs a [store]"), "{e}");
    }
}

//! The update adapter: checks the feed of the `[update]` table on its schedule, downloads or
//! installs what it offers (in the maintenance window), installs a bundle someone asks for over
//! D-Bus, reboots into a new slot, and reports a slot that was rolled back. It drives RAUC and
//! publishes its status on a watch, which the D-Bus `Update` object follows.

mod fetching;
mod rauc;
mod steps;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::UpdateConfig;
use crate::dbus::Bus;
use crate::journal::Journal;
pub use fetching::serve_fetch;
pub(crate) use rauc::{Unavailable, property, slots};
use steps::Updater;

/// Where the image says its own version (`IMAGE_VERSION`); `DAISEE_OS_RELEASE` names another
/// file, for tests.
const OS_RELEASE: &str = "/etc/os-release";

/// What the updater is doing and what it knows, as the D-Bus `Update` object shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateStatus {
    /// The version of the running root (the image's `IMAGE_VERSION`); empty if it has none.
    pub running: String,
    /// The feed followed; empty without an `[update]` table.
    pub feed: String,
    /// `idle`, `checking`, `downloading`, `installing` or `rebooting`.
    pub step: &'static str,
    /// How far the download or install is, 0 to 100.
    pub percent: i32,
    /// What RAUC (or the download) says it is doing.
    pub message: String,
    /// The version the last check found to install; empty if none.
    pub available: String,
    /// When the feed was last read, in ms since 1970; 0 if never.
    pub last_check_ms: i64,
    /// Why the last check, download or install failed; empty after one that worked.
    pub error: String,
    /// The version whose slot never got ready and which the gateway fell back from; empty if
    /// none did.
    pub rolled_back: String,
}

/// Why an update request was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// There is no feed to check.
    #[error("no [update] feed in the configuration")]
    NoFeed,
    /// Another check or install is under way.
    #[error("the updater is {0}: wait for it to finish")]
    Busy(&'static str),
    /// The bundle is not one this gateway takes.
    #[error("{0}")]
    Refused(String),
    /// Fetching or installing failed.
    #[error("{0}")]
    Failed(String),
    /// RAUC is not there to ask.
    #[error("{0}")]
    Unavailable(String),
    /// The agent is stopping.
    #[error("the agent is stopping")]
    Stopping,
}

/// What the D-Bus object asks of the updater.
enum Request {
    Check(oneshot::Sender<Result<String, UpdateError>>),
    Install {
        url: String,
        downgrade: bool,
        reply: oneshot::Sender<Result<String, UpdateError>>,
    },
}

/// The updater's handles: its requests and its status.
#[derive(Debug, Clone)]
pub struct UpdateHandle {
    requests: mpsc::Sender<Request>,
    /// The updater's status, updated as it works.
    pub status: watch::Receiver<UpdateStatus>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Check(_) => f.write_str("Check"),
            Request::Install { url, .. } => write!(f, "Install({url})"),
        }
    }
}

impl UpdateHandle {
    /// Checks the feed now; the version found to install, or empty. An update found is then
    /// downloaded or installed as `auto` says.
    pub async fn check(&self) -> Result<String, UpdateError> {
        self.ask(Request::Check).await
    }

    /// Installs the bundle at `url` (or a file path) and reboots into it; an older version than
    /// the running one only with `downgrade`. Returns the bundle's version once RAUC checked it.
    pub async fn install(&self, url: String, downgrade: bool) -> Result<String, UpdateError> {
        self.ask(|reply| Request::Install {
            url,
            downgrade,
            reply,
        })
        .await
    }

    async fn ask(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<String, UpdateError>>) -> Request,
    ) -> Result<String, UpdateError> {
        let step = self.status.borrow().step;
        if step != "idle" {
            return Err(UpdateError::Busy(step));
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .try_send(request(reply))
            .map_err(|_| UpdateError::Busy("busy"))?;
        answer.await.map_err(|_| UpdateError::Stopping)?
    }
}

/// Starts the updater on the current runtime: it asks RAUC on `bus` (none: installs fail, the
/// feed is still checked) and follows `settings`' feed, if any.
pub fn spawn(settings: Option<UpdateConfig>, bus: Option<Bus>) -> UpdateHandle {
    let running = running_version();
    let status = UpdateStatus {
        running: running.clone().unwrap_or_default(),
        feed: settings
            .as_ref()
            .map(|s| s.feed.to_string())
            .unwrap_or_default(),
        step: "idle",
        ..UpdateStatus::default()
    };
    let (publish, status) = watch::channel(status);
    let (requests, inbox) = mpsc::channel(4);
    let updater = Updater::new(
        settings,
        bus,
        running.and_then(|v| v.parse().ok()),
        publish,
        Journal::from_env(),
    );
    tokio::spawn(updater.run(inbox));
    UpdateHandle { requests, status }
}

/// The running root's version: `IMAGE_VERSION` in os-release.
fn running_version() -> Option<String> {
    let path = std::env::var_os("DAISEE_OS_RELEASE").unwrap_or_else(|| OS_RELEASE.into());
    image_version(&std::fs::read_to_string(path).ok()?)
}

/// `IMAGE_VERSION` of an os-release file's text, unquoted.
fn image_version(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("IMAGE_VERSION="))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|v| !v.is_empty())
}

/// The first check after the agent starts: a few minutes, spread over a fleet that booted
/// together (after a power cut in the street).
fn first_check() -> Duration {
    Duration::from_secs(60 + jitter(600))
}

/// A number below `bound`, different in each process.
fn jitter(bound: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id()) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_version_is_read_from_os_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nIMAGE_ID=daisee-gateway\nIMAGE_VERSION=\"0.1.0.812+gbda8812\"\n";
        assert_eq!(image_version(text).as_deref(), Some("0.1.0.812+gbda8812"));
        assert_eq!(image_version("ID=debian\n"), None);
        assert_eq!(image_version("IMAGE_VERSION=\n"), None);
    }
}

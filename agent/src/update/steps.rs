//! The updater's work, one step at a time: checking the feed, downloading, checking a bundle
//! with RAUC, installing it, asking for the reboot. One task runs them in turn, so two installs
//! never overlap.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use daisee_update::{Offer, Running, Url, Version, backoff, remove_downloads};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use zbus::Connection;

use super::{Request, UpdateError, UpdateStatus, fetching, first_check, jitter, rauc};
use crate::config::{Auto, UpdateConfig};
use crate::dbus::Bus;
use crate::journal::{Journal, Priority};

/// Where the agent asks for a reboot: `daisee-reboot.path` (agent/systemd) starts the reboot
/// when this file appears in the agent's runtime directory.
const REBOOT_REQUEST: &str = "/run/daisee/reboot";

/// Failed attempts at one update before the updater waits for the next regular check.
const ATTEMPTS: u32 = 6;

/// RAUC's answers when it cannot read a bundle over HTTP (built without streaming, or older
/// than streaming): then the bundle is downloaded.
const NO_STREAMING: [&str; 2] = [
    "Remote bundle access not supported",
    "Refused to verify remote bundle",
];

pub(super) struct Updater {
    settings: Option<UpdateConfig>,
    bus: Option<Bus>,
    conn: Option<Connection>,
    running: Option<Version>,
    /// Versions not installed again by themselves: one rolled back, one installed (should the
    /// reboot into it not come).
    skip: Vec<Version>,
    /// Bundles refused (another machine's, not the version the feed said): not tried again.
    refused: Vec<Url>,
    offer: Option<Offer>,
    last_check: Option<Instant>,
    failures: u32,
    status: watch::Sender<UpdateStatus>,
    journal: Journal,
}

impl Updater {
    pub(super) fn new(
        settings: Option<UpdateConfig>,
        bus: Option<Bus>,
        running: Option<Version>,
        status: watch::Sender<UpdateStatus>,
        journal: Journal,
    ) -> Self {
        Updater {
            settings,
            bus,
            conn: None,
            running,
            skip: Vec::new(),
            refused: Vec::new(),
            offer: None,
            last_check: None,
            failures: 0,
            status,
            journal,
        }
    }

    /// Answers requests and works the schedule until the handles are dropped.
    pub(super) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        self.look_for_rollback().await;
        let mut next = self
            .settings
            .as_ref()
            .map(|_| Instant::now() + first_check());
        loop {
            let wake = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wake => next = Some(self.turn().await),
                request = requests.recv() => match request {
                    None => return,
                    Some(Request::Check(reply)) => {
                        let found = self.check().await;
                        if found.as_ref().is_ok_and(|v| !v.is_empty()) {
                            // Acted on as `auto` says, straight after the answer.
                            next = Some(Instant::now());
                        }
                        let _ = reply.send(found);
                    }
                    Some(Request::Install { url, downgrade, reply }) => {
                        self.install_asked(&url, downgrade, reply).await;
                    }
                },
            }
        }
    }

    /// One scheduled turn: check the feed when due, then act on its update; returns when to
    /// come back.
    async fn turn(&mut self) -> Instant {
        let Some(settings) = self.settings.clone() else {
            return far_future();
        };
        let due = self
            .last_check
            .is_none_or(|t| t.elapsed() >= settings.check_every);
        if due && self.check().await.is_err() {
            return self.failed();
        }
        let next_check = self.next_check(&settings);
        let Some(offer) = self.offer.clone() else {
            return next_check;
        };
        let result = match settings.auto {
            Auto::Off => return next_check,
            Auto::Download => self.download(&offer, &settings).await.map(|_| ()),
            Auto::Install => {
                let wait = settings
                    .window
                    .until_open(ms_since_epoch() as u64 % 86_400_000);
                if !wait.is_zero() {
                    return (Instant::now() + wait).min(next_check);
                }
                self.install_offer(&offer, &settings).await
            }
        };
        match result {
            Ok(()) if self.status.borrow().step == "rebooting" => far_future(),
            Ok(()) => {
                self.failures = 0;
                next_check
            }
            Err(_) if self.failures + 1 >= ATTEMPTS => {
                // Given up on this one until the feed is read again.
                self.failures = 0;
                self.offer = None;
                next_check
            }
            Err(_) => self.failed(),
        }
    }

    /// Counts a failure; when to try again.
    fn failed(&mut self) -> Instant {
        self.failures += 1;
        Instant::now() + backoff(self.failures)
    }

    /// The next regular check: the interval after the last, a tenth of it spread at random.
    fn next_check(&self, settings: &UpdateConfig) -> Instant {
        let every = settings.check_every;
        let spread = Duration::from_secs(jitter(every.as_secs() / 10));
        self.last_check.unwrap_or_else(Instant::now) + every + spread
    }

    /// Reads the feed: the version of the update it offers this gateway, or empty.
    async fn check(&mut self) -> Result<String, UpdateError> {
        let settings = self.settings.clone().ok_or(UpdateError::NoFeed)?;
        self.set_step("checking");
        let result = async {
            let running = self.running.clone().ok_or_else(|| {
                UpdateError::Refused(
                    "this system's os-release has no IMAGE_VERSION: it is not a gateway image, so it is not updated".into(),
                )
            })?;
            let feed = fetching::feed(&settings.feed, settings.proxy.as_ref()).await?;
            let compatible = rauc::property(self.rauc().await?, "Compatible")
                .await
                .map_err(|e| UpdateError::Unavailable(e.to_string()))?;
            Ok(feed
                .update_for(Running {
                    compatible: &compatible,
                    channel: &settings.channel,
                    version: &running,
                    skipped: &self.skip,
                    refused: &self.refused,
                })
                .cloned())
        }
        .await;
        self.last_check = Some(Instant::now());
        let found = self.done(result)?;
        let version = found
            .as_ref()
            .map(|o| o.version.to_string())
            .unwrap_or_default();
        self.status.send_modify(|s| {
            s.available.clone_from(&version);
            s.last_check_ms = ms_since_epoch();
        });
        self.offer = found;
        Ok(version)
    }

    /// Downloads `offer` into the downloads directory; its path.
    async fn download(
        &mut self,
        offer: &Offer,
        settings: &UpdateConfig,
    ) -> Result<String, UpdateError> {
        let dir = settings
            .downloads
            .clone()
            .ok_or_else(|| UpdateError::Failed("no [store] directory to download into".into()))?;
        self.set_step("downloading");
        let message = format!("Downloading {}", offer.version);
        let status = self.status.clone();
        let result = fetching::download(offer, &dir, settings.proxy.as_ref(), |held| {
            let percent = i32::try_from(held * 100 / offer.size.max(1)).unwrap_or(100);
            status.send_if_modified(|s| {
                let changed = s.percent != percent || s.message != message;
                s.percent = percent;
                s.message.clone_from(&message);
                changed
            });
        })
        .await
        .map(|path| path.display().to_string());
        self.done(result)
    }

    /// Installs the feed's update and reboots: streamed by RAUC, or downloaded first when the
    /// settings say so or this RAUC cannot stream.
    async fn install_offer(
        &mut self,
        offer: &Offer,
        settings: &UpdateConfig,
    ) -> Result<(), UpdateError> {
        let installed = if settings.downloads_first() {
            let file = self.download(offer, settings).await?;
            self.check_and_install(offer, &file).await
        } else {
            match self.check_and_install(offer, offer.url.as_str()).await {
                Err(UpdateError::Failed(e)) if NO_STREAMING.iter().any(|n| e.contains(n)) => {
                    let file = self.download(offer, settings).await?;
                    self.check_and_install(offer, &file).await
                }
                other => other,
            }
        };
        if installed.is_ok() {
            self.skip.push(offer.version.clone());
            self.offer = None;
        }
        installed
    }

    /// Installs `source` if it is the bundle `offer` says and this gateway takes it.
    async fn check_and_install(&mut self, offer: &Offer, source: &str) -> Result<(), UpdateError> {
        let checked = self.bundle(source, false).await.and_then(|(_, version)| {
            if version == offer.version {
                Ok(())
            } else {
                Err(UpdateError::Refused(format!(
                    "the feed offers {} at {}, but the bundle there is {version}",
                    offer.version, offer.url
                )))
            }
        });
        if let Err(e) = self.done(checked) {
            // Not this gateway's: not tried again until the agent restarts.
            if matches!(e, UpdateError::Refused(_)) {
                self.refused.push(offer.url.clone());
                self.offer = None;
            }
            return Err(e);
        }
        self.install(source).await
    }

    /// An install someone asked for over D-Bus: checked, answered, then done.
    async fn install_asked(
        &mut self,
        url: &str,
        downgrade: bool,
        reply: oneshot::Sender<Result<String, UpdateError>>,
    ) {
        let url = if url.is_empty() {
            match self.feed_update().await {
                Ok(url) => url,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        } else {
            url.to_owned()
        };
        let url = url.as_str();
        self.set_step("checking");
        let checked = self.bundle(url, downgrade).await;
        let checked = self.done(checked);
        let ok = checked.is_ok();
        let _ = reply.send(checked.map(|(_, version)| version.to_string()));
        if ok {
            // Its own download of the feed's update, if this is that update and it is complete.
            let file = self
                .offer
                .as_ref()
                .filter(|o| o.url.as_str() == url)
                .and_then(|o| {
                    let dir = self.settings.as_ref()?.downloads.as_ref()?;
                    let file = daisee_update::bundle_file(dir, o);
                    file.is_file().then(|| file.display().to_string())
                });
            let _ = self.install(file.as_deref().unwrap_or(url)).await;
        }
    }

    /// The URL of the feed's update, the feed read again if none was found yet.
    async fn feed_update(&mut self) -> Result<String, UpdateError> {
        if self.offer.is_none() {
            self.check().await?;
        }
        let offer = self.offer.as_ref();
        offer
            .map(|o| o.url.to_string())
            .ok_or_else(|| UpdateError::Refused("the feed offers no newer bundle".into()))
    }

    /// The bundle at `source` as RAUC reads it: its machine and version, refused unless it is
    /// this machine's and newer than the running root (or `downgrade`).
    async fn bundle(
        &mut self,
        source: &str,
        downgrade: bool,
    ) -> Result<(String, Version), UpdateError> {
        let conn = self.rauc().await?.clone();
        let ours = rauc::property(&conn, "Compatible")
            .await
            .map_err(|e| UpdateError::Unavailable(e.to_string()))?;
        let (compatible, version) = rauc::inspect(&conn, source)
            .await
            .map_err(|e| UpdateError::Failed(format!("RAUC could not read the bundle: {e}")))?;
        if compatible != ours {
            return Err(UpdateError::Refused(format!(
                "the bundle is for {compatible:?}, this gateway is {ours:?}"
            )));
        }
        let version: Version = version
            .parse()
            .map_err(|e| UpdateError::Refused(format!("the bundle's version: {e}")))?;
        match &self.running {
            Some(running) if version <= *running && !downgrade => {
                Err(UpdateError::Refused(format!(
                    "the bundle is {version}, not newer than the running {running} (a downgrade must be asked for)"
                )))
            }
            _ => Ok((compatible, version)),
        }
    }

    /// Installs `source` with RAUC, relaying its progress; then removes the downloads and asks
    /// for the reboot into the new slot.
    async fn install(&mut self, source: &str) -> Result<(), UpdateError> {
        let conn = self.rauc().await?.clone();
        self.set_step("installing");
        let status = self.status.clone();
        let result = rauc::install(&conn, source, |percent, message| {
            status.send_modify(|s| {
                s.percent = percent;
                s.message = message;
            });
        })
        .await
        .map_err(UpdateError::Failed);
        if result.is_err() {
            return self.done(result);
        }
        let downloads = self.settings.as_ref().and_then(|s| s.downloads.clone());
        if let Some(dir) = downloads
            && let Err(e) = remove_downloads(&dir)
        {
            self.log(
                Priority::Warning,
                &format!(
                    "update: the downloaded bundle stays in {}: {e}",
                    dir.display()
                ),
            );
        }
        self.status.send_modify(|s| {
            s.step = "rebooting";
            s.error.clear();
        });
        self.log(
            Priority::Info,
            &format!("update: installed {source}; rebooting into it"),
        );
        if let Err(e) = request_reboot(Path::new(REBOOT_REQUEST)) {
            let message =
                format!("installed; reboot to run it (the agent could not ask for a reboot: {e})");
            self.log(Priority::Warning, &format!("update: {message}"));
            self.status.send_modify(|s| {
                s.step = "idle";
                s.error = message;
            });
        }
        Ok(())
    }

    /// Reports a slot the gateway fell back from, once, and refuses its version from then on.
    async fn look_for_rollback(&mut self) {
        let Ok(conn) = self.rauc().await.cloned() else {
            return;
        };
        let Ok(slots) = rauc::slots(&conn).await else {
            return;
        };
        let Some(failed) = rauc::rolled_back(&slots) else {
            return;
        };
        let version = failed.slot.bundle_version.clone();
        let booted = slots
            .iter()
            .find(|s| s.slot.state == "booted")
            .map(|s| s.slot.bootname.clone())
            .unwrap_or_default();
        self.journal.log(
            Priority::Warning,
            &format!(
                "update: version {version} in slot {} never got ready and was rolled back: running slot {booted}",
                failed.slot.bootname
            ),
            &[("DAISEE_ROLLED_BACK", &version)],
        );
        if let Ok(v) = version.parse() {
            self.skip.push(v);
        }
        self.status.send_modify(|s| s.rolled_back = version);
    }

    /// The connection to RAUC's bus, made when first needed.
    async fn rauc(&mut self) -> Result<&Connection, UpdateError> {
        if self.conn.is_none() {
            let bus = self.bus.clone().ok_or_else(|| {
                UpdateError::Unavailable("the agent runs without D-Bus, where RAUC is".into())
            })?;
            let conn = bus
                .connect()
                .await
                .map_err(|e| UpdateError::Unavailable(format!("RAUC's bus: {e}")))?;
            self.conn = Some(conn);
        }
        self.conn.as_ref().ok_or(UpdateError::Stopping)
    }

    fn set_step(&self, step: &'static str) {
        self.status.send_modify(|s| {
            s.step = step;
            s.percent = 0;
            s.message.clear();
        });
    }

    /// Ends a step: back to idle, with its error shown and logged, or the error cleared.
    fn done<T>(&self, result: Result<T, UpdateError>) -> Result<T, UpdateError> {
        let error = result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !error.is_empty() {
            self.log(Priority::Error, &format!("update: {error}"));
        }
        self.status.send_modify(|s| {
            s.step = "idle";
            s.error = error;
        });
        result
    }

    fn log(&self, priority: Priority, message: &str) {
        self.journal.log(priority, message, &[]);
    }
}

/// Asks systemd for a reboot (daisee-reboot.path); a request already there is one.
fn request_reboot(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn ms_since_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 86_400)
}

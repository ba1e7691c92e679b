//! `org.daisee.Gateway1.Update` at `Update`: the A/B slots, asked of RAUC at each call, and the
//! updater: the running version, the feed's update, a check or an install on request, and its
//! progress with change signals.

use daisee_api::UpdateSlot;
use zbus::{Connection, interface};

use super::changes::Changes;
use super::{Error, shorten};
use crate::update::{self, UpdateHandle, UpdateStatus};

/// The update slots, as RAUC reports them when asked (methods: nothing is cached, and a gateway
/// without RAUC must still list its objects), and the updater's status as properties.
pub(super) struct UpdateObject {
    pub(super) conn: Connection,
    pub(super) shown: UpdateStatus,
    pub(super) handle: UpdateHandle,
}

impl UpdateObject {
    pub(super) fn update(&mut self, new: &UpdateStatus) -> Changes {
        let mut changed = Changes::default();
        let old = &mut self.shown;
        changed.set("Step", &mut old.step, new.step);
        changed.set("Progress", &mut old.percent, new.percent);
        changed.set("Message", &mut old.message, new.message.clone());
        changed.set("Available", &mut old.available, new.available.clone());
        changed.set("LastCheck", &mut old.last_check_ms, new.last_check_ms);
        changed.set("LastError", &mut old.error, new.error.clone());
        changed.set("RolledBack", &mut old.rolled_back, new.rolled_back.clone());
        changed
    }
}

fn unavailable(e: update::Unavailable) -> Error {
    Error::UpdateUnavailable(e.to_string())
}

/// A bundle's location as a caller gave it: a URL or an absolute path, of a sane length; empty
/// for the feed's update.
fn source(url: &str) -> Result<String, Error> {
    let fine = url.is_empty()
        || url.len() <= 2048
            && !url.chars().any(char::is_control)
            && (url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/'));
    if fine {
        Ok(url.to_owned())
    } else {
        Err(Error::InvalidArgument(format!(
            "{:?} is not an http(s) URL or an absolute path",
            shorten(url)
        )))
    }
}

#[interface(name = "org.daisee.Gateway1.Update")]
impl UpdateObject {
    /// The slot the gateway booted (its bootname, `A` or `B`).
    async fn boot_slot(&self) -> Result<String, Error> {
        update::property(&self.conn, "BootSlot")
            .await
            .map_err(unavailable)
    }

    /// Every slot: name, bootname, state (`booted`, `active`, `inactive`), boot status (`good`, `bad`)
    /// and the version of the bundle installed into it.
    async fn slots(&self) -> Result<Vec<UpdateSlot>, Error> {
        let slots = update::slots(&self.conn).await.map_err(unavailable)?;
        Ok(slots.into_iter().map(|s| s.slot).collect())
    }

    /// What RAUC is doing (`idle`, `installing`) and the error of the last install that failed.
    async fn installer(&self) -> Result<(String, String), Error> {
        Ok((
            update::property(&self.conn, "Operation")
                .await
                .map_err(unavailable)?,
            update::property(&self.conn, "LastError")
                .await
                .map_err(unavailable)?,
        ))
    }

    /// Reads the feed now and returns the version it offers to install (empty if none); that
    /// update is then downloaded or installed as the `[update]` table's `auto` says.
    async fn check(&self) -> Result<String, Error> {
        Ok(self.handle.check().await?)
    }

    /// Installs the bundle at `url` (http, https, a path on the gateway, or empty for the feed's
    /// update) once RAUC has checked that it is signed, for this machine and newer than the
    /// running version, then reboots into it. Returns the bundle's version; `Step` and
    /// `Progress` follow the install.
    async fn install(&self, url: &str) -> Result<String, Error> {
        Ok(self.handle.install(source(url)?, false).await?)
    }

    /// `Install`, for a bundle older than (or as old as) the running version.
    async fn downgrade(&self, url: &str) -> Result<String, Error> {
        Ok(self.handle.install(source(url)?, true).await?)
    }

    /// The version of the running root; empty on a system that is not a gateway image.
    #[zbus(property)]
    fn running(&self) -> String {
        self.shown.running.clone()
    }

    /// The feed followed; empty without an `[update]` table.
    #[zbus(property)]
    fn feed(&self) -> String {
        self.shown.feed.clone()
    }

    /// `idle`, `checking`, `downloading`, `installing` or `rebooting`.
    #[zbus(property)]
    fn step(&self) -> String {
        self.shown.step.into()
    }

    /// How far the download or install is, 0 to 100 (RAUC's own progress while it installs).
    #[zbus(property)]
    fn progress(&self) -> i32 {
        self.shown.percent
    }

    /// What the download or RAUC is doing (`Copying image to rootfs.1`).
    #[zbus(property)]
    fn message(&self) -> String {
        self.shown.message.clone()
    }

    /// The version the last check found to install; empty if none.
    #[zbus(property)]
    fn available(&self) -> String {
        self.shown.available.clone()
    }

    /// When the feed was last read, in ms since 1970; 0 if never.
    #[zbus(property)]
    fn last_check(&self) -> i64 {
        self.shown.last_check_ms
    }

    /// Why the last check, download or install failed; empty after one that worked.
    #[zbus(property)]
    fn last_error(&self) -> String {
        self.shown.error.clone()
    }

    /// The version whose slot never got ready, which the gateway fell back from; empty if none.
    #[zbus(property)]
    fn rolled_back(&self) -> String {
        self.shown.rolled_back.clone()
    }
}

//! `org.daisee.Gateway1.Config` at `Config`: the configuration, whole or by key, changed only
//! after validation, written atomically, its live part handed to the daemon in order.

use std::sync::Arc;

use zbus::interface;
use zbus::object_server::SignalEmitter;

use super::Error;
use crate::config::{Change, ChangeError, ConfigFile};
use crate::daemon::Command;

/// The configuration.
pub(super) struct ConfigObject {
    pub(super) file: Arc<std::sync::Mutex<ConfigFile>>,
    pub(super) commands: std::sync::mpsc::SyncSender<Command>,
}

impl ConfigObject {
    fn file(&self) -> std::sync::MutexGuard<'_, ConfigFile> {
        // A panic mid-change left the file as it was on disk: the last good state.
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a change off the runtime's thread (it fsyncs), hands what applies at once to the
    /// main loop while still holding the file (so changes reach it in the order they were made),
    /// and signals the new revision.
    async fn change(
        &self,
        edit: impl FnOnce(&mut ConfigFile) -> Result<Change, ChangeError> + Send + 'static,
        emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        let (file, commands) = (Arc::clone(&self.file), self.commands.clone());
        let change = tokio::task::spawn_blocking(move || {
            let mut file = file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let change = edit(&mut file)?;
            if !change.restart {
                // Blocking while the inbox is full keeps the changes in order; the main loop
                // is gone only when the agent stops, and there is nothing to apply then.
                let _ = commands.send(Command::Apply(Box::new(change.config.clone())));
            }
            Ok(change)
        })
        .await
        .map_err(|e| Error::ConfigNotWritten(e.to_string()))?
        .map_err(|e| match e {
            ChangeError::Invalid(e) => Error::InvalidConfig(e.to_string()),
            other => Error::ConfigNotWritten(other.to_string()),
        })?;
        self.revision_changed(&emitter).await?;
        Ok((change.revision, change.restart))
    }
}

#[interface(name = "org.daisee.Gateway1.Config")]
impl ConfigObject {
    /// The whole configuration, as TOML.
    fn get(&self) -> String {
        self.file().text().to_owned()
    }

    /// Replaces the whole configuration: validated first (an invalid one changes nothing and the
    /// error names the key and line), then written atomically. Returns the new revision and
    /// whether the agent must restart to apply it all.
    async fn set(
        &self,
        toml: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        self.change(move |f| f.set(&toml), emitter).await
    }

    /// One key (`control.import_limit_w`, `relay[1].priority`), as TOML.
    fn get_key(&self, key: String) -> Result<String, Error> {
        self.file()
            .get(&key)
            .map_err(|e| Error::NotFound(e.to_string()))
    }

    /// Sets one key to a TOML value (`7000`, `"on"`), keeping the rest of the file as written.
    async fn set_key(
        &self,
        key: String,
        value: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        self.change(move |f| f.set_key(&key, &value), emitter).await
    }

    /// The revision on disk; it grows with every change made over D-Bus.
    #[zbus(property)]
    fn revision(&self) -> u64 {
        self.file().revision()
    }
}

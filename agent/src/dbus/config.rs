//! `org.daisee.Gateway1.Config` at `Config`: the configuration, whole or by key, changed only
//! after validation, written atomically, its live part handed to the daemon in order.

use zbus::interface;
use zbus::object_server::SignalEmitter;

use super::Error;
use crate::config::{Change, ChangeError, ConfigFile, SharedConfig};

/// The configuration.
pub(super) struct ConfigObject {
    pub(super) config: SharedConfig,
}

impl ConfigObject {
    fn file(&self) -> std::sync::MutexGuard<'_, ConfigFile> {
        self.config.file()
    }

    /// Makes a change and signals the new revision.
    async fn change(
        &self,
        edit: impl FnOnce(&mut ConfigFile) -> Result<Change, ChangeError> + Send + 'static,
        emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        let change = self.config.change(edit).await.map_err(|e| match e {
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

//! The configuration file as the adapters that change it share it (D-Bus, the web page): one
//! change at a time, and what applies at once handed to the daemon in the order the changes
//! were made.

use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Change, ChangeError, ConfigFile};
use crate::daemon::Command;

/// The configuration file and the daemon's inbox.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    file: Arc<Mutex<ConfigFile>>,
    commands: SyncSender<Command>,
}

impl SharedConfig {
    /// `file`, whose live changes go to `commands`.
    pub fn new(file: ConfigFile, commands: SyncSender<Command>) -> Self {
        SharedConfig {
            file: Arc::new(Mutex::new(file)),
            commands,
        }
    }

    /// The file, for reading.
    pub fn file(&self) -> MutexGuard<'_, ConfigFile> {
        // A panic mid-change left the file as it was on disk: the last good state.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `edit` off the runtime's thread (it fsyncs) and hands what applies at once to the
    /// daemon while still holding the file, so that changes reach it in the order they were made.
    pub async fn change(
        &self,
        edit: impl FnOnce(&mut ConfigFile) -> Result<Change, ChangeError> + Send + 'static,
    ) -> Result<Change, ChangeError> {
        let (file, commands) = (Arc::clone(&self.file), self.commands.clone());
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let change = edit(&mut file)?;
            if !change.restart {
                // Blocking while the inbox is full keeps the changes in order; the main loop
                // is gone only when the agent stops, and there is nothing to apply then.
                let _ = commands.send(Command::Apply(Box::new(change.config.clone())));
            }
            Ok(change)
        })
        .await
        .map_err(|e| ChangeError::Write {
            path: "the configuration".into(),
            source: std::io::Error::other(e),
        })?
    }
}

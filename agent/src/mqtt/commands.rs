//! Relay commands from the broker: read, passed to the daemon, and only then acknowledged, in a
//! task of their own so that a busy daemon never holds up the connection (its pings, its
//! states). The queue between the two is bounded by the broker: it sends no more unacknowledged
//! messages than its in-flight limit (20 for mosquitto).

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use daisee_hal::RelayState;
use rumqttc::{AsyncClient, Publish};
use tokio::sync::{mpsc, watch};

use super::MqttStatus;
use super::topics::Topics;
use crate::daemon::Command;
use crate::journal::{Journal, Priority};

/// How often a command waits for room in the daemon's inbox.
const INBOX_RETRY: Duration = Duration::from_millis(100);

/// What the forwarder works with.
pub(super) struct Forwarder {
    /// Acknowledges what was handled.
    pub(super) client: AsyncClient,
    /// Where the command topics are.
    pub(super) topics: Topics,
    /// The relays that take commands; none when commands are off.
    pub(super) relays: Vec<String>,
    /// The daemon's inbox.
    pub(super) daemon: SyncSender<Command>,
    /// Counts the commands taken.
    pub(super) status: Arc<watch::Sender<MqttStatus>>,
}

/// Starts the forwarder; every message the session receives goes to the sender it returns.
pub(super) fn spawn(forwarder: Forwarder) -> mpsc::UnboundedSender<Publish> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(forwarder.run(rx));
    tx
}

impl Forwarder {
    async fn run(self, mut messages: mpsc::UnboundedReceiver<Publish>) {
        let journal = Journal::from_env();
        while let Some(message) = messages.recv().await {
            if let Some(relay) = self.topics.relay_of(&message.topic) {
                match self.command(relay, &message) {
                    Ok(command) => {
                        if !self.take(command).await {
                            // The daemon is gone: unacknowledged, the broker keeps it.
                            return;
                        }
                    }
                    Err(why) => journal.log(Priority::Warning, &format!("mqtt: {why}"), &[]),
                }
            }
            // Waits for room in the connection's queue, unlike try_ack.
            let _ = self.client.ack(&message).await;
        }
    }

    /// The command `message` holds for `relay`, or why it is ignored.
    fn command(&self, relay: &str, message: &Publish) -> Result<Command, String> {
        if !self.relays.iter().any(|r| r == relay) {
            return Err(format!(
                "ignored a command for {relay:?}: not a relay that takes commands"
            ));
        }
        if message.retain {
            // Retained, it would come back at every connection and undo later commands.
            return Err(format!("ignored a retained command for relay {relay:?}"));
        }
        let state = match std::str::from_utf8(&message.payload).map(str::trim) {
            Ok(w) if w.eq_ignore_ascii_case("on") => Some(RelayState::On),
            Ok(w) if w.eq_ignore_ascii_case("off") => Some(RelayState::Off),
            Ok(w) if w.eq_ignore_ascii_case("auto") => None,
            _ => {
                let payload = &message.payload[..message.payload.len().min(16)];
                return Err(format!(
                    "ignored {:?} for relay {relay:?}: not ON, OFF or AUTO",
                    String::from_utf8_lossy(payload)
                ));
            }
        };
        Ok(Command::HoldRelay {
            relay: relay.to_owned(),
            state,
        })
    }

    /// Hands `command` to the daemon, waiting for room; false if the daemon is gone.
    async fn take(&self, mut command: Command) -> bool {
        loop {
            match self.daemon.try_send(command) {
                Ok(()) => break,
                Err(TrySendError::Full(again)) => {
                    command = again;
                    tokio::time::sleep(INBOX_RETRY).await;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        self.status.send_modify(|s| s.commands += 1);
        true
    }
}

//! The two tasks of the adapter: the session with the broker and the publisher of states.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use daisee_hal::RelayState;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use tokio::sync::watch;

use super::discovery::{Announcement, discovery};
use super::topics::Topics;
use super::{MqttStatus, state};
use crate::daemon::Command;
use crate::journal::{Journal, Priority};
use crate::snapshot::Snapshot;

/// The first wait before a reconnection; it doubles after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between reconnections.
const LAST_RETRY: Duration = Duration::from_secs(60);
/// How often a command waits for room in the daemon's inbox.
const INBOX_RETRY: Duration = Duration::from_millis(100);

/// What the session works with.
pub(super) struct Session {
    client: AsyncClient,
    topics: Topics,
    announcement: Announcement,
    daemon: SyncSender<Command>,
    status: Arc<watch::Sender<MqttStatus>>,
    journal: Journal,
}

impl Session {
    /// A session publishing through `client` and passing commands to `daemon`.
    pub(super) fn new(
        client: AsyncClient,
        topics: Topics,
        announcement: Announcement,
        daemon: SyncSender<Command>,
        status: Arc<watch::Sender<MqttStatus>>,
    ) -> Self {
        Self {
            client,
            topics,
            announcement,
            daemon,
            status,
            journal: Journal::from_env(),
        }
    }

    /// The broker took the connection: say so, announce the gateway, listen for commands.
    fn connected(&self) {
        let broker = self.status.borrow().broker.clone();
        self.journal
            .log(Priority::Info, &format!("mqtt: connected to {broker}"), &[]);
        self.status.send_modify(|s| {
            s.connected = true;
            s.error.clear();
        });
        // The queue is empty at a connection; a full one loses a message the next one repeats.
        let _ =
            self.client
                .try_publish(self.topics.availability(), QoS::AtLeastOnce, true, "online");
        self.announce();
        if let Some(home_assistant) = self.topics.home_assistant() {
            let _ = self.client.try_subscribe(home_assistant, QoS::AtLeastOnce);
        }
        if self.announcement.commands {
            let _ = self
                .client
                .try_subscribe(self.topics.relay_commands(), QoS::AtLeastOnce);
        }
    }

    /// Publishes the discovery message, retained, if discovery is on.
    fn announce(&self) {
        if let Some(topic) = self.topics.discovery() {
            let message = discovery(&self.announcement, &self.topics).to_string();
            let _ = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, message);
        }
    }

    /// The connection failed or ended: say so once per change.
    fn lost(&self, error: &rumqttc::ConnectionError) {
        let error = error.to_string();
        let (was, broker, same) = {
            let s = self.status.borrow();
            (s.connected, s.broker.clone(), s.error == error)
        };
        if was || !same {
            self.journal.log(
                Priority::Warning,
                &format!("mqtt: {broker}: {error}; trying again"),
                &[],
            );
        }
        self.status.send_modify(|s| {
            s.connected = false;
            s.error = error;
        });
    }

    /// A message on a topic the gateway listens on: Home Assistant's birth, or a command.
    /// Acknowledged once handled, so that the broker keeps a command the daemon did not get.
    async fn received(&self, message: &Publish) {
        if Some(message.topic.as_str()) == self.topics.home_assistant().as_deref() {
            if message.payload.as_ref() == b"online" {
                self.announce();
            }
        } else if let Some(relay) = self.topics.relay_of(&message.topic)
            && !self.command(relay, &message.payload).await
        {
            return;
        }
        let _ = self.client.try_ack(message);
    }

    /// Passes a relay command to the daemon; false if the daemon is gone (the command stays
    /// unacknowledged).
    async fn command(&self, relay: &str, payload: &[u8]) -> bool {
        let known = self.announcement.relays.iter().any(|r| r == relay);
        let state = match std::str::from_utf8(payload).map(str::trim) {
            Ok(w) if w.eq_ignore_ascii_case("on") => Some(Some(RelayState::On)),
            Ok(w) if w.eq_ignore_ascii_case("off") => Some(Some(RelayState::Off)),
            Ok(w) if w.eq_ignore_ascii_case("auto") => Some(None),
            _ => None,
        };
        let (true, true, Some(state)) = (self.announcement.commands, known, state) else {
            let shown = String::from_utf8_lossy(&payload[..payload.len().min(16)]).into_owned();
            self.journal.log(
                Priority::Warning,
                &format!("mqtt: ignored {shown:?} for relay {relay:?}: not ON, OFF or AUTO for a relay of this gateway"),
                &[],
            );
            return true;
        };
        let mut command = Command::HoldRelay {
            relay: relay.to_owned(),
            state,
        };
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

/// Runs the session for good: rumqttc reconnects at the next poll after an error.
pub(super) async fn run(mut eventloop: EventLoop, session: Session) {
    let mut wait = FIRST_RETRY;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                wait = FIRST_RETRY;
                session.connected();
            }
            Ok(Event::Incoming(Packet::Publish(message))) => session.received(&message).await,
            Ok(_) => {}
            Err(e) => {
                session.lost(&e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LAST_RETRY);
            }
        }
    }
}

/// Publishes every channel's and relay's state at each snapshot while connected; stops with
/// the daemon.
pub(super) async fn publish(
    client: AsyncClient,
    topics: Topics,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    status: Arc<watch::Sender<MqttStatus>>,
) {
    while snapshots.changed().await.is_ok() {
        let Some(snapshot) = snapshots.borrow_and_update().clone() else {
            continue;
        };
        if !status.borrow().connected {
            continue;
        }
        let channels = snapshot
            .channels
            .iter()
            .map(|c| (topics.channel(&c.name), state::channel(c)));
        let relays = snapshot
            .relays
            .iter()
            .map(|r| (topics.relay(&r.name), state::relay(r)));
        let sent = channels
            .chain(relays)
            .filter(|(topic, message)| {
                client
                    .try_publish(topic, QoS::AtMostOnce, false, message.as_bytes())
                    .is_ok()
            })
            .count();
        status.send_modify(|s| s.published += sent as u64);
    }
}

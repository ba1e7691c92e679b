//! The two tasks of the adapter besides the commands: the session with the broker and the
//! publisher of states.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};

use super::discovery::{Announcement, discovery};
use super::topics::Topics;
use super::{MqttStatus, state};
use crate::journal::{Journal, Priority};
use crate::snapshot::Snapshot;

/// The first wait before a reconnection; it doubles after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between reconnections.
const LAST_RETRY: Duration = Duration::from_secs(60);
/// How long a connection must last for the next failure to wait the first wait again: a broker
/// that drops the gateway at once is not retried every second.
const STABLE: Duration = Duration::from_secs(60);

/// What the session works with.
pub(super) struct Session {
    client: AsyncClient,
    topics: Topics,
    announcement: Announcement,
    /// Takes every message received: the commands, and the acknowledgement of each.
    forwarder: mpsc::UnboundedSender<Publish>,
    status: Arc<watch::Sender<MqttStatus>>,
    journal: Journal,
}

impl Session {
    /// A session publishing through `client` and handing what it receives to `forwarder`.
    pub(super) fn new(
        client: AsyncClient,
        topics: Topics,
        announcement: Announcement,
        forwarder: mpsc::UnboundedSender<Publish>,
        status: Arc<watch::Sender<MqttStatus>>,
    ) -> Self {
        Self {
            client,
            topics,
            announcement,
            forwarder,
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
        // A full queue loses the message; the next connection sends it again.
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

    /// A message on a topic the gateway listens on: Home Assistant's birth (announce again),
    /// or a command; both go on to the forwarder, which acknowledges them once handled.
    fn received(&self, message: Publish) {
        if Some(message.topic.as_str()) == self.topics.home_assistant().as_deref()
            && message.payload.as_ref() == b"online"
        {
            self.announce();
        }
        let _ = self.forwarder.send(message);
    }
}

/// Runs the session for good: rumqttc reconnects at the next poll after an error.
pub(super) async fn run(mut eventloop: EventLoop, session: Session) {
    let mut wait = FIRST_RETRY;
    let mut up_since = None;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                up_since = Some(Instant::now());
                session.connected();
            }
            Ok(Event::Incoming(Packet::Publish(message))) => session.received(message),
            Ok(_) => {}
            Err(e) => {
                session.lost(&e);
                if up_since.take().is_some_and(|t| t.elapsed() >= STABLE) {
                    wait = FIRST_RETRY;
                }
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

//! `org.daisee.Gateway1.Mqtt` at `Mqtt`: how the gateway stands with its MQTT broker. There
//! only when the configuration has an `[mqtt]`.

use zbus::interface;

use super::changes::Changes;
use crate::mqtt::MqttStatus;

/// The broker connection, as its properties show it.
pub(super) struct MqttObject {
    pub(super) shown: MqttStatus,
}

impl MqttObject {
    pub(super) fn update(&mut self, new: &MqttStatus) -> Changes {
        let mut changed = Changes::default();
        let old = &mut self.shown;
        changed.set("Connected", &mut old.connected, new.connected);
        changed.set("LastError", &mut old.error, new.error.clone());
        // Every poll: read when wanted, not signalled.
        old.published = new.published;
        changed.set("Commands", &mut old.commands, new.commands);
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Mqtt")]
impl MqttObject {
    /// The broker, `host:port`.
    #[zbus(property)]
    fn broker(&self) -> String {
        self.shown.broker.clone()
    }

    /// Whether the broker took the connection and it is up.
    #[zbus(property)]
    fn connected(&self) -> bool {
        self.shown.connected
    }

    /// Why the last connection failed or ended; empty while connected.
    #[zbus(property)]
    fn last_error(&self) -> String {
        self.shown.error.clone()
    }

    /// State messages published since the agent started (not signalled: it moves every poll).
    #[zbus(property(emits_changed_signal = "false"))]
    fn published(&self) -> u64 {
        self.shown.published
    }

    /// Relay commands taken from the broker since the agent started.
    #[zbus(property)]
    fn commands(&self) -> u64 {
        self.shown.commands
    }
}

//! `org.daisee.Gateway1.Relay` at `Relay/NAME`: a relay's state and mode, switched by hand and
//! given back.

use daisee_hal::RelayState;
use zbus::interface;

use super::changes::Changes;
use super::{Error, send};
use crate::daemon::Command;
use crate::snapshot::RelayStatus;

/// A relay.
pub(super) struct RelayObject {
    pub(super) name: String,
    pub(super) state: String,
    pub(super) safe_state: String,
    pub(super) mode: String,
    pub(super) fault: String,
    pub(super) commands: std::sync::mpsc::SyncSender<Command>,
}

impl RelayObject {
    pub(super) fn update(&mut self, r: &RelayStatus) -> Changes {
        let mut changed = Changes::default();
        let state = r.state.as_ref().map_or("unknown", |s| s.as_str());
        changed.set("State", &mut self.state, state.to_owned());
        changed.set(
            "Fault",
            &mut self.fault,
            r.state
                .as_ref()
                .err()
                .map(|f| f.message.clone())
                .unwrap_or_default(),
        );
        changed.set("Mode", &mut self.mode, r.mode.as_str().to_owned());
        changed
    }

    fn send(&self, state: Option<RelayState>) -> Result<(), Error> {
        let relay = self.name.clone();
        send(&self.commands, Command::HoldRelay { relay, state })
    }
}

#[interface(name = "org.daisee.Gateway1.Relay")]
impl RelayObject {
    /// Holds the relay `on` or `off` by hand until released; demand response leaves it alone.
    fn switch(&self, state: String) -> Result<(), Error> {
        let state = match state.as_str() {
            "on" => RelayState::On,
            "off" => RelayState::Off,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "`{}` is not a state: \"on\" or \"off\"",
                    super::shorten(other)
                )));
            }
        };
        self.send(Some(state))
    }

    /// Gives the relay back: to demand response, or to its safe state if it has none.
    fn release(&self) -> Result<(), Error> {
        self.send(None)
    }

    /// The relay's name.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// `on` or `off`, read back from the output; `unknown` if it cannot be read.
    #[zbus(property)]
    fn state(&self) -> String {
        self.state.clone()
    }

    /// The state it takes at start, on shutdown and when measurements are stale.
    #[zbus(property)]
    fn safe_state(&self) -> String {
        self.safe_state.clone()
    }

    /// `auto` (demand response switches it), `manual` (held by hand) or `fixed` (in its safe state).
    #[zbus(property)]
    fn mode(&self) -> String {
        self.mode.clone()
    }

    /// Why the output cannot be read; empty when it can.
    #[zbus(property)]
    fn fault(&self) -> String {
        self.fault.clone()
    }
}

//! `org.daisee.Gateway1.Inverter` at `Inverter/NAME`: a curtailable inverter's power limit, set
//! by hand for a while and given back.

use std::time::Duration;

use daisee_control::Limit;
use zbus::interface;

use super::changes::Changes;
use super::{Error, send};
use crate::daemon::Command;
use crate::snapshot::InverterStatus;

/// The longest a limit set by hand may hold: the inverter's revert timer counts in 16 bits
/// of seconds on model 123.
const MAX_REVERT_S: u32 = 65_535;

/// An inverter's limit.
pub(super) struct InverterObject {
    pub(super) name: String,
    pub(super) rated: i64,
    pub(super) limited: bool,
    pub(super) limit: u8,
    pub(super) mode: String,
    pub(super) fault: String,
    pub(super) commands: std::sync::mpsc::SyncSender<Command>,
}

impl InverterObject {
    pub(super) fn update(&mut self, i: &InverterStatus) -> Changes {
        let mut changed = Changes::default();
        changed.set("Limited", &mut self.limited, i.limit.is_some());
        changed.set("LimitPercent", &mut self.limit, i.limit.unwrap_or(100));
        changed.set("Mode", &mut self.mode, i.mode.as_str().to_owned());
        let fault = i
            .fault
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        changed.set("Fault", &mut self.fault, fault);
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Inverter")]
impl InverterObject {
    /// Holds the inverter at `percent` (0 to 100) of its rated power for `revert_s` seconds (10
    /// to 65535): the inverter lifts it by itself then, and the export limit takes over again.
    fn set_limit(&self, percent: u8, revert_s: u32) -> Result<(), Error> {
        if percent > 100 || !(10..=MAX_REVERT_S).contains(&revert_s) {
            return Err(Error::InvalidArgument(format!(
                "{percent} % for {revert_s} s: a percentage from 0 to 100, for 10 to {MAX_REVERT_S} s"
            )));
        }
        let limit = Limit {
            percent,
            revert: Duration::from_secs(u64::from(revert_s)),
        };
        let inverter = self.name.clone();
        send(
            &self.commands,
            Command::HoldInverter {
                inverter,
                limit: Some(limit),
            },
        )
    }

    /// Gives the inverter back to the export limit, or to full power if there is none.
    fn release(&self) -> Result<(), Error> {
        let inverter = self.name.clone();
        send(
            &self.commands,
            Command::HoldInverter {
                inverter,
                limit: None,
            },
        )
    }

    /// The inverter's name (also its channel's, under Meter).
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Its rated AC power in mW, from the configuration.
    #[zbus(property)]
    fn rated(&self) -> i64 {
        self.rated
    }

    /// Whether a limit is in force, as the inverter confirmed it.
    #[zbus(property)]
    fn limited(&self) -> bool {
        self.limited
    }

    /// The limit in force in percent of rated power; 100 when `Limited` is false.
    #[zbus(property)]
    fn limit_percent(&self) -> u8 {
        self.limit
    }

    /// `auto` (the export limit decides), `manual` (held by hand) or `free` (full power).
    #[zbus(property)]
    fn mode(&self) -> String {
        self.mode.clone()
    }

    /// Why the last limit could not be written; empty when it was.
    #[zbus(property)]
    fn fault(&self) -> String {
        self.fault.clone()
    }
}

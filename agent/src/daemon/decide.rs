//! The daemon's decisions: demand response over the relays, from the grid channel's latest good
//! reading, which ages until it is stale rather than go stale at the first failed poll.

use std::time::Duration;

use daisee_control::{Command as Switch, Controller, Mode, Settings};
use daisee_hal::{MilliWatts, RelayState, Timestamp};

use crate::config::{Config, ControlConfig};
use crate::devices::Readings;
use crate::snapshot::ControlStatus;

/// Stale after this without a `[control]` table: only relays held by hand are switched then.
const NO_CONTROL_STALE: Duration = Duration::from_secs(3600);

/// The controller's settings from the configuration.
fn settings(c: Option<&ControlConfig>) -> Settings {
    Settings {
        import_limit: c.and_then(|c| c.import_limit),
        stale_after: c.map_or(NO_CONTROL_STALE, |c| c.stale_after),
    }
}

/// Demand response and the hand that overrides it.
pub(super) struct Decisions {
    controller: Controller,
    /// The grid channel, when demand response runs.
    grid: Option<String>,
    last_grid: Option<(Timestamp, MilliWatts)>,
}

impl Decisions {
    /// Every relay of `config` under the controller, as switched to its safe state at `now`.
    pub(super) fn new(config: &Config, now: Timestamp) -> Self {
        let loads = config.relays.iter().filter_map(|r| r.flex.clone()).collect();
        let mut controller = Controller::new(settings(config.control.as_ref()), loads, now);
        for r in config.relays.iter().filter(|r| r.flex.is_none()) {
            controller.add_fixed(&r.name, r.safe_state);
        }
        Self {
            controller,
            grid: config.control.as_ref().map(|c| c.grid.clone()),
            last_grid: None,
        }
    }

    /// Takes the settings that apply without a restart.
    pub(super) fn apply(&mut self, control: Option<&ControlConfig>) {
        self.controller.set_settings(settings(control));
        self.grid = control.map(|c| c.grid.clone());
    }

    /// Holds a relay by hand, or gives it back; false if there is no such relay.
    pub(super) fn hold(&mut self, relay: &str, state: Option<RelayState>) -> bool {
        self.controller.set_override(relay, state)
    }

    /// The relay switches the readings call for, already counted as done.
    pub(super) fn tick(&mut self, readings: &Readings) -> Vec<Switch> {
        if let Some(grid) = &self.grid {
            let fresh = readings
                .channels
                .iter()
                .find(|c| *c.name == **grid)
                .and_then(|c| Some((c.read_at?, c.reading.as_ref().ok()?.power)));
            if fresh.is_some() {
                self.last_grid = fresh;
            }
        }
        self.controller.tick(readings.at, self.last_grid)
    }

    /// A switch [`Decisions::tick`] asked for did not happen: tried again next time.
    pub(super) fn failed(&mut self, relay: &str) {
        self.controller.failed(relay);
    }

    /// Who decides a relay's state.
    pub(super) fn mode(&self, relay: &str) -> Mode {
        self.controller.mode(relay)
    }

    /// What demand response acted on at `now`, if it runs.
    pub(super) fn status(&self, now: Timestamp) -> Option<ControlStatus> {
        self.grid.as_ref()?;
        Some(ControlStatus {
            relays: self.controller.status(now, self.last_grid),
            export_limit: None,
        })
    }
}

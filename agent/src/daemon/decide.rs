//! The daemon's decisions: demand response over the relays, from the grid channel's latest good
//! reading, which ages until it is stale rather than go stale at the first failed poll.

use std::time::Duration;

use daisee_control::{
    Allocation, Command as Switch, Controller, Curtailable, ExportLimiter, InverterMode, Limit,
    LimitOverride, Mode, Settings,
};
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

/// Demand response, the export limit, and the hand that overrides them.
pub(super) struct Decisions {
    controller: Controller,
    limiter: ExportLimiter,
    /// The channels of the curtailable inverters, in the limiter's order.
    inverters: Vec<String>,
    /// The export limit of the configuration; a slot's allocation may tighten it.
    export_limit: Option<MilliWatts>,
    /// The grid channel, when demand response runs.
    grid: Option<String>,
    last_grid: Option<(Timestamp, MilliWatts)>,
}

impl Decisions {
    /// Every relay of `config` under the controller, as switched to its safe state at `now`.
    pub(super) fn new(config: &Config, now: Timestamp) -> Self {
        let loads = config
            .relays
            .iter()
            .filter_map(|r| r.flex.clone())
            .collect();
        let mut controller = Controller::new(settings(config.control.as_ref()), loads, now);
        for r in config.relays.iter().filter(|r| r.flex.is_none()) {
            controller.add_fixed(&r.name, r.safe_state);
        }
        let curtailable: Vec<Curtailable> = config
            .inverters
            .iter()
            .filter(|i| i.curtailable())
            .map(|i| Curtailable {
                name: i.meter.name.clone(),
                rated: i.rated,
                revert: i.revert,
            })
            .collect();
        let export_limit = config.control.as_ref().and_then(|c| c.export_limit);
        Self {
            controller,
            inverters: curtailable.iter().map(|c| c.name.clone()).collect(),
            limiter: ExportLimiter::new(export_limit, curtailable),
            export_limit,
            grid: config.control.as_ref().map(|c| c.grid.clone()),
            last_grid: None,
        }
    }

    /// Takes the settings that apply without a restart.
    pub(super) fn apply(&mut self, control: Option<&ControlConfig>) {
        self.controller.set_settings(settings(control));
        self.export_limit = control.and_then(|c| c.export_limit);
        self.limiter.set_limit(self.export_limit);
        self.grid = control.map(|c| c.grid.clone());
    }

    /// Caps the flexible loads in a slot at the dialogue's budget, and the export at its limit
    /// if it has one (they lapse with the slot).
    pub(super) fn allocate(&mut self, allocation: Allocation) {
        self.controller.allocate(allocation);
    }

    /// Holds a relay by hand, or gives it back; false if there is no such relay.
    pub(super) fn hold(&mut self, relay: &str, state: Option<RelayState>) -> bool {
        self.controller.set_override(relay, state)
    }

    /// Holds an inverter at a limit by hand from `now` for the limit's revert time, or gives it
    /// back; false if there is no such curtailable inverter.
    pub(super) fn hold_inverter(
        &mut self,
        inverter: &str,
        limit: Option<Limit>,
        now: Timestamp,
    ) -> bool {
        let manual = limit.map(|limit| LimitOverride {
            limit,
            until: now.plus(limit.revert),
        });
        self.limiter.set_override(inverter, manual)
    }

    /// The limit each curtailable inverter should be under, from the grid power (held while it
    /// is stale) and each inverter's output.
    pub(super) fn limits(&mut self, readings: &Readings) -> Vec<(String, Option<Limit>)> {
        let slot_limit = self
            .controller
            .allocation(readings.at)
            .and_then(|a| a.export_limit);
        self.limiter
            .set_limit(match (self.export_limit, slot_limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            });
        let grid = self
            .last_grid
            .filter(|_| !self.controller.is_stale(readings.at, self.last_grid))
            .map(|(_, p)| p);
        let output: Vec<_> = self
            .inverters
            .iter()
            .map(|name| {
                let channel = readings.channels.iter().find(|c| *c.name == **name)?;
                Some(channel.reading.as_ref().ok()?.power)
            })
            .collect();
        self.limiter.tick(readings.at, grid, &output)
    }

    /// Who decides an inverter's limit.
    pub(super) fn inverter_mode(&self, inverter: &str, now: Timestamp) -> InverterMode {
        self.limiter.mode(inverter, now)
    }

    /// The relay switches the hands on them call for, before the turn reads anything.
    pub(super) fn overrides(&mut self, now: Timestamp) -> Vec<Switch> {
        self.controller.overrides(now)
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
            export_limit: self.limiter.limit(),
        })
    }
}

//! `org.daisee.Gateway1.Controller` at `Controller`: what demand response acts on.

use zbus::interface;

use super::changes::Changes;
use crate::snapshot::ControlStatus;

/// Demand response.
#[derive(Default)]
pub(super) struct ControllerObject {
    grid_power: i64,
    stale: bool,
    import_limit: i64,
    export_limited: bool,
    export_limit: i64,
}

impl ControllerObject {
    pub(super) fn update(&mut self, control: &ControlStatus) -> Changes {
        let mut changed = Changes::default();
        let relays = control.relays;
        changed.set(
            "GridPower",
            &mut self.grid_power,
            relays.grid.map_or(0, |p| p.0),
        );
        changed.set("Stale", &mut self.stale, relays.stale);
        changed.set(
            "ImportLimit",
            &mut self.import_limit,
            relays.import_limit.map_or(0, |p| p.0),
        );
        changed.set(
            "ExportLimited",
            &mut self.export_limited,
            control.export_limit.is_some(),
        );
        changed.set(
            "ExportLimit",
            &mut self.export_limit,
            control.export_limit.map_or(0, |p| p.0),
        );
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Controller")]
impl ControllerObject {
    /// The grid power the controller last acted on, in mW (positive: import).
    #[zbus(property)]
    fn grid_power(&self) -> i64 {
        self.grid_power
    }

    /// Whether the grid measurement is stale (the loads are in their safe states).
    #[zbus(property)]
    fn stale(&self) -> bool {
        self.stale
    }

    /// The import limit in mW; 0 for none.
    #[zbus(property)]
    fn import_limit(&self) -> i64 {
        self.import_limit
    }

    /// Whether an export limit is in force.
    #[zbus(property)]
    fn export_limited(&self) -> bool {
        self.export_limited
    }

    /// The export limit in mW (a positive number; 0 means export nothing); see `ExportLimited`.
    #[zbus(property)]
    fn export_limit(&self) -> i64 {
        self.export_limit
    }
}

//! The `[[inverter]]` tables: inverters read like meters and, through SunSpec, curtailed.

use std::time::Duration;

use daisee_hal::MilliWatts;
use daisee_modbus::sunspec::Role;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator};
use super::meter::{DeviceKeys, Devices, Meter, MeterMap};

/// An inverter.
#[derive(Debug, Clone, PartialEq)]
pub struct Inverter {
    /// How it is read: its name, bus, unit, register map, timeout and simulated loads.
    pub meter: Meter,
    /// Its rated power: the export limit curtails it in percent of this.
    pub rated: MilliWatts,
    /// How long the inverter keeps a limit the agent stopped renewing: the fail-safe when the
    /// agent dies.
    pub revert: Duration,
}

impl Inverter {
    /// Whether the agent can limit its power: SunSpec inverters can (models 123/704), profiles are
    /// read only.
    pub fn curtailable(&self) -> bool {
        self.meter.map == MeterMap::SunSpec(Role::Inverter)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InverterTable {
    name: String,
    modbus: String,
    unit: u8,
    profile: Option<String>,
    sunspec: Option<bool>,
    timeout_ms: Option<u64>,
    loads: Option<Vec<String>>,
    rated_w: Option<f64>,
    revert_s: Option<u64>,
}

/// The inverters, in file order, checked with the meters they share buses and names with.
pub(super) fn inverters(
    at: &Locator<'_>,
    tables: &[Spanned<InverterTable>],
    devices: &mut Devices<'_>,
) -> Result<Vec<Inverter>, ConfigError> {
    let mut inverters = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let (at, t) = (
            at.table(table.span(), format!("inverter[{i}]")),
            table.get_ref(),
        );
        let keys = DeviceKeys {
            name: &t.name,
            modbus: &t.modbus,
            unit: t.unit,
            profile: t.profile.as_deref(),
            sunspec: (t.sunspec == Some(true)).then_some(Role::Inverter),
            sunspec_hint: "sunspec = true",
            timeout_ms: t.timeout_ms,
            loads: t.loads.as_ref(),
        };
        let meter = devices.device(&at, "inverter", keys)?;
        let rated_w = check::required(&at, "rated_w", t.rated_w, "its rated power in watts")?;
        let revert_s = t.revert_s.unwrap_or(60);
        if !(10..=3600).contains(&revert_s) {
            return Err(at.error("revert_s", format!("{revert_s} is outside 10 s to 1 h")));
        }
        inverters.push(Inverter {
            meter,
            rated: check::watts(&at, "rated_w", rated_w, false, 10)?,
            revert: Duration::from_secs(revert_s),
        });
    }
    Ok(inverters)
}

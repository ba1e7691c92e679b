//! `org.daisee.Gateway1.Meter` at `Meter/NAME`: one channel's latest reading and its energy.

use std::collections::HashMap;

use daisee_hal::MeterReading;
use zbus::interface;

use super::changes::Changes;
use crate::snapshot::ChannelState;

/// The names of the per-phase quantities, by phase: voltage, current, power.
const PHASES: [[&str; 3]; 3] = [
    ["l1_voltage_mv", "l1_current_ua", "l1_power_mw"],
    ["l2_voltage_mv", "l2_current_ua", "l2_power_mw"],
    ["l3_voltage_mv", "l3_current_ua", "l3_power_mw"],
];

/// Every quantity a reading holds, by name with its unit; what the device does not measure is
/// left out, never shown as 0.
fn values(r: &MeterReading) -> HashMap<&'static str, i64> {
    let mut v = HashMap::new();
    let mut put = |name: &'static str, value: Option<i64>| {
        if let Some(value) = value {
            v.insert(name, value);
        }
    };
    put("voltage_mv", r.voltage.map(|x| i64::from(x.0)));
    put("current_ua", r.current.map(|x| x.0));
    put("frequency_mhz", r.frequency.map(|x| x.0));
    for (p, names) in r.phases.iter().flatten().zip(PHASES) {
        put(names[0], p.voltage.map(|x| i64::from(x.0)));
        put(names[1], p.current.map(|x| x.0));
        put(names[2], p.power.map(|x| x.0));
    }
    v
}

/// A sensor or meter channel.
#[derive(Default)]
pub(super) struct MeterObject {
    pub(super) name: String,
    device: String,
    power: i64,
    values: HashMap<&'static str, i64>,
    import: u64,
    export: u64,
    online: bool,
    fault: String,
    updated: i64,
}

impl MeterObject {
    /// The object of channel `name`, before its first reading.
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    pub(super) fn update(&mut self, c: &ChannelState) -> Changes {
        let mut changed = Changes::default();
        changed.set("Device", &mut self.device, c.device.to_owned());
        changed.set("Online", &mut self.online, c.reading.is_ok());
        changed.set(
            "Fault",
            &mut self.fault,
            c.reading
                .as_ref()
                .err()
                .map(|f| f.message.clone())
                .unwrap_or_default(),
        );
        changed.set("ImportEnergy", &mut self.import, c.energy.import.0);
        changed.set("ExportEnergy", &mut self.export, c.energy.export.0);
        if let Ok(r) = &c.reading {
            changed.set("Power", &mut self.power, r.power.0);
            changed.invalidate("Values", &mut self.values, values(r));
            changed.set("UpdatedAt", &mut self.updated, c.read_at.map_or(0, |t| t.0));
        }
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Meter")]
impl MeterObject {
    /// The channel's name.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The kind of device (`ina219`, `modbus`, `sunspec`, `sim`).
    #[zbus(property)]
    fn device(&self) -> String {
        self.device.clone()
    }

    /// Active power in mW: positive taken from the grid or consumed, negative exported or produced.
    #[zbus(property)]
    fn power(&self) -> i64 {
        self.power
    }

    /// Every other quantity the device measured, by name with its unit: `voltage_mv`,
    /// `current_ua`, `frequency_mhz`, and per phase `l1_voltage_mv`, `l1_current_ua`,
    /// `l1_power_mw`, ... A quantity the device does not measure is absent, never 0.
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn values(&self) -> HashMap<&'static str, i64> {
        self.values.clone()
    }

    /// Energy imported (consumed) in mWh, monotonic.
    #[zbus(property)]
    fn import_energy(&self) -> u64 {
        self.import
    }

    /// Energy exported (produced) in mWh, monotonic.
    #[zbus(property)]
    fn export_energy(&self) -> u64 {
        self.export
    }

    /// Whether the last poll read it.
    #[zbus(property)]
    fn online(&self) -> bool {
        self.online
    }

    /// Why the last poll did not read it; empty when it did.
    #[zbus(property)]
    fn fault(&self) -> String {
        self.fault.clone()
    }

    /// When the values were read, in ms since 1970 (UTC).
    #[zbus(property)]
    fn updated_at(&self) -> i64 {
        self.updated
    }
}

//! `org.daisee.Gateway1.Meter` at `Meter/NAME`: one channel's latest reading and its energy.

use zbus::interface;

use super::changes::Changes;
use crate::snapshot::ChannelState;

/// A sensor or meter channel.
#[derive(Default)]
pub(super) struct MeterObject {
    pub(super) name: String,
    device: String,
    power: i64,
    voltage: i64,
    current: i64,
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
            changed.set(
                "Voltage",
                &mut self.voltage,
                r.voltage.map_or(0, |v| i64::from(v.0)),
            );
            changed.set("Current", &mut self.current, r.current.map_or(0, |a| a.0));
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

    /// Voltage in mV; 0 if the device does not measure it.
    #[zbus(property)]
    fn voltage(&self) -> i64 {
        self.voltage
    }

    /// Current in µA; 0 if the device does not measure it.
    #[zbus(property)]
    fn current(&self) -> i64 {
        self.current
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

//! The `[[sensor]]` tables: INA219 chips on I2C buses, and simulated mains sensors.

use std::collections::HashSet;
use std::path::PathBuf;

use daisee_hal::linux::I2cMode;
use daisee_ina219::{Calibration, Settings};
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, Backend, ConfigError, Locator, Names, quote};
use super::sim::{self, SimSite};

/// A sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Its name.
    pub name: String,
    /// Line of its table in the file.
    pub line: usize,
    /// What it is and where.
    pub device: SensorDevice,
}

/// The device behind a sensor.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorDevice {
    /// An INA219 on an I2C bus.
    Ina219 {
        /// The bus.
        bus: I2cBus,
        /// Address and shunt.
        settings: Settings,
    },
    /// A simulated mains sensor measuring the sum of some simulated loads.
    SimPower {
        /// The loads it measures.
        loads: Vec<String>,
    },
}

/// An I2C bus as the configuration names it.
#[derive(Debug, Clone, PartialEq)]
pub enum I2cBus {
    /// A Linux bus node, through i2cdev.
    Linux {
        /// `/dev/i2c-N`.
        path: PathBuf,
        /// Plain I2C, SMBus, or find out.
        mode: I2cMode,
    },
    /// A Raspberry Pi bus, through rppal.
    Rpi {
        /// The bus number.
        bus: u8,
    },
    /// A simulated bus on which the sensor's chip measures some simulated loads.
    Sim {
        /// Name of the simulated bus (sensors sharing a name share the bus).
        name: String,
        /// The loads the chip's shunt carries.
        loads: Vec<String>,
        /// The simulated DC bus voltage.
        bus_mv: i64,
    },
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ChipName {
    Ina219,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum I2cModeName {
    Auto,
    I2c,
    Smbus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SensorTable {
    name: String,
    backend: Backend,
    chip: Option<ChipName>,
    bus: Option<String>,
    i2c_mode: Option<I2cModeName>,
    address: Option<u8>,
    shunt_ohms: Option<f64>,
    max_current_a: Option<f64>,
    #[serde(default)]
    reverse: bool,
    loads: Option<Vec<String>>,
    bus_volts: Option<f64>,
}

/// The sensors, in file order; their names join the channels.
pub(super) fn sensors(
    at: &Locator<'_>,
    tables: &[Spanned<SensorTable>],
    sim: Option<&SimSite>,
    channels: &mut Names,
) -> Result<Vec<Sensor>, ConfigError> {
    let mut chips = HashSet::new();
    let mut sensors = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let (at, s) = (
            at.table(table.span(), format!("sensor[{i}]")),
            table.get_ref(),
        );
        channels.add(&at, &s.name)?;
        let device = device(&at, s, sim)?;
        if let SensorDevice::Ina219 { bus, settings } = &device
            && !chips.insert((bus.node(), settings.address))
        {
            return Err(at.error(
                "address",
                format!(
                    "another sensor has address {:#04x} on this bus",
                    settings.address
                ),
            ));
        }
        sensors.push(Sensor {
            name: s.name.clone(),
            line: at.line(),
            device,
        });
    }
    Ok(sensors)
}

fn device(
    at: &Locator<'_>,
    s: &SensorTable,
    sim: Option<&SimSite>,
) -> Result<SensorDevice, ConfigError> {
    let loads = || sim::measured_loads(at, "backend", sim, s.loads.as_ref());
    let Some(ChipName::Ina219) = s.chip else {
        return match s.backend {
            Backend::Sim => Ok(SensorDevice::SimPower { loads: loads()? }),
            _ => Err(at.error("chip", "missing: the sensor chip (\"ina219\")")),
        };
    };
    let settings = ina219(at, s)?;
    let bus = match s.backend {
        Backend::Linux => I2cBus::Linux {
            path: PathBuf::from(check::required(
                at,
                "bus",
                s.bus.clone(),
                "the bus node, e.g. \"/dev/i2c-1\"",
            )?),
            mode: match s.i2c_mode.unwrap_or(I2cModeName::Auto) {
                I2cModeName::Auto => I2cMode::Auto,
                I2cModeName::I2c => I2cMode::Plain,
                I2cModeName::Smbus => I2cMode::Smbus,
            },
        },
        Backend::Rpi => {
            let bus = s.bus.as_deref().unwrap_or("/dev/i2c-1");
            let number = bus.trim_start_matches("/dev/i2c-").parse().map_err(|_| {
                at.error(
                    "bus",
                    format!("{} is not an I2C bus (\"/dev/i2c-1\")", quote(bus)),
                )
            })?;
            I2cBus::Rpi { bus: number }
        }
        Backend::Sim => I2cBus::Sim {
            name: s.bus.clone().unwrap_or_else(|| "sim-i2c".into()),
            loads: loads()?,
            bus_mv: (s.bus_volts.unwrap_or(12.0) * 1000.0).round() as i64,
        },
    };
    Ok(SensorDevice::Ina219 { bus, settings })
}

/// The chip's address and shunt, checked against what it can measure.
fn ina219(at: &Locator<'_>, s: &SensorTable) -> Result<Settings, ConfigError> {
    let address = s.address.unwrap_or(0x40);
    if !(0x40..=0x4F).contains(&address) {
        return Err(at.error(
            "address",
            format!("{address:#04x} is not an INA219 address (0x40 to 0x4F)"),
        ));
    }
    let micro = |key: &str, value: Option<f64>| -> Result<u32, ConfigError> {
        let v = check::required(at, key, value, "a number")?;
        let scaled = (v * 1e6).round();
        if !(v.is_finite() && scaled >= 1.0 && scaled <= f64::from(u32::MAX)) {
            return Err(at.error(key, format!("{v} is out of range")));
        }
        Ok(scaled as u32)
    };
    let settings = Settings {
        address,
        shunt_uohm: micro("shunt_ohms", s.shunt_ohms)?,
        max_current_ua: micro("max_current_a", s.max_current_a)?,
        reverse: s.reverse,
    };
    Calibration::new(settings.shunt_uohm, settings.max_current_ua)
        .map_err(|e| at.error("max_current_a", e.to_string()))?;
    Ok(settings)
}

impl I2cBus {
    /// The bus as one name, whatever the backend: two sensors with the same name share the wires.
    fn node(&self) -> String {
        match self {
            I2cBus::Linux { path, .. } => path.display().to_string(),
            I2cBus::Rpi { bus } => format!("/dev/i2c-{bus}"),
            I2cBus::Sim { name, .. } => format!("sim:{name}"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::{Config, DEMO};

    fn error(source: &str) -> ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    pub(in crate::config) const INA: &str = r#"
[[sensor]]
name = "battery"
backend = "linux"
chip = "ina219"
bus = "/dev/i2c-1"
address = 0x41
shunt_ohms = 0.1
max_current_a = 3.2
"#;

    #[test]
    fn a_linux_ina219() {
        let c = Config::parse(INA).unwrap();
        assert_eq!(
            c.sensors[0].device,
            SensorDevice::Ina219 {
                bus: I2cBus::Linux {
                    path: "/dev/i2c-1".into(),
                    mode: I2cMode::Auto
                },
                settings: daisee_ina219::Settings {
                    address: 0x41,
                    shunt_uohm: 100_000,
                    max_current_ua: 3_200_000,
                    reverse: false
                }
            }
        );
        assert_eq!(c.sensors[0].line, 2);
    }

    #[test]
    fn a_bad_value_is_named_with_its_key_and_line() {
        let e = error(&INA.replace("0x41", "0x60"));
        assert_eq!(e.line, Some(7));
        assert_eq!(e.key.as_deref(), Some("sensor[0].address"));
        assert!(e.message.contains("not an INA219 address"), "{e}");
        assert_eq!(
            e.to_string(),
            "line 7: sensor[0].address: 0x60 is not an INA219 address (0x40 to 0x4F)"
        );
    }

    #[test]
    fn a_shunt_the_chip_cannot_measure_is_refused() {
        let e = error(&INA.replace("max_current_a = 3.2", "max_current_a = 5"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(9), Some("sensor[0].max_current_a"))
        );
        assert!(e.message.contains("320 mV"), "{e}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let e = error(&INA.replace("bus = \"/dev/i2c-1\"\n", ""));
        assert_eq!(e.key.as_deref(), Some("sensor[0].bus"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let e = error(&format!("{INA}{}", INA.replace("0x41", "0x42")));
        assert_eq!(e.key.as_deref(), Some("sensor[1].name"));
        assert_eq!(e.line, Some(12));
    }

    #[test]
    fn two_chips_at_one_address_are_refused() {
        let e = error(&format!("{INA}{}", INA.replace("battery", "second")));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(16), Some("sensor[1].address"))
        );
        assert!(e.message.contains("another sensor has address 0x41"), "{e}");
    }

    #[test]
    fn sim_sensors_must_measure_known_loads() {
        let e = error(&DEMO.replace("loads = [\"rooftop_pv\"]", "loads = [\"rooftop_pvv\"]"));
        assert!(e.message.contains("no simulated load `rooftop_pvv`"), "{e}");
        assert_eq!(e.key.as_deref(), Some("sensor[1].loads"));
    }
}

//! The agent's configuration file (TOML): what it reads, which backend each device is on, and the
//! simulated site of the `sim` backend. Every error names the key and the line.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

mod control;
mod file;
mod modbus;

pub use control::{ControlConfig, StoreConfig};
pub use file::{Change, ChangeError, ConfigFile};
pub use modbus::{Link, Meter, MeterMap, ModbusBus};

use daisee_hal::RelayState;
use daisee_hal::linux::I2cMode;
use serde::Deserialize;
use toml::Spanned;

/// The built-in demo gateway: a home with PV, two switched loads and a small DC panel on an INA219,
/// all on the `sim` backend.
pub const DEMO: &str = include_str!("demo.toml");

/// A configuration error, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// Dotted path of the offending key (`sensor[2].address`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The gateway's name, for display and logs.
    pub name: String,
    /// Time between two polls of every device.
    pub poll_interval_ms: u64,
    /// The simulated site, if any device is on the `sim` backend.
    pub sim: Option<SimSite>,
    /// Sensors, in file order.
    pub sensors: Vec<Sensor>,
    /// Relays, in file order.
    pub relays: Vec<Relay>,
    /// Modbus buses, in file order.
    pub buses: Vec<ModbusBus>,
    /// Modbus meters and inverters, in file order.
    pub meters: Vec<Meter>,
    /// The history, if kept.
    pub store: Option<StoreConfig>,
    /// Demand response, if any.
    pub control: Option<ControlConfig>,
}

/// The simulated site.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSite {
    /// Seed of every random draw, so that a run can be repeated.
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: u32,
    /// Time of day (UTC, ms after midnight) the simulation starts at today; now if not given.
    pub start_of_day_ms: Option<i64>,
    /// Its loads and producers.
    pub loads: Vec<SimLoad>,
}

/// A simulated load or producer.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLoad {
    /// Its name, which sensors list in `loads`.
    pub name: String,
    /// How it behaves over a day.
    pub profile: daisee_hal::sim::Profile,
    /// The relay that switches it, if any.
    pub relay: Option<String>,
}

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
        settings: daisee_ina219::Settings,
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

/// A relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    /// Its name.
    pub name: String,
    /// Line of its table in the file.
    pub line: usize,
    /// The GPIO line that drives it.
    pub output: RelayOutput,
    /// Whether a low line level closes the contact.
    pub active_low: bool,
    /// The state at start, on shutdown and when in doubt.
    pub safe_state: RelayState,
    /// The load it switches, if demand response may switch it.
    pub flex: Option<daisee_control::FlexLoad>,
}

/// The GPIO line of a relay.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayOutput {
    /// A line of a Linux GPIO chip, through the character device.
    Linux {
        /// `/dev/gpiochipN`.
        chip: PathBuf,
        /// Line offset on the chip.
        line: u32,
    },
    /// A Raspberry Pi pin by BCM number, through rppal.
    Rpi {
        /// BCM pin number.
        pin: u8,
    },
    /// A simulated line.
    Sim,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: Option<GatewayTable>,
    sim: Option<SimTable>,
    #[serde(default)]
    sensor: Vec<Spanned<SensorTable>>,
    #[serde(default)]
    relay: Vec<Spanned<RelayTable>>,
    #[serde(default)]
    modbus: Vec<Spanned<modbus::ModbusTable>>,
    #[serde(default)]
    meter: Vec<Spanned<modbus::MeterTable>>,
    store: Option<Spanned<control::StoreTable>>,
    control: Option<Spanned<control::ControlTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayTable {
    name: Option<String>,
    poll_interval_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimTable {
    seed: Option<u64>,
    speed: Option<u32>,
    start: Option<Spanned<String>>,
    #[serde(default)]
    load: Vec<Spanned<SimLoadTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum ProfileName {
    Household,
    Solar,
    Constant,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimLoadTable {
    name: String,
    profile: ProfileName,
    peak_w: Option<f64>,
    power_w: Option<f64>,
    relay: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Linux,
    Rpi,
    Sim,
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
struct SensorTable {
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

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StateName {
    On,
    Off,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayTable {
    name: String,
    backend: Backend,
    gpio_chip: Option<String>,
    line: Option<u32>,
    pin: Option<u8>,
    #[serde(default)]
    active_low: bool,
    safe_state: StateName,
    priority: Option<u8>,
    nominal_w: Option<f64>,
    min_on_s: Option<u64>,
    min_off_s: Option<u64>,
    max_switches_per_hour: Option<u32>,
    schedule: Option<Vec<String>>,
}

/// Where a table sits in the source, to point errors at its keys.
struct Locator<'s> {
    source: &'s str,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.source[..offset.min(self.source.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of `key` in the table whose header starts at `span`, or the header's own line.
    /// The dotted path of the key on the line at `offset` (`relay[1].safe_state`), if that line
    /// sets one.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.source.len());
        let start = self.source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.source[start..].lines().next()?;
        let key = line.split_once('=')?.0.trim();
        if key.is_empty() || key.starts_with('[') {
            return None;
        }
        // The table the line is in: the last header above it, counted if it is an array's.
        let above = &self.source[..start];
        let header = above
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))?;
        let path = match header.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            Some(name) => {
                let index = above.lines().filter(|l| l.trim() == header).count() - 1;
                format!("{name}[{index}]")
            }
            None => header.trim_matches(|c| c == '[' || c == ']').to_owned(),
        };
        Some(format!("{path}.{key}"))
    }

    fn key_line(&self, span: &Range<usize>, key: &str) -> usize {
        let start = span.start.min(self.source.len());
        let mut offset = start;
        // The table's body runs from its header to the next header.
        for (i, line) in self.source[start..].split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            if i > 0 && trimmed.starts_with('[') {
                break;
            }
            if trimmed
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return self.line_of(offset);
            }
            offset += line.len();
        }
        self.line_of(start)
    }

    fn error(
        &self,
        span: &Range<usize>,
        path: String,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            line: Some(self.key_line(span, key)),
            key: Some(if key.is_empty() {
                path
            } else {
                format!("{path}.{key}")
            }),
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses and validates a configuration file's text.
    pub fn parse(source: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(source).map_err(|e| {
            let at = Locator { source };
            ConfigError {
                line: e.span().map(|s| at.line_of(s.start)),
                key: e.span().and_then(|s| at.key_at(s.start)),
                message: e.message().trim_end().to_owned(),
            }
        })?;
        let at = Locator { source };
        let gateway = file.gateway.unwrap_or(GatewayTable {
            name: None,
            poll_interval_ms: None,
        });
        let poll_interval_ms = gateway.poll_interval_ms.unwrap_or(1000);
        if !(100..=3_600_000).contains(&poll_interval_ms) {
            return Err(ConfigError {
                line: None,
                key: Some("gateway.poll_interval_ms".into()),
                message: format!("{poll_interval_ms} is outside 100 ms to 1 h"),
            });
        }

        let sim = file.sim.map(|t| sim_site(&at, t)).transpose()?;
        let sim_loads: HashSet<&str> = sim
            .iter()
            .flat_map(|s| s.loads.iter().map(|l| l.name.as_str()))
            .collect();

        let mut names = HashSet::new();
        let mut chips = HashSet::new();
        let mut sensors = Vec::new();
        for (i, table) in file.sensor.iter().enumerate() {
            let span = table.span();
            let path = format!("sensor[{i}]");
            let s = table.get_ref();
            if s.name.trim().is_empty() {
                return Err(at.error(&span, path, "name", "must not be empty"));
            }
            if !names.insert(s.name.clone()) {
                return Err(at.error(&span, path, "name", format!("`{}` is used twice", s.name)));
            }
            let device = sensor_device(&at, &span, &path, s, &sim_loads)?;
            if let SensorDevice::Ina219 { bus, settings } = &device
                && !chips.insert((bus.node(), settings.address))
            {
                return Err(at.error(
                    &span,
                    path,
                    "address",
                    format!(
                        "another sensor has address {:#04x} on this bus",
                        settings.address
                    ),
                ));
            }
            sensors.push(Sensor {
                name: s.name.clone(),
                line: at.line_of(span.start),
                device,
            });
        }

        let mut relays = Vec::new();
        let mut relay_names = HashSet::new();
        for (i, table) in file.relay.iter().enumerate() {
            let span = table.span();
            let path = format!("relay[{i}]");
            let r = table.get_ref();
            if r.name.trim().is_empty() {
                return Err(at.error(&span, path, "name", "must not be empty"));
            }
            if !relay_names.insert(r.name.clone()) {
                return Err(at.error(&span, path, "name", format!("`{}` is used twice", r.name)));
            }
            let output = match r.backend {
                Backend::Linux => RelayOutput::Linux {
                    chip: PathBuf::from(r.gpio_chip.clone().ok_or_else(|| {
                        at.error(
                            &span,
                            path.clone(),
                            "gpio_chip",
                            "missing: the GPIO chip, e.g. \"/dev/gpiochip0\"",
                        )
                    })?),
                    line: r.line.ok_or_else(|| {
                        at.error(
                            &span,
                            path.clone(),
                            "line",
                            "missing: the line offset on the chip",
                        )
                    })?,
                },
                Backend::Rpi => RelayOutput::Rpi {
                    pin: r.pin.ok_or_else(|| {
                        at.error(&span, path.clone(), "pin", "missing: the BCM pin number")
                    })?,
                },
                Backend::Sim => RelayOutput::Sim,
            };
            let safe_state = match r.safe_state {
                StateName::On => RelayState::On,
                StateName::Off => RelayState::Off,
            };
            let keys = control::FlexKeys {
                priority: r.priority,
                nominal_w: r.nominal_w,
                min_on_s: r.min_on_s,
                min_off_s: r.min_off_s,
                max_switches_per_hour: r.max_switches_per_hour,
                schedule: &r.schedule,
            };
            let err = |key: &str, message: String| at.error(&span, path.clone(), key, message);
            let flex = control::flex_load(err, &r.name, safe_state, keys)?;
            relays.push(Relay {
                name: r.name.clone(),
                line: at.line_of(span.start),
                output,
                active_low: r.active_low,
                safe_state,
                flex,
            });
        }

        if let Some(site) = &sim {
            for load in &site.loads {
                if let Some(relay) = &load.relay {
                    let sim_relay = relays
                        .iter()
                        .any(|r| &r.name == relay && r.output == RelayOutput::Sim);
                    if !sim_relay {
                        return Err(ConfigError {
                            line: None,
                            key: Some(format!("sim.load `{}`.relay", load.name)),
                            message: format!("no relay `{relay}` on the sim backend"),
                        });
                    }
                }
            }
        }
        let buses = modbus::buses(&at, &file.modbus)?;
        let meters = modbus::meters(&at, &file.meter, &buses, &sim_loads, &mut names)?;
        let store = file
            .store
            .as_ref()
            .map(|t| control::store(&at, t))
            .transpose()?;
        let channels: Vec<&str> = sensors
            .iter()
            .map(|s| s.name.as_str())
            .chain(meters.iter().map(|m| m.name.as_str()))
            .collect();
        let control = file
            .control
            .as_ref()
            .map(|t| control::control(&at, t, &channels, poll_interval_ms))
            .transpose()?;
        // A load bigger than the room the limit leaves would never be switched on.
        if let Some(limit) = control.as_ref().and_then(|c| c.import_limit) {
            let room = limit.limit.0 - limit.hysteresis.0;
            if let Some(r) = relays
                .iter()
                .find(|r| r.flex.as_ref().is_some_and(|f| f.nominal.0 > room))
            {
                return Err(ConfigError {
                    line: Some(r.line),
                    key: Some(format!("relay `{}`.nominal_w", r.name)),
                    message:
                        "more than import_limit_w - hysteresis_w: it would never be switched on"
                            .into(),
                });
            }
        }
        if control.is_none()
            && let Some(r) = relays.iter().find(|r| r.flex.is_some())
        {
            return Err(ConfigError {
                line: Some(r.line),
                key: Some("control".into()),
                message: format!(
                    "relay `{}` is a load to switch (nominal_w), but there is no [control] table naming the grid channel",
                    r.name
                ),
            });
        }
        let sim_bus = buses.iter().any(|b| b.link == Link::Sim);
        if sim.is_none() && (sim_bus || sensors.iter().any(|s| s.uses_sim())) {
            return Err(ConfigError {
                line: None,
                key: Some("sim".into()),
                message: "devices on the sim backend need a [sim] table with their loads".into(),
            });
        }

        Ok(Config {
            name: gateway.name.unwrap_or_else(|| "gateway".into()),
            poll_interval_ms,
            sim,
            sensors,
            relays,
            buses,
            meters,
            store,
            control,
        })
    }
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

impl Sensor {
    fn uses_sim(&self) -> bool {
        matches!(
            self.device,
            SensorDevice::SimPower { .. }
                | SensorDevice::Ina219 {
                    bus: I2cBus::Sim { .. },
                    ..
                }
        )
    }
}

fn sim_site(at: &Locator<'_>, table: SimTable) -> Result<SimSite, ConfigError> {
    use daisee_hal::MilliWatts;
    use daisee_hal::sim::Profile;
    let mut loads = Vec::new();
    let mut names = HashSet::new();
    for (i, load) in table.load.iter().enumerate() {
        let span = load.span();
        let path = format!("sim.load[{i}]");
        let l = load.get_ref();
        if !names.insert(l.name.clone()) {
            return Err(at.error(&span, path, "name", format!("`{}` is used twice", l.name)));
        }
        let watts = |key: &str, value: Option<f64>| {
            value
                .filter(|w| w.is_finite() && *w > 0.0 && *w <= 1e6)
                .map(MilliWatts::from_watts)
                .ok_or_else(|| {
                    at.error(
                        &span,
                        path.clone(),
                        key,
                        "must be given, above 0 and at most 1 MW",
                    )
                })
        };
        let profile = match l.profile {
            ProfileName::Household => Profile::Household {
                peak: watts("peak_w", l.peak_w)?,
            },
            ProfileName::Solar => Profile::Solar {
                peak: watts("peak_w", l.peak_w)?,
            },
            ProfileName::Constant => Profile::Constant {
                power: watts("power_w", l.power_w)?,
            },
        };
        loads.push(SimLoad {
            name: l.name.clone(),
            profile,
            relay: l.relay.clone(),
        });
    }
    let start_of_day_ms = table
        .start
        .map(|start| {
            let parsed = start.get_ref().split_once(':').and_then(|(h, m)| {
                let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
                ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h * 60 + m) * 60_000)
            });
            parsed.ok_or_else(|| ConfigError {
                line: Some(at.line_of(start.span().start)),
                key: Some("sim.start".into()),
                message: format!(
                    "`{}` is not a time of day (\"HH:MM\", UTC)",
                    start.get_ref()
                ),
            })
        })
        .transpose()?;
    Ok(SimSite {
        seed: table.seed.unwrap_or(1),
        speed: table.speed.unwrap_or(1).max(1),
        start_of_day_ms,
        loads,
    })
}

fn sensor_device(
    at: &Locator<'_>,
    span: &Range<usize>,
    path: &str,
    s: &SensorTable,
    sim_loads: &HashSet<&str>,
) -> Result<SensorDevice, ConfigError> {
    let err = |key: &str, message: String| at.error(span, path.to_owned(), key, message);
    let loads = || -> Result<Vec<String>, ConfigError> {
        let loads = s.loads.clone().ok_or_else(|| {
            err(
                "loads",
                "missing: the simulated loads this sensor measures".into(),
            )
        })?;
        if let Some(unknown) = loads.iter().find(|l| !sim_loads.contains(l.as_str())) {
            return Err(err(
                "loads",
                format!("no simulated load `{unknown}` in [sim]"),
            ));
        }
        Ok(loads)
    };
    let Some(ChipName::Ina219) = s.chip else {
        return match s.backend {
            Backend::Sim => Ok(SensorDevice::SimPower { loads: loads()? }),
            _ => Err(err("chip", "missing: the sensor chip (\"ina219\")".into())),
        };
    };

    let address = s.address.unwrap_or(0x40);
    if !(0x40..=0x4F).contains(&address) {
        return Err(err(
            "address",
            format!("{address:#04x} is not an INA219 address (0x40 to 0x4F)"),
        ));
    }
    let positive = |key: &str, value: Option<f64>, unit: f64| -> Result<u32, ConfigError> {
        let v = value.ok_or_else(|| err(key, "missing".into()))?;
        let scaled = (v * unit).round();
        if !(v.is_finite() && scaled >= 1.0 && scaled <= f64::from(u32::MAX)) {
            return Err(err(key, format!("{v} is out of range")));
        }
        Ok(scaled as u32)
    };
    let settings = daisee_ina219::Settings {
        address,
        shunt_uohm: positive("shunt_ohms", s.shunt_ohms, 1e6)?,
        max_current_ua: positive("max_current_a", s.max_current_a, 1e6)?,
        reverse: s.reverse,
    };
    daisee_ina219::Calibration::new(settings.shunt_uohm, settings.max_current_ua)
        .map_err(|e| err("max_current_a", e.to_string()))?;

    let bus =
        match s.backend {
            Backend::Linux => I2cBus::Linux {
                path: PathBuf::from(s.bus.clone().ok_or_else(|| {
                    err("bus", "missing: the bus node, e.g. \"/dev/i2c-1\"".into())
                })?),
                mode: match s.i2c_mode.unwrap_or(I2cModeName::Auto) {
                    I2cModeName::Auto => I2cMode::Auto,
                    I2cModeName::I2c => I2cMode::Plain,
                    I2cModeName::Smbus => I2cMode::Smbus,
                },
            },
            Backend::Rpi => {
                let bus = s.bus.clone().unwrap_or_else(|| "/dev/i2c-1".into());
                let number = bus.trim_start_matches("/dev/i2c-").parse().map_err(|_| {
                    err("bus", format!("`{bus}` is not an I2C bus (\"/dev/i2c-1\")"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error(source: &str) -> ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    const INA: &str = r#"
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
    fn the_demo_parses() {
        let c = Config::parse(DEMO).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.sensors.len(), 3);
        assert_eq!(c.relays.len(), 2);
        assert!(c.sim.is_some());
    }

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
    fn an_unknown_key_is_named_with_its_line() {
        let e = error(&INA.replace("address =", "adress ="));
        assert_eq!(e.line, Some(7));
        assert!(e.message.contains("unknown field `adress`"), "{e}");
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
    fn a_value_serde_refuses_is_named_with_its_key() {
        let e = error(&INA.replace("address = 0x41", "address = \"x\""));
        assert_eq!(e.key.as_deref(), Some("sensor[0].address"), "{e}");
        let e = error(&INA.replace("backend = \"linux\"", "backend = \"linuxx\""));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("sensor[0].backend")),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_is_located() {
        let e = error(&INA.replace("shunt_ohms = 0.1", "shunt_ohms = \"0.1\""));
        assert_eq!(e.line, Some(8));
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn sim_sensors_must_measure_known_loads() {
        let e = error(&DEMO.replace("loads = [\"rooftop_pv\"]", "loads = [\"rooftop_pvv\"]"));
        assert!(e.message.contains("no simulated load `rooftop_pvv`"), "{e}");
        assert_eq!(e.key.as_deref(), Some("sensor[1].loads"));
    }

    #[test]
    fn broken_toml_is_located() {
        let e = error("[gateway]\nname = \"x\"\npoll_interval_ms = \n");
        assert_eq!(e.line, Some(3));
    }
}

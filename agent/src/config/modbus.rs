//! The `[[modbus]]` buses and the `[[meter]]` devices on them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use daisee_modbus::profile::SHIPPED;
use daisee_modbus::serial::{BAUD_RATES, LineSettings, Parity};
use daisee_modbus::sunspec::Role;
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Locator};

/// A Modbus bus.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusBus {
    /// Its name, which meters give as `modbus`.
    pub name: String,
    /// Line of its table in the file.
    pub line: usize,
    /// Where it is.
    pub link: Link,
    /// Pause between the end of one exchange and the next request.
    pub inter_frame_ms: u64,
}

/// How a Modbus bus is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Modbus TCP: a device, or an RS-485-to-Ethernet gateway.
    Tcp(SocketAddr),
    /// Modbus RTU on a serial port (an RS-485 adapter).
    Rtu {
        /// The serial device.
        path: PathBuf,
        /// Baud, parity, stop bits.
        line: LineSettings,
    },
    /// Simulated devices served by the agent itself over TCP on loopback.
    Sim,
}

/// A Modbus meter or inverter.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// Its name, a channel of the gateway.
    pub name: String,
    /// Line of its table in the file.
    pub line: usize,
    /// Index of its bus in [`super::Config::buses`].
    pub bus: usize,
    /// Its unit id on the bus.
    pub unit: u8,
    /// How its registers are found.
    pub map: MeterMap,
    /// Time given to each request.
    pub timeout_ms: u64,
    /// On a simulated bus, the simulated loads it measures.
    pub loads: Vec<String>,
}

/// Where a meter's register map comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MeterMap {
    /// A profile shipped with the gateway, by name.
    Shipped(String),
    /// A profile file of the user's.
    File(PathBuf),
    /// SunSpec discovery, read as an inverter or a meter.
    SunSpec(Role),
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum LinkName {
    Tcp,
    Rtu,
    Sim,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModbusTable {
    name: String,
    backend: LinkName,
    address: Option<String>,
    device: Option<String>,
    baud: Option<u32>,
    parity: Option<Parity>,
    stop_bits: Option<u8>,
    inter_frame_ms: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RoleName {
    Inverter,
    Meter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeterTable {
    name: String,
    modbus: String,
    unit: u8,
    profile: Option<String>,
    sunspec: Option<RoleName>,
    timeout_ms: Option<u64>,
    loads: Option<Vec<String>>,
}

pub(super) fn buses(
    at: &Locator<'_>,
    tables: &[Spanned<ModbusTable>],
) -> Result<Vec<ModbusBus>, ConfigError> {
    let mut names = HashSet::new();
    let mut buses = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let span = table.span();
        let path = format!("modbus[{i}]");
        let t = table.get_ref();
        let err = |key: &str, message: String| at.error(&span, path.clone(), key, message);
        if !names.insert(t.name.clone()) {
            return Err(err("name", format!("`{}` is used twice", t.name)));
        }
        let link = match t.backend {
            LinkName::Tcp => {
                let address = t.address.as_deref().ok_or_else(|| {
                    err(
                        "address",
                        "missing: the device's IP and port, e.g. \"192.168.1.20:502\"".into(),
                    )
                })?;
                Link::Tcp(address.parse().map_err(|_| {
                    err(
                        "address",
                        format!("`{address}` is not an IP address and port (\"192.168.1.20:502\")"),
                    )
                })?)
            }
            LinkName::Rtu => {
                let device = t.device.as_deref().ok_or_else(|| {
                    err(
                        "device",
                        "missing: the serial port, e.g. \"/dev/ttyUSB0\"".into(),
                    )
                })?;
                let baud = t.baud.unwrap_or(9600);
                if !BAUD_RATES.contains(&baud) {
                    return Err(err("baud", format!("{baud} is not one of {BAUD_RATES:?}")));
                }
                let stop_bits = t.stop_bits.unwrap_or(1);
                if !(1..=2).contains(&stop_bits) {
                    return Err(err("stop_bits", format!("{stop_bits}: 1 or 2")));
                }
                Link::Rtu {
                    path: PathBuf::from(device),
                    line: LineSettings {
                        baud,
                        parity: t.parity.unwrap_or_default(),
                        stop_bits,
                    },
                }
            }
            LinkName::Sim => Link::Sim,
        };
        let inter_frame_ms = t.inter_frame_ms.unwrap_or(0);
        if inter_frame_ms > 1000 {
            return Err(err(
                "inter_frame_ms",
                format!("{inter_frame_ms} is more than 1000 ms"),
            ));
        }
        buses.push(ModbusBus {
            name: t.name.clone(),
            line: at.line_of(span.start),
            link,
            inter_frame_ms,
        });
    }
    Ok(buses)
}

pub(super) fn meters(
    at: &Locator<'_>,
    tables: &[Spanned<MeterTable>],
    buses: &[ModbusBus],
    sim_loads: &HashSet<&str>,
    names: &mut HashSet<String>,
) -> Result<Vec<Meter>, ConfigError> {
    let mut units = HashSet::new();
    let mut meters = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let span: Range<usize> = table.span();
        let path = format!("meter[{i}]");
        let m = table.get_ref();
        let err = |key: &str, message: String| at.error(&span, path.clone(), key, message);
        if m.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if !names.insert(m.name.clone()) {
            return Err(err("name", format!("`{}` is used twice", m.name)));
        }
        let bus = buses
            .iter()
            .position(|b| b.name == m.modbus)
            .ok_or_else(|| err("modbus", format!("no [[modbus]] bus named `{}`", m.modbus)))?;
        // 0 is broadcast (no answers); 248 to 255 are reserved, but TCP devices answer as 255.
        let tcp = matches!(buses[bus].link, Link::Tcp(_) | Link::Sim);
        if m.unit == 0 || (m.unit > 247 && !(tcp && m.unit == 255)) {
            return Err(err(
                "unit",
                format!("{} is not a device address (1 to 247)", m.unit),
            ));
        }
        if !units.insert((bus, m.unit)) {
            return Err(err(
                "unit",
                format!("another meter has unit {} on `{}`", m.unit, m.modbus),
            ));
        }
        let map = match (&m.profile, m.sunspec) {
            (Some(_), Some(_)) => {
                return Err(err("sunspec", "give profile or sunspec, not both".into()));
            }
            (None, None) => {
                return Err(err(
                    "profile",
                    "missing: a shipped profile, a profile file, or sunspec = \"inverter\" / \"meter\"".into(),
                ));
            }
            (None, Some(RoleName::Inverter)) => MeterMap::SunSpec(Role::Inverter),
            (None, Some(RoleName::Meter)) => MeterMap::SunSpec(Role::Meter),
            (Some(p), None) if p.contains('/') || p.ends_with(".toml") => {
                MeterMap::File(PathBuf::from(p))
            }
            (Some(p), None) => {
                if !SHIPPED.iter().any(|(name, _)| name == p) {
                    let shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                    return Err(err(
                        "profile",
                        format!(
                            "no shipped profile `{p}` (shipped: {}); give a path for your own",
                            shipped.join(", ")
                        ),
                    ));
                }
                MeterMap::Shipped(p.clone())
            }
        };
        let timeout_ms = m.timeout_ms.unwrap_or(1000);
        if !(50..=60_000).contains(&timeout_ms) {
            return Err(err(
                "timeout_ms",
                format!("{timeout_ms} is outside 50 ms to 60 s"),
            ));
        }
        let loads = match (&buses[bus].link, &m.loads) {
            (Link::Sim, Some(loads)) => {
                if let Some(unknown) = loads.iter().find(|l| !sim_loads.contains(l.as_str())) {
                    return Err(err(
                        "loads",
                        format!("no simulated load `{unknown}` in [sim]"),
                    ));
                }
                loads.clone()
            }
            (Link::Sim, None) => {
                return Err(err(
                    "loads",
                    "missing: the simulated loads this meter measures".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(err(
                    "loads",
                    "only meters on a sim bus measure simulated loads".into(),
                ));
            }
            (_, None) => Vec::new(),
        };
        meters.push(Meter {
            name: m.name.clone(),
            line: at.line_of(span.start),
            bus,
            unit: m.unit,
            map,
            timeout_ms,
            loads,
        });
    }
    Ok(meters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const LAN: &str = r#"
[[modbus]]
name = "lan"
backend = "tcp"
address = "192.168.1.20:502"

[[modbus]]
name = "rs485"
backend = "rtu"
device = "/dev/ttyUSB0"
baud = 19200
parity = "even"
inter_frame_ms = 20

[[meter]]
name = "grid"
modbus = "rs485"
unit = 1
profile = "eastron-sdm630"

[[meter]]
name = "pv"
modbus = "lan"
unit = 126
sunspec = "inverter"
timeout_ms = 500

[[meter]]
name = "heat_pump"
modbus = "rs485"
unit = 2
profile = "/etc/daisee/profiles/my-meter.toml"
"#;

    fn error(source: &str) -> ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    #[test]
    fn buses_and_meters() {
        let c = Config::parse(LAN).unwrap();
        assert_eq!(
            c.buses[0].link,
            Link::Tcp("192.168.1.20:502".parse().unwrap())
        );
        assert_eq!(
            c.buses[1].link,
            Link::Rtu {
                path: "/dev/ttyUSB0".into(),
                line: LineSettings {
                    baud: 19200,
                    parity: Parity::Even,
                    stop_bits: 1
                }
            }
        );
        assert_eq!(c.buses[1].inter_frame_ms, 20);
        let maps: Vec<_> = c
            .meters
            .iter()
            .map(|m| (m.bus, m.unit, m.map.clone()))
            .collect();
        assert_eq!(
            maps,
            [
                (1, 1, MeterMap::Shipped("eastron-sdm630".into())),
                (0, 126, MeterMap::SunSpec(Role::Inverter)),
                (
                    1,
                    2,
                    MeterMap::File("/etc/daisee/profiles/my-meter.toml".into())
                ),
            ]
        );
        assert_eq!(
            (c.meters[0].timeout_ms, c.meters[1].timeout_ms),
            (1000, 500)
        );
        assert_eq!(c.meters[1].line, 21);
    }

    #[test]
    fn a_meter_on_an_unknown_bus() {
        let e = error(&LAN.replace("modbus = \"lan\"", "modbus = \"wan\""));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(23), Some("meter[1].modbus"))
        );
        assert!(e.message.contains("no [[modbus]] bus named `wan`"), "{e}");
    }

    #[test]
    fn unit_ids_are_device_addresses_used_once_per_bus() {
        let e = error(&LAN.replace("unit = 1\n", "unit = 0\n"));
        assert_eq!(e.key.as_deref(), Some("meter[0].unit"));
        let e = error(&LAN.replace("unit = 2\n", "unit = 1\n"));
        assert!(
            e.message.contains("another meter has unit 1 on `rs485`"),
            "{e}"
        );
        assert_eq!(e.line, Some(31));
        // 255 is how TCP devices are often addressed, but no address on a serial line.
        assert!(Config::parse(&LAN.replace("unit = 126", "unit = 255")).is_ok());
        let e = error(&LAN.replace("unit = 1\n", "unit = 255\n"));
        assert!(e.message.contains("1 to 247"), "{e}");
    }

    #[test]
    fn profiles_are_shipped_names_or_files() {
        let e = error(&LAN.replace("eastron-sdm630", "eastron-sdm999"));
        assert!(
            e.message.contains("no shipped profile `eastron-sdm999`"),
            "{e}"
        );
        assert!(e.message.contains("carlo-gavazzi-em340"), "{e}");
        let both = LAN.replace(
            "sunspec = \"inverter\"",
            "sunspec = \"inverter\"\nprofile = \"x.toml\"",
        );
        assert!(error(&both).message.contains("not both"));
        let neither = LAN.replace("profile = \"eastron-sdm630\"\n", "");
        assert_eq!(error(&neither).key.as_deref(), Some("meter[0].profile"));
    }

    #[test]
    fn serial_settings_are_checked() {
        let e = error(&LAN.replace("baud = 19200", "baud = 19201"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(11), Some("modbus[1].baud"))
        );
        let e = error(&LAN.replace("parity = \"even\"", "parity = \"mark\""));
        assert_eq!(e.line, Some(12));
        let e = error(&LAN.replace(
            "address = \"192.168.1.20:502\"",
            "address = \"inverter.local\"",
        ));
        assert!(e.message.contains("not an IP address and port"), "{e}");
    }

    #[test]
    fn simulated_loads_only_on_sim_buses() {
        let e = error(&LAN.replace("timeout_ms = 500", "loads = [\"pv\"]"));
        assert_eq!(e.key.as_deref(), Some("meter[1].loads"));
        let sim = LAN.replace(
            "backend = \"tcp\"\naddress = \"192.168.1.20:502\"",
            "backend = \"sim\"",
        );
        let e = error(&sim);
        assert_eq!(e.key.as_deref(), Some("meter[1].loads"));
    }

    #[test]
    fn meter_and_sensor_names_are_one_namespace() {
        let sensor = "[sim]\n[[sim.load]]\nname = \"x\"\nprofile = \"constant\"\npower_w = 1\n\
                      [[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"x\"]\n";
        let e = error(&format!("{sensor}{LAN}"));
        assert_eq!(e.key.as_deref(), Some("meter[0].name"));
    }
}

//! The `[[meter]]` tables, and the keys inverter tables share with them: a device on a Modbus
//! bus, its unit, its register map and, on a simulated bus, the loads it measures.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use daisee_modbus::device::Map;
use daisee_modbus::profile::{Profile, ProfileError, SHIPPED};
use daisee_modbus::sunspec::Role;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names, quote};
use super::modbus::{Link, ModbusBus};
use super::sim::{self, SimSite};

/// The largest profile file read: real ones are a few kilobytes.
const MAX_PROFILE_BYTES: u64 = 256 * 1024;

/// A device read over Modbus: a meter, or how an inverter is read.
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

/// How a device's registers are found: a profile read while checking, or SunSpec discovery.
// Profiles compare by value, so that an edited profile file is a change.
#[derive(Debug, Clone, PartialEq)]
pub enum MeterMap {
    /// A shipped profile or the user's profile file.
    Profile(Arc<Profile>),
    /// SunSpec discovery, read as an inverter or a meter.
    SunSpec(Role),
}

impl MeterMap {
    /// The map the Modbus client reads the device with.
    pub fn to_map(&self) -> Map {
        match self {
            MeterMap::Profile(profile) => Map::Profile(Arc::clone(profile)),
            MeterMap::SunSpec(role) => Map::SunSpec(*role),
        }
    }
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

/// The keys meter and inverter tables share.
pub(super) struct DeviceKeys<'t> {
    pub(super) name: &'t str,
    pub(super) modbus: &'t str,
    pub(super) unit: u8,
    pub(super) profile: Option<&'t str>,
    pub(super) sunspec: Option<Role>,
    /// How to ask for SunSpec in this table, for the message when neither map is given.
    pub(super) sunspec_hint: &'static str,
    pub(super) timeout_ms: Option<u64>,
    pub(super) loads: Option<&'t Vec<String>>,
}

/// What Modbus devices are checked against, and the unit ids meters and inverters took.
pub(super) struct Devices<'c> {
    buses: &'c [ModbusBus],
    sim: Option<&'c SimSite>,
    channels: &'c mut Names,
    units: HashMap<(usize, u8), &'static str>,
}

impl<'c> Devices<'c> {
    /// Nothing taken yet.
    pub(super) fn new(
        buses: &'c [ModbusBus],
        sim: Option<&'c SimSite>,
        channels: &'c mut Names,
    ) -> Self {
        Self {
            buses,
            sim,
            channels,
            units: HashMap::new(),
        }
    }

    /// The meters, in file order.
    pub(super) fn meters(
        &mut self,
        at: &Locator<'_>,
        tables: &[Spanned<MeterTable>],
    ) -> Result<Vec<Meter>, ConfigError> {
        let mut meters = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let (at, m) = (
                at.table(table.span(), format!("meter[{i}]")),
                table.get_ref(),
            );
            let keys = DeviceKeys {
                name: &m.name,
                modbus: &m.modbus,
                unit: m.unit,
                profile: m.profile.as_deref(),
                sunspec: m.sunspec.map(|r| match r {
                    RoleName::Inverter => Role::Inverter,
                    RoleName::Meter => Role::Meter,
                }),
                sunspec_hint: "sunspec = \"inverter\" / \"meter\"",
                timeout_ms: m.timeout_ms,
                loads: m.loads.as_ref(),
            };
            meters.push(self.device(&at, "meter", keys)?);
        }
        Ok(meters)
    }

    /// A device from the keys meter and inverter tables share; `kind` names it in messages.
    pub(super) fn device(
        &mut self,
        at: &Locator<'_>,
        kind: &'static str,
        keys: DeviceKeys<'_>,
    ) -> Result<Meter, ConfigError> {
        self.channels.add(at, keys.name)?;
        let bus = self
            .buses
            .iter()
            .position(|b| b.name == keys.modbus)
            .ok_or_else(|| {
                let message = format!("no [[modbus]] bus named {}", quote(keys.modbus));
                at.error("modbus", message)
            })?;
        self.unit(at, kind, bus, keys.unit)?;
        let map = map(at, &keys)?;
        let timeout_ms = keys.timeout_ms.unwrap_or(1000);
        if !(50..=60_000).contains(&timeout_ms) {
            return Err(at.error(
                "timeout_ms",
                format!("{timeout_ms} is outside 50 ms to 60 s"),
            ));
        }
        let loads = match (&self.buses[bus].link, keys.loads) {
            (Link::Sim, loads) => sim::measured_loads(at, "modbus", self.sim, loads)?,
            (_, Some(_)) => {
                let message = format!("only {kind}s on a sim bus measure simulated loads");
                return Err(at.error("loads", message));
            }
            (_, None) => Vec::new(),
        };
        Ok(Meter {
            name: keys.name.to_owned(),
            line: at.line(),
            bus,
            unit: keys.unit,
            map,
            timeout_ms,
            loads,
        })
    }

    /// Takes `unit` on the bus: a device address, not taken by another meter or inverter.
    fn unit(
        &mut self,
        at: &Locator<'_>,
        kind: &'static str,
        bus: usize,
        unit: u8,
    ) -> Result<(), ConfigError> {
        // 0 is broadcast (no answers); 248 to 255 are reserved, but TCP devices answer as 255.
        let tcp = matches!(self.buses[bus].link, Link::Tcp(_) | Link::Sim);
        if unit == 0 || (unit > 247 && !(tcp && unit == 255)) {
            let message = format!("{unit} is not a device address (1 to 247)");
            return Err(at.error("unit", message));
        }
        if let Some(other) = self.units.insert((bus, unit), kind) {
            let bus = &self.buses[bus].name;
            let message = format!("another {other} has unit {unit} on {}", quote(bus));
            return Err(at.error("unit", message));
        }
        Ok(())
    }
}

/// The register map: SunSpec, or the profile read now, so that a bad one is refused here.
fn map(at: &Locator<'_>, keys: &DeviceKeys<'_>) -> Result<MeterMap, ConfigError> {
    match (keys.profile, keys.sunspec) {
        (Some(_), Some(_)) => Err(at.error("sunspec", "give profile or sunspec, not both")),
        (None, None) => Err(at.error(
            "profile",
            format!(
                "missing: a shipped profile, a profile file, or {}",
                keys.sunspec_hint
            ),
        )),
        (None, Some(role)) => Ok(MeterMap::SunSpec(role)),
        (Some(p), None) if p.contains('/') || p.ends_with(".toml") => {
            let profile = load(Path::new(p)).map_err(|e| at.error("profile", e))?;
            Ok(MeterMap::Profile(Arc::new(profile)))
        }
        (Some(p), None) => match Profile::shipped(p) {
            Some(Ok(profile)) => Ok(MeterMap::Profile(Arc::new(profile))),
            Some(Err(e)) => Err(at.error("profile", format!("shipped profile `{p}`: {e}"))),
            None => {
                let shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                Err(at.error(
                    "profile",
                    format!(
                        "no shipped profile {} (shipped: {}); give a path for your own",
                        quote(p),
                        shipped.join(", ")
                    ),
                ))
            }
        },
    }
}

/// Reads and parses a profile file.
fn load(path: &Path) -> Result<Profile, String> {
    // The agent may run as root and the configuration names any path: only regular files, at
    // most `MAX_PROFILE_BYTES`, and a syntax error quotes none of the file.
    let shown = quote(&path.display().to_string());
    let io = |e: std::io::Error| format!("profile file {shown}: {e}");
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(format!("profile file {shown}: not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(format!(
            "profile file {shown}: more than {MAX_PROFILE_BYTES} bytes"
        ));
    }
    Profile::parse(&text).map_err(|e| match e {
        ProfileError::Syntax(m) => format!(
            "profile file {shown}: {}",
            check::plain(m.lines().next().unwrap_or_default())
        ),
        other => format!("profile file {shown}: {other}"),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::{Arc, LazyLock};

    use daisee_modbus::profile::Profile;
    use daisee_modbus::serial::{LineSettings, Parity};
    use daisee_modbus::sunspec::Role;

    use super::*;
    use crate::config::{Config, Link};

    const LAN_TEXT: &str = r#"
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
profile = "PROFILE_FILE"
"#;

    /// A profile file of the user's: the SDM120's map under another name.
    static MY_PROFILE: LazyLock<String> = LazyLock::new(|| {
        SHIPPED[0]
            .1
            .replace("Eastron SDM120-Modbus", "Heat pump meter")
    });

    /// Buses and meters, one of them read through a profile file of the user's.
    pub(in crate::config) fn lan() -> &'static str {
        static LAN: LazyLock<String> = LazyLock::new(|| {
            let dir = std::env::temp_dir().join(format!("daisee-profile-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("my-meter.toml");
            std::fs::write(&path, &*MY_PROFILE).unwrap();
            LAN_TEXT.replace("PROFILE_FILE", &path.display().to_string())
        });
        &LAN
    }

    fn error(source: &str) -> ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    #[test]
    fn buses_and_meters() {
        let c = Config::parse(lan()).unwrap();
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
        let sdm630 = Profile::shipped("eastron-sdm630").unwrap().unwrap();
        let mine = Profile::parse(&MY_PROFILE).unwrap();
        let maps: Vec<_> = c
            .meters
            .iter()
            .map(|m| (m.bus, m.unit, m.map.clone()))
            .collect();
        assert_eq!(
            maps,
            [
                (1, 1, MeterMap::Profile(Arc::new(sdm630))),
                (0, 126, MeterMap::SunSpec(Role::Inverter)),
                (1, 2, MeterMap::Profile(Arc::new(mine))),
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
        let e = error(&lan().replace("modbus = \"lan\"", "modbus = \"wan\""));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(23), Some("meter[1].modbus"))
        );
        assert!(e.message.contains("no [[modbus]] bus named `wan`"), "{e}");
    }

    #[test]
    fn unit_ids_are_device_addresses_used_once_per_bus() {
        let e = error(&lan().replace("unit = 1\n", "unit = 0\n"));
        assert_eq!(e.key.as_deref(), Some("meter[0].unit"));
        let e = error(&lan().replace("unit = 2\n", "unit = 1\n"));
        assert!(
            e.message.contains("another meter has unit 1 on `rs485`"),
            "{e}"
        );
        assert_eq!(e.line, Some(31));
        // 255 is how TCP devices are often addressed, but no address on a serial line.
        assert!(Config::parse(&lan().replace("unit = 126", "unit = 255")).is_ok());
        let e = error(&lan().replace("unit = 1\n", "unit = 255\n"));
        assert!(e.message.contains("1 to 247"), "{e}");
    }

    #[test]
    fn profiles_are_shipped_names_or_files() {
        let e = error(&lan().replace("eastron-sdm630", "eastron-sdm999"));
        assert!(
            e.message.contains("no shipped profile `eastron-sdm999`"),
            "{e}"
        );
        assert!(e.message.contains("carlo-gavazzi-em340"), "{e}");
        let both = lan().replace(
            "sunspec = \"inverter\"",
            "sunspec = \"inverter\"\nprofile = \"x.toml\"",
        );
        assert!(error(&both).message.contains("not both"));
        let neither = lan().replace("profile = \"eastron-sdm630\"\n", "");
        assert_eq!(error(&neither).key.as_deref(), Some("meter[0].profile"));
    }

    #[test]
    fn simulated_loads_only_on_sim_buses() {
        let e = error(&lan().replace("timeout_ms = 500", "loads = [\"pv\"]"));
        assert_eq!(e.key.as_deref(), Some("meter[1].loads"));
        let sim = lan().replace(
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
        let e = error(&format!("{sensor}{}", lan()));
        assert_eq!(e.key.as_deref(), Some("meter[0].name"));
    }

    #[test]
    fn a_bad_profile_file_is_a_configuration_error_at_its_key() {
        let dir = std::env::temp_dir().join(format!("daisee-bad-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret.toml");
        std::fs::write(&secret, "root:$6$very-secret-hash:19000:0:99999:7:::\n").unwrap();
        let with = |path: &Path| {
            let p = path.display().to_string();
            error(&lan().replace("eastron-sdm630", &p))
        };
        let e = with(&secret);
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(19), Some("meter[0].profile")),
            "{e}"
        );
        assert!(
            !e.message.contains("very-secret"),
            "the file is not quoted: {e}"
        );
        let e = with(&dir.join("missing.toml"));
        assert!(e.message.contains("No such file"), "{e}");
        let e = with(&dir);
        assert!(e.message.contains("not a regular file"), "{e}");
        let big = dir.join("big.toml");
        std::fs::write(&big, "#".repeat(300 * 1024)).unwrap();
        assert!(with(&big).message.contains("more than"));
        let point = dir.join("point.toml");
        std::fs::write(&point, SHIPPED[0].1.replace("unit = \"W\"", "unit = \"V\"")).unwrap();
        assert!(with(&point).message.contains("point"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

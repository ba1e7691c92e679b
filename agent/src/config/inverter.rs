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
    /// The inverter's own revert timer: the fail-safe when the agent stops renewing a limit.
    pub revert: Duration,
}

impl Inverter {
    /// Whether the agent can limit its power: SunSpec (models 123/704) yes, profiles no.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use daisee_hal::MilliWatts;

    use crate::config::{Config, DEMO, MeterMap};

    const SITE: &str = "[sim]\n[[sim.load]]\nname = \"pv\"\nprofile = \"solar\"\npeak_w = 5000\n\n\
                        [[modbus]]\nname = \"lan\"\nbackend = \"sim\"\n\n\
                        [[meter]]\nname = \"grid\"\nmodbus = \"lan\"\nunit = 1\nprofile = \"eastron-sdm630\"\nloads = [\"pv\"]\n\n\
                        [[inverter]]\nname = \"pv\"\nmodbus = \"lan\"\nunit = 2\nsunspec = true\nrated_w = 5000\nloads = [\"pv\"]\n";

    fn refused(text: &str) -> crate::config::ConfigError {
        Config::parse(text).expect_err("refused")
    }

    #[test]
    fn the_demo_inverter_is_curtailable() {
        let c = Config::parse(DEMO).unwrap();
        let pv = &c.inverters[0];
        assert_eq!(pv.meter.name, "pv_inverter");
        assert_eq!(pv.rated, MilliWatts(6_000_000));
        assert_eq!(pv.revert, Duration::from_secs(60));
        assert!(pv.curtailable());
        assert_eq!(pv.meter.loads, ["rooftop_pv"]);
        let names: Vec<_> = c.modbus_devices().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["flex_loads", "pv_inverter"]);
    }

    #[test]
    fn inverters_share_the_meter_rules() {
        let c = Config::parse(SITE).unwrap();
        assert_eq!(c.inverters[0].meter.unit, 2);
        let e = refused(&SITE.replace("unit = 2", "unit = 1"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(21), Some("inverter[0].unit"))
        );
        assert!(
            e.message.contains("another meter has unit 1 on `lan`"),
            "{e}"
        );
        let e = refused(&SITE.replace("name = \"pv\"\nmodbus", "name = \"grid\"\nmodbus"));
        assert_eq!(e.key.as_deref(), Some("inverter[0].name"), "{e}");
        let e = refused(&SITE.replace("loads = [\"pv\"]\n", "loads = [\"wind\"]\n"));
        assert_eq!(e.key.as_deref(), Some("meter[0].loads"), "{e}");
        let e = refused(&SITE.replace(
            "sunspec = true",
            "sunspec = true\nprofile = \"eastron-sdm630\"",
        ));
        assert!(e.message.contains("not both"), "{e}");
        let e = refused(&SITE.replace("sunspec = true\n", ""));
        assert!(e.message.contains("sunspec = true"), "{e}");
        assert_eq!(e.key.as_deref(), Some("inverter[0].profile"));
    }

    #[test]
    fn rating_and_revert_timer_are_bounded() {
        for rated in [
            "",
            "rated_w = 0\n",
            "rated_w = -5\n",
            "rated_w = 10000001\n",
        ] {
            let e = refused(&SITE.replace("rated_w = 5000\n", rated));
            assert_eq!(e.key.as_deref(), Some("inverter[0].rated_w"), "{e}");
        }
        assert!(Config::parse(&SITE.replace("rated_w = 5000", "rated_w = 10000000")).is_ok());
        let c = Config::parse(&format!("{SITE}revert_s = 600\n")).unwrap();
        assert_eq!(c.inverters[0].revert, Duration::from_secs(600));
        for revert in ["revert_s = 9\n", "revert_s = 3601\n"] {
            let e = refused(&format!("{SITE}{revert}"));
            assert_eq!(
                (e.line, e.key.as_deref()),
                (Some(25), Some("inverter[0].revert_s")),
                "{e}"
            );
        }
    }

    #[test]
    fn an_inverter_read_through_a_profile_is_not_curtailable() {
        let text = SITE.replace("sunspec = true", "profile = \"eastron-sdm120\"");
        let c = Config::parse(&text).unwrap();
        assert!(!c.inverters[0].curtailable());
        assert!(matches!(c.inverters[0].meter.map, MeterMap::Profile(_)));
    }
}

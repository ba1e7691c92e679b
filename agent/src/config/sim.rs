//! The `[sim]` table: the simulated site that devices on the `sim` backend measure.

use daisee_hal::sim::Profile;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names, quote};
use super::relay::{Relay, RelayOutput};

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
    pub profile: Profile,
    /// The relay that switches it, if any.
    pub relay: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SimTable {
    seed: Option<u64>,
    speed: Option<u32>,
    start: Option<String>,
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

/// The simulated site; the relays its loads name must be simulated ones.
pub(super) fn site(
    at: &Locator<'_>,
    table: &Spanned<SimTable>,
    relays: &[Relay],
) -> Result<SimSite, ConfigError> {
    let (t, sim) = (table.get_ref(), at.table(table.span(), "sim"));
    let mut names = Names::default();
    let mut loads = Vec::new();
    for (i, load) in t.load.iter().enumerate() {
        let at = at.table(load.span(), format!("sim.load[{i}]"));
        loads.push(sim_load(&at, load.get_ref(), &mut names, relays)?);
    }
    let start_of_day_ms = t
        .start
        .as_deref()
        .map(|start| {
            time_of_day(start).ok_or_else(|| {
                sim.error(
                    "start",
                    format!("{} is not a time of day (\"HH:MM\", UTC)", quote(start)),
                )
            })
        })
        .transpose()?;
    Ok(SimSite {
        seed: t.seed.unwrap_or(1),
        speed: t.speed.unwrap_or(1).max(1),
        start_of_day_ms,
        loads,
    })
}

fn sim_load(
    at: &Locator<'_>,
    l: &SimLoadTable,
    names: &mut Names,
    relays: &[Relay],
) -> Result<SimLoad, ConfigError> {
    names.add(at, &l.name)?;
    let watts = |key: &str, value: Option<f64>| {
        let w = check::required(at, key, value, "its power in watts")?;
        check::watts(at, key, w, false, 1)
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
    if let Some(relay) = &l.relay
        && !relays
            .iter()
            .any(|r| &r.name == relay && r.output == RelayOutput::Sim)
    {
        return Err(at.error(
            "relay",
            format!("no relay {} on the sim backend", quote(relay)),
        ));
    }
    Ok(SimLoad {
        name: l.name.clone(),
        profile,
        relay: l.relay.clone(),
    })
}

/// `"HH:MM"` as ms after midnight.
fn time_of_day(text: &str) -> Option<i64> {
    let (h, m) = text.split_once(':')?;
    let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h * 60 + m) * 60_000)
}

/// The site a device on the sim backend needs: the one place that rule is written.
pub(super) fn require<'a>(
    at: &Locator<'_>,
    key: &str,
    sim: Option<&'a SimSite>,
) -> Result<&'a SimSite, ConfigError> {
    sim.ok_or_else(|| {
        at.error(
            key,
            "on the sim backend: needs a [sim] table with the simulated loads",
        )
    })
}

/// The simulated loads a device on the sim backend measures: given, and all in `[sim]`.
pub(super) fn measured_loads(
    at: &Locator<'_>,
    backend_key: &str,
    sim: Option<&SimSite>,
    loads: Option<&Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let loads = check::required(at, "loads", loads, "the simulated loads it measures")?;
    let site = require(at, backend_key, sim)?;
    if let Some(unknown) = loads
        .iter()
        .find(|l| !site.loads.iter().any(|s| &s.name == *l))
    {
        return Err(at.error(
            "loads",
            format!("no simulated load {} in [sim]", quote(unknown)),
        ));
    }
    Ok(loads.clone())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const SITE: &str = "[sim]\nstart = \"10:30\"\n\n[[sim.load]]\nname = \"h\"\nprofile = \"constant\"\npower_w = 100\nrelay = \"r\"\n\n\
                        [[relay]]\nname = \"r\"\nbackend = \"sim\"\nsafe_state = \"off\"\n";

    #[test]
    fn loads_are_checked_where_they_are_written() {
        let c = Config::parse(SITE).unwrap();
        assert_eq!(c.sim.unwrap().start_of_day_ms, Some(37_800_000));
        let e = Config::parse(&SITE.replace("relay = \"r\"", "relay = \"q\"")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(8), Some("sim.load[0].relay"))
        );
        let e = Config::parse(&SITE.replace("power_w = 100", "power_w = 0")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sim.load[0].power_w"), "{e}");
        let e = Config::parse(&SITE.replace("\"10:30\"", "\"25:00\"")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("sim.start")));
        let twice = SITE.replace(
            "[[relay]]",
            "[[sim.load]]\nname = \"h\"\nprofile = \"constant\"\npower_w = 1\n[[relay]]",
        );
        let e = Config::parse(&twice).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sim.load[1].name"), "{e}");
        let e = Config::parse(&SITE.replace("name = \"h\"", "name = \"\"")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sim.load[0].name"), "{e}");
    }

    #[test]
    fn devices_on_the_sim_backend_need_the_site() {
        let sensor = "[[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"h\"]\n";
        let e = Config::parse(sensor).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("sensor[0].backend")),
            "{e}"
        );
        assert!(e.message.contains("needs a [sim] table"), "{e}");
        let bus = "[[modbus]]\nname = \"lan\"\nbackend = \"sim\"\n";
        let e = Config::parse(bus).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("modbus[0].backend"), "{e}");
    }
}

//! The `[[relay]]` tables: the GPIO line of each relay and, for the loads demand response
//! switches, their demand-response keys.

use std::path::PathBuf;
use std::time::Duration;

use daisee_control::{FlexLoad, Window};
use daisee_hal::RelayState;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, Backend, ConfigError, Locator, Names};

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
    pub flex: Option<FlexLoad>,
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

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StateName {
    On,
    Off,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RelayTable {
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

/// The relays, in file order.
pub(super) fn relays(
    at: &Locator<'_>,
    tables: &[Spanned<RelayTable>],
) -> Result<Vec<Relay>, ConfigError> {
    let mut names = Names::default();
    let mut relays = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let (at, r) = (
            at.table(table.span(), format!("relay[{i}]")),
            table.get_ref(),
        );
        names.add(&at, &r.name)?;
        let safe_state = match r.safe_state {
            StateName::On => RelayState::On,
            StateName::Off => RelayState::Off,
        };
        relays.push(Relay {
            name: r.name.clone(),
            line: at.line(),
            output: output(&at, r)?,
            active_low: r.active_low,
            safe_state,
            flex: flex_load(&at, r, safe_state)?,
        });
    }
    Ok(relays)
}

fn output(at: &Locator<'_>, r: &RelayTable) -> Result<RelayOutput, ConfigError> {
    Ok(match r.backend {
        Backend::Linux => RelayOutput::Linux {
            chip: PathBuf::from(check::required(
                at,
                "gpio_chip",
                r.gpio_chip.clone(),
                "the GPIO chip, e.g. \"/dev/gpiochip0\"",
            )?),
            line: check::required(at, "line", r.line, "the line offset on the chip")?,
        },
        Backend::Rpi => RelayOutput::Rpi {
            pin: check::required(at, "pin", r.pin, "the BCM pin number")?,
        },
        Backend::Sim => RelayOutput::Sim,
    })
}

/// The relay as a load under demand response, if it has a nominal power.
fn flex_load(
    at: &Locator<'_>,
    r: &RelayTable,
    safe: RelayState,
) -> Result<Option<FlexLoad>, ConfigError> {
    let Some(nominal_w) = r.nominal_w else {
        let stray = [
            ("priority", r.priority.is_some()),
            ("min_on_s", r.min_on_s.is_some()),
            ("min_off_s", r.min_off_s.is_some()),
            ("max_switches_per_hour", r.max_switches_per_hour.is_some()),
            ("schedule", r.schedule.is_some()),
        ];
        return match stray.iter().find(|(_, given)| *given) {
            Some((key, _)) => Err(at.error(
                key,
                "needs nominal_w: only loads with a nominal power are switched",
            )),
            None => Ok(None),
        };
    };
    let nominal = check::watts(at, "nominal_w", nominal_w, false, 1)?;
    let schedule = r
        .schedule
        .iter()
        .flatten()
        .map(|w| {
            w.parse::<Window>()
                .map_err(|e| at.error("schedule", check::plain(&e.to_string())))
        })
        .collect::<Result<_, _>>()?;
    for (key, secs) in [("min_on_s", r.min_on_s), ("min_off_s", r.min_off_s)] {
        if secs.is_some_and(|s| s > 86_400) {
            return Err(at.error(key, "is more than a day"));
        }
    }
    let per_hour = r.max_switches_per_hour.unwrap_or(6);
    if per_hour == 0 {
        return Err(at.error("max_switches_per_hour", "0 would never let it switch"));
    }
    Ok(Some(FlexLoad {
        name: r.name.clone(),
        priority: r.priority.unwrap_or(0),
        nominal,
        min_on: Duration::from_secs(r.min_on_s.unwrap_or(60)),
        min_off: Duration::from_secs(r.min_off_s.unwrap_or(60)),
        max_switches_per_hour: per_hour,
        safe,
        schedule,
    }))
}

//! `[store]`, `[control]` and the demand-response keys of `[[relay]]` tables.

use std::path::PathBuf;
use std::time::Duration;

use daisee_control::{FlexLoad, ImportLimit, Window};
use daisee_hal::{MilliWatts, RelayState};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Locator};

/// Where and how the history is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The data directory (the history is `history.sqlite` in it).
    pub dir: PathBuf,
    /// How long raw samples are kept.
    pub retention: Duration,
    /// How often buffered samples are written (and acknowledged).
    pub flush_interval: Duration,
}

/// Demand response.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// The channel that measures the building's grid connection.
    pub grid: String,
    /// The import limit, if any.
    pub import_limit: Option<ImportLimit>,
    /// Grid readings older than this put the loads in their safe states.
    pub stale_after: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreTable {
    dir: String,
    retention_days: Option<u32>,
    flush_interval_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlTable {
    grid: String,
    import_limit_w: Option<f64>,
    hysteresis_w: Option<f64>,
    stale_after_ms: Option<u64>,
}

/// The demand-response keys of a relay table.
pub(super) struct FlexKeys<'a> {
    pub(super) priority: Option<u8>,
    pub(super) nominal_w: Option<f64>,
    pub(super) min_on_s: Option<u64>,
    pub(super) min_off_s: Option<u64>,
    pub(super) max_switches_per_hour: Option<u32>,
    pub(super) schedule: &'a Option<Vec<String>>,
}

pub(super) fn store(
    at: &Locator<'_>,
    table: &Spanned<StoreTable>,
) -> Result<StoreConfig, ConfigError> {
    let (span, t) = (table.span(), table.get_ref());
    let err = |key: &str, message: String| at.error(&span, "store".into(), key, message);
    let days = t.retention_days.unwrap_or(30);
    if !(1..=3650).contains(&days) {
        return Err(err(
            "retention_days",
            format!("{days} is outside 1 to 3650"),
        ));
    }
    let flush = t.flush_interval_ms.unwrap_or(60_000);
    if !(100..=600_000).contains(&flush) {
        return Err(err(
            "flush_interval_ms",
            format!("{flush} is outside 100 ms to 10 min"),
        ));
    }
    Ok(StoreConfig {
        dir: PathBuf::from(&t.dir),
        retention: Duration::from_secs(u64::from(days) * 86_400),
        flush_interval: Duration::from_millis(flush),
    })
}

pub(super) fn control(
    at: &Locator<'_>,
    table: &Spanned<ControlTable>,
    channels: &[&str],
    poll_interval_ms: u64,
) -> Result<ControlConfig, ConfigError> {
    let (span, t) = (table.span(), table.get_ref());
    let err = |key: &str, message: String| at.error(&span, "control".into(), key, message);
    if !channels.contains(&t.grid.as_str()) {
        return Err(err(
            "grid",
            format!("no sensor or meter named `{}`", t.grid),
        ));
    }
    let watts = |key: &str, w: f64| {
        (w.is_finite() && (0.0..=1e7).contains(&w))
            .then(|| MilliWatts::from_watts(w))
            .ok_or_else(|| err(key, format!("{w} is outside 0 to 10 MW")))
    };
    let import_limit = match t.import_limit_w {
        Some(limit) => Some(ImportLimit {
            limit: watts("import_limit_w", limit)?,
            hysteresis: watts("hysteresis_w", t.hysteresis_w.unwrap_or(500.0))?,
        }),
        None => None,
    };
    if let Some(l) = import_limit
        && l.hysteresis.0 >= l.limit.0
    {
        return Err(err(
            "hysteresis_w",
            "must be less than import_limit_w, or no load would ever come back".into(),
        ));
    }
    let stale_after = t.stale_after_ms.unwrap_or(3 * poll_interval_ms);
    if stale_after > 3_600_000 {
        return Err(err(
            "stale_after_ms",
            format!("{stale_after} is more than an hour"),
        ));
    }
    if stale_after < poll_interval_ms {
        return Err(err(
            "stale_after_ms",
            format!("{stale_after} is less than the poll interval ({poll_interval_ms} ms)"),
        ));
    }
    Ok(ControlConfig {
        grid: t.grid.clone(),
        import_limit,
        stale_after: Duration::from_millis(stale_after),
    })
}

/// The relay as a load under demand response, if it has a nominal power.
pub(super) fn flex_load(
    err: impl Fn(&str, String) -> ConfigError,
    name: &str,
    safe: RelayState,
    keys: FlexKeys<'_>,
) -> Result<Option<FlexLoad>, ConfigError> {
    let Some(nominal_w) = keys.nominal_w else {
        let stray = [
            ("priority", keys.priority.is_some()),
            ("min_on_s", keys.min_on_s.is_some()),
            ("min_off_s", keys.min_off_s.is_some()),
            (
                "max_switches_per_hour",
                keys.max_switches_per_hour.is_some(),
            ),
            ("schedule", keys.schedule.is_some()),
        ];
        return match stray.iter().find(|(_, given)| *given) {
            Some((key, _)) => Err(err(
                key,
                "needs nominal_w: only loads with a nominal power are switched".into(),
            )),
            None => Ok(None),
        };
    };
    if !(nominal_w.is_finite() && nominal_w > 0.0 && nominal_w <= 1e6) {
        return Err(err(
            "nominal_w",
            format!("{nominal_w} is outside 0 to 1 MW"),
        ));
    }
    let schedule = keys
        .schedule
        .iter()
        .flatten()
        .map(|w| {
            w.parse::<Window>()
                .map_err(|e| err("schedule", e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    for (key, secs) in [("min_on_s", keys.min_on_s), ("min_off_s", keys.min_off_s)] {
        if secs.is_some_and(|s| s > 86_400) {
            return Err(err(key, "is more than a day".into()));
        }
    }
    let per_hour = keys.max_switches_per_hour.unwrap_or(6);
    if per_hour == 0 {
        return Err(err(
            "max_switches_per_hour",
            "0 would never let it switch".into(),
        ));
    }
    Ok(Some(FlexLoad {
        name: name.to_owned(),
        priority: keys.priority.unwrap_or(0),
        nominal: MilliWatts::from_watts(nominal_w),
        min_on: Duration::from_secs(keys.min_on_s.unwrap_or(60)),
        min_off: Duration::from_secs(keys.min_off_s.unwrap_or(60)),
        max_switches_per_hour: per_hour,
        safe,
        schedule,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[sim]\n[[sim.load]]\nname = \"h\"\nprofile = \"constant\"\npower_w = 100\n\n\
                        [[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"h\"]\n\n\
                        [control]\ngrid = \"grid\"\nimport_limit_w = 5000\nhysteresis_w = 500\n\n\
                        [[relay]]\nname = \"boiler\"\nbackend = \"sim\"\nsafe_state = \"off\"\nnominal_w = 2000\n";

    fn refused(text: &str) -> String {
        Config::parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn demand_response_settings_that_cannot_work_are_refused() {
        assert!(Config::parse(BASE).is_ok());
        let e = refused(&BASE.replace("hysteresis_w = 500", "hysteresis_w = 5000"));
        assert!(e.contains("control.hysteresis_w"), "{e}");
        let e = refused(&BASE.replace("nominal_w = 2000", "nominal_w = 4600"));
        assert!(e.contains("never be switched on"), "{e}");
        let e = refused(&format!("{BASE}min_on_s = 90000\n"));
        assert!(
            e.contains("relay[0].min_on_s") && e.contains("more than a day"),
            "{e}"
        );
        let e = refused(&format!("{BASE}schedule = [\"24:00-00:00\"]\n"));
        assert!(e.contains("relay[0].schedule"), "{e}");
        let e = refused(&BASE.replace(
            "grid = \"grid\"",
            "grid = \"grid\"\nstale_after_ms = 7200000",
        ));
        assert!(e.contains("more than an hour"), "{e}");
        let e = refused(&BASE.replace("name = \"boiler\"", "name = \" \""));
        assert!(e.contains("relay[0].name: must not be empty"), "{e}");
        let e = refused(&BASE.replace(
            "[control]\ngrid = \"grid\"\nimport_limit_w = 5000\nhysteresis_w = 500\n",
            "",
        ));
        assert!(e.contains("no [control] table"), "{e}");
    }
}

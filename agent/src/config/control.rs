//! The `[control]` table: demand response, the settings that apply without a restart.

use std::time::Duration;

use daisee_control::ImportLimit;
use daisee_hal::MilliWatts;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names};
use super::relay::Relay;

/// Demand response.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// The channel that measures the building's grid connection.
    pub grid: String,
    /// The import limit, if any.
    pub import_limit: Option<ImportLimit>,
    /// The most the site may export (0: nothing), enforced by curtailing the SunSpec inverters.
    pub export_limit: Option<MilliWatts>,
    /// Grid readings older than this put the loads in their safe states.
    pub stale_after: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlTable {
    grid: String,
    import_limit_w: Option<f64>,
    hysteresis_w: Option<f64>,
    export_limit_w: Option<f64>,
    stale_after_ms: Option<u64>,
}

/// What the control settings are checked against.
pub(super) struct Context<'c> {
    /// The channel names.
    pub(super) channels: &'c Names,
    /// The gateway's poll interval.
    pub(super) poll_interval_ms: u64,
    /// Whether an inverter can be curtailed.
    pub(super) curtailable: bool,
}

/// The demand-response settings.
pub(super) fn control(
    at: &Locator<'_>,
    table: &Spanned<ControlTable>,
    cx: &Context<'_>,
) -> Result<ControlConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "control"), table.get_ref());
    check::channel(&at, cx.channels, "grid", &t.grid)?;
    let watts = |key: &str, w: f64| check::watts(&at, key, w, true, 10);
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
        return Err(at.error(
            "hysteresis_w",
            "must be less than import_limit_w, or no load would ever come back",
        ));
    }
    let export_limit = t
        .export_limit_w
        .map(|w| watts("export_limit_w", w))
        .transpose()?;
    if export_limit.is_some() && !cx.curtailable {
        return Err(at.error(
            "export_limit_w",
            "no [[inverter]] with sunspec = true could be curtailed to keep it",
        ));
    }
    Ok(ControlConfig {
        grid: t.grid.clone(),
        import_limit,
        export_limit,
        stale_after: stale_after(&at, t, cx.poll_interval_ms)?,
    })
}

fn stale_after(
    at: &Locator<'_>,
    t: &ControlTable,
    poll_interval_ms: u64,
) -> Result<Duration, ConfigError> {
    let stale_after = t.stale_after_ms.unwrap_or(3 * poll_interval_ms);
    if stale_after > 3_600_000 {
        return Err(at.error(
            "stale_after_ms",
            format!("{stale_after} is more than an hour"),
        ));
    }
    if stale_after < poll_interval_ms {
        return Err(at.error(
            "stale_after_ms",
            format!("{stale_after} is less than the poll interval ({poll_interval_ms} ms)"),
        ));
    }
    Ok(Duration::from_millis(stale_after))
}

/// Checks that the relays demand response switches can be switched under these settings.
pub(super) fn check_relays(
    relays: &[Relay],
    control: Option<&ControlConfig>,
) -> Result<(), ConfigError> {
    let Some(control) = control else {
        return match relays.iter().find(|r| r.flex.is_some()) {
            Some(r) => Err(ConfigError {
                line: Some(r.line),
                key: Some("control".into()),
                message: format!(
                    "relay `{}` is a load to switch (nominal_w), but there is no [control] table naming the grid channel",
                    r.name
                ),
            }),
            None => Ok(()),
        };
    };
    // A load bigger than the room the limit leaves would never be switched on.
    if let Some(limit) = control.import_limit {
        let room = limit.limit.0 - limit.hysteresis.0;
        if let Some(r) = relays
            .iter()
            .find(|r| r.flex.as_ref().is_some_and(|f| f.nominal.0 > room))
        {
            return Err(ConfigError {
                line: Some(r.line),
                key: Some(format!("relay `{}`.nominal_w", r.name)),
                message: "more than import_limit_w - hysteresis_w: it would never be switched on"
                    .into(),
            });
        }
    }
    Ok(())
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

#[cfg(test)]
mod export_tests {
    use daisee_hal::MilliWatts;

    use crate::config::{Config, DEMO};

    #[test]
    fn an_export_limit_needs_an_inverter_to_curtail() {
        let demo = |limit: &str| {
            DEMO.replace(
                "hysteresis_w = 500",
                &format!("hysteresis_w = 500\n{limit}"),
            )
        };
        let c = Config::parse(&demo("export_limit_w = 0")).unwrap();
        assert_eq!(c.control.unwrap().export_limit, Some(MilliWatts(0)));
        let c = Config::parse(&demo("export_limit_w = 3000")).unwrap();
        assert_eq!(c.control.unwrap().export_limit, Some(MilliWatts(3_000_000)));
        assert_eq!(
            Config::parse(DEMO).unwrap().control.unwrap().export_limit,
            None
        );
        for bad in ["-1", "10000001", "nan"] {
            let e = Config::parse(&demo(&format!("export_limit_w = {bad}"))).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("control.export_limit_w"), "{e}");
        }
        let read_only =
            demo("export_limit_w = 3000").replace("sunspec = true", "profile = \"eastron-sdm120\"");
        let e = Config::parse(&read_only).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("control.export_limit_w"), "{e}");
        assert!(
            e.message.contains("no [[inverter]] with sunspec = true"),
            "{e}"
        );
    }
}

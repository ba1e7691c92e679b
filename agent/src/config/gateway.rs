//! The `[gateway]` table: the gateway's name and poll interval.

use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GatewayTable {
    name: Option<String>,
    poll_interval_ms: Option<u64>,
}

/// The gateway's name and poll interval (ms), defaults where the table leaves them out.
pub(super) fn gateway(
    at: &Locator<'_>,
    table: Option<&Spanned<GatewayTable>>,
) -> Result<(String, u64), ConfigError> {
    let Some(table) = table else {
        return Ok(("gateway".into(), 1000));
    };
    let (at, t) = (at.table(table.span(), "gateway"), table.get_ref());
    let name = t.name.clone().unwrap_or_else(|| "gateway".into());
    check::name(&at, "name", &name)?;
    let poll_interval_ms = t.poll_interval_ms.unwrap_or(1000);
    if !(100..=3_600_000).contains(&poll_interval_ms) {
        return Err(at.error(
            "poll_interval_ms",
            format!("{poll_interval_ms} is outside 100 ms to 1 h"),
        ));
    }
    Ok((name, poll_interval_ms))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_name_is_a_short_name_and_the_interval_is_bounded() {
        assert_eq!(Config::parse("").unwrap().name, "gateway");
        assert_eq!(
            Config::parse("[gateway]\nname = \"home\"\n").unwrap().name,
            "home"
        );
        for name in ["\"\"", "\" \"", &format!("\"{}\"", "x".repeat(65))] {
            let e = Config::parse(&format!("[gateway]\nname = {name}\n")).unwrap_err();
            assert_eq!(
                (e.line, e.key.as_deref()),
                (Some(2), Some("gateway.name")),
                "{e}"
            );
        }
        let e = Config::parse("[gateway]\n\npoll_interval_ms = 5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: gateway.poll_interval_ms: 5 is outside 100 ms to 1 h"
        );
    }
}

//! The `[web]` table: the gateway's web page on the LAN.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;
use toml::Spanned;

use super::check::{ConfigError, Locator, quote};

/// The port when none is set: unprivileged (the agent has no capability to bind below 1024) and
/// the usual alternative HTTP port.
const DEFAULT_PORT: u16 = 8080;

/// Where the web page is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// The address and port it listens on (every address, port 8080, unless set; port 0: one
    /// the system picks, which the agent prints at start).
    pub listen: SocketAddr,
    /// Whether a person logged in on the page may switch relays (once a password is set over
    /// D-Bus; its hash is kept in the store's directory).
    pub writes: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebTable {
    bind: Option<String>,
    port: Option<u16>,
    writes: Option<bool>,
}

/// The web page's settings, with their defaults; writes need a `[store]` (`stored`) to keep the
/// password's hash in.
pub(super) fn web(
    at: &Locator<'_>,
    table: &Spanned<WebTable>,
    stored: bool,
) -> Result<WebConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "web"), table.get_ref());
    let bind = match &t.bind {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(bind) => bind.parse().map_err(|_| {
            at.error(
                "bind",
                format!("{} is not an IP address (0.0.0.0: every one)", quote(bind)),
            )
        })?,
    };
    let writes = t.writes.unwrap_or(false);
    if writes && !stored {
        return Err(at.error(
            "writes",
            "writes need a [store]: the password's hash is kept in its directory",
        ));
    }
    Ok(WebConfig {
        listen: SocketAddr::new(bind, t.port.unwrap_or(DEFAULT_PORT)),
        writes,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(web: &str) -> Result<Config, String> {
        Config::parse(&format!("[gateway]\nname = \"home\"\n\n[web]\n{web}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_address_on_port_8080_unless_set() {
        let web = parse("").unwrap().web.unwrap();
        assert_eq!(web.listen.to_string(), "0.0.0.0:8080");
        assert!(!web.writes);
        let web = parse("bind = \"::1\"\nport = 9000\n").unwrap().web.unwrap();
        assert_eq!(web.listen.to_string(), "[::1]:9000");
    }

    #[test]
    fn wrong_settings_are_named() {
        assert_eq!(
            parse("bind = \"lan\"\n").unwrap_err(),
            "line 5: web.bind: `lan` is not an IP address (0.0.0.0: every one)"
        );
        assert!(parse("port = 65536\n").unwrap_err().contains("web.port"));
        assert!(
            parse("password = \"x\"\n")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}

//! The `[mqtt]` table: the broker the gateway publishes its readings and relay states to, with
//! Home Assistant's discovery, and whether relays take commands from it.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, quote};

/// The longest node id, in bytes: it is part of every topic and unique id.
const MAX_NODE_ID_BYTES: usize = 64;

/// A broker and what the gateway does on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// The broker's host name or address.
    pub host: String,
    /// Its port (1883, or 8883 with TLS, unless set).
    pub port: u16,
    /// TLS, if the connection uses it.
    pub tls: Option<MqttTls>,
    /// The user name, if the broker asks for one.
    pub username: Option<String>,
    /// The file holding the password (not the configuration: everyone may read that on D-Bus).
    pub password_file: Option<PathBuf>,
    /// The gateway's id on the broker and in Home Assistant (`[A-Za-z0-9_-]`); derived from the
    /// gateway's key or name when not set.
    pub node_id: Option<String>,
    /// The root of the gateway's topics (`daisee/<node id>` when not set).
    pub prefix: Option<String>,
    /// Home Assistant's discovery prefix, or `None` to publish no discovery.
    pub discovery: Option<String>,
    /// Whether relays take `ON`, `OFF` and `AUTO` from `<prefix>/relay/<name>/set`.
    pub commands: bool,
}

/// How the broker's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttTls {
    /// Against the system's CA store.
    SystemRoots,
    /// Against the CA certificates in this PEM file only.
    Ca(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MqttTable {
    host: String,
    port: Option<u16>,
    tls: Option<bool>,
    ca: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
    node_id: Option<String>,
    prefix: Option<String>,
    discovery: Option<bool>,
    discovery_prefix: Option<String>,
    commands: Option<bool>,
}

/// The MQTT settings, checked, with their defaults; `names` are the channels' and relays' names,
/// which become topic levels.
pub(super) fn mqtt<'n>(
    at: &Locator<'_>,
    table: &Spanned<MqttTable>,
    names: impl Iterator<Item = &'n str>,
) -> Result<MqttConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "mqtt"), table.get_ref());
    check::name(&at, "host", &t.host)?;
    if t.host.contains(char::is_whitespace) {
        return Err(at.error("host", format!("{} is not a host name", quote(&t.host))));
    }
    let tls = match (t.tls, &t.ca) {
        (Some(false), Some(_)) => return Err(at.error("ca", "a CA file needs tls = true")),
        (_, Some(ca)) => Some(MqttTls::Ca(absolute(&at, "ca", ca)?)),
        (Some(true), None) => Some(MqttTls::SystemRoots),
        (_, None) => None,
    };
    let port = t.port.unwrap_or(if tls.is_some() { 8883 } else { 1883 });
    if port == 0 {
        return Err(at.error("port", "0 is not a port"));
    }
    if let Some(user) = &t.username {
        check::name(&at, "username", user)?;
    }
    if t.password_file.is_some() && t.username.is_none() {
        return Err(at.error("password_file", "a password needs a username"));
    }
    let password_file = t
        .password_file
        .as_deref()
        .map(|p| absolute(&at, "password_file", p))
        .transpose()?;
    if let Some(id) = &t.node_id {
        node_id(&at, id)?;
    }
    if let Some(prefix) = &t.prefix {
        topic(&at, "prefix", prefix)?;
    }
    let discovery = match (t.discovery.unwrap_or(true), &t.discovery_prefix) {
        (false, Some(_)) => {
            return Err(at.error("discovery_prefix", "discovery is off"));
        }
        (false, None) => None,
        (true, prefix) => {
            let prefix = prefix.clone().unwrap_or_else(|| "homeassistant".into());
            topic(&at, "discovery_prefix", &prefix)?;
            Some(prefix)
        }
    };
    for name in names {
        if name.contains(['/', '+', '#']) {
            return Err(at.error(
                "",
                format!(
                    "{} is a topic level: a name may not hold `/`, `+` or `#` with MQTT on",
                    quote(name)
                ),
            ));
        }
    }
    Ok(MqttConfig {
        host: t.host.clone(),
        port,
        tls,
        username: t.username.clone(),
        password_file,
        node_id: t.node_id.clone(),
        prefix: t.prefix.clone(),
        discovery,
        commands: t.commands.unwrap_or(false),
    })
}

/// A node id: letters, digits, `_` and `-` (Home Assistant's discovery topics allow no more).
fn node_id(at: &Locator<'_>, id: &str) -> Result<(), ConfigError> {
    let fine = !id.is_empty()
        && id.len() <= MAX_NODE_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fine {
        Ok(())
    } else {
        Err(at.error(
            "node_id",
            format!(
                "{} is not 1 to {MAX_NODE_ID_BYTES} letters, digits, `_` or `-`",
                quote(id)
            ),
        ))
    }
}

/// A topic to publish under: levels that are not empty, no wildcards, not a system topic.
fn topic(at: &Locator<'_>, key: &str, text: &str) -> Result<(), ConfigError> {
    check::name(at, key, text)?;
    let fine = !text.starts_with('$')
        && !text.contains(['+', '#'])
        && text.split('/').all(|level| !level.is_empty());
    if fine {
        Ok(())
    } else {
        Err(at.error(
            key,
            format!(
                "{} is not a topic: levels must not be empty, hold `+` or `#`, or start with `$`",
                quote(text)
            ),
        ))
    }
}

/// An absolute path.
fn absolute(at: &Locator<'_>, key: &str, text: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(at.error(key, format!("{} is not an absolute path", quote(text))))
    }
}

#[cfg(test)]
mod tests {
    use super::MqttTls;
    use crate::config::{Config, DEMO};

    fn with(table: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(&format!("{DEMO}\n[mqtt]\n{table}"))
    }

    #[test]
    fn a_host_alone_publishes_with_discovery_and_takes_no_commands() {
        let m = with("host = \"broker.lan\"\n").unwrap().mqtt.unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, &m.tls),
            ("broker.lan", 1883, &None)
        );
        assert_eq!(m.discovery.as_deref(), Some("homeassistant"));
        assert!(!m.commands);
        let m = with("host = \"broker.lan\"\ntls = true\ncommands = true\ndiscovery = false\n")
            .unwrap()
            .mqtt
            .unwrap();
        assert_eq!((m.port, m.tls), (8883, Some(MqttTls::SystemRoots)));
        assert_eq!(m.discovery, None);
        assert!(m.commands);
        let m = with("host = \"b\"\nca = \"/etc/daisee/ca.pem\"\nport = 8884\n")
            .unwrap()
            .mqtt
            .unwrap();
        assert_eq!(m.tls, Some(MqttTls::Ca("/etc/daisee/ca.pem".into())));
        assert_eq!(m.port, 8884);
    }

    #[test]
    fn wrong_settings_are_named() {
        for (table, key, reason) in [
            ("host = \"\"\n", "mqtt.host", "empty"),
            ("host = \"a b\"\n", "mqtt.host", "not a host name"),
            ("host = \"b\"\nport = 0\n", "mqtt.port", "not a port"),
            (
                "host = \"b\"\ntls = false\nca = \"/c.pem\"\n",
                "mqtt.ca",
                "tls = true",
            ),
            ("host = \"b\"\nca = \"c.pem\"\n", "mqtt.ca", "absolute"),
            (
                "host = \"b\"\npassword_file = \"/p\"\n",
                "mqtt.password_file",
                "needs a username",
            ),
            (
                "host = \"b\"\nnode_id = \"a b\"\n",
                "mqtt.node_id",
                "letters",
            ),
            (
                "host = \"b\"\nprefix = \"a/+/b\"\n",
                "mqtt.prefix",
                "not a topic",
            ),
            (
                "host = \"b\"\nprefix = \"a//b\"\n",
                "mqtt.prefix",
                "not a topic",
            ),
            (
                "host = \"b\"\nprefix = \"$SYS/x\"\n",
                "mqtt.prefix",
                "not a topic",
            ),
            (
                "host = \"b\"\ndiscovery = false\ndiscovery_prefix = \"ha\"\n",
                "mqtt.discovery_prefix",
                "off",
            ),
        ] {
            let e = with(table).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.to_string().contains(reason), "{reason:?} in {e}");
        }
    }

    #[test]
    fn a_name_with_a_topic_separator_is_refused_only_with_mqtt_on() {
        let text = DEMO.replace("name = \"flex_loads\"", "name = \"flex/loads\"");
        assert!(Config::parse(&text).is_ok());
        let e = Config::parse(&format!("{text}\n[mqtt]\nhost = \"b\"\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mqtt"), "{e}");
        assert!(
            e.to_string().contains("`flex/loads` is a topic level"),
            "{e}"
        );
    }
}

//! The gateway agent's D-Bus API, written once for the service and its clients: the bus name,
//! the object paths, the proxies of every interface (whose attributes carry the interface
//! names), the error names and the types that cross the bus. Described for people in
//! `agent/dbus/org.daisee.Gateway1.xml` and docs/dbus.md.

mod proxies;

pub use proxies::{
    ConfigProxy, ControllerProxy, DialogueProxy, GatewayProxy, HistoryProxy, InverterProxy,
    LedgerProxy, MeterProxy, MqttProxy, RelayProxy, UpdateProxy, WebProxy,
};

/// The bus name the agent owns.
pub const BUS_NAME: &str = "org.daisee.Gateway1";
/// The root of its objects, where the ObjectManager is.
pub const ROOT: &str = "/org/daisee/Gateway1";
/// The prefix of the agent's error names (`org.daisee.Gateway1.Error.InvalidConfig`).
pub const ERROR_PREFIX: &str = "org.daisee.Gateway1.Error";

/// The gateway object.
pub const GATEWAY_PATH: &str = "/org/daisee/Gateway1/Gateway";
/// The configuration object.
pub const CONFIG_PATH: &str = "/org/daisee/Gateway1/Config";
/// The demand-response object.
pub const CONTROLLER_PATH: &str = "/org/daisee/Gateway1/Controller";
/// The history object.
pub const HISTORY_PATH: &str = "/org/daisee/Gateway1/History";
/// The machine dialogue's object (when the gateway is in a community).
pub const DIALOGUE_PATH: &str = "/org/daisee/Gateway1/Dialogue";
/// The ledger's object (when the gateway records on one).
pub const LEDGER_PATH: &str = "/org/daisee/Gateway1/Ledger";
/// The update slots object.
pub const UPDATE_PATH: &str = "/org/daisee/Gateway1/Update";
/// The MQTT connection's object (when the gateway publishes to a broker).
pub const MQTT_PATH: &str = "/org/daisee/Gateway1/Mqtt";
/// The web page's object (when the gateway serves one).
pub const WEB_PATH: &str = "/org/daisee/Gateway1/Web";

/// The interface name a proxy carries (`interface_of::<RelayProxy>()`).
pub fn interface_of<P: zbus::proxy::Defaults>() -> &'static str {
    P::INTERFACE.as_ref().map_or("", |name| name.as_str())
}

/// The object of the sensor or meter channel `name`.
pub fn meter_path(name: &str) -> String {
    format!("{ROOT}/Meter/{}", path_segment(name))
}

/// The object of relay `name`.
pub fn relay_path(name: &str) -> String {
    format!("{ROOT}/Relay/{}", path_segment(name))
}

/// The object of inverter `name`.
pub fn inverter_path(name: &str) -> String {
    format!("{ROOT}/Inverter/{}", path_segment(name))
}

/// A D-Bus object path segment for a name, escaped as systemd escapes unit names on the bus:
/// letters and digits kept, every other byte `_XX` (so `heat-pump` is `heat_2dpump` and
/// `rooftop_pv` is `rooftop_5fpv`); different names never share a path. An empty name is `_`.
pub fn path_segment(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("_{b:02x}"),
        })
        .collect()
}

/// One slot of the A/B pair (or any other slot RAUC manages), as `Update.Slots()` returns it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct UpdateSlot {
    /// RAUC's slot name, `rootfs.0`.
    pub name: String,
    /// The boot loader's name for it, `A`.
    pub bootname: String,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// `good` or `bad` as the boot loader sees it; empty for slots it does not boot.
    pub boot_status: String,
    /// The version of the bundle last installed into it; empty if none was.
    pub bundle_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_distinct_path_segments() {
        assert_eq!(path_segment("heat-pump"), "heat_2dpump");
        assert_eq!(path_segment("rooftop_pv"), "rooftop_5fpv");
        assert_eq!(path_segment(""), "_");
        assert_ne!(path_segment("a-b"), path_segment("a_b"));
        assert_eq!(relay_path("boiler"), "/org/daisee/Gateway1/Relay/boiler");
        assert_eq!(
            interface_of::<RelayProxy<'_>>(),
            "org.daisee.Gateway1.Relay"
        );
    }
}

//! Tables of what the agent's objects say, read in one `GetManagedObjects` call.

use std::collections::HashMap;

use daisee_api::{
    BUS_NAME, ConfigProxy, ControllerProxy, DialogueProxy, GatewayProxy, InverterProxy, MeterProxy,
    MqttProxy, ROOT, RelayProxy, UpdateProxy, WebProxy, interface_of,
};
use zbus::Connection;
use zbus::fdo::{ManagedObjects, ObjectManagerProxy};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

type Properties = HashMap<String, OwnedValue>;

/// Every object of the agent, with its properties.
pub(crate) async fn objects(conn: &Connection) -> zbus::Result<ManagedObjects> {
    let manager = ObjectManagerProxy::builder(conn)
        .destination(BUS_NAME)?
        .path(ROOT)?
        .build()
        .await?;
    Ok(manager.get_managed_objects().await?)
}

/// The properties of every object with `interface`, in path order.
fn with<'a>(objects: &'a ManagedObjects, interface: &str) -> Vec<&'a Properties> {
    let mut found: Vec<(&OwnedObjectPath, &Properties)> = objects
        .iter()
        .filter_map(|(path, ifaces)| {
            ifaces
                .iter()
                .find(|(name, _)| name.as_str() == interface)
                .map(|(_, props)| (path, props))
        })
        .collect();
    found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    found.into_iter().map(|(_, p)| p).collect()
}

fn get<T: TryFrom<OwnedValue>>(props: &Properties, name: &str) -> Option<T> {
    props
        .get(name)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| T::try_from(v).ok())
}

fn text(props: &Properties, name: &str) -> String {
    get(props, name).unwrap_or_default()
}

fn int(props: &Properties, name: &str) -> i64 {
    get(props, name).unwrap_or_default()
}

fn counter(props: &Properties, name: &str) -> u64 {
    get(props, name).unwrap_or_default()
}

fn flag(props: &Properties, name: &str) -> bool {
    get(props, name).unwrap_or_default()
}

/// A channel's voltage (its phases' when it has several) and frequency; `-` where it measures
/// none.
fn voltage_and_frequency(m: &Properties) -> (String, String) {
    let values: HashMap<String, i64> = get(m, "Values").unwrap_or_default();
    let volts = |key: &str| {
        values
            .get(key)
            .map(|mv| format!("{:.1}", *mv as f64 / 1000.0))
    };
    let phases: Vec<String> = (1..=3)
        .filter_map(|l| volts(&format!("l{l}_voltage_mv")))
        .collect();
    let voltage = volts("voltage_mv")
        .or_else(|| (!phases.is_empty()).then(|| phases.join("/")))
        .unwrap_or_else(|| "-".into());
    let frequency = values
        .get("frequency_mhz")
        .map_or_else(|| "-".into(), |mhz| format!("{:.2}", *mhz as f64 / 1000.0));
    (voltage, frequency)
}

/// Every sensor, meter and inverter channel.
pub(crate) fn meters(objects: &ManagedObjects) -> zbus::Result<()> {
    println!(
        "{:<16} {:<8} {:>11} {:>17} {:>7} {:>14} {:>14}  FAULT",
        "METER", "DEVICE", "POWER W", "VOLTAGE V", "FREQ", "IMPORT KWH", "EXPORT KWH"
    );
    for m in with(objects, interface_of::<MeterProxy<'_>>()) {
        let power = if flag(m, "Online") {
            format!("{:.1}", int(m, "Power") as f64 / 1000.0)
        } else {
            "offline".into()
        };
        let (voltage, frequency) = voltage_and_frequency(m);
        println!(
            "{:<16} {:<8} {:>11} {:>17} {:>7} {:>14.3} {:>14.3}  {}",
            text(m, "Name"),
            text(m, "Device"),
            power,
            voltage,
            frequency,
            counter(m, "ImportEnergy") as f64 / 1e6,
            counter(m, "ExportEnergy") as f64 / 1e6,
            text(m, "Fault"),
        );
    }
    Ok(())
}

/// Every relay.
pub(crate) fn relays(objects: &ManagedObjects) -> zbus::Result<()> {
    println!("{:<16} {:<8} {:<7} {:<5}", "RELAY", "STATE", "MODE", "SAFE");
    for r in with(objects, interface_of::<RelayProxy<'_>>()) {
        println!(
            "{:<16} {:<8} {:<7} {:<5}",
            text(r, "Name"),
            text(r, "State"),
            text(r, "Mode"),
            text(r, "SafeState")
        );
    }
    Ok(())
}

/// Every inverter's limit.
pub(crate) fn inverters(objects: &ManagedObjects) -> zbus::Result<()> {
    println!(
        "{:<16} {:>9} {:>8} {:<7}  FAULT",
        "INVERTER", "RATED W", "LIMIT", "MODE"
    );
    for i in with(objects, interface_of::<InverterProxy<'_>>()) {
        let limit = if flag(i, "Limited") {
            format!("{} %", get::<u8>(i, "LimitPercent").unwrap_or(100))
        } else {
            "none".into()
        };
        println!(
            "{:<16} {:>9.0} {:>8} {:<7}  {}",
            text(i, "Name"),
            int(i, "Rated") as f64 / 1000.0,
            limit,
            text(i, "Mode"),
            text(i, "Fault"),
        );
    }
    Ok(())
}

/// The update slots.
pub(crate) async fn update(update: &UpdateProxy<'_>) -> zbus::Result<()> {
    let booted = update.boot_slot().await?;
    let (operation, error) = update.installer().await?;
    println!("booted slot {booted}, RAUC {operation}");
    if !error.is_empty() {
        println!("last install failed: {error}");
    }
    println!(
        "{:<10} {:<4} {:<9} {:<6} BUNDLE",
        "SLOT", "BOOT", "STATE", "STATUS"
    );
    for s in update.slots().await? {
        println!(
            "{:<10} {:<4} {:<9} {:<6} {}",
            s.name, s.bootname, s.state, s.boot_status, s.bundle_version
        );
    }
    Ok(())
}

/// The gateway, demand response, and every channel, relay and inverter.
pub(crate) async fn status(conn: &Connection) -> zbus::Result<()> {
    let objects = objects(conn).await?;
    let gateway = with(&objects, interface_of::<GatewayProxy<'_>>());
    let config = with(&objects, interface_of::<ConfigProxy<'_>>());
    if let (Some(g), Some(c)) = (gateway.first(), config.first()) {
        println!(
            "gateway `{}` (daisee-agent {}), configuration revision {}",
            text(g, "Name"),
            text(g, "Version"),
            counter(c, "Revision")
        );
        let address = text(g, "Address");
        if !address.is_empty() {
            println!("address {address}");
        }
    }
    if let Some(c) = with(&objects, interface_of::<ControllerProxy<'_>>()).first() {
        println!("{}", control_line(c));
    }
    if let Some(d) = with(&objects, interface_of::<DialogueProxy<'_>>()).first() {
        print!("{}", dialogue_lines(d));
    }
    if let Some(m) = with(&objects, interface_of::<MqttProxy<'_>>()).first() {
        println!("{}", mqtt_line(m));
    }
    if let Some(w) = with(&objects, interface_of::<WebProxy<'_>>()).first() {
        let writes = if flag(w, "Writes") {
            "relays switch from it after a login"
        } else {
            "it reads only"
        };
        println!("web page: {}, {writes}", text(w, "Url"));
    }
    println!();
    meters(&objects)?;
    println!();
    relays(&objects)?;
    if !with(&objects, interface_of::<InverterProxy<'_>>()).is_empty() {
        println!();
        inverters(&objects)?;
    }
    Ok(())
}

/// The machine dialogue, or why the gateway takes no part in one.
pub(crate) fn dialogue(objects: &ManagedObjects) -> zbus::Result<()> {
    match with(objects, interface_of::<DialogueProxy<'_>>()).first() {
        Some(d) => print!("{}", dialogue_lines(d)),
        None => println!("no dialogue: the configuration has no [dialogue]"),
    }
    Ok(())
}

/// The community, the peers, and the latest slot and report.
fn dialogue_lines(d: &Properties) -> String {
    let mut out = format!(
        "dialogue: community `{}`, {} peers, peer id {}; bid for slot {}; {} messages refused\n",
        text(d, "Community"),
        get::<u32>(d, "Peers").unwrap_or_default(),
        text(d, "PeerId"),
        int(d, "BidSlot"),
        counter(d, "Rejected"),
    );
    let slot = int(d, "LastSlot");
    if slot != 0 {
        if get::<i32>(d, "PriceStep").unwrap_or(-1) >= 0 {
            out += &format!(
                "slot {slot} agreed: price {} µ/kWh, this gateway {:.0} W, {:.0} W kept in the community\n",
                int(d, "Price"),
                int(d, "Allocation") as f64 / 1000.0,
                int(d, "KeptLocal") as f64 / 1000.0,
            );
        } else {
            out += &format!("slot {slot}: {}\n", text(d, "Outcome"));
        }
    }
    let report = int(d, "ReportSlot");
    if report != 0 {
        out += &format!(
            "slot {report} reported: {:.1} Wh beyond the allocation\n",
            int(d, "Deviation") as f64 / 1000.0
        );
    }
    out
}

/// The MQTT broker and whether the gateway is connected to it.
fn mqtt_line(m: &Properties) -> String {
    let broker = text(m, "Broker");
    if flag(m, "Connected") {
        format!(
            "mqtt: connected to {broker}, {} states published, {} commands taken",
            counter(m, "Published"),
            counter(m, "Commands")
        )
    } else {
        match text(m, "LastError") {
            error if error.is_empty() => format!("mqtt: connecting to {broker}"),
            error => format!("mqtt: not connected to {broker}: {error}"),
        }
    }
}

fn control_line(c: &Properties) -> String {
    let watts = |name: &str| match int(c, name) {
        0 => "none".to_owned(),
        mw => format!("{:.0} W", mw as f64 / 1000.0),
    };
    let export = if flag(c, "ExportLimited") {
        format!("{:.0} W", int(c, "ExportLimit") as f64 / 1000.0)
    } else {
        "none".to_owned()
    };
    format!(
        "demand response: grid {:.1} W, import limit {}, export limit {export}{}",
        int(c, "GridPower") as f64 / 1000.0,
        watts("ImportLimit"),
        if flag(c, "Stale") {
            ", measurements stale: loads in their safe states"
        } else {
            ""
        }
    )
}

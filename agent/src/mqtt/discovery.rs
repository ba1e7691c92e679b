//! Home Assistant's device-based MQTT discovery: one retained message that announces the gateway
//! as a device with an entity per reading and relay, so that its meters appear in the energy
//! dashboard by themselves (power: `device_class` power, W, `state_class` measurement; energy:
//! `device_class` energy, Wh, `state_class` total_increasing, since a sensor's integrated counters
//! start again from zero when the agent restarts without a store).

use serde_json::{Value, json};

use super::topics::Topics;

/// What the gateway announces.
#[derive(Debug, Clone)]
pub(super) struct Announcement {
    /// The gateway's name, the device's name in Home Assistant.
    pub(super) name: String,
    /// Its node id: the root of every unique id.
    pub(super) node: String,
    /// Every sensor, meter and inverter channel.
    pub(super) channels: Vec<String>,
    /// Every relay.
    pub(super) relays: Vec<String>,
    /// Whether relays take commands (a switch and an "automatic" button each) or only show
    /// their state.
    pub(super) commands: bool,
}

/// The discovery message of `a`, whose states are published under `topics`.
pub(super) fn discovery(a: &Announcement, topics: &Topics) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut components = serde_json::Map::new();
    for channel in &a.channels {
        let state = topics.channel(channel);
        let power = sensor(
            &format!("{channel} power"),
            "power",
            "W",
            "measurement",
            &state,
            "power_w",
        );
        add(&mut components, a, channel, "power", power, true);
        for (flow, field) in [("import", "import_wh"), ("export", "export_wh")] {
            let name = format!("{channel} energy {flow}");
            let energy = sensor(&name, "energy", "Wh", "total_increasing", &state, field);
            add(&mut components, a, channel, flow, energy, true);
        }
    }
    for relay in &a.relays {
        relay_components(&mut components, a, topics, relay);
    }
    json!({
        "device": {
            "identifiers": [a.node],
            "name": a.name,
            "manufacturer": "DAISEE",
            "model": "Energy gateway",
            "sw_version": version,
        },
        "origin": {
            "name": "daisee-agent",
            "sw_version": version,
            "support_url": env!("CARGO_PKG_REPOSITORY"),
        },
        "components": components,
        "availability_topic": topics.availability(),
        "qos": 1,
    })
}

/// A sensor of `class` in `unit`, read from `field` of the JSON states on `state`.
fn sensor(
    name: &str,
    class: &str,
    unit: &str,
    state_class: &str,
    state: &str,
    field: &str,
) -> Value {
    json!({
        "platform": "sensor",
        "name": name,
        "device_class": class,
        "unit_of_measurement": unit,
        "state_class": state_class,
        "suggested_display_precision": 0,
        "state_topic": state,
        "value_template": format!("{{{{ value_json.{field} }}}}"),
    })
}

/// A relay's entities: a switch and an "automatic" button with commands, a binary sensor
/// without; the other kind is named for removal, so that changing `commands` leaves no stale
/// entity.
fn relay_components(
    components: &mut serde_json::Map<String, Value>,
    a: &Announcement,
    topics: &Topics,
    relay: &str,
) {
    let state = json!({
        "name": relay,
        "state_topic": topics.relay(relay),
        "value_template": "{{ value_json.state }}",
    });
    let mut switch = json!({
        "platform": "switch",
        "command_topic": topics.relay_command(relay),
        "payload_on": "ON",
        "payload_off": "OFF",
        "state_on": "ON",
        "state_off": "OFF",
    });
    merge(&mut switch, state.clone());
    let automatic = json!({
        "platform": "button",
        "name": format!("{relay} automatic"),
        "command_topic": topics.relay_command(relay),
        "payload_press": "AUTO",
    });
    let mut sensor = json!({
        "platform": "binary_sensor",
        "device_class": "power",
        "payload_on": "ON",
        "payload_off": "OFF",
    });
    merge(&mut sensor, state);
    add(components, a, relay, "switch", switch, a.commands);
    add(components, a, relay, "automatic", automatic, a.commands);
    add(components, a, relay, "state", sensor, !a.commands);
}

/// Adds `entity` under its unique id, `<node>_<name>_<what>` with the name escaped so that two
/// names never share an id; or, not `shown`, its platform alone: Home Assistant's way of
/// removing a component.
fn add(
    components: &mut serde_json::Map<String, Value>,
    a: &Announcement,
    name: &str,
    what: &str,
    mut entity: Value,
    shown: bool,
) {
    let id = format!("{}_{}_{what}", a.node, daisee_api::path_segment(name));
    if shown {
        entity["unique_id"] = Value::String(id.clone());
    } else {
        entity = json!({ "platform": entity["platform"] });
    }
    components.insert(id, entity);
}

/// `extra`'s fields added to `entity`.
fn merge(entity: &mut Value, extra: Value) {
    if let (Value::Object(e), Value::Object(x)) = (entity, extra) {
        e.extend(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(commands: bool) -> Announcement {
        Announcement {
            name: "home".into(),
            node: "daisee_home".into(),
            channels: vec!["grid".into(), "rooftop_pv".into()],
            relays: vec!["boiler".into()],
            commands,
        }
    }

    #[test]
    fn each_channel_has_power_and_two_counters_and_each_relay_its_state() {
        let topics = Topics::new("daisee/home".into(), None, "daisee_home".into());
        let d = discovery(&announcement(false), &topics);
        let c = d["components"].as_object().unwrap();
        // Three per channel, the relay's state, and its switch and button to be removed.
        assert_eq!(c.len(), 2 * 3 + 3);
        let power = &c["daisee_home_rooftop_5fpv_power"];
        assert_eq!(power["state_topic"], "daisee/home/channel/rooftop_pv");
        assert_eq!(power["unique_id"], "daisee_home_rooftop_5fpv_power");
        assert_eq!(
            c["daisee_home_grid_export"]["value_template"],
            "{{ value_json.export_wh }}"
        );
        assert_eq!(c["daisee_home_boiler_state"]["platform"], "binary_sensor");
        assert_eq!(
            c["daisee_home_boiler_switch"],
            json!({ "platform": "switch" })
        );
        assert_eq!(d["availability_topic"], "daisee/home/status");
        let d = discovery(&announcement(true), &topics);
        let c = d["components"].as_object().unwrap();
        assert_eq!(c["daisee_home_boiler_switch"]["platform"], "switch");
        assert_eq!(
            c["daisee_home_boiler_state"],
            json!({ "platform": "binary_sensor" })
        );
        assert_eq!(
            c["daisee_home_boiler_automatic"]["command_topic"],
            "daisee/home/relay/boiler/set"
        );
    }
}

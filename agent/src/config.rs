//! The agent's configuration file (TOML): what it reads, which backend each device is on, and the
//! simulated site of the `sim` backend. Every error names the key and the line.

mod check;
mod control;
mod dialogue;
mod file;
mod gateway;
mod inverter;
mod ledger;
mod meter;
mod modbus;
mod mqtt;
mod relay;
mod sensor;
mod shared;
mod sim;
mod store;
mod update;
mod web;

pub use check::ConfigError;
pub use control::ControlConfig;
pub use dialogue::DialogueConfig;
pub use file::{Change, ChangeError, ConfigFile};
pub use inverter::Inverter;
pub use ledger::LedgerConfig;
pub use meter::{Meter, MeterMap};
pub use modbus::{Link, ModbusBus};
pub use mqtt::{MqttConfig, MqttTls};
pub use relay::{Relay, RelayOutput};
pub use sensor::{I2cBus, Sensor, SensorDevice};
pub use shared::SharedConfig;
pub use sim::{SimLoad, SimSite};
pub use store::StoreConfig;
pub use update::{Auto, UpdateConfig};
pub use web::WebConfig;

use serde::Deserialize;
use toml::Spanned;

use check::{Locator, Names};

/// The built-in demo gateway: a home with PV, switched loads, Modbus devices, all on `sim`.
pub const DEMO: &str = include_str!("demo.toml");

/// The largest configuration accepted, in bytes, from D-Bus or on disk.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The gateway's name, for display and logs.
    pub name: String,
    /// Time between two polls of every device.
    pub poll_interval_ms: u64,
    /// The simulated site: there is one whenever a device is on the `sim` backend.
    pub sim: Option<SimSite>,
    /// Sensors, in file order.
    pub sensors: Vec<Sensor>,
    /// Relays, in file order.
    pub relays: Vec<Relay>,
    /// Modbus buses, in file order.
    pub buses: Vec<ModbusBus>,
    /// Modbus meters, in file order.
    pub meters: Vec<Meter>,
    /// Modbus inverters, in file order.
    pub inverters: Vec<Inverter>,
    /// The history, if kept.
    pub store: Option<StoreConfig>,
    /// Demand response, if any.
    pub control: Option<ControlConfig>,
    /// The machine dialogue, if the gateway bids in a community.
    pub dialogue: Option<DialogueConfig>,
    /// The ledger, if the gateway records on one.
    pub ledger: Option<LedgerConfig>,
    /// Automatic updates, if the gateway follows a feed.
    pub update: Option<UpdateConfig>,
    /// The MQTT broker it publishes to, if any.
    pub mqtt: Option<MqttConfig>,
    /// The web page, if served.
    pub web: Option<WebConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: Option<Spanned<gateway::GatewayTable>>,
    sim: Option<Spanned<sim::SimTable>>,
    #[serde(default)]
    sensor: Vec<Spanned<sensor::SensorTable>>,
    #[serde(default)]
    relay: Vec<Spanned<relay::RelayTable>>,
    #[serde(default)]
    modbus: Vec<Spanned<modbus::ModbusTable>>,
    #[serde(default)]
    meter: Vec<Spanned<meter::MeterTable>>,
    #[serde(default)]
    inverter: Vec<Spanned<inverter::InverterTable>>,
    store: Option<Spanned<store::StoreTable>>,
    control: Option<Spanned<control::ControlTable>>,
    dialogue: Option<Spanned<dialogue::DialogueTable>>,
    ledger: Option<Spanned<ledger::LedgerTable>>,
    update: Option<Spanned<update::UpdateTable>>,
    mqtt: Option<Spanned<mqtt::MqttTable>>,
    web: Option<Spanned<web::WebTable>>,
}

impl Config {
    /// Parses and validates a configuration file's text (reading the profile files it names).
    pub fn parse(source: &str) -> Result<Self, ConfigError> {
        if source.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::whole(format!(
                "the configuration is {} bytes, more than the {MAX_CONFIG_BYTES} allowed",
                source.len()
            )));
        }
        let at = Locator::file(source);
        let file: File = toml::from_str(source).map_err(|e| at.syntax(&e))?;
        let (name, poll_interval_ms) = gateway::gateway(&at, file.gateway.as_ref())?;
        let relays = relay::relays(&at, &file.relay)?;
        let sim = file
            .sim
            .as_ref()
            .map(|t| sim::site(&at, t, &relays))
            .transpose()?;
        let mut channels = Names::default();
        let sensors = sensor::sensors(&at, &file.sensor, sim.as_ref(), &mut channels)?;
        let buses = modbus::buses(&at, &file.modbus)?;
        let mut devices = meter::Devices::new(&buses, sim.as_ref(), &mut channels);
        let meters = devices.meters(&at, &file.meter)?;
        let inverters = inverter::inverters(&at, &file.inverter, &mut devices)?;
        modbus::check_sim(&at, &file.modbus, sim.as_ref())?;
        let store = file
            .store
            .as_ref()
            .map(|t| store::store(&at, t))
            .transpose()?;
        let cx = control::Context {
            channels: &channels,
            poll_interval_ms,
            curtailable: inverters.iter().any(Inverter::curtailable),
        };
        let control = file
            .control
            .as_ref()
            .map(|t| control::control(&at, t, &cx))
            .transpose()?;
        control::check_relays(&relays, control.as_ref())?;
        let dialogue = file
            .dialogue
            .as_ref()
            .map(|t| dialogue::dialogue(&at, t, &channels, store.is_some(), sim.as_ref()))
            .transpose()?;
        let ledger = file
            .ledger
            .as_ref()
            .map(|t| ledger::ledger(&at, t, &channels, store.is_some()))
            .transpose()?;
        let update = file
            .update
            .as_ref()
            .map(|t| update::update(&at, t, store.as_ref().map(|s| s.dir.as_path())))
            .transpose()?;
        let web = file
            .web
            .as_ref()
            .map(|t| web::web(&at, t, store.is_some()))
            .transpose()?;
        let mut config = Config {
            name,
            poll_interval_ms,
            sim,
            sensors,
            relays,
            buses,
            meters,
            inverters,
            store,
            control,
            dialogue,
            ledger,
            update,
            mqtt: None,
            web,
        };
        // Checked last: its names are every channel's and relay's.
        if let Some(table) = &file.mqtt {
            let names = config
                .channels()
                .chain(config.relays.iter().map(|r| r.name.as_str()));
            config.mqtt = Some(mqtt::mqtt(&at, table, names)?);
        }
        Ok(config)
    }

    /// Whether `new` takes a restart: anything but the `[control]` settings changed, lines aside.
    pub fn needs_restart(&self, new: &Config) -> bool {
        self.control.is_some() != new.control.is_some() || self.devices() != new.devices()
    }

    /// Every channel's name: the sensors, the meters, then the inverters.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.sensors
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.modbus_devices().map(|m| m.name.as_str()))
    }

    /// Every device read over Modbus, as a meter: the meters, then the inverters.
    pub fn modbus_devices(&self) -> impl Iterator<Item = &Meter> {
        self.meters
            .iter()
            .chain(self.inverters.iter().map(|i| &i.meter))
    }

    /// The configuration without the `[control]` settings and the line numbers.
    fn devices(&self) -> Config {
        let mut c = self.clone();
        c.control = None;
        c.sensors.iter_mut().for_each(|s| s.line = 0);
        c.relays.iter_mut().for_each(|r| r.line = 0);
        c.buses.iter_mut().for_each(|b| b.line = 0);
        c.meters.iter_mut().for_each(|m| m.line = 0);
        c.inverters.iter_mut().for_each(|i| i.meter.line = 0);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::sensor::tests::INA;
    use super::*;

    fn error(source: &str) -> ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    #[test]
    fn the_demo_parses() {
        let c = Config::parse(DEMO).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.sensors.len(), 3);
        assert_eq!(c.relays.len(), 2);
        assert!(c.sim.is_some());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = error(&INA.replace("address =", "adress ="));
        assert_eq!(e.line, Some(7));
        assert!(e.message.contains("unknown field `adress`"), "{e}");
    }

    #[test]
    fn a_value_serde_refuses_is_named_with_its_key() {
        let e = error(&INA.replace("address = 0x41", "address = \"x\""));
        assert_eq!(e.key.as_deref(), Some("sensor[0].address"), "{e}");
        let e = error(&INA.replace("backend = \"linux\"", "backend = \"linuxx\""));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("sensor[0].backend")),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_is_located() {
        let e = error(&INA.replace("shunt_ohms = 0.1", "shunt_ohms = \"0.1\""));
        assert_eq!(e.line, Some(8));
        assert!(e.message.contains("invalid type"), "{e}");
        assert!(e.message.ends_with("expected a number"), "{e}");
        let e = error(&INA.replace("shunt_ohms", "reverse = 1\nshunt_ohms"));
        assert!(e.message.ends_with("expected true or false"), "{e}");
        let e = error(&INA.replace("address = 0x41", "address = 300"));
        assert!(!e.message.contains("u8"), "{e}");
    }

    #[test]
    fn a_huge_value_is_not_echoed() {
        let huge = "x".repeat(60_000);
        let e = error(&INA.replace("shunt_ohms = 0.1", &format!("shunt_ohms = \"{huge}\"")));
        assert!(e.to_string().len() < 200, "{e}");
        let e = error(&INA.replace("backend = \"linux\"", &format!("backend = \"{huge}\"")));
        assert!(e.to_string().len() < 300, "{e}");
        let e = error(&format!("[control]\ngrid = \"{huge}\"\n"));
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn a_configuration_over_the_bound_is_refused_by_its_size() {
        let text = format!("{DEMO}\n#{}\n", "x".repeat(MAX_CONFIG_BYTES));
        let e = error(&text);
        assert_eq!(
            e.to_string(),
            format!(
                "the configuration is {} bytes, more than the 65536 allowed",
                text.len()
            )
        );
        let just = format!("{DEMO}#{}\n", "x".repeat(MAX_CONFIG_BYTES - DEMO.len() - 2));
        assert!(Config::parse(&just).is_ok());
    }

    #[test]
    fn every_name_is_checked_the_same_way() {
        let bus = "[[modbus]]\nname = \"\"\nbackend = \"tcp\"\naddress = \"10.0.0.1:502\"\n";
        assert_eq!(error(bus).key.as_deref(), Some("modbus[0].name"));
        let long = INA.replace("battery", &"b".repeat(65));
        assert!(error(&long).message.contains("more than 64"));
        let control = INA.replace("battery", "bat\\ttery");
        assert!(error(&control).message.contains("control characters"));
    }

    #[test]
    fn only_changes_outside_control_need_a_restart() {
        let demo = Config::parse(DEMO).unwrap();
        let live = [
            DEMO.replace("import_limit_w = 6000", "import_limit_w = 7000"),
            DEMO.replace(
                "hysteresis_w = 500",
                "hysteresis_w = 500\nexport_limit_w = 0",
            ),
            DEMO.replace("grid = \"grid\"", "grid = \"rooftop_pv\""),
            format!("# moved down\n\n{DEMO}"),
        ];
        for text in live {
            assert!(
                !demo.needs_restart(&Config::parse(&text).unwrap()),
                "{text}"
            );
        }
        let restart = [
            DEMO.replace("peak_w = 3500", "peak_w = 3000"),
            DEMO.replace("rated_w = 6000", "rated_w = 5000"),
            DEMO.replace("priority = 2", "priority = 3"),
            DEMO.replace("name = \"demo\"", "name = \"home\""),
            DEMO.replace(
                "[control]\ngrid = \"grid\"\nimport_limit_w = 6000\nhysteresis_w = 500\n",
                "",
            )
            .replace("nominal_w = ", "# nominal_w = ")
            .replace("priority = ", "# priority = ")
            .replace("min_o", "# min_o")
            .replace("max_switches", "# max_switches"),
        ];
        for text in restart {
            assert!(demo.needs_restart(&Config::parse(&text).unwrap()), "{text}");
        }
    }

    #[test]
    fn broken_toml_is_located() {
        let e = error("[gateway]\nname = \"x\"\npoll_interval_ms = \n");
        assert_eq!(e.line, Some(3));
    }
}

//! The gateway's devices, built from the configuration on their backends: they report what they
//! measure and carry out what they are told; they do not decide.

mod buses;
mod channel;
mod inverters;
mod relays;
mod sensors;
mod site;

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::{Clock, Inverter, PowerSensor, RelayState, Timestamp};

use daisee_hal::linux::LinuxI2c;
use daisee_hal::rpi;

use crate::config::{Config, I2cBus, SensorDevice};
pub use crate::fault::{ConnectError, Fault};
pub use relays::AnyRelay;
pub use sensors::{Connect, Reconnecting, Sensor};

use buses::Buses;
use channel::{Channel, Measured};
use relays::Output;
use site::Sim;

/// Devices that could not start, with every reason at once.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct BuildError(pub Vec<String>);

/// What every device reported at one instant.
#[derive(Debug, Clone)]
pub struct Readings {
    /// When the poll started.
    pub at: Timestamp,
    /// Every channel, in configuration order: sensors, then Modbus devices.
    pub channels: Vec<crate::snapshot::ChannelState>,
    /// Every relay, in configuration order.
    pub relays: Vec<RelayReading>,
}

/// A relay as read back from its line.
#[derive(Debug, Clone)]
pub struct RelayReading {
    /// The relay's name.
    pub name: Arc<str>,
    /// The state read back.
    pub state: Result<RelayState, Fault>,
    /// Its safe state.
    pub safe: RelayState,
}

struct SensorChannel {
    channel: Channel,
    sensor: Reconnecting,
}

/// The devices of a gateway.
pub struct Devices {
    clock: Arc<dyn Clock>,
    sensors: Vec<SensorChannel>,
    relays: Vec<Output>,
    buses: Buses,
    warnings: Vec<String>,
}

impl Devices {
    /// Opens and sets up every configured device on `clock`. A device node that cannot be opened
    /// stops the start; a device that does not answer yet is only warned about and retried.
    /// Modbus buses are polled by tasks on the current tokio runtime, which must be running.
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, BuildError> {
        let mut errors = Vec::new();
        let mut sim = Sim::new(Arc::clone(&clock));
        let mut relays = Vec::new();
        for r in &config.relays {
            match relays::open(r, &mut sim) {
                Ok(output) => relays.push(output),
                Err(e) => errors.push(format!("relay `{}` (line {}): {e}", r.name, r.line)),
            }
        }
        sim.populate(config.sim.as_ref());
        let interval = Duration::from_millis(config.poll_interval_ms);
        let mut sensors = Vec::new();
        let mut warnings = Vec::new();
        for s in &config.sensors {
            let (device, connect) = connect(&s.device, &mut sim);
            match Reconnecting::start(connect) {
                Ok((sensor, fault)) => {
                    if let Some(fault) = fault {
                        warnings.push(format!(
                            "sensor `{}` (line {}) is not answering, will retry: {fault}",
                            s.name, s.line
                        ));
                    }
                    let channel = Channel::new(&s.name, device, interval);
                    sensors.push(SensorChannel { channel, sensor });
                }
                Err(e) => errors.push(format!("sensor `{}` (line {}): {e}", s.name, s.line)),
            }
        }
        let buses = Buses::start(config, &sim, &clock, &mut errors);
        if !errors.is_empty() {
            return Err(BuildError(errors));
        }
        Ok(Self {
            clock,
            sensors,
            relays,
            buses,
            warnings,
        })
    }

    /// What went wrong at start without stopping it (devices not answering yet).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every relay's state, read back from its line.
    pub fn relays(&mut self) -> Vec<RelayReading> {
        self.relays
            .iter_mut()
            .map(|r| RelayReading {
                name: Arc::clone(&r.name),
                state: r.relay.state(),
                safe: r.relay.safe_state(),
            })
            .collect()
    }

    /// Puts each named inverter under its limit (`None`: none): its bus writes it, renews it
    /// before the inverter reverts it, and lifts it when no longer wanted.
    pub fn limit_inverters(&mut self, wanted: &[(String, Option<daisee_control::Limit>)]) {
        for (name, limit) in wanted {
            let Some(inverter) = self
                .buses
                .inverters()
                .iter_mut()
                .find(|i| *i.name == **name)
            else {
                continue;
            };
            // Handing a limit to the bus task cannot fail; the write's outcome is its fault.
            let _ = match limit {
                Some(l) => inverter.limit_power(l.percent, l.revert),
                None => inverter.release_limit(),
            };
        }
    }

    /// Every curtailable inverter: the limit it confirmed, in percent, and the last write's fault.
    pub fn limits(&mut self) -> Vec<(Arc<str>, Option<u8>, Option<Fault>)> {
        self.buses
            .inverters()
            .iter_mut()
            .map(|i| {
                let limit = i.read().ok().and_then(|r| r.limit_percent);
                (Arc::clone(&i.name), limit, i.fault())
            })
            .collect()
    }

    /// Sets relay `name`, checking that it followed.
    pub fn set_relay(&mut self, name: &str, state: RelayState) -> Result<(), Fault> {
        let relay = self
            .relays
            .iter_mut()
            .find(|r| &*r.name == name)
            .ok_or_else(|| Fault {
                kind: daisee_hal::ErrorKind::Other,
                message: format!("no relay `{name}`"),
            })?;
        relay.relay.set(state)
    }

    /// Reads every sensor and relay once, and takes the latest reading of every Modbus device
    /// (their buses are polled by tasks of their own).
    pub fn read(&mut self) -> Readings {
        let at = self.clock.now();
        let mut channels = Vec::with_capacity(self.sensors.len());
        for s in &mut self.sensors {
            let measured = PowerSensor::read(&mut s.sensor).map(|r| Measured {
                reading: daisee_hal::MeterReading {
                    power: r.power,
                    voltage: Some(r.voltage),
                    current: Some(r.current),
                    ..Default::default()
                },
                import: None,
                export: None,
            });
            s.channel.record(at, measured);
            channels.push(s.channel.state());
        }
        channels.extend(self.buses.channels());
        Readings {
            at,
            channels,
            relays: self.relays(),
        }
    }
}

/// How to set up the sensor `device` on its backend, and the kind of device for display.
fn connect(device: &SensorDevice, sim: &mut Sim) -> (&'static str, Connect) {
    match device {
        SensorDevice::SimPower { loads } => ("sim", sim.power_sensor(loads)),
        SensorDevice::Ina219 { bus, settings } => {
            let settings = *settings;
            let connect: Connect = match bus {
                I2cBus::Linux { path, mode } => {
                    let (path, mode) = (path.clone(), *mode);
                    Box::new(move || sensors::ina219(LinuxI2c::open(&path, mode)?, settings))
                }
                I2cBus::Rpi { bus } => {
                    let bus = *bus;
                    Box::new(move || sensors::ina219(rpi::open_i2c(bus)?, settings))
                }
                I2cBus::Sim {
                    name,
                    loads,
                    bus_mv,
                } => sim.ina219(name, loads, *bus_mv, settings),
            };
            ("ina219", connect)
        }
    }
}

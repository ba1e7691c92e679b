//! The gateway: its devices built from the configuration, polled together into snapshots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daisee_hal::linux::{LinuxI2c, LinuxLine};
use daisee_hal::sim::{Ina219Chip, Load, SimI2cBus, SimLine, Site, SitePowerSensor};
use daisee_hal::{
    Clock, Energy, EnergyMeter, IntegratingMeter, MeterReading, MilliWatts, RelayState, Timestamp,
    rpi,
};
use daisee_ina219::Ina219;
use daisee_relay::Polarity;
use embedded_hal::i2c::I2c;

use crate::config::{Config, I2cBus, RelayOutput, SensorDevice};
use crate::device::{Connect, ConnectError, Fault, Reconnecting, Sensor, Switch};
use crate::modbus::ModbusMeters;

/// Gaps between readings up to this long are bridged when integrating energy.
const MAX_GAP_POLLS: u32 = 10;

/// A gateway that could not start, with every reason at once.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct BuildError(pub Vec<String>);

/// The live state of all devices at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the poll started.
    pub at: Timestamp,
    /// Every sensor channel, in configuration order.
    pub channels: Vec<ChannelState>,
    /// Every relay, in configuration order.
    pub relays: Vec<RelayStatus>,
    /// What demand response acted on, if it runs.
    pub control: Option<ControlStatus>,
}

/// What demand response acted on in one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlStatus {
    /// The grid power, if the grid channel was read.
    pub grid: Option<MilliWatts>,
    /// Whether it was too old to act on (the loads went to their safe states).
    pub stale: bool,
    /// The import limit in force.
    pub import_limit: Option<MilliWatts>,
}

/// Who decides a relay's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// Nobody: it stays in its safe state.
    Fixed,
    /// Demand response.
    Auto,
    /// A person, over D-Bus, until released.
    Manual,
}

/// One sensor channel in a snapshot.
#[derive(Debug, Clone)]
pub struct ChannelState {
    /// The channel's name.
    pub name: Arc<str>,
    /// The device behind it, for display.
    pub device: &'static str,
    /// This poll's reading, or why there is none.
    pub reading: Result<MeterReading, Fault>,
    /// When the reading was measured: this poll for a sensor, its bus's last round for a Modbus
    /// meter (which may be older when the bus is slow).
    pub read_at: Option<Timestamp>,
    /// Energy counted so far (kept while the device is offline).
    pub energy: Energy,
}

/// One relay in a snapshot.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// The relay's name.
    pub name: Arc<str>,
    /// The state read back from its line.
    pub state: Result<RelayState, Fault>,
    /// Its safe state.
    pub safe: RelayState,
    /// Who decides its state.
    pub mode: RelayMode,
}

struct Channel {
    name: Arc<str>,
    device: &'static str,
    meter: IntegratingMeter<Reconnecting, Arc<dyn Clock>>,
    energy: Energy,
}

struct Output {
    name: Arc<str>,
    relay: Box<dyn Switch>,
}

/// The devices of a gateway.
pub struct Gateway {
    name: String,
    clock: Arc<dyn Clock>,
    channels: Vec<Channel>,
    relays: Vec<Output>,
    meters: ModbusMeters,
    warnings: Vec<String>,
}

impl Gateway {
    /// Opens and sets up every configured device on `clock`. A device node that cannot be opened
    /// stops the start; a device that does not answer yet is only warned about and retried.
    /// Modbus buses are polled by tasks on the current tokio runtime, which must be running.
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, BuildError> {
        let mut errors = Vec::new();
        let mut sim_lines = HashMap::new();
        let mut relays = Vec::new();
        for r in &config.relays {
            let polarity = if r.active_low {
                Polarity::ActiveLow
            } else {
                Polarity::ActiveHigh
            };
            let level = polarity.level(r.safe_state);
            let relay: Result<Box<dyn Switch>, String> = match &r.output {
                RelayOutput::Linux { chip, line } => LinuxLine::open(chip, *line, level)
                    .map_err(|e| e.to_string())
                    .and_then(|l| switch(l, polarity, r.safe_state)),
                RelayOutput::Rpi { pin } => rpi::open_output(*pin, level)
                    .map_err(|e| e.to_string())
                    .and_then(|l| switch(l, polarity, r.safe_state)),
                RelayOutput::Sim => {
                    let line = SimLine::new(level);
                    sim_lines.insert(r.name.clone(), (line.clone(), polarity));
                    switch(line, polarity, r.safe_state)
                }
            };
            match relay {
                Ok(relay) => relays.push(Output {
                    name: r.name.as_str().into(),
                    relay,
                }),
                Err(e) => errors.push(format!("relay `{}` (line {}): {e}", r.name, r.line)),
            }
        }

        let site = config.sim.as_ref().map(|sim| {
            let mut site = Site::new(sim.seed);
            for load in &sim.loads {
                let relay = load.relay.as_ref().and_then(|r| sim_lines.get(r)).cloned();
                site.add(match relay {
                    Some((line, polarity)) => Load::switched(&load.name, load.profile, move || {
                        polarity.state(line.level()) == RelayState::On
                    }),
                    None => Load::new(&load.name, load.profile),
                });
            }
            Arc::new(site)
        });

        let max_gap = Duration::from_millis(config.poll_interval_ms) * MAX_GAP_POLLS;
        let mut sim_buses: HashMap<String, SimI2cBus> = HashMap::new();
        let mut channels = Vec::new();
        let mut warnings = Vec::new();
        for s in &config.sensors {
            let (device, connect): (&'static str, Connect) = match &s.device {
                SensorDevice::SimPower { loads } => {
                    let Some(site) = site.clone() else {
                        errors.push(format!(
                            "sensor `{}` (line {}): no [sim] site",
                            s.name, s.line
                        ));
                        continue;
                    };
                    let (loads, clock) = (loads.clone(), Arc::clone(&clock));
                    let connect: Connect = Box::new(move || {
                        let sensor = SitePowerSensor::new(
                            Arc::clone(&site),
                            loads.clone(),
                            Arc::clone(&clock),
                        );
                        Ok(Box::new(sensor) as Box<dyn Sensor>)
                    });
                    ("sim", connect)
                }
                SensorDevice::Ina219 { bus, settings } => {
                    let settings = *settings;
                    let connect: Connect = match bus {
                        I2cBus::Linux { path, mode } => {
                            let (path, mode) = (path.clone(), *mode);
                            Box::new(move || ina219(LinuxI2c::open(&path, mode)?, settings))
                        }
                        I2cBus::Rpi { bus } => {
                            let bus = *bus;
                            Box::new(move || ina219(rpi::open_i2c(bus)?, settings))
                        }
                        I2cBus::Sim {
                            name,
                            loads,
                            bus_mv,
                        } => {
                            let Some(site) = &site else {
                                errors.push(format!(
                                    "sensor `{}` (line {}): no [sim] site",
                                    s.name, s.line
                                ));
                                continue;
                            };
                            let bus = sim_buses.entry(name.clone()).or_default().clone();
                            let shunt = i64::from(settings.shunt_uohm);
                            let pins = site.ina219_input(loads.clone(), *bus_mv, shunt);
                            bus.attach(settings.address, Ina219Chip::new(Arc::clone(&clock), pins));
                            Box::new(move || ina219(bus.clone(), settings))
                        }
                    };
                    ("ina219", connect)
                }
            };
            match Reconnecting::start(connect) {
                Ok((sensor, fault)) => {
                    if let Some(fault) = fault {
                        warnings.push(format!(
                            "sensor `{}` (line {}) is not answering, will retry: {fault}",
                            s.name, s.line
                        ));
                    }
                    channels.push(Channel {
                        name: s.name.as_str().into(),
                        device,
                        meter: IntegratingMeter::new(sensor, Arc::clone(&clock), max_gap),
                        energy: Energy::default(),
                    });
                }
                Err(e) => errors.push(format!("sensor `{}` (line {}): {e}", s.name, s.line)),
            }
        }
        let meters = ModbusMeters::start(config, site.as_ref(), &clock, &mut errors);
        if !errors.is_empty() {
            return Err(BuildError(errors));
        }
        Ok(Self {
            name: config.name.clone(),
            clock,
            channels,
            relays,
            meters,
            warnings,
        })
    }

    /// The gateway's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong at start without stopping it (devices not answering yet).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every relay's state, read back from its line.
    pub fn relays(&mut self) -> Vec<RelayStatus> {
        self.relays
            .iter_mut()
            .map(|r| RelayStatus {
                name: Arc::clone(&r.name),
                state: r.relay.state(),
                safe: r.relay.safe_state(),
                mode: RelayMode::Fixed,
            })
            .collect()
    }

    /// Switches relay `name`.
    pub fn switch(&mut self, name: &str, state: RelayState) -> Result<(), Fault> {
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

    /// Reads every sensor and relay once, and takes the latest reading of every Modbus meter
    /// (their buses are polled by tasks of their own).
    pub fn poll(&mut self) -> Snapshot {
        let at = self.clock.now();
        let mut channels: Vec<ChannelState> = self
            .channels
            .iter_mut()
            .map(|c| {
                let reading = c.meter.read();
                if let Ok(r) = &reading {
                    c.energy = r.energy;
                }
                ChannelState {
                    name: Arc::clone(&c.name),
                    device: c.device,
                    read_at: reading.is_ok().then_some(at),
                    reading,
                    energy: c.energy,
                }
            })
            .collect();
        channels.extend(self.meters.channels());
        let relays = self.relays();
        Snapshot {
            at,
            channels,
            relays,
            control: None,
        }
    }
}

fn switch<P>(line: P, polarity: Polarity, safe: RelayState) -> Result<Box<dyn Switch>, String>
where
    P: embedded_hal::digital::StatefulOutputPin + Send + 'static,
    P::Error: Send + Sync + 'static,
{
    daisee_relay::Relay::new(line, polarity, safe)
        .map(|r| Box::new(r) as Box<dyn Switch>)
        .map_err(|e| e.to_string())
}

fn ina219<I>(i2c: I, settings: daisee_ina219::Settings) -> Result<Box<dyn Sensor>, ConnectError>
where
    I: I2c + Send + 'static,
    I::Error: Send + Sync + 'static,
{
    Ina219::new(i2c, settings)
        .map(|s| Box::new(s) as Box<dyn Sensor>)
        .map_err(ConnectError::device)
}

//! The gateway's Modbus meters and inverters: one task per bus polls its devices in turn, so that a
//! slow or dead device delays neither another bus nor the sensors; snapshots take the latest
//! reading of each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use daisee_hal::sim::Site;
use daisee_hal::{Clock, Energy, EnergyIntegrator, ErrorKind, MeterReading, Timestamp};
use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::device::{Backoff, Device, Map, Poller};
use daisee_modbus::sunspec::Role;
use daisee_modbus_sim::{Layout, ProfileMeter, Simulator, SunSpecDevice};
use tokio::task::AbortHandle;

use crate::config::{Config, Link};
use crate::device::Fault;
use crate::gateway::ChannelState;

/// The longest a failing device is left alone before it is asked again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How often simulated devices follow their site.
const SIM_TICK: Duration = Duration::from_millis(250);

/// The latest of one meter.
struct Slot {
    name: Arc<str>,
    device: &'static str,
    reading: Result<MeterReading, Fault>,
    read_at: Option<Timestamp>,
    energy: Energy,
    integrator: EnergyIntegrator,
}

/// The Modbus meters of a gateway, polled by tasks on the tokio runtime.
pub struct ModbusMeters {
    slots: Arc<Mutex<Vec<Slot>>>,
    tasks: Vec<AbortHandle>,
}

fn lock(slots: &Mutex<Vec<Slot>>) -> MutexGuard<'_, Vec<Slot>> {
    // A poll task that panicked left whole readings behind: they stay usable.
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ModbusMeters {
    /// Starts a task per configured bus (and the simulators of sim buses) on the current tokio
    /// runtime. Problems are added to `errors`, each naming the meter or bus and its line.
    pub fn start(
        config: &Config,
        site: Option<&Arc<Site>>,
        clock: &Arc<dyn Clock>,
        errors: &mut Vec<String>,
    ) -> Self {
        let mut meters = Self {
            slots: Arc::default(),
            tasks: Vec::new(),
        };
        if config.buses.is_empty() {
            return meters;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            errors.push("Modbus buses are polled on a tokio runtime, and none is running".into());
            return meters;
        }
        let interval = Duration::from_millis(config.poll_interval_ms);
        let max_gap = interval * 10;
        for (index, bus) in config.buses.iter().enumerate() {
            // Meters and inverters with their maps; the configuration already read the profiles.
            let mut on_bus = Vec::new();
            for m in config.modbus_devices().filter(|m| m.bus == index) {
                on_bus.push((m, m.map.to_map()));
            }
            let endpoint = match &bus.link {
                Link::Tcp(addr) => Endpoint::Tcp(*addr),
                Link::Rtu { path, line } => Endpoint::Rtu {
                    path: path.clone(),
                    line: *line,
                },
                Link::Sim => {
                    let Some(site) = site else {
                        errors.push(format!(
                            "modbus `{}` (line {}): no [sim] site",
                            bus.name, bus.line
                        ));
                        continue;
                    };
                    let sim = Simulator::new(Arc::clone(clock));
                    for (m, map) in &on_bus {
                        let (site, loads) = (Arc::clone(site), m.loads.clone());
                        match map {
                            Map::SunSpec(role) => {
                                let layout = match role {
                                    Role::Inverter => Layout::inverter(),
                                    Role::Meter => Layout::meter(),
                                };
                                sim.add(m.unit, SunSpecDevice::new(*role, layout, site, loads));
                            }
                            Map::Profile(p) => {
                                sim.add(m.unit, ProfileMeter::new(Arc::clone(p), site, loads));
                            }
                        }
                    }
                    match meters.serve(sim) {
                        Ok(addr) => Endpoint::Tcp(addr),
                        Err(e) => {
                            errors.push(format!(
                                "modbus `{}` (line {}): cannot serve the simulator: {e}",
                                bus.name, bus.line
                            ));
                            continue;
                        }
                    }
                }
            };
            let first_slot = lock(&meters.slots).len();
            let mut devices = Vec::new();
            for (m, map) in on_bus {
                let device = match map {
                    Map::SunSpec(_) => "sunspec",
                    Map::Profile(_) => "modbus",
                };
                let timeout = Duration::from_millis(m.timeout_ms);
                let backoff = Backoff::new(interval, MAX_BACKOFF);
                devices.push(Device::new(&m.name, m.unit, map, timeout, backoff));
                lock(&meters.slots).push(Slot {
                    name: m.name.as_str().into(),
                    device,
                    reading: Err(Fault {
                        kind: ErrorKind::NotResponding,
                        message: "not read yet".into(),
                    }),
                    read_at: None,
                    energy: Energy::default(),
                    integrator: EnergyIntegrator::new(max_gap),
                });
            }
            let poller = Poller {
                bus: Bus::new(endpoint, Duration::from_millis(bus.inter_frame_ms)),
                devices,
            };
            let task = tokio::spawn(run(
                poller,
                first_slot,
                Arc::clone(&meters.slots),
                interval,
                Arc::clone(clock),
            ));
            meters.tasks.push(task.abort_handle());
        }
        meters
    }

    /// Serves `sim` on a loopback port; returns the port's address.
    fn serve(&mut self, sim: Simulator) -> std::io::Result<std::net::SocketAddr> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        self.tasks.push(sim.spawn_ticker(SIM_TICK).abort_handle());
        let server = tokio::spawn(async move { sim.serve_tcp(listener).await });
        self.tasks.push(server.abort_handle());
        Ok(addr)
    }

    /// The latest reading of every meter, in configuration order.
    pub fn channels(&self) -> Vec<ChannelState> {
        lock(&self.slots)
            .iter()
            .map(|s| ChannelState {
                name: Arc::clone(&s.name),
                device: s.device,
                reading: s.reading.clone(),
                read_at: s.read_at,
                energy: s.energy,
            })
            .collect()
    }
}

impl Drop for ModbusMeters {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Polls the bus's devices once per interval and files each result in its slot.
async fn run(
    mut poller: Poller,
    first_slot: usize,
    slots: Arc<Mutex<Vec<Slot>>>,
    interval: Duration,
    clock: Arc<dyn Clock>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The tick's own deadline, not the time the task woke: backoff counted in whole intervals
        // does not slip by one when a wake-up comes late.
        let now = ticks.tick().await;
        let results = poller.round_at(now).await;
        let at = clock.now();
        let mut slots = lock(&slots);
        for (slot, result) in slots[first_slot..].iter_mut().zip(results) {
            let values = result.map_err(|e| Fault::of(&e));
            let counters = values
                .as_ref()
                .map(|v| (v.import, v.export))
                .unwrap_or_default();
            slot.reading = values.and_then(|v| {
                v.meter_reading().ok_or_else(|| Fault {
                    kind: ErrorKind::InvalidData,
                    message: "the device gave no power value".into(),
                })
            });
            slot.read_at = slot.reading.is_ok().then_some(at);
            if let Ok(r) = &slot.reading {
                slot.integrator.add(at, r.power);
                // The device's own counters where it has them; its power, counted here, where not.
                let counted = slot.integrator.energy();
                slot.energy = Energy {
                    import: counters.0.unwrap_or(counted.import),
                    export: counters.1.unwrap_or(counted.export),
                };
            }
        }
    }
}

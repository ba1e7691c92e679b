//! Modbus buses: one task per bus polls its meters and inverters in turn, so that a slow or dead
//! device delays neither another bus nor the sensors; the daemon takes the latest of each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use daisee_hal::{Clock, ErrorKind, Timestamp};
use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::decode::Values;
use daisee_modbus::device::{Backoff, Device, DeviceError, Map, Poller};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::channel::{Channel, Measured};
use super::inverters::{self, BusInverter, SharedLimit};
use super::site::{Served, Sim};
use crate::config::{Config, Inverter, Link, Meter, ModbusBus};
use crate::fault::Fault;
use crate::snapshot::ChannelState;

/// The longest a failing device is left alone before it is asked again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The Modbus devices of a gateway, polled by tasks on the tokio runtime.
pub(crate) struct Buses {
    channels: Arc<Mutex<Vec<Channel>>>,
    /// Every inverter that can be curtailed.
    inverters: Vec<BusInverter>,
    tasks: Vec<AbortHandle>,
}

pub(super) fn lock(channels: &Mutex<Vec<Channel>>) -> MutexGuard<'_, Vec<Channel>> {
    // A poll task that panicked left whole readings behind: they stay usable.
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Buses {
    /// Starts a task per configured bus (and the simulators of sim buses) on the current tokio
    /// runtime. Problems are added to `errors`, each naming the device or bus and its line.
    pub(crate) fn start(
        config: &Config,
        sim: &Sim,
        clock: &Arc<dyn Clock>,
        errors: &mut Vec<String>,
    ) -> Self {
        let mut buses = Self {
            channels: Arc::default(),
            inverters: Vec::new(),
            tasks: Vec::new(),
        };
        for index in 0..config.buses.len() {
            buses.start_bus(config, index, sim, clock, errors);
        }
        buses
    }

    /// Starts the task of bus `index`, its devices' channels and its curtailable inverters.
    fn start_bus(
        &mut self,
        config: &Config,
        index: usize,
        sim: &Sim,
        clock: &Arc<dyn Clock>,
        errors: &mut Vec<String>,
    ) {
        let bus = &config.buses[index];
        let interval = Duration::from_millis(config.poll_interval_ms);
        let devices = devices_on(config, index);
        let Some(endpoint) = self.endpoint(bus, &devices, sim, errors) else {
            return;
        };
        let first = lock(&self.channels).len();
        let wake = Arc::new(Notify::new());
        let mut polled = Vec::new();
        let mut limits = Vec::new();
        for (i, (m, map)) in devices.into_iter().enumerate() {
            lock(&self.channels).push(Channel::new(&m.name, kind(&map), interval));
            let curtailable = |inv: &Inverter| inv.meter.name == m.name && inv.curtailable();
            if config.inverters.iter().any(curtailable) {
                let cell = SharedLimit::default();
                limits.push((i, Arc::clone(&cell)));
                let (channels, wake) = (Arc::clone(&self.channels), Arc::clone(&wake));
                let inverter = BusInverter::new(&m.name, cell, wake, channels, first + i);
                self.inverters.push(inverter);
            }
            let timeout = Duration::from_millis(m.timeout_ms);
            let backoff = Backoff::new(interval, MAX_BACKOFF);
            polled.push(Device::new(&m.name, m.unit, map, timeout, backoff));
        }
        let poller = Poller {
            bus: Bus::new(endpoint, Duration::from_millis(bus.inter_frame_ms)),
            devices: polled,
        };
        let task = Task {
            poller,
            first,
            channels: Arc::clone(&self.channels),
            limits,
            wake,
        };
        let handle = tokio::spawn(run(task, interval, Arc::clone(clock)));
        self.tasks.push(handle.abort_handle());
    }

    /// Where bus `bus` is reached; a sim bus's devices are served on loopback first.
    fn endpoint(
        &mut self,
        bus: &ModbusBus,
        devices: &[(&Meter, Map)],
        sim: &Sim,
        errors: &mut Vec<String>,
    ) -> Option<Endpoint> {
        match &bus.link {
            Link::Tcp(addr) => Some(Endpoint::Tcp(*addr)),
            Link::Rtu { path, line } => Some(Endpoint::Rtu {
                path: path.clone(),
                line: *line,
            }),
            Link::Sim => {
                let served: Vec<Served<'_>> = devices
                    .iter()
                    .map(|(m, map)| Served {
                        unit: m.unit,
                        map,
                        loads: &m.loads,
                    })
                    .collect();
                match sim.serve(&served) {
                    Ok((addr, tasks)) => {
                        self.tasks.extend(tasks);
                        Some(Endpoint::Tcp(addr))
                    }
                    Err(e) => {
                        errors.push(format!(
                            "modbus `{}` (line {}): cannot serve the simulator: {e}",
                            bus.name, bus.line
                        ));
                        None
                    }
                }
            }
        }
    }

    /// Every curtailable inverter.
    pub(crate) fn inverters(&mut self) -> &mut [BusInverter] {
        &mut self.inverters
    }

    /// The latest reading of every Modbus device, in configuration order.
    pub(crate) fn channels(&self) -> Vec<ChannelState> {
        lock(&self.channels).iter().map(Channel::state).collect()
    }
}

impl Drop for Buses {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The meters and inverters on bus `index`, with their register maps.
fn devices_on(config: &Config, index: usize) -> Vec<(&Meter, Map)> {
    config
        .modbus_devices()
        .filter(|m| m.bus == index)
        .map(|m| (m, m.map.to_map()))
        .collect()
}

fn kind(map: &Map) -> &'static str {
    match map {
        Map::SunSpec(_) => "sunspec",
        Map::Profile(_) => "modbus",
    }
}

/// What a device's values say as a measurement.
fn measured(result: Result<Values, DeviceError>) -> Result<Measured, Fault> {
    let values = result.map_err(|e| Fault::of(&e))?;
    let reading = values.meter_reading().ok_or_else(|| Fault {
        kind: ErrorKind::InvalidData,
        message: "the device gave no power value".into(),
    })?;
    Ok(Measured {
        reading,
        import: values.import,
        export: values.export,
    })
}

/// What one bus task works on.
struct Task {
    poller: Poller,
    /// Its devices' first channel.
    first: usize,
    channels: Arc<Mutex<Vec<Channel>>>,
    /// The curtailable inverters among its devices, by index.
    limits: Vec<(usize, SharedLimit)>,
    /// Woken when a limit is wanted or lifted.
    wake: Arc<Notify>,
}

/// Polls the bus's devices once per interval and files each result in its channel; carries out
/// the inverters' limits after each round and as soon as they change.
async fn run(mut task: Task, interval: Duration, clock: Arc<dyn Clock>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // The tick's own deadline, not the time the task woke: backoff counted in whole
            // intervals does not slip by one when a wake-up comes late.
            now = ticks.tick() => {
                let results = task.poller.round_at(now).await;
                let at: Timestamp = clock.now();
                let mut channels = lock(&task.channels);
                for (channel, result) in channels[task.first..].iter_mut().zip(results) {
                    channel.record(at, measured(result));
                }
            }
            () = task.wake.notified() => {}
        }
        for (i, cell) in &task.limits {
            let device = &task.poller.devices[*i];
            inverters::reconcile(cell, device, &mut task.poller.bus).await;
        }
    }
}

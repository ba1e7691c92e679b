//! Modbus buses: one task per bus polls its meters and inverters in turn, so that a slow or dead
//! device delays neither another bus nor the sensors; the daemon takes the latest of each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use daisee_hal::{Clock, ErrorKind, Timestamp};
use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::decode::Values;
use daisee_modbus::device::{Backoff, Device, DeviceError, Map, Poller};
use tokio::task::AbortHandle;

use super::channel::{Channel, Measured};
use super::site::{Served, Sim};
use super::Fault;
use crate::config::{Config, Link, Meter, ModbusBus};
use crate::snapshot::ChannelState;

/// The longest a failing device is left alone before it is asked again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The Modbus devices of a gateway, polled by tasks on the tokio runtime.
pub(crate) struct Buses {
    channels: Arc<Mutex<Vec<Channel>>>,
    tasks: Vec<AbortHandle>,
}

fn lock(channels: &Mutex<Vec<Channel>>) -> MutexGuard<'_, Vec<Channel>> {
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
            tasks: Vec::new(),
        };
        let interval = Duration::from_millis(config.poll_interval_ms);
        for (index, bus) in config.buses.iter().enumerate() {
            let devices = devices_on(config, index);
            let Some(endpoint) = buses.endpoint(bus, &devices, sim, errors) else {
                continue;
            };
            let first = lock(&buses.channels).len();
            let mut polled = Vec::new();
            for (m, map) in devices {
                lock(&buses.channels).push(Channel::new(&m.name, kind(&map), interval));
                let timeout = Duration::from_millis(m.timeout_ms);
                let backoff = Backoff::new(interval, MAX_BACKOFF);
                polled.push(Device::new(&m.name, m.unit, map, timeout, backoff));
            }
            let poller = Poller {
                bus: Bus::new(endpoint, Duration::from_millis(bus.inter_frame_ms)),
                devices: polled,
            };
            let channels = Arc::clone(&buses.channels);
            let task = tokio::spawn(run(poller, first, channels, interval, Arc::clone(clock)));
            buses.tasks.push(task.abort_handle());
        }
        buses
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

/// Polls the bus's devices once per interval and files each result in its channel.
async fn run(
    mut poller: Poller,
    first: usize,
    channels: Arc<Mutex<Vec<Channel>>>,
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
        let at: Timestamp = clock.now();
        let mut channels = lock(&channels);
        for (channel, result) in channels[first..].iter_mut().zip(results) {
            channel.record(at, measured(result));
        }
    }
}

//! Inverter power limits as the bus task carries them out: the daemon says what it wants, the
//! task writes it (SunSpec models 123 or 704), renews it before the inverter's revert timer runs
//! out, and lifts it when no longer wanted. If the agent dies, the inverter reverts by itself.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use daisee_control::Limit;
use daisee_hal::InverterReading;
use daisee_modbus::bus::Bus;
use daisee_modbus::device::{Device, DeviceError};
use tokio::sync::Notify;

use super::channel::Channel;
use crate::fault::Fault;

/// A curtailable inverter on a Modbus bus, as the hal's [`daisee_hal::Inverter`]: reads come from
/// its bus's latest round, limits go to the bus task, which writes and renews them.
pub(crate) struct BusInverter {
    pub(crate) name: Arc<str>,
    cell: SharedLimit,
    wake: Arc<Notify>,
    channels: Arc<Mutex<Vec<Channel>>>,
    index: usize,
}

impl BusInverter {
    /// The inverter whose channel is `channels[index]`, its limit in `cell`, its bus task woken
    /// by `wake`.
    pub(crate) fn new(
        name: &str,
        cell: SharedLimit,
        wake: Arc<Notify>,
        channels: Arc<Mutex<Vec<Channel>>>,
        index: usize,
    ) -> Self {
        Self {
            name: name.into(),
            cell,
            wake,
            channels,
            index,
        }
    }

    /// Why the last limit could not be written, if it could not.
    pub(crate) fn fault(&self) -> Option<Fault> {
        lock(&self.cell).fault.clone()
    }

    fn want(&mut self, limit: Option<Limit>) {
        if lock(&self.cell).want(limit) {
            self.wake.notify_one();
        }
    }
}

impl daisee_hal::Inverter for BusInverter {
    type Error = Fault;

    fn read(&mut self) -> Result<InverterReading, Fault> {
        let state = super::buses::lock(&self.channels)[self.index].state();
        let reading = state.reading?;
        Ok(InverterReading {
            power: reading.power,
            energy: state.energy,
            limit_percent: lock(&self.cell).applied.map(|(l, _)| l.percent),
        })
    }

    fn limit_power(&mut self, percent: u8, revert: Duration) -> Result<(), Fault> {
        self.want(Some(Limit { percent, revert }));
        Ok(())
    }

    fn release_limit(&mut self) -> Result<(), Fault> {
        self.want(None);
        Ok(())
    }
}

/// What is wanted of one inverter's limit, and what it took.
#[derive(Debug, Default)]
pub(crate) struct LimitCell {
    wanted: Option<Limit>,
    applied: Option<(Limit, Instant)>,
    fault: Option<Fault>,
}

/// One inverter's limit, shared by the daemon and its bus task.
pub(crate) type SharedLimit = Arc<Mutex<LimitCell>>;

fn lock(cell: &Mutex<LimitCell>) -> MutexGuard<'_, LimitCell> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LimitCell {
    /// Wants `limit` (`None`: none); says whether that changed what was wanted.
    pub(crate) fn want(&mut self, limit: Option<Limit>) -> bool {
        std::mem::replace(&mut self.wanted, limit) != limit
    }

    /// The write the cell calls for at `now`: set (new, or due for renewal at half the revert
    /// time), lift, or nothing.
    fn due(&self, now: Instant) -> Option<Option<Limit>> {
        match (self.wanted, self.applied) {
            (Some(w), Some((a, at))) if w == a && now.duration_since(at) < w.revert / 2 => None,
            (Some(w), _) => Some(Some(w)),
            (None, Some(_)) => Some(None),
            (None, None) => None,
        }
    }
}

/// Writes what `cell` calls for to `device`, and files the outcome.
pub(crate) async fn reconcile(cell: &SharedLimit, device: &Device, bus: &mut Bus) {
    let now = Instant::now();
    let Some(target) = lock(cell).due(now) else {
        return;
    };
    let result = match device.sunspec().and_then(|s| s.limit_control()) {
        None => Err(Fault {
            kind: daisee_hal::ErrorKind::Unsupported,
            message: "no SunSpec power limit control (model 123 or 704) found yet".into(),
        }),
        Some(control) => {
            let written = match target {
                Some(l) => {
                    let percent = f64::from(l.percent);
                    control
                        .set(bus, device.unit, device.timeout(), percent, l.revert)
                        .await
                }
                None => control.clear(bus, device.unit, device.timeout()).await,
            };
            written.map_err(|e| Fault::of(&DeviceError::SunSpec(e)))
        }
    };
    let mut cell = lock(cell);
    match result {
        Ok(()) => {
            cell.applied = target.map(|l| (l, now));
            cell.fault = None;
        }
        Err(fault) => cell.fault = Some(fault),
    }
}

//! Inverter power limits as the bus task carries them out: the daemon says what it wants, the
//! task writes it (SunSpec models 123 or 704), renews it before the inverter's revert timer runs
//! out, and lifts it when no longer wanted. If the agent dies, the inverter reverts by itself.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use daisee_control::Limit;
use daisee_modbus::bus::Bus;
use daisee_modbus::device::{Device, DeviceError};

use crate::fault::Fault;

/// What is wanted of one inverter's limit, and what it took.
#[derive(Debug, Default)]
pub(crate) struct LimitCell {
    wanted: Option<Limit>,
    applied: Option<(Limit, Instant)>,
    fault: Option<Fault>,
}

/// One inverter's limit, shared by the daemon and its bus task.
pub(crate) type SharedLimit = Arc<Mutex<LimitCell>>;

pub(crate) fn lock(cell: &Mutex<LimitCell>) -> MutexGuard<'_, LimitCell> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LimitCell {
    /// Wants `limit` (`None`: none); says whether that changed what was wanted.
    pub(crate) fn want(&mut self, limit: Option<Limit>) -> bool {
        std::mem::replace(&mut self.wanted, limit) != limit
    }

    /// The limit the inverter confirmed, in percent, and why the last write failed, if it did.
    pub(crate) fn state(&self) -> (Option<u8>, Option<Fault>) {
        (self.applied.map(|(l, _)| l.percent), self.fault.clone())
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

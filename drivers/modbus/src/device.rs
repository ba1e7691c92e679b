//! The devices on one bus, polled in turn: a device that fails is backed off, growing up to
//! minutes, so that its timeouts stop costing the others their poll rate.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::bus::{Bus, BusError};
use crate::decode::{DecodeError, Values};
use crate::plan::{ReadPlan, Registers};
use crate::profile::Profile;

/// When to try a failing device again: at the next poll after its first failure (one lost answer is
/// no reason to wait), then after 1, 2, 4 … poll intervals, at most `max` apart.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// Backoff starting at `first` and growing to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            failures: 0,
            retry_at: None,
        }
    }

    /// Whether the device may be asked at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Records a failure at `now`; returns the wait before the next try.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = match self.failures {
            0 => Duration::ZERO,
            n => self
                .first
                .saturating_mul(1 << (n - 1).min(20))
                .min(self.max),
        };
        self.failures += 1;
        self.retry_at = Some(now + wait);
        wait
    }

    /// Records a success.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Why a device gave no values this poll.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// The bus request failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The answer decoded to something impossible.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The device is backed off after failing; it will be asked again later.
    #[error("backed off after {failures} failures, next try in {retry_in:?}")]
    BackedOff {
        /// Failures in a row.
        failures: u32,
        /// Time until the next try.
        retry_in: Duration,
    },
}

impl daisee_hal::Error for DeviceError {
    fn kind(&self) -> daisee_hal::ErrorKind {
        match self {
            DeviceError::Bus(e) => daisee_hal::Error::kind(e),
            DeviceError::Decode(_) => daisee_hal::ErrorKind::InvalidData,
            DeviceError::BackedOff { .. } => daisee_hal::ErrorKind::NotResponding,
        }
    }
}

/// A bus and the devices on it, polled in turn.
#[derive(Debug)]
pub struct Poller {
    /// The connection.
    pub bus: Bus,
    /// The devices, in polling order.
    pub devices: Vec<Device>,
}

impl Poller {
    /// Polls every device that is not backed off, as of `now`; one result per device, in order.
    pub async fn round_at(&mut self, now: Instant) -> Vec<Result<Values, DeviceError>> {
        let mut results = Vec::with_capacity(self.devices.len());
        for device in &mut self.devices {
            results.push(device.poll_at(&mut self.bus, now).await);
        }
        results
    }
}

/// A device read through a profile.
#[derive(Debug)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its Modbus unit id.
    pub unit: u8,
    profile: Arc<Profile>,
    plan: ReadPlan,
    not_implemented: bool,
    timeout: Duration,
    backoff: Backoff,
}

impl Device {
    /// Device `unit` read through `profile`, each request given `timeout`. `not_implemented` treats
    /// SunSpec's "not implemented" markers as absent values.
    pub fn new(
        name: impl Into<String>,
        unit: u8,
        profile: Arc<Profile>,
        not_implemented: bool,
        timeout: Duration,
        backoff: Backoff,
    ) -> Self {
        Self {
            name: name.into(),
            unit,
            plan: ReadPlan::for_profile(&profile),
            profile,
            not_implemented,
            timeout,
            backoff,
        }
    }

    /// The requests of one poll.
    pub fn plan(&self) -> &ReadPlan {
        &self.plan
    }

    /// Reads every point once, unless the device is backed off.
    pub async fn poll(&mut self, bus: &mut Bus) -> Result<Values, DeviceError> {
        self.poll_at(bus, Instant::now()).await
    }

    /// [`Device::poll`] as of `now`: the backoff counts from the start of each attempt, so a
    /// caller driving the time itself gets the same schedule whatever the requests cost.
    pub async fn poll_at(&mut self, bus: &mut Bus, now: Instant) -> Result<Values, DeviceError> {
        if !self.backoff.due(now) {
            return Err(DeviceError::BackedOff {
                failures: self.backoff.failures(),
                retry_in: self
                    .backoff
                    .retry_at
                    .map_or(Duration::ZERO, |at| at.saturating_duration_since(now)),
            });
        }
        let result = self.read(bus).await;
        match &result {
            Ok(_) => self.backoff.succeeded(),
            Err(_) => {
                self.backoff.failed(now);
            }
        }
        result
    }

    async fn read(&mut self, bus: &mut Bus) -> Result<Values, DeviceError> {
        let mut registers = Registers::default();
        for read in &self.plan.reads {
            let words = bus.read(self.unit, *read, self.timeout).await?;
            registers.insert(*read, words);
        }
        Ok(Values::decode(
            &self.profile,
            &registers,
            self.not_implemented,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let waits: Vec<u64> = (0..12).map(|_| b.failed(t0).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert!(!b.due(t0 + Duration::from_secs(299)));
        assert!(b.due(t0 + Duration::from_secs(300)));
        b.succeeded();
        assert!(b.due(t0));
        assert_eq!(b.failed(t0), Duration::ZERO);
        assert_eq!(b.failed(t0), Duration::from_secs(1));
    }
}

//! The devices on one bus, polled in turn: a device that fails is backed off, growing up to
//! minutes, so that its timeouts stop costing the others their poll rate.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::bus::{Bus, BusError};
use crate::decode::{DecodeError, Values};
use crate::plan::{ReadPlan, Registers};
use crate::profile::Profile;
use crate::sunspec::{Role, SunSpec, SunSpecError};

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
    /// SunSpec discovery found no usable map.
    #[error(transparent)]
    SunSpec(SunSpecError),
    /// The device is backed off after failing; it will be asked again later.
    #[error("backed off after {failures} failures, next try in {retry_in:?}")]
    BackedOff {
        /// Failures in a row.
        failures: u32,
        /// Time until the next try.
        retry_in: Duration,
    },
}

impl From<SunSpecError> for DeviceError {
    fn from(e: SunSpecError) -> Self {
        match e {
            SunSpecError::Bus(e) => DeviceError::Bus(e),
            other => DeviceError::SunSpec(other),
        }
    }
}

impl daisee_hal::Error for DeviceError {
    fn kind(&self) -> daisee_hal::ErrorKind {
        match self {
            DeviceError::Bus(e) => daisee_hal::Error::kind(e),
            DeviceError::Decode(_) => daisee_hal::ErrorKind::InvalidData,
            DeviceError::SunSpec(_) => daisee_hal::ErrorKind::Unsupported,
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

/// How a device's registers are found.
#[derive(Debug, Clone)]
pub enum Map {
    /// A profile (a shipped one or a user's file).
    Profile(Arc<Profile>),
    /// SunSpec: discovered on the first poll, read as an inverter or a meter.
    SunSpec(Role),
}

/// Where a device's profile comes from, and whether it is known yet.
#[derive(Debug)]
enum Source {
    /// A SunSpec device not discovered yet.
    Undiscovered(Role),
    /// A profile, given or built by discovery.
    Known {
        profile: Arc<Profile>,
        sunspec: Option<SunSpec>,
    },
}

/// A device on a bus, read through a profile or its SunSpec map.
#[derive(Debug)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its Modbus unit id.
    pub unit: u8,
    source: Source,
    not_implemented: bool,
    plan: ReadPlan,
    timeout: Duration,
    backoff: Backoff,
}

impl Device {
    /// Device `unit` read through `map`, each request given `timeout`.
    pub fn new(
        name: impl Into<String>,
        unit: u8,
        map: Map,
        timeout: Duration,
        backoff: Backoff,
    ) -> Self {
        let (source, plan, not_implemented) = match map {
            Map::Profile(profile) => {
                let plan = ReadPlan::for_profile(&profile);
                let source = Source::Known {
                    profile,
                    sunspec: None,
                };
                (source, plan, false)
            }
            Map::SunSpec(role) => (Source::Undiscovered(role), ReadPlan::default(), true),
        };
        Self {
            name: name.into(),
            unit,
            source,
            not_implemented,
            plan,
            timeout,
            backoff,
        }
    }

    /// The requests of one poll (none before a SunSpec device is discovered).
    pub fn plan(&self) -> &ReadPlan {
        &self.plan
    }

    /// The profile it is read through, once known.
    pub fn profile(&self) -> Option<&Profile> {
        match &self.source {
            Source::Known { profile, .. } => Some(profile),
            Source::Undiscovered(_) => None,
        }
    }

    /// What discovery found on a SunSpec device.
    pub fn sunspec(&self) -> Option<&SunSpec> {
        match &self.source {
            Source::Known { sunspec, .. } => sunspec.as_ref(),
            Source::Undiscovered(_) => None,
        }
    }

    /// The time each request is given.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        let profile = match &self.source {
            Source::Known { profile, .. } => Arc::clone(profile),
            Source::Undiscovered(role) => {
                let role = *role;
                let found = SunSpec::discover(bus, self.unit, self.timeout).await?;
                let profile = Arc::new(found.profile(role)?);
                self.plan = ReadPlan::for_profile(&profile);
                self.source = Source::Known {
                    profile: Arc::clone(&profile),
                    sunspec: Some(found),
                };
                profile
            }
        };
        let mut registers = Registers::default();
        for read in &self.plan.reads {
            let words = bus.read(self.unit, *read, self.timeout).await?;
            registers.insert(*read, words);
        }
        Ok(Values::decode(&profile, &registers, self.not_implemented)?)
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

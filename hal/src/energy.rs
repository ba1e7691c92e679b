//! Energy from power samples: trapezoidal integration in integer arithmetic, import and export
//! counted apart.

use core::time::Duration;

use crate::device::{EnergyMeter, MeterReading, PowerSensor};
use crate::time::{Clock, Timestamp};
use crate::units::{Energy, MilliWattHours, MilliWatts};

/// Twice the milliwatt-milliseconds in one milliwatt-hour (areas are kept doubled to stay exact).
const DOUBLE_MWMS_PER_MWH: u128 = 2 * 3_600_000;

/// Integrates power samples into monotonic import and export energy.
///
/// Between two samples power is taken to change linearly; when it changes sign, the interval is split
/// at the zero crossing so that import and export are each counted with their own share. Samples
/// further apart than the maximum gap are not bridged: a device that was offline for a while
/// contributes nothing for that while, rather than a guess.
#[derive(Debug, Clone)]
pub struct EnergyIntegrator {
    last: Option<(Timestamp, MilliWatts)>,
    max_gap_ms: i64,
    import: u128,
    export: u128,
}

impl EnergyIntegrator {
    /// An integrator that bridges gaps of at most `max_gap` between samples.
    pub fn new(max_gap: Duration) -> Self {
        Self {
            last: None,
            max_gap_ms: i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX),
            import: 0,
            export: 0,
        }
    }

    /// Adds the power measured at `at`; samples must come in time order (older ones are ignored).
    pub fn add(&mut self, at: Timestamp, power: MilliWatts) {
        if let Some((t0, p0)) = self.last {
            let dt = at.millis_since(t0);
            if dt <= 0 {
                return;
            }
            if dt <= self.max_gap_ms {
                self.accumulate(i128::from(p0.0), i128::from(power.0), i128::from(dt));
            }
        }
        self.last = Some((at, power));
    }

    /// The energy counted so far.
    pub fn energy(&self) -> Energy {
        Energy {
            import: MilliWattHours((self.import / DOUBLE_MWMS_PER_MWH) as u64),
            export: MilliWattHours((self.export / DOUBLE_MWMS_PER_MWH) as u64),
        }
    }

    fn accumulate(&mut self, p0: i128, p1: i128, dt: i128) {
        if (p0 >= 0) == (p1 >= 0) {
            let doubled = ((p0 + p1) * dt).unsigned_abs();
            if p0 >= 0 {
                self.import += doubled;
            } else {
                self.export += doubled;
            }
            return;
        }
        // Two triangles meeting at the zero crossing, which lies at dt·|p0| / (|p0| + |p1|).
        let span = p0.abs() + p1.abs();
        let first = (p0 * p0 * dt / span).unsigned_abs();
        let second = (p1 * p1 * dt / span).unsigned_abs();
        if p0 > 0 {
            self.import += first;
            self.export += second;
        } else {
            self.export += first;
            self.import += second;
        }
    }
}

/// An [`EnergyMeter`] made of a [`PowerSensor`] and a clock, counting energy by integration.
#[derive(Debug)]
pub struct IntegratingMeter<S, C> {
    sensor: S,
    clock: C,
    integrator: EnergyIntegrator,
}

impl<S: PowerSensor, C: Clock> IntegratingMeter<S, C> {
    /// Integrates `sensor` on `clock`, bridging gaps of at most `max_gap`.
    pub fn new(sensor: S, clock: C, max_gap: Duration) -> Self {
        Self {
            sensor,
            clock,
            integrator: EnergyIntegrator::new(max_gap),
        }
    }

    /// The sensor underneath.
    pub fn sensor_mut(&mut self) -> &mut S {
        &mut self.sensor
    }
}

impl<S: PowerSensor, C: Clock> EnergyMeter for IntegratingMeter<S, C> {
    type Error = S::Error;

    fn read(&mut self) -> Result<MeterReading, Self::Error> {
        let reading = self.sensor.read()?;
        self.integrator.add(self.clock.now(), reading.power);
        Ok(MeterReading {
            power: reading.power,
            voltage: Some(reading.voltage),
            current: Some(reading.current),
            energy: self.integrator.energy(),
            frequency: None,
            phases: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn integrate(samples: &[(i64, i64)]) -> Energy {
        let mut i = EnergyIntegrator::new(Duration::from_secs(3600));
        for &(t, p) in samples {
            i.add(Timestamp(t), MilliWatts(p));
        }
        i.energy()
    }

    #[test]
    fn constant_import_for_an_hour() {
        let e = integrate(&[(0, 1_000_000), (HOUR, 1_000_000)]);
        assert_eq!(e.import, MilliWattHours(1_000_000));
        assert_eq!(e.export, MilliWattHours(0));
    }

    #[test]
    fn export_is_counted_apart() {
        let e = integrate(&[(0, -2_000_000), (HOUR / 2, -2_000_000)]);
        assert_eq!(e.import, MilliWattHours(0));
        assert_eq!(e.export, MilliWattHours(1_000_000));
    }

    #[test]
    fn sign_change_is_split_at_the_zero_crossing() {
        // +1 kW to -3 kW over an hour: zero at 15 min; triangles of 125 Wh import and 1125 Wh export.
        let e = integrate(&[(0, 1_000_000), (HOUR, -3_000_000)]);
        assert_eq!(e.import, MilliWattHours(125_000));
        assert_eq!(e.export, MilliWattHours(1_125_000));
    }

    #[test]
    fn many_small_steps_lose_nothing_to_rounding() {
        // 1 W sampled every second for an hour is exactly 1 Wh, though each step is 1/3600 of a mWh.
        let samples: Vec<_> = (0..=3600).map(|s| (s * 1000, 1000)).collect();
        assert_eq!(integrate(&samples).import, MilliWattHours(1000));
    }

    #[test]
    fn gaps_longer_than_the_limit_are_not_bridged() {
        let mut i = EnergyIntegrator::new(Duration::from_secs(10));
        i.add(Timestamp(0), MilliWatts(3_600_000));
        i.add(Timestamp(1000), MilliWatts(3_600_000));
        i.add(Timestamp(60_000), MilliWatts(3_600_000));
        i.add(Timestamp(61_000), MilliWatts(3_600_000));
        // Two seconds counted, the 59 s outage not.
        assert_eq!(i.energy().import, MilliWattHours(2000));
    }

    #[test]
    fn out_of_order_samples_are_ignored() {
        let e = integrate(&[(1000, 3_600_000), (0, 3_600_000), (2000, 3_600_000)]);
        assert_eq!(e.import, MilliWattHours(1000));
    }
}

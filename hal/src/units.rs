//! Quantities as integer fixed point, so that every machine computes bit-identical results.
//!
//! Sign convention: positive power is taken from the grid or consumed, negative power is exported or
//! produced.

use core::fmt;
use core::ops::{Add, Neg, Sub};

/// Power in milliwatts; positive = consumed / imported, negative = produced / exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliWatts(pub i64);

/// Voltage in millivolts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliVolts(pub i32);

/// Current in microamperes; positive in the direction of consumption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroAmps(pub i64);

/// Frequency in millihertz.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliHertz(pub i64);

/// A monotonic energy count in milliwatt-hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliWattHours(pub u64);

/// Energy counters split by direction, both monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Energy {
    /// Energy taken from the grid or consumed.
    pub import: MilliWattHours,
    /// Energy exported or produced.
    pub export: MilliWattHours,
}

impl MilliWatts {
    /// Power from watts, rounded to the nearest milliwatt.
    pub fn from_watts(watts: f64) -> Self {
        Self((watts * 1000.0).round() as i64)
    }

    /// The power in watts, for display.
    pub fn watts(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl MilliVolts {
    /// The voltage in volts, for display.
    pub fn volts(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl MicroAmps {
    /// The current in amperes, for display.
    pub fn amps(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl MilliWattHours {
    /// The energy in kilowatt-hours, for display.
    pub fn kwh(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl Add for MilliWatts {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0 + rhs.0)
    }
}

impl Sub for MilliWatts {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 - rhs.0)
    }
}

impl Neg for MilliWatts {
    type Output = Self;
    fn neg(self) -> Self {
        Self(-self.0)
    }
}

impl core::iter::Sum for MilliWatts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|p| p.0).sum())
    }
}

impl fmt::Display for MilliWatts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.1} W", self.watts())
    }
}

impl fmt::Display for MilliVolts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} V", self.volts())
    }
}

impl fmt::Display for MicroAmps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.4} A", self.amps())
    }
}

impl fmt::Display for MilliWattHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4} kWh", self.kwh())
    }
}

//! The device traits every backend and driver implements.

use core::time::Duration;

use crate::error::Error;
use crate::units::{Energy, MicroAmps, MilliHertz, MilliVolts, MilliWatts};

/// One reading of a power sensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerReading {
    /// Voltage at the load (bus voltage).
    pub voltage: MilliVolts,
    /// Current, positive towards consumption.
    pub current: MicroAmps,
    /// Power, positive when consumed.
    pub power: MilliWatts,
}

/// A sensor of instantaneous voltage, current and power (INA219 and the like).
pub trait PowerSensor {
    /// The error this sensor reports.
    type Error: Error;
    /// Reads the latest measurement.
    fn read(&mut self) -> Result<PowerReading, Self::Error>;
}

/// One phase of a polyphase meter; a value the meter does not measure is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseReading {
    /// Phase-to-neutral voltage.
    pub voltage: Option<MilliVolts>,
    /// Phase current, positive towards consumption.
    pub current: Option<MicroAmps>,
    /// Phase power, positive when consumed.
    pub power: Option<MilliWatts>,
}

/// One reading of an energy meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeterReading {
    /// Total power, positive when imported.
    pub power: MilliWatts,
    /// The one voltage of a DC sensor or single-phase meter, where it measures one (a polyphase
    /// meter's are in `phases`).
    pub voltage: Option<MilliVolts>,
    /// The one current, where the meter measures one, positive towards consumption.
    pub current: Option<MicroAmps>,
    /// Grid frequency, where the meter measures it.
    pub frequency: Option<MilliHertz>,
    /// Monotonic import and export counters.
    pub energy: Energy,
    /// Per-phase values, where the meter has phases.
    pub phases: Option<[PhaseReading; 3]>,
}

/// A meter of power and of imported and exported energy.
pub trait EnergyMeter {
    /// The error this meter reports.
    type Error: Error;
    /// Reads power and the energy counters.
    fn read(&mut self) -> Result<MeterReading, Self::Error>;
}

/// One reading of an inverter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InverterReading {
    /// AC power, negative while producing.
    pub power: MilliWatts,
    /// Lifetime counters (production counts as export).
    pub energy: Energy,
    /// The active power limit in percent of the rated power, if one is set.
    pub limit_percent: Option<u8>,
}

/// A PV or battery inverter with a power-limit control.
pub trait Inverter {
    /// The error this inverter reports.
    type Error: Error;
    /// Reads production and counters.
    fn read(&mut self) -> Result<InverterReading, Self::Error>;
    /// Limits output to `percent` of rated power; the inverter reverts by itself after `revert`.
    fn limit_power(&mut self, percent: u8, revert: Duration) -> Result<(), Self::Error>;
    /// Removes the power limit.
    fn release_limit(&mut self) -> Result<(), Self::Error>;
}

/// The state of a relay's load circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayState {
    /// The load is disconnected.
    Off,
    /// The load is connected.
    On,
}

impl RelayState {
    /// `"on"` or `"off"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayState::On => "on",
            RelayState::Off => "off",
        }
    }
}

impl core::fmt::Display for RelayState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A relay that switches a load, reads its state back and has a safe state.
pub trait Relay {
    /// The error this relay reports.
    type Error: Error;
    /// Switches the load and checks that the output followed.
    fn set(&mut self, state: RelayState) -> Result<(), Self::Error>;
    /// Reads the state the output is actually in.
    fn state(&mut self) -> Result<RelayState, Self::Error>;
    /// The state the relay takes at start, on shutdown and when measurements are stale.
    fn safe_state(&self) -> RelayState;
}

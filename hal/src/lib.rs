//! Hardware abstraction of the DAISEE gateway.
//!
//! Device traits ([`PowerSensor`], [`EnergyMeter`], [`Inverter`], [`Relay`]) in the style of
//! `embedded-hal`: small, with errors as associated types. Quantities are integer fixed point
//! ([`units`]) with the sign convention of the whole project: positive power is taken from the grid
//! or consumed, negative power is exported or produced.
//!
//! Backends: [`linux`] (I2C through i2cdev, also on SMBus-only adapters; GPIO through the character
//! device), [`rpi`] (rppal) and [`sim`] (deterministic simulated devices on a controllable clock).

pub mod device;
pub mod energy;
pub mod error;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "linux")]
pub mod rpi;
pub mod sim;
pub mod smbus;
pub mod time;
pub mod units;

pub use device::{
    EnergyMeter, Inverter, InverterReading, MeterReading, PhaseReading, PowerReading, PowerSensor,
    Relay, RelayState,
};
pub use energy::{EnergyIntegrator, IntegratingMeter};
pub use error::{Error, ErrorKind};
pub use time::{Clock, SystemClock, Timestamp};
pub use units::{Energy, MicroAmps, MilliHertz, MilliVolts, MilliWattHours, MilliWatts};

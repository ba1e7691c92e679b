//! Simulated devices: deterministic, driven by a clock the caller controls, and faithful at the level
//! where the real device is (a register file on an I2C bus, a GPIO line), so that real drivers run
//! against them unchanged.

mod clock;
mod gpio;
mod i2c;
mod ina219;
mod site;

pub use clock::SimClock;
pub use gpio::{SimLine, SimLineError};
pub use i2c::{BusStats, SimI2cBus, SimI2cError, WireDevice};
pub use ina219::{Analog, Ina219Chip};
pub use site::{Load, Profile, Site, SitePowerSensor};

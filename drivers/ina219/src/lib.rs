//! Driver for the TI INA219 current/power monitor on embedded-hal 1.0.
//!
//! Built on the `ina219` crate for the chip's registers; the
//! calibration choice and the conversion of the registers into the project's units are done here,
//! because the power register is unsigned (the crate reads it as signed) and its sign must come from
//! the current.

mod calibration;

use daisee_hal::{ErrorKind, MicroAmps, MilliVolts, MilliWatts, PowerReading, PowerSensor};
use embedded_hal::i2c::I2c;
use ina219::address::Address;
use ina219::calibration::IntCalibration;
use ina219::configuration::{
    BusVoltageRange, Configuration, MeasuredSignals, OperatingMode, Reset, Resolution,
};
use ina219::errors::{BusVoltageReadError, ConfigurationReadError, ShuntVoltageReadError};

pub use calibration::{Calibration, CalibrationError};

/// How an INA219 is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// I2C address, 0x40 to 0x4F.
    pub address: u8,
    /// Shunt resistance in micro-ohms.
    pub shunt_uohm: u32,
    /// The largest current expected through the shunt, in microamperes.
    pub max_current_ua: u32,
    /// The shunt is wired so that consumption flows from IN- to IN+; flips the sign of every reading.
    pub reverse: bool,
}

/// What can go wrong with an INA219.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: embedded_hal::i2c::Error> {
    /// The I2C transfer failed (NACK: nothing at the address).
    #[error("I2C: {} ({:?})", .0.kind(), .0)]
    I2c(E),
    /// The chip at the address does not keep an INA219's configuration.
    #[error("the chip at the address is not an INA219: {0}")]
    NotIna219(&'static str),
    /// No conversion has completed since the chip was configured.
    #[error("no conversion completed yet")]
    NotReady,
    /// The input exceeds the shunt range, or current or power overflowed their registers.
    #[error(
        "overflow: shunt {shunt_uv} µV, bus {bus_mv} mV exceed what the calibration can measure"
    )]
    Overflow {
        /// The shunt voltage read.
        shunt_uv: i32,
        /// The bus voltage read.
        bus_mv: u16,
    },
    /// A register holds a value outside the configured range.
    #[error("{0} register out of the configured range")]
    OutOfRange(&'static str),
    /// The settings cannot be used.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
}

impl<E> daisee_hal::Error for Error<E>
where
    E: embedded_hal::i2c::Error + Send + Sync + 'static,
{
    fn kind(&self) -> ErrorKind {
        match self {
            Error::I2c(e) => ErrorKind::from_i2c(e.kind()),
            Error::NotIna219(_) | Error::OutOfRange(_) => ErrorKind::InvalidData,
            Error::NotReady => ErrorKind::Other,
            Error::Overflow { .. } => ErrorKind::Overflow,
            Error::Calibration(_) => ErrorKind::Unsupported,
        }
    }
}

/// An INA219, reset, calibrated and converting continuously.
///
/// Each conversion averages 128 samples of shunt and of bus voltage (136 ms in all), so that a reading
/// once a second stands for the power over a good part of that second rather than one instant.
pub struct Ina219<I2C> {
    chip: ina219::SyncIna219<I2C, IntCalibration>,
    calibration: Calibration,
    reverse: bool,
    converted: bool,
}

impl<I2C> core::fmt::Debug for Ina219<I2C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ina219")
            .field("calibration", &self.calibration)
            .field("reverse", &self.reverse)
            .finish()
    }
}

impl<I2C: I2c> Ina219<I2C> {
    /// Calibrates and starts the chip at `settings.address`, and checks that it holds the
    /// configuration written.
    ///
    /// No reset: the calibration and configuration registers, both written here, are all the state
    /// the chip keeps. The check is a read-back, not the chip's reset defaults, so that a plain
    /// register file (the kernel's `i2c-stub`) passes it as a real INA219 does; an address where
    /// nothing keeps what is written to register 0 fails it.
    pub fn new(i2c: I2C, settings: Settings) -> Result<Self, Error<I2C::Error>> {
        let calibration = Calibration::new(settings.shunt_uohm, settings.max_current_ua)?;
        let address = Address::from_byte(settings.address)
            .map_err(|_| Error::Calibration(CalibrationError::Address(settings.address)))?;
        let mut chip = ina219::SyncIna219::new_unchecked(i2c, address, calibration.int());
        chip.calibrate(calibration.int()).map_err(Error::I2c)?;
        chip.set_configuration(Configuration {
            reset: Reset::Run,
            bus_voltage_range: BusVoltageRange::Fsr32v,
            shunt_voltage_range: calibration.shunt_range(),
            bus_resolution: Resolution::Avg128,
            shunt_resolution: Resolution::Avg128,
            operating_mode: OperatingMode::Continous(MeasuredSignals::ShutAndBusVoltage),
        })
        .map_err(Error::I2c)?;
        // The crate's `paranoid` feature compares what it reads with what was last written.
        chip.configuration().map_err(|e| match e {
            ConfigurationReadError::I2cError(e) => Error::I2c(e),
            ConfigurationReadError::ConfigurationMismatch { .. } => {
                Error::NotIna219("the configuration register does not read back as written")
            }
        })?;
        Ok(Self {
            chip,
            calibration,
            reverse: settings.reverse,
            converted: false,
        })
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.chip.destroy()
    }

    /// Reads the last completed conversion. The registers hold it until the next one completes, so a
    /// read faster than the conversion time returns the same values again.
    pub fn measure(&mut self) -> Result<Measurement, Error<I2C::Error>> {
        let bus = self.chip.bus_voltage().map_err(|e| match e {
            BusVoltageReadError::I2cError(e) => Error::I2c(e),
            BusVoltageReadError::BusVoltageOutOfRange { .. } => Error::OutOfRange("bus voltage"),
        })?;
        let shunt = self.chip.shunt_voltage().map_err(|e| match e {
            ShuntVoltageReadError::I2cError(e) => Error::I2c(e),
            ShuntVoltageReadError::ShuntVoltageOutOfRange { .. } => {
                Error::OutOfRange("shunt voltage")
            }
        })?;
        let current = self.chip.current_raw().map_err(Error::I2c)?;
        // Read last: reading the power register clears the conversion-ready flag.
        let power = self.chip.power_raw().map_err(Error::I2c)?;

        self.converted |= bus.is_conversion_ready();
        if !self.converted {
            return Err(Error::NotReady);
        }
        let shunt_10uv = shunt.shunt_voltage_10uv();
        if bus.has_math_overflowed() || self.calibration.saturated(shunt_10uv) {
            return Err(Error::Overflow {
                shunt_uv: shunt.shunt_voltage_uv(),
                bus_mv: bus.voltage_mv(),
            });
        }
        let sign = if self.reverse { -1 } else { 1 };
        let current_ua = sign * i64::from(current.0 as i16) * self.calibration.current_lsb_ua();
        // The power register is a magnitude; its sign is the current's.
        let power_uw = i64::from(power.0) * self.calibration.power_lsb_uw();
        let power_uw = if current_ua < 0 { -power_uw } else { power_uw };
        Ok(Measurement {
            bus: MilliVolts(i32::from(bus.voltage_mv())),
            shunt_uv: sign as i32 * shunt.shunt_voltage_uv(),
            current: MicroAmps(current_ua),
            power: MilliWatts(power_uw / 1000),
        })
    }
}

/// Everything one INA219 conversion yields, signed by the sign convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Bus voltage (IN- to ground).
    pub bus: MilliVolts,
    /// Shunt voltage in microvolts, positive towards consumption.
    pub shunt_uv: i32,
    /// Current, positive towards consumption.
    pub current: MicroAmps,
    /// Power, positive when consumed.
    pub power: MilliWatts,
}

impl<I2C> PowerSensor for Ina219<I2C>
where
    I2C: I2c,
    I2C::Error: Send + Sync + 'static,
{
    type Error = Error<I2C::Error>;

    fn read(&mut self) -> Result<PowerReading, Self::Error> {
        let m = self.measure()?;
        Ok(PowerReading {
            voltage: m.bus,
            current: m.current,
            power: m.power,
        })
    }
}

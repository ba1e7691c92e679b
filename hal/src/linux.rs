//! Linux backend: I2C through i2cdev (falling back to SMBus on adapters that only do SMBus) and
//! GPIO lines through the character device.

use std::path::Path;

use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin, PinState, StatefulOutputPin};
use embedded_hal::i2c::{ErrorType, I2c, Operation, SevenBitAddress};
use gpio_cdev::{Chip, LineRequestFlags};
use i2cdev::core::I2CDevice;
use i2cdev::linux::LinuxI2CError;
use linux_embedded_hal::{CdevPin, CdevPinError, I2CError, I2cdev};

use crate::error::OpenError;
use crate::smbus::{Smbus, SmbusI2c, SmbusI2cError};

/// How transfers are carried to the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum I2cMode {
    /// Plain I2C, switching to SMBus for good if the adapter refuses plain transfers.
    #[default]
    Auto,
    /// Plain I2C transfers only.
    Plain,
    /// SMBus transfers only.
    Smbus,
}

/// An I2C bus device node (`/dev/i2c-N`).
pub struct LinuxI2c {
    bus: SmbusI2c<LinuxSmbus>,
    mode: I2cMode,
}

impl core::fmt::Debug for LinuxI2c {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinuxI2c")
            .field("mode", &self.mode)
            .finish()
    }
}

/// The SMBus side of an i2cdev bus node.
struct LinuxSmbus {
    dev: I2cdev,
    address: Option<u8>,
}

/// The error of a transfer on a [`LinuxI2c`] bus.
pub type LinuxI2cError = SmbusI2cError<I2CError>;

impl LinuxI2c {
    /// Opens the bus node at `path`.
    pub fn open(path: &Path, mode: I2cMode) -> Result<Self, OpenError> {
        let dev = I2cdev::new(path).map_err(|e| open_error(path, &e))?;
        Ok(Self {
            bus: SmbusI2c(LinuxSmbus { dev, address: None }),
            mode,
        })
    }

    /// The mode in use (after `Auto` has found out, `Plain` or `Smbus`).
    pub fn mode(&self) -> I2cMode {
        self.mode
    }

    fn plain(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), I2CError> {
        self.bus.0.address = None;
        self.bus.0.dev.transaction(address, operations)
    }
}

fn open_error(path: &Path, e: &LinuxI2CError) -> OpenError {
    let node = path.display().to_string();
    match e {
        LinuxI2CError::Errno(errno) => OpenError::from_errno(node, *errno, e.to_string()),
        LinuxI2CError::Io(io) => OpenError::from_io(node, io),
    }
}

/// `EOPNOTSUPP`: what the kernel answers for plain transfers on an SMBus-only adapter.
const EOPNOTSUPP: i32 = 95;

fn not_supported(e: &I2CError) -> bool {
    match e.inner() {
        LinuxI2CError::Errno(errno) => *errno == EOPNOTSUPP,
        LinuxI2CError::Io(io) => io.raw_os_error() == Some(EOPNOTSUPP),
    }
}

impl ErrorType for LinuxI2c {
    type Error = LinuxI2cError;
}

impl I2c<SevenBitAddress> for LinuxI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        match self.mode {
            I2cMode::Smbus => self.bus.transaction(address, operations),
            I2cMode::Plain => self
                .plain(address, operations)
                .map_err(SmbusI2cError::Adapter),
            I2cMode::Auto => match self.plain(address, operations) {
                Err(e) if not_supported(&e) => {
                    self.mode = I2cMode::Smbus;
                    self.bus.transaction(address, operations)
                }
                Err(e) => Err(SmbusI2cError::Adapter(e)),
                Ok(()) => {
                    self.mode = I2cMode::Plain;
                    Ok(())
                }
            },
        }
    }
}

impl LinuxSmbus {
    fn select(&mut self, address: u8) -> Result<&mut I2cdev, I2CError> {
        if self.address != Some(address) {
            self.dev.set_slave_address(u16::from(address))?;
            self.address = Some(address);
        }
        Ok(&mut self.dev)
    }
}

impl Smbus for LinuxSmbus {
    type Error = I2CError;

    fn write_byte(&mut self, address: u8, value: u8) -> Result<(), I2CError> {
        Ok(self.select(address)?.smbus_write_byte(value)?)
    }

    fn read_byte(&mut self, address: u8) -> Result<u8, I2CError> {
        Ok(self.select(address)?.smbus_read_byte()?)
    }

    fn write_byte_data(&mut self, address: u8, command: u8, value: u8) -> Result<(), I2CError> {
        Ok(self
            .select(address)?
            .smbus_write_byte_data(command, value)?)
    }

    fn read_byte_data(&mut self, address: u8, command: u8) -> Result<u8, I2CError> {
        Ok(self.select(address)?.smbus_read_byte_data(command)?)
    }

    fn write_word_data(&mut self, address: u8, command: u8, value: u16) -> Result<(), I2CError> {
        Ok(self
            .select(address)?
            .smbus_write_word_data(command, value)?)
    }

    fn read_word_data(&mut self, address: u8, command: u8) -> Result<u16, I2CError> {
        Ok(self.select(address)?.smbus_read_word_data(command)?)
    }
}

/// An output line of a GPIO chip, read back from the kernel.
pub struct LinuxLine(CdevPin);

impl core::fmt::Debug for LinuxLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LinuxLine")
    }
}

impl LinuxLine {
    /// Requests `line` of the chip at `chip` as an output, driven to `initial` from the first instant.
    pub fn open(chip: &Path, line: u32, initial: PinState) -> Result<Self, OpenError> {
        let node = format!("{}:{line}", chip.display());
        let classify = |e: gpio_cdev::Error| {
            let source = std::error::Error::source(&e);
            if let Some(io) = source.and_then(|s| s.downcast_ref::<std::io::Error>()) {
                OpenError::from_io(&node, io)
            } else if let Some(errno) = source.and_then(|s| s.downcast_ref::<nix::errno::Errno>()) {
                OpenError::from_errno(&node, *errno as i32, e.to_string())
            } else {
                // An offset beyond the chip's lines: that line does not exist.
                OpenError::from_errno(&node, 19, e.to_string())
            }
        };
        let handle = Chip::new(chip)
            .map_err(classify)?
            .get_line(line)
            .map_err(classify)?
            .request(
                LineRequestFlags::OUTPUT,
                u8::from(initial == PinState::High),
                "daisee-agent",
            )
            .map_err(classify)?;
        Ok(Self(CdevPin::new(handle).map_err(classify)?))
    }
}

impl PinErrorType for LinuxLine {
    type Error = CdevPinError;
}

impl OutputPin for LinuxLine {
    fn set_low(&mut self) -> Result<(), CdevPinError> {
        self.0.set_low()
    }

    fn set_high(&mut self) -> Result<(), CdevPinError> {
        self.0.set_high()
    }
}

impl StatefulOutputPin for LinuxLine {
    /// The value the kernel reports for the line, not a cached copy of the last write.
    fn is_set_high(&mut self) -> Result<bool, CdevPinError> {
        embedded_hal::digital::InputPin::is_high(&mut self.0)
    }

    fn is_set_low(&mut self) -> Result<bool, CdevPinError> {
        Ok(!self.is_set_high()?)
    }
}

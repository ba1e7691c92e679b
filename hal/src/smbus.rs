//! Plain I2C register access carried over SMBus, for adapters that only do SMBus.
//!
//! Several real adapters, and the kernel's `i2c-stub`, refuse plain I2C transfers. Register-based
//! chips like the INA219 only ever write a pointer and read or write one register, which SMBus "byte
//! data" and "word data" transfers express. SMBus words are little-endian on the wire while the INA219
//! (and most sensors) send the most significant byte first: the register value is the SMBus word
//! byte-swapped, which here falls out of keeping the bytes in wire order.

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, Operation, SevenBitAddress};

/// The SMBus transfers a register-based chip needs.
pub trait Smbus {
    /// The adapter's error.
    type Error: embedded_hal::i2c::Error;
    /// "Send byte": writes one byte without a command (sets the register pointer).
    fn write_byte(&mut self, address: u8, value: u8) -> Result<(), Self::Error>;
    /// "Receive byte": reads one byte without a command.
    fn read_byte(&mut self, address: u8) -> Result<u8, Self::Error>;
    /// "Write byte data".
    fn write_byte_data(&mut self, address: u8, command: u8, value: u8) -> Result<(), Self::Error>;
    /// "Read byte data".
    fn read_byte_data(&mut self, address: u8, command: u8) -> Result<u8, Self::Error>;
    /// "Write word data", little-endian on the wire as SMBus defines it.
    fn write_word_data(&mut self, address: u8, command: u8, value: u16) -> Result<(), Self::Error>;
    /// "Read word data", little-endian on the wire as SMBus defines it.
    fn read_word_data(&mut self, address: u8, command: u8) -> Result<u16, Self::Error>;
}

/// An I2C bus whose transfers are carried out as SMBus transfers.
#[derive(Debug)]
pub struct SmbusI2c<S>(pub S);

/// A transfer that SMBus cannot express, or the adapter's own error.
#[derive(Debug, thiserror::Error)]
pub enum SmbusI2cError<E> {
    /// The adapter failed.
    #[error(transparent)]
    Adapter(E),
    /// The transfer has no SMBus equivalent.
    #[error("this transfer ({0}) has no SMBus equivalent and the adapter only does SMBus")]
    Inexpressible(&'static str),
}

impl<E: embedded_hal::i2c::Error> embedded_hal::i2c::Error for SmbusI2cError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            SmbusI2cError::Adapter(e) => e.kind(),
            SmbusI2cError::Inexpressible(_) => ErrorKind::Other,
        }
    }
}

impl<S: Smbus> ErrorType for SmbusI2c<S> {
    type Error = SmbusI2cError<S::Error>;
}

impl<S: Smbus> I2c<SevenBitAddress> for SmbusI2c<S> {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let bus = &mut self.0;
        let mut ops = operations.iter_mut().peekable();
        while let Some(op) = ops.next() {
            match op {
                Operation::Write(bytes) => {
                    let bytes: &[u8] = bytes;
                    let read = match ops.peek_mut() {
                        Some(Operation::Read(_)) => match ops.next() {
                            Some(Operation::Read(buf)) => Some(buf),
                            _ => None,
                        },
                        _ => None,
                    };
                    match (bytes, read) {
                        ([command], Some(buf)) => match buf.len() {
                            1 => {
                                buf[0] = bus
                                    .read_byte_data(address, *command)
                                    .map_err(SmbusI2cError::Adapter)?
                            }
                            2 => {
                                let word = bus
                                    .read_word_data(address, *command)
                                    .map_err(SmbusI2cError::Adapter)?;
                                buf.copy_from_slice(&word.to_le_bytes());
                            }
                            _ => {
                                return Err(SmbusI2cError::Inexpressible(
                                    "read of more than 2 bytes",
                                ));
                            }
                        },
                        (_, Some(_)) => {
                            return Err(SmbusI2cError::Inexpressible(
                                "read after a write of several bytes",
                            ));
                        }
                        ([value], None) => bus
                            .write_byte(address, *value)
                            .map_err(SmbusI2cError::Adapter)?,
                        ([command, value], None) => bus
                            .write_byte_data(address, *command, *value)
                            .map_err(SmbusI2cError::Adapter)?,
                        ([command, msb, lsb], None) => bus
                            .write_word_data(address, *command, u16::from_le_bytes([*msb, *lsb]))
                            .map_err(SmbusI2cError::Adapter)?,
                        _ => {
                            return Err(SmbusI2cError::Inexpressible(
                                "write of more than 3 bytes or none",
                            ));
                        }
                    }
                }
                Operation::Read(buf) => match buf.len() {
                    1 => buf[0] = bus.read_byte(address).map_err(SmbusI2cError::Adapter)?,
                    _ => return Err(SmbusI2cError::Inexpressible("read without a command")),
                },
            }
        }
        Ok(())
    }
}

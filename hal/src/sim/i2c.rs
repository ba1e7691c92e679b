use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::i2c::{
    ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation, SevenBitAddress,
};

use crate::smbus::Smbus;

/// A chip on a simulated I2C bus, seen at the level of bytes on the wire.
pub trait WireDevice: Send {
    /// The master wrote `bytes` (after the address byte).
    fn write(&mut self, bytes: &[u8]);
    /// The master reads `buf.len()` bytes.
    fn read(&mut self, buf: &mut [u8]);
}

/// Counts of what crossed a simulated bus, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Transfers started (each START or repeated START with an address byte).
    pub transfers: u64,
    /// Bytes on the wire, address bytes included.
    pub bytes: u64,
}

/// A simulated I2C bus adapter with chips at addresses. Clones share the bus.
///
/// It serves both as a full I2C adapter ([`I2c`]) and as an SMBus-only one ([`Smbus`]), the latter
/// carrying each SMBus transfer as the bytes SMBus puts on the wire (words little-endian).
#[derive(Clone, Default)]
pub struct SimI2cBus(Arc<Mutex<Bus>>);

#[derive(Default)]
struct Bus {
    chips: BTreeMap<u8, Box<dyn WireDevice>>,
    failures: u32,
    stats: BusStats,
}

/// The error of a transfer on a simulated bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SimI2cError {
    /// No chip acknowledged the address.
    #[error("no acknowledge from address {0:#04x}")]
    Nack(u8),
    /// An injected bus fault.
    #[error("bus error (injected)")]
    Bus,
}

impl embedded_hal::i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimI2cError::Nack(_) => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            SimI2cError::Bus => ErrorKind::Bus,
        }
    }
}

impl core::fmt::Debug for SimI2cBus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let bus = self.lock();
        f.debug_struct("SimI2cBus")
            .field("addresses", &bus.chips.keys().collect::<Vec<_>>())
            .field("stats", &bus.stats)
            .finish()
    }
}

impl SimI2cBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `chip` on the bus at `address`, replacing what was there.
    pub fn attach(&self, address: u8, chip: impl WireDevice + 'static) {
        self.lock().chips.insert(address, Box::new(chip));
    }

    /// Takes the chip at `address` off the bus, as if it had been unplugged.
    pub fn detach(&self, address: u8) -> Option<Box<dyn WireDevice>> {
        self.lock().chips.remove(&address)
    }

    /// Makes the next `count` transfers fail with a bus error.
    pub fn fail_next(&self, count: u32) {
        self.lock().failures = count;
    }

    /// What crossed the bus so far.
    pub fn stats(&self) -> BusStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, Bus> {
        // A panic while holding the lock leaves only counters and register files, still consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One transfer: address byte, then the bytes of each operation.
    fn transfer(&self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), SimI2cError> {
        let mut bus = self.lock();
        if bus.failures > 0 {
            bus.failures -= 1;
            return Err(SimI2cError::Bus);
        }
        let Bus { chips, stats, .. } = &mut *bus;
        stats.transfers += operations.len() as u64;
        stats.bytes += operations.len() as u64;
        let chip = chips.get_mut(&address).ok_or(SimI2cError::Nack(address))?;
        for op in operations {
            match op {
                Operation::Write(bytes) => {
                    stats.bytes += bytes.len() as u64;
                    chip.write(bytes);
                }
                Operation::Read(buf) => {
                    stats.bytes += buf.len() as u64;
                    chip.read(buf);
                }
            }
        }
        Ok(())
    }
}

impl ErrorType for SimI2cBus {
    type Error = SimI2cError;
}

impl I2c<SevenBitAddress> for SimI2cBus {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        self.transfer(address, operations)
    }
}

impl Smbus for SimI2cBus {
    type Error = SimI2cError;

    fn write_byte(&mut self, address: u8, value: u8) -> Result<(), SimI2cError> {
        self.transfer(address, &mut [Operation::Write(&[value])])
    }

    fn read_byte(&mut self, address: u8) -> Result<u8, SimI2cError> {
        let mut buf = [0];
        self.transfer(address, &mut [Operation::Read(&mut buf)])?;
        Ok(buf[0])
    }

    fn write_byte_data(&mut self, address: u8, command: u8, value: u8) -> Result<(), SimI2cError> {
        self.transfer(address, &mut [Operation::Write(&[command, value])])
    }

    fn read_byte_data(&mut self, address: u8, command: u8) -> Result<u8, SimI2cError> {
        let mut buf = [0];
        self.transfer(
            address,
            &mut [Operation::Write(&[command]), Operation::Read(&mut buf)],
        )?;
        Ok(buf[0])
    }

    fn write_word_data(&mut self, address: u8, command: u8, value: u16) -> Result<(), SimI2cError> {
        let [low, high] = value.to_le_bytes();
        self.transfer(address, &mut [Operation::Write(&[command, low, high])])
    }

    fn read_word_data(&mut self, address: u8, command: u8) -> Result<u16, SimI2cError> {
        let mut buf = [0; 2];
        self.transfer(
            address,
            &mut [Operation::Write(&[command]), Operation::Read(&mut buf)],
        )?;
        Ok(u16::from_le_bytes(buf))
    }
}

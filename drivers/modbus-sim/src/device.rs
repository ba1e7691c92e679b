//! What a simulated device does besides holding registers: follow the simulated world and accept
//! writes.

use daisee_hal::Timestamp;
use daisee_modbus::decode::{Values, encode};
use daisee_modbus::profile::{Profile, Scale, Unit};
use tokio_modbus::ExceptionCode;

use crate::registers::RegisterMap;

/// The behaviour of a simulated device behind its register map.
pub trait Behaviour: Send {
    /// Brings the registers up to date with the simulated world at `at`.
    fn tick(&mut self, at: Timestamp, registers: &mut RegisterMap);

    /// What the device measures now, as a client should decode it from the registers.
    fn values(&self) -> Values;

    /// Handles a write of `words` from `address` (holding registers) at `at`. Devices without
    /// writable registers refuse, as read-only meters do.
    fn write(
        &mut self,
        at: Timestamp,
        address: u16,
        words: &[u16],
        registers: &mut RegisterMap,
    ) -> Result<(), ExceptionCode> {
        let _ = (at, address, words, registers);
        Err(ExceptionCode::IllegalDataAddress)
    }
}

/// The power of ten a simulated device puts in a scale-factor register for values in `unit`: fine
/// enough to keep the precision a real device shows, coarse enough to fit 16 bits.
pub fn scale_exponent(unit: Unit) -> i16 {
    match unit {
        Unit::V => -1,
        Unit::A | Unit::Hz => -2,
        Unit::W | Unit::Wh => 0,
        Unit::KW | Unit::KWh => -3,
    }
}

/// Puts `values` into the registers `profile` reads them from, scale-factor registers included.
pub fn write_values(profile: &Profile, values: &Values, registers: &mut RegisterMap) {
    for point in &profile.points {
        let Some(value) = values.get(point) else {
            continue;
        };
        let exponent = scale_exponent(point.unit);
        if let Scale::Register(address) = point.scaling() {
            registers.set(point.function, address, &[exponent as u16]);
        }
        registers.set(
            point.function,
            point.address,
            &encode(point, value, exponent),
        );
    }
}

//! Choice of the calibration register and the PGA range from the shunt and the expected current.

use ina219::calibration::{IntCalibration, MicroAmpere};
use ina219::configuration::ShuntVoltageRange;

/// The calibration of one INA219 for one shunt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    int: IntCalibration,
    range: ShuntVoltageRange,
}

/// Settings no INA219 calibration can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CalibrationError {
    /// Shunt resistance or maximum current is zero.
    #[error("shunt resistance and maximum current must be above zero")]
    Zero,
    /// The shunt voltage at the maximum current exceeds the largest PGA range (320 mV).
    #[error("{0} µV across the shunt at the maximum current exceeds the INA219's 320 mV range")]
    ShuntTooLarge(u64),
    /// The calibration register cannot hold the value the settings need.
    #[error("no calibration register value fits: use a larger shunt or a larger maximum current")]
    Unrepresentable,
    /// The address is not one an INA219 can have.
    #[error("address {0:#04x} is not an INA219 address (0x40 to 0x4F)")]
    Address(u8),
}

impl Calibration {
    /// The finest current resolution that still measures `max_current_ua` through `shunt_uohm`.
    ///
    /// Datasheet (SBOS448, 8.5.1): Current_LSB = Max_Expected_I / 2^15, here rounded up to a whole
    /// microampere; Cal = trunc(0.04096 / (Current_LSB × R_shunt)); Power_LSB = 20 × Current_LSB. The
    /// PGA takes the smallest range that holds the shunt voltage at the maximum current.
    pub fn new(shunt_uohm: u32, max_current_ua: u32) -> Result<Self, CalibrationError> {
        if shunt_uohm == 0 || max_current_ua == 0 {
            return Err(CalibrationError::Zero);
        }
        let lsb = u64::from(max_current_ua).div_ceil(1 << 15);
        let max_shunt_uv = u64::from(max_current_ua) * u64::from(shunt_uohm) / 1_000_000;
        let range = [
            ShuntVoltageRange::Fsr40mv,
            ShuntVoltageRange::Fsr80mv,
            ShuntVoltageRange::Fsr160mv,
            ShuntVoltageRange::Fsr320mv,
        ]
        .into_iter()
        .find(|r| max_shunt_uv <= u64::from(r.range_mv().end().unsigned_abs()) * 1000)
        .ok_or(CalibrationError::ShuntTooLarge(max_shunt_uv))?;
        let int = IntCalibration::new(MicroAmpere(lsb as i64), shunt_uohm)
            .ok_or(CalibrationError::Unrepresentable)?;
        Ok(Self { int, range })
    }

    /// The value written to the calibration register (bit 0 does not exist and is always 0).
    pub fn register(&self) -> u16 {
        self.int.as_bits()
    }

    /// The current register's LSB in microamperes.
    pub fn current_lsb_ua(&self) -> i64 {
        self.int.current_lsb().0
    }

    /// The power register's LSB in microwatts.
    pub fn power_lsb_uw(&self) -> i64 {
        self.int.power_lsb().0
    }

    /// The PGA range chosen.
    pub fn shunt_range(&self) -> ShuntVoltageRange {
        self.range
    }

    /// Whether a shunt reading sits at the PGA's full scale, where the ADC clips.
    pub(crate) fn saturated(&self, shunt_10uv: i16) -> bool {
        let full_scale = i32::from(*self.range.range_mv().end()) * 100;
        i32::from(shunt_10uv).abs() >= full_scale
    }

    pub(crate) fn int(&self) -> IntCalibration {
        self.int
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0.04096 in the datasheet's formula, scaled for microamperes and micro-ohms.
    const SCALE: u64 = 40_960_000_000;

    #[test]
    fn exact_formula_holds_for_the_register() {
        for (r, i) in [
            (100_000, 3_200_000),
            (10_000, 10_000_000),
            (2_000, 20_000_000),
        ] {
            let c = Calibration::new(r, i).unwrap();
            let expected = SCALE / (c.current_lsb_ua() as u64 * u64::from(r));
            assert_eq!(u64::from(c.register()), expected & !1);
        }
    }

    #[test]
    fn refuses_what_no_range_can_measure() {
        assert_eq!(
            Calibration::new(100_000, 4_000_000),
            Err(CalibrationError::ShuntTooLarge(400_000))
        );
        assert_eq!(Calibration::new(0, 1), Err(CalibrationError::Zero));
    }
}

//! Register values into the project's quantities: word order, data type, scale, unit and sign.

use daisee_hal::{
    Energy, MeterReading, MicroAmps, MilliVolts, MilliWattHours, MilliWatts, PhaseReading,
};

use crate::plan::Registers;
use crate::profile::{DataType, Point, Profile, Quantity, Scale, Sign, Unit, WordOrder};

/// Everything one poll of a device yielded, in integer fixed point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Values {
    /// Total active power.
    pub power: Option<MilliWatts>,
    /// Voltage (L1 for polyphase devices without a total).
    pub voltage: Option<MilliVolts>,
    /// Current.
    pub current: Option<MicroAmps>,
    /// Frequency in millihertz.
    pub frequency_mhz: Option<i64>,
    /// Energy imported.
    pub import: Option<MilliWattHours>,
    /// Energy exported.
    pub export: Option<MilliWattHours>,
    /// Per-phase power, voltage and current, L1 to L3.
    pub phases: [PhaseValues; 3],
}

/// The values of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseValues {
    /// Active power.
    pub power: Option<MilliWatts>,
    /// Voltage to neutral.
    pub voltage: Option<MilliVolts>,
    /// Current.
    pub current: Option<MicroAmps>,
}

/// A register value that cannot be right.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{quantity:?} at register {address}: {message}")]
pub struct DecodeError {
    /// What the point measures.
    pub quantity: Quantity,
    /// Its first register.
    pub address: u16,
    /// What is wrong.
    pub message: String,
}

impl Values {
    /// Decodes every point of `profile` from `registers`. With `not_implemented` (SunSpec), the
    /// markers 0x8000, 0xFFFF, 0x80000000, 0xFFFFFFFF and NaN leave a value out instead of reading
    /// as numbers.
    pub fn decode(
        profile: &Profile,
        registers: &Registers,
        not_implemented: bool,
    ) -> Result<Self, DecodeError> {
        let mut values = Values::default();
        for point in &profile.points {
            if let Some(value) = decode_point(point, registers, not_implemented)? {
                values.set(point, value)?;
            }
        }
        Ok(values)
    }

    fn set(&mut self, point: &Point, value: i64) -> Result<(), DecodeError> {
        let phase = point.phase.map(|p| &mut self.phases[usize::from(p - 1)]);
        let energy = |value: i64| {
            u64::try_from(value)
                .map(MilliWattHours)
                .map_err(|_| DecodeError {
                    quantity: point.quantity,
                    address: point.address,
                    message: format!("negative energy counter {value} mWh"),
                })
        };
        match (point.quantity, phase) {
            (Quantity::Power, None) => self.power = Some(MilliWatts(value)),
            (Quantity::Power, Some(ph)) => ph.power = Some(MilliWatts(value)),
            (Quantity::Voltage, None) => self.voltage = Some(MilliVolts(clamp_i32(value))),
            (Quantity::Voltage, Some(ph)) => ph.voltage = Some(MilliVolts(clamp_i32(value))),
            (Quantity::Current, None) => self.current = Some(MicroAmps(value)),
            (Quantity::Current, Some(ph)) => ph.current = Some(MicroAmps(value)),
            (Quantity::Frequency, _) => self.frequency_mhz = Some(value),
            (Quantity::ImportEnergy, _) => self.import = Some(energy(value)?),
            (Quantity::ExportEnergy, _) => self.export = Some(energy(value)?),
        }
        Ok(())
    }

    /// The values as a meter reading; `None` if the device gave no total power.
    pub fn meter_reading(&self) -> Option<MeterReading> {
        let phase_power = self
            .phases
            .iter()
            .try_fold(MilliWatts(0), |total, p| Some(total + p.power?));
        let power = self.power.or(phase_power)?;
        let phases = self.phases.iter().any(|p| p.power.is_some()).then(|| {
            self.phases.map(|p| PhaseReading {
                voltage: p.voltage.unwrap_or_default(),
                current: p.current.unwrap_or_default(),
                power: p.power.unwrap_or_default(),
            })
        });
        Some(MeterReading {
            power,
            voltage: self.voltage.or(self.phases[0].voltage),
            current: self.current.or(self.phases[0].current),
            energy: Energy {
                import: self.import.unwrap_or_default(),
                export: self.export.unwrap_or_default(),
            },
            phases,
        })
    }
}

fn clamp_i32(value: i64) -> i32 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The fixed-point value of one point, or `None` when the device marks it "not implemented".
fn decode_point(
    point: &Point,
    registers: &Registers,
    not_implemented: bool,
) -> Result<Option<i64>, DecodeError> {
    let error = |message: String| DecodeError {
        quantity: point.quantity,
        address: point.address,
        message,
    };
    let words = registers
        .get(point.function, point.address, point.data_type.registers())
        .ok_or_else(|| error("not read".into()))?;
    let mut ordered = [0u16; 4];
    let ordered = &mut ordered[..words.len()];
    ordered.copy_from_slice(words);
    if point.word_order == WordOrder::LowFirst {
        ordered.reverse();
    }
    let bits = ordered
        .iter()
        .fold(0u64, |acc, w| acc << 16 | u64::from(*w));
    let (raw, marker) = match point.data_type {
        DataType::U16 => (bits as f64, bits == 0xFFFF),
        DataType::I16 => (f64::from(bits as u16 as i16), bits == 0x8000),
        DataType::U32 => (bits as f64, bits == 0xFFFF_FFFF),
        DataType::I32 => (f64::from(bits as u32 as i32), bits == 0x8000_0000),
        DataType::U64 => (bits as f64, bits == u64::MAX),
        DataType::F32 => {
            let f = f32::from_bits(bits as u32);
            (f64::from(f), f.is_nan())
        }
    };
    if not_implemented && marker {
        return Ok(None);
    }
    if !raw.is_finite() {
        return Err(error(format!("not a number ({bits:#x})")));
    }
    let scale = match point.scaling() {
        Scale::Factor(f) => f,
        Scale::Register(address) => {
            let sf = registers
                .get(point.function, address, 1)
                .ok_or_else(|| error(format!("scale factor at {address} not read")))?[0]
                as i16;
            if sf == i16::MIN && not_implemented {
                return Ok(None);
            }
            if !(-10..=10).contains(&sf) {
                return Err(error(format!("scale factor {sf} out of range")));
            }
            10f64.powi(i32::from(sf))
        }
    };
    let value = (raw * multiplier(point, scale)).round();
    if value.abs() >= 9.0e18 {
        return Err(error(format!("{value} out of range")));
    }
    Ok(Some(value as i64))
}

/// What the raw value times the scale is multiplied by to give the fixed-point value.
fn multiplier(point: &Point, scale: f64) -> f64 {
    let unit = match point.unit {
        Unit::W | Unit::Wh | Unit::V | Unit::Hz => 1e3,
        Unit::KW | Unit::KWh | Unit::A => 1e6,
    };
    let sign = match (point.sign, point.quantity) {
        (Sign::Inverted, Quantity::Power | Quantity::Current) => -1.0,
        _ => 1.0,
    };
    scale * unit * sign
}

/// The registers that hold `value` (fixed point, as [`Values`] has it) for `point`: the inverse of
/// decoding, for simulated devices. `scale_factor` is the exponent the device's scale-factor
/// register holds, for points that have one.
pub fn encode(point: &Point, value: i64, scale_factor: i16) -> Vec<u16> {
    let scale = match point.scaling() {
        Scale::Factor(f) => f,
        Scale::Register(_) => 10f64.powi(i32::from(scale_factor)),
    };
    let raw = value as f64 / multiplier(point, scale);
    let bits: u64 = match point.data_type {
        DataType::U16 => raw.round().clamp(0.0, f64::from(u16::MAX)) as u64,
        DataType::I16 => {
            u64::from(raw.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16 as u16)
        }
        DataType::U32 => raw.round().clamp(0.0, f64::from(u32::MAX)) as u64,
        DataType::I32 => {
            u64::from(raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32)
        }
        DataType::U64 => raw.round().max(0.0) as u64,
        DataType::F32 => u64::from((raw as f32).to_bits()),
    };
    let n = usize::from(point.data_type.registers());
    let mut words: Vec<u16> = (0..n).rev().map(|i| (bits >> (16 * i)) as u16).collect();
    if point.word_order == WordOrder::LowFirst {
        words.reverse();
    }
    words
}

//! Register values into the project's quantities: word order, data type, scale, unit and sign.

use daisee_hal::{
    Energy, MeterReading, MicroAmps, MilliHertz, MilliVolts, MilliWattHours, MilliWatts,
    PhaseReading,
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

    /// The value `point` stands for, in fixed point; `None` if this poll did not yield it.
    pub fn get(&self, point: &Point) -> Option<i64> {
        let phase = point.phase.map(|p| &self.phases[usize::from(p - 1)]);
        match (point.quantity, phase) {
            (Quantity::Power, None) => self.power.map(|p| p.0),
            (Quantity::Power, Some(ph)) => ph.power.map(|p| p.0),
            (Quantity::Voltage, None) => self.voltage.map(|v| i64::from(v.0)),
            (Quantity::Voltage, Some(ph)) => ph.voltage.map(|v| i64::from(v.0)),
            (Quantity::Current, None) => self.current.map(|c| c.0),
            (Quantity::Current, Some(ph)) => ph.current.map(|c| c.0),
            (Quantity::Frequency, _) => self.frequency_mhz,
            (Quantity::ImportEnergy, _) => self.import.map(|e| e.0 as i64),
            (Quantity::ExportEnergy, _) => self.export.map(|e| e.0 as i64),
        }
    }

    /// The values as a meter reading; `None` if the device gave no total power.
    pub fn meter_reading(&self) -> Option<MeterReading> {
        let power = match self.power {
            Some(p) => p,
            // No total: the sum of the phases, if there are three and it fits.
            None => self.phases.iter().try_fold(MilliWatts(0), |total, p| {
                total.0.checked_add(p.power?.0).map(MilliWatts)
            })?,
        };
        let measured =
            |p: &PhaseValues| p.power.is_some() || p.voltage.is_some() || p.current.is_some();
        let phases = self.phases.iter().any(measured).then(|| {
            self.phases.map(|p| PhaseReading {
                voltage: p.voltage,
                current: p.current,
                power: p.power,
            })
        });
        Some(MeterReading {
            power,
            voltage: self.voltage,
            current: self.current,
            frequency: self.frequency_mhz.map(MilliHertz),
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
        DataType::Acc32 | DataType::Acc64 => (bits as f64, bits == 0),
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
        DataType::U32 | DataType::Acc32 => raw.round().clamp(0.0, f64::from(u32::MAX)) as u64,
        DataType::I32 => {
            u64::from(raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32)
        }
        DataType::U64 | DataType::Acc64 => raw.round().max(0.0) as u64,
        DataType::F32 => u64::from((raw as f32).to_bits()),
    };
    let n = usize::from(point.data_type.registers());
    let mut words: Vec<u16> = (0..n).rev().map(|i| (bits >> (16 * i)) as u16).collect();
    if point.word_order == WordOrder::LowFirst {
        words.reverse();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Read;
    use crate::profile::Function;

    fn registers(function: Function, start: u16, words: &[u16]) -> Registers {
        let mut regs = Registers::default();
        let read = Read {
            function,
            start,
            count: words.len() as u16,
        };
        regs.insert(read, words.to_vec());
        regs
    }

    fn point(toml: &str) -> Point {
        let profile = Profile::parse(&format!("name = \"t\"\n[[point]]\n{toml}")).unwrap();
        profile.points[0].clone()
    }

    fn value(p: &Point, regs: &Registers, not_implemented: bool) -> Option<i64> {
        decode_point(p, regs, not_implemented).unwrap()
    }

    #[test]
    fn eastron_float_as_in_its_manual() {
        // SDM120 protocol V2.5: the answer 43 66 33 34 reads 230.2 V.
        let p = point(
            r#"quantity = "voltage"
address = 0
function = 4
type = "f32"
unit = "V""#,
        );
        let regs = registers(Function::Input, 0, &[0x4366, 0x3334]);
        assert_eq!(value(&p, &regs, false), Some(230_200));
        // The nearest float to 230.2 is one ulp below the meter's.
        assert_eq!(encode(&p, 230_200, 0), [0x4366, 0x3333]);
    }

    #[test]
    fn signed_32_bits_low_word_first_with_a_weight() {
        // EM340 W sys: INT32, low word first, 0.1 W. -12345 is 0xFFFF_CFC7.
        let p = point(
            r#"quantity = "power"
address = 0x28
function = 4
type = "i32"
word_order = "low_first"
scale = 0.1
unit = "W""#,
        );
        let regs = registers(Function::Input, 0x28, &[0xCFC7, 0xFFFF]);
        assert_eq!(value(&p, &regs, false), Some(-1_234_500));
        assert_eq!(encode(&p, -1_234_500, 0), [0xCFC7, 0xFFFF]);
    }

    #[test]
    fn scale_factor_registers_and_not_implemented_markers() {
        let p = point(
            r#"quantity = "power"
address = 100
function = 3
type = "i16"
scale_factor = 101
unit = "W"
sign = "inverted""#,
        );
        // 1234 × 10^-1 W, produced: -123.4 W in the project's convention.
        let regs = registers(Function::Holding, 100, &[1234, (-1i16) as u16]);
        assert_eq!(value(&p, &regs, true), Some(-123_400));
        assert_eq!(encode(&p, -123_400, -1), [1234]);
        let absent = registers(Function::Holding, 100, &[0x8000, (-1i16) as u16]);
        assert_eq!(value(&p, &absent, true), None);
        // Without SunSpec semantics 0x8000 is just the most negative int16.
        assert_eq!(value(&p, &absent, false), Some(3_276_800));
        let no_factor = registers(Function::Holding, 100, &[1234, 0x8000]);
        assert_eq!(value(&p, &no_factor, true), None);
        let wild = registers(Function::Holding, 100, &[1234, 11]);
        assert!(decode_point(&p, &wild, true).is_err());
    }

    #[test]
    fn counters_of_32_and_64_bits() {
        let acc32 = point(
            r#"quantity = "import_energy"
address = 0
function = 3
type = "u32"
unit = "Wh""#,
        );
        let regs = registers(Function::Holding, 0, &[0x0001, 0x86A0]);
        assert_eq!(value(&acc32, &regs, false), Some(100_000_000));
        let u64 = point(
            r#"quantity = "export_energy"
address = 0
function = 3
type = "u64"
unit = "Wh""#,
        );
        let regs = registers(Function::Holding, 0, &[0, 0, 0x0001, 0x86A0]);
        assert_eq!(value(&u64, &regs, false), Some(100_000_000));
        let regs = registers(Function::Holding, 0, &[0xFFFF; 4]);
        assert_eq!(value(&u64, &regs, true), None);
    }

    #[test]
    fn a_float_that_is_no_number_is_an_error_unless_marked_absent() {
        let p = point(
            r#"quantity = "frequency"
address = 0
function = 4
type = "f32"
unit = "Hz""#,
        );
        let nan = registers(Function::Input, 0, &[0x7FC0, 0x0000]);
        assert_eq!(value(&p, &nan, true), None);
        let err = decode_point(&p, &nan, false).unwrap_err();
        assert!(err.message.contains("not a number"), "{err}");
        let missing = Registers::default();
        assert!(decode_point(&p, &missing, false).is_err());
    }

    #[test]
    fn a_total_from_phases_that_overflows_is_no_reading() {
        let mut v = Values::default();
        for p in &mut v.phases {
            p.power = Some(MilliWatts(i64::MAX / 2));
        }
        assert_eq!(v.meter_reading(), None);
        v.phases[2].power = Some(MilliWatts(-1));
        assert_eq!(v.meter_reading().unwrap().power, MilliWatts(i64::MAX - 2));
    }

    #[test]
    fn a_reading_keeps_phases_frequency_and_absent_values() {
        let mut v = Values {
            power: Some(MilliWatts(3_000_000)),
            frequency_mhz: Some(50_010),
            ..Values::default()
        };
        v.phases[0].voltage = Some(MilliVolts(230_000));
        v.phases[1].voltage = Some(MilliVolts(231_000));
        let r = v.meter_reading().unwrap();
        assert_eq!(r.frequency, Some(MilliHertz(50_010)));
        assert_eq!(r.voltage, None, "L1 is not the meter's one voltage");
        let phases = r.phases.unwrap();
        assert_eq!(phases[1].voltage, Some(MilliVolts(231_000)));
        assert_eq!(phases[2].voltage, None);
        assert_eq!(phases[0].current, None, "not measured is absent, not 0");
    }

    #[test]
    fn negative_energy_is_refused() {
        let profile = Profile::parse(
            r#"name = "t"
[[point]]
quantity = "import_energy"
address = 0
function = 3
type = "i32"
unit = "Wh""#,
        )
        .unwrap();
        let regs = registers(Function::Holding, 0, &[0xFFFF, 0xFFFF]);
        assert!(Values::decode(&profile, &regs, false).is_err());
    }
}

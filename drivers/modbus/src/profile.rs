//! Device profiles: a meter's or inverter's registers as data (TOML), so that a new device needs a
//! file, not code.

use std::path::Path;

use serde::Deserialize;

/// The largest number of registers one read request may carry (Modbus application protocol 6.3/6.4).
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// The profiles that come with the gateway, by name: `(name, TOML)`.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "eastron-sdm120",
        include_str!("../profiles/eastron-sdm120.toml"),
    ),
    (
        "eastron-sdm630",
        include_str!("../profiles/eastron-sdm630.toml"),
    ),
    (
        "carlo-gavazzi-em340",
        include_str!("../profiles/carlo-gavazzi-em340.toml"),
    ),
];

/// A device's register map.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The device's name (manufacturer and model).
    pub name: String,
    /// Where the register map comes from (document, version, table), for whoever checks it.
    #[serde(default)]
    pub source: String,
    /// How many unused registers a read may span to save a request; 0 for devices that refuse
    /// reads over unmapped registers.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// The most registers the device returns to one read (125, the protocol's limit, unless its
    /// manual says less).
    #[serde(default = "default_max_read")]
    pub max_read: u16,
    /// The values to read.
    #[serde(rename = "point")]
    pub points: Vec<Point>,
}

fn default_max_gap() -> u16 {
    16
}

fn default_max_read() -> u16 {
    MAX_REGISTERS_PER_READ
}

/// One value of the device: where it is and how to turn it into the project's units.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// What the value measures.
    pub quantity: Quantity,
    /// The phase (1 to 3), for per-phase values.
    pub phase: Option<u8>,
    /// Protocol address of the first register (0-based: "30001" in a manual is 0 here).
    pub address: u16,
    /// 3 (holding registers) or 4 (input registers).
    pub function: Function,
    /// How the registers hold the value.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Which register holds the high word of a 32- or 64-bit value.
    #[serde(default)]
    pub word_order: WordOrder,
    /// A constant factor applied to the raw value.
    pub scale: Option<f64>,
    /// Address of an int16 register holding the power of ten to apply (SunSpec scale factors),
    /// read with the same function.
    pub scale_factor: Option<u16>,
    /// The unit of the scaled value.
    pub unit: Unit,
    /// `inverted` for devices whose positive direction is export.
    #[serde(default)]
    pub sign: Sign,
}

/// What a point measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Active power, total or per phase.
    Power,
    /// Voltage (phase to neutral).
    Voltage,
    /// Current.
    Current,
    /// Grid frequency.
    Frequency,
    /// Energy imported (consumed), monotonic.
    ImportEnergy,
    /// Energy exported (produced), monotonic.
    ExportEnergy,
}

/// The Modbus function that reads a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "u8")]
pub enum Function {
    /// Function code 3.
    Holding,
    /// Function code 4.
    Input,
}

impl TryFrom<u8> for Function {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, String> {
        match code {
            3 => Ok(Function::Holding),
            4 => Ok(Function::Input),
            _ => Err(format!(
                "function {code}: points are read with 3 (holding) or 4 (input)"
            )),
        }
    }
}

/// How registers hold a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// Unsigned 16 bits.
    U16,
    /// Signed 16 bits.
    I16,
    /// Unsigned 32 bits (two registers).
    U32,
    /// Signed 32 bits (two registers).
    I32,
    /// Unsigned 64 bits (four registers).
    U64,
    /// IEEE 754 single precision (two registers).
    F32,
    /// A SunSpec 32-bit accumulator: unsigned, 0 when not implemented (two registers).
    Acc32,
    /// A SunSpec 64-bit accumulator: unsigned, 0 when not implemented (four registers).
    Acc64,
}

impl DataType {
    /// How many registers a value takes.
    pub fn registers(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 | DataType::Acc32 => 2,
            DataType::U64 | DataType::Acc64 => 4,
        }
    }
}

/// Which register of a multi-register value comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// The most significant word at the lowest address (Modbus's own byte order, extended).
    #[default]
    HighFirst,
    /// The least significant word at the lowest address.
    LowFirst,
}

/// How the raw value is scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Multiplied by a constant.
    Factor(f64),
    /// Multiplied by ten to the power held in an int16 register at that address.
    Register(u16),
}

impl Point {
    /// How the raw value is scaled.
    pub fn scaling(&self) -> Scale {
        match (self.scale, self.scale_factor) {
            (_, Some(register)) => Scale::Register(register),
            (factor, None) => Scale::Factor(factor.unwrap_or(1.0)),
        }
    }
}

/// The unit of a scaled value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Unit {
    /// Watt.
    W,
    /// Kilowatt.
    #[serde(rename = "kW")]
    KW,
    /// Watt-hour.
    Wh,
    /// Kilowatt-hour.
    #[serde(rename = "kWh")]
    KWh,
    /// Volt.
    V,
    /// Ampere.
    A,
    /// Hertz.
    Hz,
}

/// The device's sign convention for power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sign {
    /// Positive means imported or consumed, as in this project.
    #[default]
    Normal,
    /// Positive means exported or produced.
    Inverted,
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys; the message names the line.
    #[error("{0}")]
    Syntax(String),
    /// A point is inconsistent.
    #[error("point {index} ({quantity:?}): {message}")]
    Point {
        /// Index of the point in the file.
        index: usize,
        /// Its quantity.
        quantity: Quantity,
        /// What is wrong.
        message: String,
    },
}

impl Profile {
    /// Parses a profile and checks its points.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let profile: Profile =
            toml::from_str(text).map_err(|e| ProfileError::Syntax(e.to_string()))?;
        if !(1..=MAX_REGISTERS_PER_READ).contains(&profile.max_read) {
            return Err(ProfileError::Syntax(format!(
                "max_read {}: a read carries 1 to {MAX_REGISTERS_PER_READ} registers",
                profile.max_read
            )));
        }
        for (index, p) in profile.points.iter().enumerate() {
            let bad = |message: String| ProfileError::Point {
                index,
                quantity: p.quantity,
                message,
            };
            if p.phase.is_some_and(|ph| !(1..=3).contains(&ph)) {
                return Err(bad("phase must be 1, 2 or 3".into()));
            }
            if p.phase.is_some()
                && !matches!(
                    p.quantity,
                    Quantity::Power | Quantity::Voltage | Quantity::Current
                )
            {
                return Err(bad(
                    "only power, voltage and current are read per phase".into()
                ));
            }
            if p.data_type.registers() > profile.max_read {
                return Err(bad(format!(
                    "takes {} registers, more than max_read {}",
                    p.data_type.registers(),
                    profile.max_read
                )));
            }
            if u32::from(p.address) + u32::from(p.data_type.registers()) > 0x1_0000 {
                return Err(bad("runs past the last register".into()));
            }
            if p.scale.is_some() && p.scale_factor.is_some() {
                return Err(bad("give scale or scale_factor, not both".into()));
            }
            if p.scale.is_some_and(|s| !s.is_finite() || s == 0.0) {
                return Err(bad("scale must be a finite, non-zero number".into()));
            }
            let fits = match p.quantity {
                Quantity::Power => matches!(p.unit, Unit::W | Unit::KW),
                Quantity::ImportEnergy | Quantity::ExportEnergy => {
                    matches!(p.unit, Unit::Wh | Unit::KWh)
                }
                Quantity::Voltage => p.unit == Unit::V,
                Quantity::Current => p.unit == Unit::A,
                Quantity::Frequency => p.unit == Unit::Hz,
            };
            if !fits {
                return Err(bad(format!(
                    "unit {:?} does not measure this quantity",
                    p.unit
                )));
            }
        }
        Ok(profile)
    }

    /// A profile shipped with the gateway, by name (`eastron-sdm630`).
    pub fn shipped(name: &str) -> Option<Result<Self, ProfileError>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Self::parse(text))
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ProfileError::Syntax(m) => ProfileError::Syntax(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped maps, typed again from the manufacturers' documents cited in each file:
    /// (quantity, phase, address, type, word order, scale).
    type Row = (Quantity, Option<u8>, u16, DataType, WordOrder, f64);

    fn check(name: &str, rows: &[Row]) {
        let profile = Profile::shipped(name).unwrap().unwrap();
        assert_eq!(profile.points.len(), rows.len(), "{name}");
        for (p, row) in profile.points.iter().zip(rows) {
            let Scale::Factor(scale) = p.scaling() else {
                panic!("{name}: fixed scales only");
            };
            let got = (
                p.quantity,
                p.phase,
                p.address,
                p.data_type,
                p.word_order,
                scale,
            );
            assert_eq!(&got, row, "{name}");
            assert_eq!(p.function, Function::Input, "{name}");
        }
    }

    use DataType::{F32, I16, I32};
    use Quantity::*;
    use WordOrder::{HighFirst as Hi, LowFirst as Lo};

    #[test]
    fn eastron_sdm120_matches_protocol_v2_5() {
        check(
            "eastron-sdm120",
            &[
                (Voltage, None, 0x00, F32, Hi, 1.0),
                (Current, None, 0x06, F32, Hi, 1.0),
                (Power, None, 0x0C, F32, Hi, 1.0),
                (Frequency, None, 0x46, F32, Hi, 1.0),
                (ImportEnergy, None, 0x48, F32, Hi, 1.0),
                (ExportEnergy, None, 0x4A, F32, Hi, 1.0),
            ],
        );
    }

    #[test]
    fn eastron_sdm630_matches_protocol_2018_v2() {
        let mut rows = Vec::new();
        for (quantity, base) in [(Voltage, 0x00), (Current, 0x06), (Power, 0x0C)] {
            for phase in 1..=3u8 {
                rows.push((
                    quantity,
                    Some(phase),
                    base + 2 * u16::from(phase - 1),
                    F32,
                    Hi,
                    1.0,
                ));
            }
        }
        rows.extend([
            (Power, None, 0x34, F32, Hi, 1.0),
            (Frequency, None, 0x46, F32, Hi, 1.0),
            (ImportEnergy, None, 0x48, F32, Hi, 1.0),
            (ExportEnergy, None, 0x4A, F32, Hi, 1.0),
        ]);
        check("eastron-sdm630", &rows);
    }

    #[test]
    fn carlo_gavazzi_em340_matches_protocol_v2_r17() {
        check(
            "carlo-gavazzi-em340",
            &[
                (Voltage, Some(1), 0x00, I32, Lo, 0.1),
                (Voltage, Some(2), 0x02, I32, Lo, 0.1),
                (Voltage, Some(3), 0x04, I32, Lo, 0.1),
                (Current, Some(1), 0x0C, I32, Lo, 0.001),
                (Current, Some(2), 0x0E, I32, Lo, 0.001),
                (Current, Some(3), 0x10, I32, Lo, 0.001),
                (Power, Some(1), 0x12, I32, Lo, 0.1),
                (Power, Some(2), 0x14, I32, Lo, 0.1),
                (Power, Some(3), 0x16, I32, Lo, 0.1),
                (Power, None, 0x28, I32, Lo, 0.1),
                (Frequency, None, 0x33, I16, Hi, 0.1),
                (ImportEnergy, None, 0x34, I32, Lo, 0.1),
                (ExportEnergy, None, 0x4E, I32, Lo, 0.1),
            ],
        );
    }

    fn error(toml: &str) -> String {
        Profile::parse(toml).unwrap_err().to_string()
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let head = "name = \"t\"\n[[point]]\nquantity = \"power\"\naddress = 0\nfunction = 3\n";
        assert!(error(&format!("{head}type = \"f32\"\nunit = \"V\"")).contains("unit V"));
        assert!(
            error(&format!("{head}type = \"f32\"\nunit = \"W\"\nscale = 0")).contains("non-zero")
        );
        let unknown = error(&format!("{head}type = \"f32\"\nunit = \"W\"\nregister = 4"));
        assert!(
            unknown.contains("line 8") && unknown.contains("register"),
            "{unknown}"
        );
        let fc = error(
            "name = \"t\"\n[[point]]\nquantity = \"power\"\naddress = 0\nfunction = 6\ntype = \"f32\"\nunit = \"W\"",
        );
        assert!(fc.contains("function 6"), "{fc}");
        let last = error(
            "name = \"t\"\n[[point]]\nquantity = \"power\"\naddress = 65535\nfunction = 3\ntype = \"f32\"\nunit = \"W\"",
        );
        assert!(last.contains("past the last register"), "{last}");
        assert!(error("name = \"t\"\nmax_read = 126\npoint = []").contains("max_read 126"));
        let per_phase = format!("{head}phase = 1\ntype = \"f32\"\nunit = \"W\"")
            .replace("\"power\"", "\"import_energy\"")
            .replace("\"W\"", "\"kWh\"");
        assert!(error(&per_phase).contains("per phase"), "{per_phase}");
        let wide = format!("max_read = 1\n{head}type = \"f32\"\nunit = \"W\"").replacen(
            "name = \"t\"\n",
            "",
            1,
        );
        assert!(error(&format!("name = \"t\"\n{wide}")).contains("more than max_read 1"));
    }
}

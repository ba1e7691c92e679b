//! Device profiles: a meter's or inverter's registers as data (TOML), so that a new device needs a
//! file, not code.

use std::path::Path;

use serde::Deserialize;

/// The largest number of registers one read request may carry (Modbus application protocol 6.3/6.4).
pub const MAX_REGISTERS_PER_READ: u16 = 125;

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
    /// The values to read.
    #[serde(rename = "point")]
    pub points: Vec<Point>,
}

fn default_max_gap() -> u16 {
    16
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
}

impl DataType {
    /// How many registers a value takes.
    pub fn registers(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 => 4,
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
        for (index, p) in profile.points.iter().enumerate() {
            let bad = |message: String| ProfileError::Point {
                index,
                quantity: p.quantity,
                message,
            };
            if p.phase.is_some_and(|ph| !(1..=3).contains(&ph)) {
                return Err(bad("phase must be 1, 2 or 3".into()));
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

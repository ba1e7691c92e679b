//! SunSpec: finding a device's model chain, reading its inverter or meter models through a
//! profile built from the chain, and curtailing its output with a limit that reverts by itself.
//!
//! Offsets are those of the SunSpec model definitions (github.com/sunspec/models, json/model_N.json),
//! counted from the first register after a model's (ID, L) header.

use std::time::Duration;

use daisee_hal::MilliWatts;

use crate::bus::{Bus, BusError};
use crate::plan::Read;
use crate::profile::{DataType, Function, Point, Profile, Quantity, Sign, Unit, WordOrder};

/// Where devices put the "SunS" marker, in the order the specification says to try them.
pub const BASES: [u16; 3] = [40000, 0, 50000];

/// "SunS", the two registers that open a SunSpec map.
pub const MARKER: [u16; 2] = [0x5375, 0x6E53];

/// The ID that ends the model chain.
pub const END: u16 = 0xFFFF;

/// More models than any device has: a chain this long is a device answering nonsense.
const MAX_MODELS: usize = 64;

/// One model in a device's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// Its ID (1 common, 103 three-phase inverter, 203 wye meter …).
    pub id: u16,
    /// Address of its first point, right after its (ID, L) header.
    pub start: u16,
    /// Its length in registers, as the device gave it.
    pub len: u16,
}

/// The common model's identification of a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Manufacturer (Mn).
    pub manufacturer: String,
    /// Model (Md).
    pub model: String,
    /// Version (Vr).
    pub version: String,
    /// Serial number (SN).
    pub serial: String,
}

/// What a SunSpec device is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A PV or battery inverter: power positive while it produces, shown negative here.
    Inverter,
    /// A meter: power positive while the site imports.
    Meter,
}

/// What went wrong talking SunSpec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SunSpecError {
    /// A request failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// No "SunS" marker at any base.
    #[error("no SunSpec map: no \"SunS\" at 40000, 0 or 50000")]
    NotFound,
    /// The model chain does not hold together.
    #[error("bad model chain at register {address}: {message}")]
    Chain {
        /// Where the chain broke.
        address: u32,
        /// How.
        message: String,
    },
    /// The device has no model for what was asked.
    #[error("the device has no {0} model")]
    Missing(&'static str),
    /// A limit the device cannot take.
    #[error("{0}")]
    Refused(String),
    /// The device accepted a write but reads back something else.
    #[error("wrote {wrote:?} to register {address}, read back {read:?}")]
    NotTaken {
        /// The first register written.
        address: u16,
        /// What was written.
        wrote: Vec<u16>,
        /// What was read back.
        read: Vec<u16>,
    },
}

/// A SunSpec device: where its map is and which models it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SunSpec {
    /// The base address the marker was found at.
    pub base: u16,
    /// The models, in chain order.
    pub models: Vec<Model>,
    /// Manufacturer, model, version and serial number.
    pub identity: Identity,
    /// Rated output from the nameplate model (120), if it has one.
    pub rated: Option<MilliWatts>,
}

impl SunSpec {
    /// Finds the device's map: the marker at 40000, 0 or 50000, then the model chain, whose
    /// lengths are read from the device (model 1 is 65 registers long on some, 66 on others).
    pub async fn discover(
        bus: &mut Bus,
        unit: u8,
        timeout: Duration,
    ) -> Result<Self, SunSpecError> {
        let base = find_base(bus, unit, timeout).await?;
        let models = walk(bus, unit, base, timeout).await?;
        let mut device = SunSpec {
            base,
            models,
            identity: Identity::default(),
            rated: None,
        };
        // Identity and rating are for people: a device that refuses them is still read.
        if let Some(common) = device.model(&[1]).filter(|m| m.len >= 64) {
            match read(bus, unit, common.start, 64, timeout).await {
                Ok(words) => device.identity = identity(&words),
                Err(BusError::Exception(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(nameplate) = device.model(&[120]).filter(|m| m.len >= 3) {
            match read(bus, unit, nameplate.start, 3, timeout).await {
                Ok(words) => {
                    device.rated = scaled(words[1], words[2]).map(|w| MilliWatts((w * 1e3) as i64));
                }
                Err(BusError::Exception(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(device)
    }

    /// The first model of the chain with one of `ids`.
    pub fn model(&self, ids: &[u16]) -> Option<Model> {
        self.models.iter().copied().find(|m| ids.contains(&m.id))
    }

    /// A profile reading the device's values as `role`: from an inverter model (101–103 with
    /// scale factors, 111–113 floats, else DER 701), or from a meter model (201–204, 211–214).
    pub fn profile(&self, role: Role) -> Result<Profile, SunSpecError> {
        let (model, points) = match role {
            Role::Inverter => {
                if let Some(m) = self.model(&[101, 102, 103]) {
                    (m, inverter_int(m))
                } else if let Some(m) = self.model(&[111, 112, 113]) {
                    (m, inverter_float(m))
                } else if let Some(m) = self.model(&[701]) {
                    (m, der_measurement(m))
                } else {
                    return Err(SunSpecError::Missing("inverter (101-103, 111-113, 701)"));
                }
            }
            Role::Meter => {
                if let Some(m) = self.model(&[201, 202, 203, 204]) {
                    (m, meter_int(m))
                } else if let Some(m) = self.model(&[211, 212, 213, 214]) {
                    (m, meter_float(m))
                } else {
                    return Err(SunSpecError::Missing("meter (201-204, 211-214)"));
                }
            }
        };
        Ok(Profile {
            name: format!(
                "SunSpec {} {}",
                self.identity.manufacturer, self.identity.model
            ),
            source: format!("SunSpec model {} at {}", model.id, model.start),
            // A SunSpec model is a contiguous block: reading across its unused points is fine.
            max_gap: 125,
            max_read: crate::profile::MAX_REGISTERS_PER_READ,
            points,
        })
    }

    /// The device's power limit control: DER model 704 if it has one, else model 123.
    pub fn limit_control(&self) -> Option<LimitControl> {
        self.model(&[704])
            .filter(|m| m.len >= 53)
            .map(|model| LimitControl {
                model,
                kind: ControlKind::Der704,
            })
            .or_else(|| {
                self.model(&[123])
                    .filter(|m| m.len >= 22)
                    .map(|model| LimitControl {
                        model,
                        kind: ControlKind::Immediate123,
                    })
            })
    }
}

async fn read(
    bus: &mut Bus,
    unit: u8,
    start: u16,
    count: u16,
    timeout: Duration,
) -> Result<Vec<u16>, BusError> {
    let read = Read {
        function: Function::Holding,
        start,
        count,
    };
    bus.read(unit, read, timeout).await
}

async fn find_base(bus: &mut Bus, unit: u8, timeout: Duration) -> Result<u16, SunSpecError> {
    let mut silent = None;
    for base in BASES {
        match read(bus, unit, base, 2, timeout).await {
            Ok(words) if words == MARKER => return Ok(base),
            // Nothing there (an exception, or other data): try the next base.
            Ok(_) | Err(BusError::Exception(_)) => {}
            // Some devices stay silent on addresses they do not map, rather than answer with an
            // exception: try the next base too, and say so if none answers.
            Err(e @ BusError::Timeout(_)) => silent = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(silent.map_or(SunSpecError::NotFound, SunSpecError::from))
}

async fn walk(
    bus: &mut Bus,
    unit: u8,
    base: u16,
    timeout: Duration,
) -> Result<Vec<Model>, SunSpecError> {
    let mut models = Vec::new();
    let mut address = u32::from(base) + 2;
    loop {
        let broken = |message: &str| SunSpecError::Chain {
            address,
            message: message.to_owned(),
        };
        if address + 2 > 0x1_0000 {
            return Err(broken("runs past the last register"));
        }
        let header = read(bus, unit, address as u16, 2, timeout).await?;
        let (id, len) = (header[0], header[1]);
        if id == END {
            return Ok(models);
        }
        if models.len() == MAX_MODELS {
            return Err(broken("more models than any device has; no end marker"));
        }
        if models.is_empty() && id != 1 {
            return Err(broken(&format!("starts with model {id}, not 1")));
        }
        let start = address + 2;
        if start + u32::from(len) > 0x1_0000 {
            return Err(broken(&format!(
                "model {id} of length {len} runs past the last register"
            )));
        }
        models.push(Model {
            id,
            start: start as u16,
            len,
        });
        address = start + u32::from(len);
    }
}

fn identity(words: &[u16]) -> Identity {
    let text = |from: usize, len: usize| {
        let bytes: Vec<u8> = words
            .iter()
            .skip(from)
            .take(len)
            .flat_map(|w| w.to_be_bytes())
            .take_while(|b| *b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    };
    Identity {
        manufacturer: text(0, 16),
        model: text(16, 16),
        version: text(40, 8),
        serial: text(48, 16),
    }
}

/// `value` × 10^`sf`, or `None` if either is "not implemented".
fn scaled(value: u16, sf: u16) -> Option<f64> {
    let sf = sf as i16;
    (value != 0xFFFF && sf != i16::MIN && (-10..=10).contains(&sf))
        .then(|| f64::from(value) * 10f64.powi(i32::from(sf)))
}

/// A point of a SunSpec model at `offset` from its start.
struct At {
    quantity: Quantity,
    phase: Option<u8>,
    offset: u16,
    data_type: DataType,
    sf: Option<u16>,
    unit: Unit,
    sign: Sign,
}

fn at(quantity: Quantity, offset: u16, data_type: DataType, sf: Option<u16>, unit: Unit) -> At {
    At {
        quantity,
        phase: None,
        offset,
        data_type,
        sf,
        unit,
        sign: Sign::Normal,
    }
}

impl At {
    fn phase(mut self, phase: u8) -> Self {
        self.phase = Some(phase);
        self
    }

    fn produced(mut self) -> Self {
        self.sign = Sign::Inverted;
        self
    }

    /// The point in `model`, if the model as the device gave it is long enough to hold the value
    /// and its scale factor.
    fn point(self, model: Model) -> Option<Point> {
        let inside =
            |offset: u16, len: u16| u32::from(offset) + u32::from(len) <= u32::from(model.len);
        if !inside(self.offset, self.data_type.registers())
            || self.sf.is_some_and(|sf| !inside(sf, 1))
        {
            return None;
        }
        // Inside a model that the chain walk kept below 0x10000, so no sum wraps.
        Some(Point {
            quantity: self.quantity,
            phase: self.phase,
            address: model.start + self.offset,
            function: Function::Holding,
            data_type: self.data_type,
            word_order: WordOrder::HighFirst,
            scale: None,
            scale_factor: self.sf.map(|sf| model.start + sf),
            unit: self.unit,
            sign: self.sign,
        })
    }
}

use DataType::{Acc32, F32, I16, U16, U32, U64};
use Quantity::{Current, ExportEnergy, Frequency, ImportEnergy, Power, Voltage};
use Unit::{A, Hz, V, W, Wh};

fn points(model: Model, ats: Vec<At>) -> Vec<Point> {
    ats.into_iter().filter_map(|a| a.point(model)).collect()
}

/// Models 101–103: A 0 (A_SF 4), PhVphA 8 (V_SF 11), W 12 (W_SF 13), Hz 14 (Hz_SF 15),
/// WH 22 acc32 (WH_SF 24). AC power is positive while producing.
fn inverter_int(model: Model) -> Vec<Point> {
    points(
        model,
        vec![
            at(Current, 0, U16, Some(4), A),
            at(Voltage, 8, U16, Some(11), V),
            at(Power, 12, I16, Some(13), W).produced(),
            at(Frequency, 14, U16, Some(15), Hz),
            at(ExportEnergy, 22, Acc32, Some(24), Wh),
        ],
    )
}

/// Models 111–113, floats: A 0, PhVphA 14, W 20, Hz 22, WH 30.
fn inverter_float(model: Model) -> Vec<Point> {
    points(
        model,
        vec![
            at(Current, 0, F32, None, A),
            at(Voltage, 14, F32, None, V),
            at(Power, 20, F32, None, W).produced(),
            at(Frequency, 22, F32, None, Hz),
            at(ExportEnergy, 30, F32, None, Wh),
        ],
    )
}

/// Model 701 (DER AC measurement): W 8, A 12, LNV 14, Hz 15 uint32, TotWhInj 17 and TotWhAbs 21
/// uint64; scale factors A_SF 111, V_SF 112, Hz_SF 113, W_SF 114, TotWh_SF 118. "Active power is
/// positive for DER generation."
fn der_measurement(model: Model) -> Vec<Point> {
    points(
        model,
        vec![
            at(Power, 8, I16, Some(114), W).produced(),
            at(Current, 12, I16, Some(111), A),
            at(Voltage, 14, U16, Some(112), V),
            at(Frequency, 15, U32, Some(113), Hz),
            at(ExportEnergy, 17, U64, Some(118), Wh),
            at(ImportEnergy, 21, U64, Some(118), Wh),
        ],
    )
}

/// Models 201–204: A 0 (A_SF 4), PhV 5, PhVphA–C 6–8 (V_SF 13), Hz 14 (Hz_SF 15), W 16,
/// WphA–C 17–19 (W_SF 20), TotWhExp 36, TotWhImp 44 acc32 (TotWh_SF 52). Per-phase points for the
/// three-phase models 203 and 204.
fn meter_int(model: Model) -> Vec<Point> {
    let mut ats = vec![
        at(Current, 0, I16, Some(4), A),
        at(Voltage, 5, I16, Some(13), V),
        at(Frequency, 14, I16, Some(15), Hz),
        at(Power, 16, I16, Some(20), W),
        at(ExportEnergy, 36, Acc32, Some(52), Wh),
        at(ImportEnergy, 44, Acc32, Some(52), Wh),
    ];
    if model.id >= 203 {
        for phase in 1..=3u8 {
            let i = u16::from(phase - 1);
            ats.push(at(Current, 1 + i, I16, Some(4), A).phase(phase));
            ats.push(at(Voltage, 6 + i, I16, Some(13), V).phase(phase));
            ats.push(at(Power, 17 + i, I16, Some(20), W).phase(phase));
        }
    }
    points(model, ats)
}

/// Models 211–214, floats: A 0, AphA–C 2–6, PhV 8, PhVphA–C 10–14, Hz 24, W 26, WphA–C 28–32,
/// TotWhExp 58, TotWhImp 66.
fn meter_float(model: Model) -> Vec<Point> {
    let mut ats = vec![
        at(Current, 0, F32, None, A),
        at(Voltage, 8, F32, None, V),
        at(Frequency, 24, F32, None, Hz),
        at(Power, 26, F32, None, W),
        at(ExportEnergy, 58, F32, None, Wh),
        at(ImportEnergy, 66, F32, None, Wh),
    ];
    if model.id >= 213 {
        for phase in 1..=3u8 {
            let i = 2 * u16::from(phase - 1);
            ats.push(at(Current, 2 + i, F32, None, A).phase(phase));
            ats.push(at(Voltage, 10 + i, F32, None, V).phase(phase));
            ats.push(at(Power, 28 + i, F32, None, W).phase(phase));
        }
    }
    points(model, ats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlKind {
    /// Model 123: WMaxLimPct 3, WMaxLimPct_RvrtTms 5 (uint16 s), WMaxLim_Ena 7, WMaxLimPct_SF 21.
    Immediate123,
    /// Model 704: WMaxLimPctEna 12, WMaxLimPct 13, WMaxLimPctRvrt 14, WMaxLimPctEnaRvrt 15,
    /// WMaxLimPctRvrtTms 16 (uint32 s), WMaxLimPct_SF 52.
    Der704,
}

/// An inverter's active power limit, set as a percentage of its rated power with a revert timer:
/// if the gateway stops renewing the limit (crashed, unplugged), the inverter lifts it by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitControl {
    model: Model,
    kind: ControlKind,
}

/// The limit an inverter reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The limit, in percent of rated power.
    pub percent: f64,
    /// Whether it is in force.
    pub enabled: bool,
}

impl LimitControl {
    /// The model the control is in (123 or 704).
    pub fn model(&self) -> u16 {
        self.model.id
    }

    /// Limits output to `percent` of rated power until `revert` has passed, then checks by reading
    /// back that the inverter took it.
    pub async fn set(
        &self,
        bus: &mut Bus,
        unit: u8,
        timeout: Duration,
        percent: f64,
        revert: Duration,
    ) -> Result<(), SunSpecError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(SunSpecError::Refused(format!(
                "a power limit of {percent}% is not between 0 and 100"
            )));
        }
        let secs = revert.as_secs();
        if secs == 0 {
            return Err(SunSpecError::Refused(
                "a limit needs a revert time of a second or more, or a crashed gateway could \
                 throttle the inverter for good"
                    .into(),
            ));
        }
        let sf = self.scale_factor(bus, unit, timeout).await?;
        let step = 10f64.powi(i32::from(sf));
        let raw = |pct: f64| (pct / step).round() as u16;
        if (f64::from(raw(percent)) * step - percent).abs() > 1e-9
            || percent / step > f64::from(u16::MAX)
        {
            return Err(SunSpecError::Refused(format!(
                "the inverter sets its limit in steps of {step}%: {percent}% is not one"
            )));
        }
        let (address, words) = match self.kind {
            ControlKind::Immediate123 => {
                let secs = u16::try_from(secs).map_err(|_| {
                    SunSpecError::Refused(format!(
                        "model 123 counts revert time in 16 bits: {secs} s is more than 65535 s"
                    ))
                })?;
                // WMaxLimPct, WinTms (act now), RvrtTms, RmpTms (no ramp), WMaxLim_Ena.
                (self.model.start + 3, vec![raw(percent), 0, secs, 0, 1])
            }
            ControlKind::Der704 => {
                let secs = u32::try_from(secs).unwrap_or(u32::MAX);
                // Ena; the limit; on reversion, 100 % and disabled; the reversion time.
                let words = vec![
                    1,
                    raw(percent),
                    raw(100.0),
                    0,
                    (secs >> 16) as u16,
                    secs as u16,
                ];
                (self.model.start + 12, words)
            }
        };
        write_checked(bus, unit, address, &words, timeout).await
    }

    /// Lifts the limit.
    pub async fn clear(
        &self,
        bus: &mut Bus,
        unit: u8,
        timeout: Duration,
    ) -> Result<(), SunSpecError> {
        let address = match self.kind {
            ControlKind::Immediate123 => self.model.start + 7,
            ControlKind::Der704 => self.model.start + 12,
        };
        write_checked(bus, unit, address, &[0], timeout).await
    }

    /// The limit the inverter reports now.
    pub async fn get(
        &self,
        bus: &mut Bus,
        unit: u8,
        timeout: Duration,
    ) -> Result<Limit, SunSpecError> {
        let sf = self.scale_factor(bus, unit, timeout).await?;
        let (pct, ena) = match self.kind {
            ControlKind::Immediate123 => {
                let w = read(bus, unit, self.model.start + 3, 5, timeout).await?;
                (w[0], w[4])
            }
            ControlKind::Der704 => {
                let w = read(bus, unit, self.model.start + 12, 2, timeout).await?;
                (w[1], w[0])
            }
        };
        Ok(Limit {
            percent: f64::from(pct) * 10f64.powi(i32::from(sf)),
            enabled: ena == 1,
        })
    }

    async fn scale_factor(
        &self,
        bus: &mut Bus,
        unit: u8,
        timeout: Duration,
    ) -> Result<i16, SunSpecError> {
        let offset = match self.kind {
            ControlKind::Immediate123 => 21,
            ControlKind::Der704 => 52,
        };
        let sf = read(bus, unit, self.model.start + offset, 1, timeout).await?[0] as i16;
        match sf {
            // Not implemented: whole percent.
            i16::MIN => Ok(0),
            -10..=10 => Ok(sf),
            _ => Err(SunSpecError::Refused(format!(
                "WMaxLimPct_SF {sf} is no scale factor"
            ))),
        }
    }
}

async fn write_checked(
    bus: &mut Bus,
    unit: u8,
    address: u16,
    words: &[u16],
    timeout: Duration,
) -> Result<(), SunSpecError> {
    bus.write(unit, address, words, timeout).await?;
    let read = read(bus, unit, address, words.len() as u16, timeout).await?;
    if read != words {
        return Err(SunSpecError::NotTaken {
            address,
            wrote: words.to_vec(),
            read,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_strings_stop_at_nul_and_trim() {
        let mut words = vec![0u16; 66];
        words[0] = u16::from_be_bytes(*b"Fr");
        words[1] = u16::from_be_bytes(*b"o\0");
        words[16] = u16::from_be_bytes(*b"X ");
        words[48] = u16::from_be_bytes(*b"42");
        let id = identity(&words);
        assert_eq!(id.manufacturer, "Fro");
        assert_eq!(id.model, "X");
        assert_eq!(id.serial, "42");
        assert_eq!(id.version, "");
    }

    #[test]
    fn points_outside_a_short_model_are_left_out() {
        // Model 103 declared 10 registers long at the top of the address space.
        let device = SunSpec {
            base: 0,
            models: vec![Model {
                id: 103,
                start: 0xFFF0,
                len: 10,
            }],
            identity: Identity::default(),
            rated: None,
        };
        let profile = device.profile(Role::Inverter).unwrap();
        // Only A (offset 0, A_SF at 4) fits; PhVphA's V_SF (11) and W (12) do not.
        assert_eq!(profile.points.len(), 1);
        assert_eq!(profile.points[0].address, 0xFFF0);
        assert_eq!(profile.points[0].scale_factor, Some(0xFFF4));
    }

    #[test]
    fn scaled_values_and_markers() {
        assert_eq!(scaled(5000, 0), Some(5000.0));
        assert_eq!(scaled(500, 1), Some(5000.0));
        assert_eq!(scaled(5000, 0x8000), None);
        assert_eq!(scaled(0xFFFF, 0), None);
    }
}

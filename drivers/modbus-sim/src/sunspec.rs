//! A SunSpec inverter or meter: the "SunS" marker, a model chain laid out as a real device lays
//! it out, values from the simulated site, and power limits (models 123 and 704) that the device
//! imposes on the site's loads it converts and lifts by itself when their revert timer runs out.

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::sim::Site;
use daisee_hal::{EnergyIntegrator, MilliWatts, Timestamp};
use daisee_modbus::decode::Values;
use daisee_modbus::profile::{Function, Profile};
use daisee_modbus::sunspec::{END, Identity, MARKER, Model, Role, SunSpec};
use tokio_modbus::ExceptionCode;

use crate::device::Behaviour;
use crate::meter::show;
use crate::registers::RegisterMap;

/// How a device lays out its SunSpec map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where "SunS" is: 40000, 0 or 50000.
    pub base: u16,
    /// The common model's length: 66 by the current definition, 65 on older devices.
    pub common_len: u16,
    /// The models after the common one, in chain order.
    pub models: Vec<u16>,
}

impl Layout {
    /// A three-phase inverter with integer points: models 103, 120 and 123, at 40000.
    pub fn inverter() -> Self {
        Self {
            base: 40000,
            common_len: 66,
            models: vec![103, 120, 123],
        }
    }

    /// An inverter of the IEEE 1547 generation: models 701 and 704, with 120 for its rating.
    pub fn der() -> Self {
        Self {
            base: 40000,
            common_len: 66,
            models: vec![120, 701, 704],
        }
    }

    /// A three-phase (wye) meter with integer points: model 203.
    pub fn meter() -> Self {
        Self {
            base: 40000,
            common_len: 66,
            models: vec![203],
        }
    }

    /// The chain: each model's ID, start and length.
    pub fn chain(&self) -> Vec<Model> {
        let mut address = self.base + 2;
        std::iter::once((1, self.common_len))
            .chain(self.models.iter().map(|id| (*id, model_len(*id))))
            .map(|(id, len)| {
                let model = Model {
                    id,
                    start: address + 2,
                    len,
                };
                address = model.start + len;
                model
            })
            .collect()
    }
}

/// The lengths of the models a simulated device can have (sunspec/models, json/model_N.json).
fn model_len(id: u16) -> u16 {
    match id {
        101..=103 => 50,
        111..=113 => 60,
        120 => 26,
        123 => 24,
        201..=204 => 105,
        211..=214 => 124,
        701 => 153,
        704 => 65,
        _ => 0,
    }
}

/// A power limit in force.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limit {
    percent: f64,
    revert_at: Option<Timestamp>,
}

impl Limit {
    /// The most the inverter may produce under this limit, as a positive number.
    fn most(&self) -> MilliWatts {
        MilliWatts((RATED.0 as f64 * self.percent / 100.0) as i64)
    }
}

/// A simulated SunSpec device.
pub struct SunSpecDevice {
    role: Role,
    layout: Layout,
    map: SunSpec,
    profile: Profile,
    site: Arc<Site>,
    loads: Vec<String>,
    energy: EnergyIntegrator,
    values: Values,
    limit: Option<Limit>,
    laid_out: bool,
}

impl std::fmt::Debug for SunSpecDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunSpecDevice")
            .field("role", &self.role)
            .field("layout", &self.layout)
            .field("limit", &self.limit)
            .finish()
    }
}

/// What the simulated inverter's nameplate says.
pub const RATED: MilliWatts = MilliWatts(6_000_000);

/// Scale factors of the limit percentage: tenths of a percent in model 123, whole percent in 704.
const SF_123: i16 = -1;
const SF_704: i16 = 0;

impl SunSpecDevice {
    /// A device with `layout`, read as `role`, on the named loads of `site` (an inverter's loads
    /// are its PV strings: negative power). Panics if the layout has no model for the role.
    pub fn new(role: Role, layout: Layout, site: Arc<Site>, loads: Vec<String>) -> Self {
        let map = SunSpec {
            base: layout.base,
            models: layout.chain(),
            identity: Identity {
                manufacturer: "DAISEE".into(),
                model: match role {
                    Role::Inverter => "SimInverter".into(),
                    Role::Meter => "SimMeter".into(),
                },
                version: "1.0".into(),
                serial: "SIM0001".into(),
            },
            rated: Some(RATED),
        };
        let profile = map
            .profile(role)
            .unwrap_or_else(|e| panic!("layout {layout:?} cannot be a {role:?}: {e}"));
        Self {
            role,
            layout,
            map,
            profile,
            site,
            loads,
            energy: EnergyIntegrator::new(Duration::from_secs(86_400 * 365)),
            values: Values::default(),
            limit: None,
            laid_out: false,
        }
    }

    fn lay_out(&self, registers: &mut RegisterMap) {
        let h = Function::Holding;
        registers.set(h, self.layout.base, &MARKER);
        for model in &self.map.models {
            registers.set(h, model.start - 2, &[model.id, model.len]);
            registers.set(h, model.start, &vec![0; usize::from(model.len)]);
            let s = model.start;
            match model.id {
                1 => {
                    let id = &self.map.identity;
                    registers.set(h, s, &text(&id.manufacturer, 16));
                    registers.set(h, s + 16, &text(&id.model, 16));
                    registers.set(h, s + 40, &text(&id.version, 8));
                    registers.set(h, s + 48, &text(&id.serial, 16));
                    // DA, the device's Modbus address.
                    registers.set(h, s + 64, &[1]);
                }
                // DERTyp PV, WRtg in W with scale factor 0.
                120 => registers.set(h, s, &[4, (RATED.0 / 1000) as u16, 0]),
                123 => {
                    registers.set(h, s + 3, &[percent_raw(100.0, SF_123)]);
                    registers.set(h, s + 21, &[SF_123 as u16]);
                }
                704 => {
                    registers.set(h, s + 13, &[percent_raw(100.0, SF_704)]);
                    registers.set(h, s + 14, &[percent_raw(100.0, SF_704)]);
                    registers.set(h, s + 52, &[SF_704 as u16]);
                }
                _ => {}
            }
        }
        let end = self
            .map
            .models
            .last()
            .map_or(self.layout.base + 2, |m| m.start + m.len);
        registers.set(h, end, &[END, 0]);
    }

    /// The limit the control registers describe, its revert timer started at `at`.
    fn limit_from(&self, registers: &RegisterMap, at: Timestamp) -> Option<Limit> {
        let word = |address: u16| {
            registers
                .read(Function::Holding, address, 1)
                .map_or(0, |w| w[0])
        };
        let after = |secs: u64| (secs > 0).then(|| at.plus(Duration::from_secs(secs)));
        if let Some(m) = self.map.model(&[704])
            && word(m.start + 12) == 1
        {
            let secs = u64::from(word(m.start + 16)) << 16 | u64::from(word(m.start + 17));
            return Some(Limit {
                percent: percent(word(m.start + 13), SF_704),
                revert_at: after(secs),
            });
        }
        let m = self.map.model(&[123])?;
        (word(m.start + 7) == 1).then(|| Limit {
            percent: percent(word(m.start + 3), SF_123),
            revert_at: after(u64::from(word(m.start + 5))),
        })
    }

    /// Lifts the limit as its revert timer says: 123 disables it, 704 takes the reversion values.
    fn revert(&mut self, registers: &mut RegisterMap) {
        let h = Function::Holding;
        if let Some(m) = self.map.model(&[123]) {
            registers.set(h, m.start + 7, &[0]);
        }
        if let Some(m) = self.map.model(&[704])
            && let Ok(w) = registers.read(h, m.start + 14, 2)
        {
            registers.set(h, m.start + 12, &[w[1]]);
            registers.set(h, m.start + 13, &[w[0]]);
        }
        self.set_limit(None);
    }

    /// Puts `limit` in force on the site loads the device converts, for every meter to see.
    fn set_limit(&mut self, limit: Option<Limit>) {
        self.limit = limit;
        self.site.set_cap(&self.loads, limit.map(|l| l.most()));
    }

    /// Which control registers a client may write: model 123's connect and limit points, and
    /// model 704's limit points (not the remaining time, which the device counts).
    fn writable(&self, address: u16, count: u16) -> bool {
        let end = u32::from(address) + u32::from(count);
        let inside =
            |from: u16, to: u16| u32::from(address) >= u32::from(from) && end <= u32::from(to);
        self.map
            .model(&[123])
            .is_some_and(|m| inside(m.start, m.start + 8))
            || self
                .map
                .model(&[704])
                .is_some_and(|m| inside(m.start + 12, m.start + 18))
    }
}

impl SunSpecDevice {
    /// Whether a write covers a register of the power limit (value, timers or enable).
    fn touches_limit(&self, address: u16, count: usize) -> bool {
        let (from, to) = (u32::from(address), u32::from(address) + count as u32);
        let overlaps = |start: u16, first: u16, last: u16| {
            from <= u32::from(start) + u32::from(last) && to > u32::from(start) + u32::from(first)
        };
        self.map
            .model(&[123])
            .is_some_and(|m| overlaps(m.start, 3, 7))
            || self
                .map
                .model(&[704])
                .is_some_and(|m| overlaps(m.start, 12, 17))
    }
}

fn text(s: &str, len: usize) -> Vec<u16> {
    let mut bytes = s.as_bytes().to_vec();
    bytes.resize(2 * len, 0);
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn percent(raw: u16, sf: i16) -> f64 {
    f64::from(raw) * 10f64.powi(i32::from(sf))
}

fn percent_raw(pct: f64, sf: i16) -> u16 {
    (pct / 10f64.powi(i32::from(sf))).round() as u16
}

impl Behaviour for SunSpecDevice {
    fn tick(&mut self, at: Timestamp, registers: &mut RegisterMap) {
        if !self.laid_out {
            self.lay_out(registers);
            self.laid_out = true;
        }
        if self
            .limit
            .and_then(|l| l.revert_at)
            .is_some_and(|t| at >= t)
        {
            self.revert(registers);
        }
        if let Some(m) = self.map.model(&[704]) {
            let left = self
                .limit
                .and_then(|l| l.revert_at)
                .map_or(0, |t| t.millis_since(at).max(0) / 1000) as u32;
            registers.set(
                Function::Holding,
                m.start + 18,
                &[(left >> 16) as u16, left as u16],
            );
        }
        // The site already follows the limit, so the device reports what it lets through.
        let power = self.site.power(&self.loads, at);
        self.values = show(&self.profile, &mut self.energy, at, power, registers);
    }

    fn values(&self) -> Values {
        self.values
    }

    fn write(
        &mut self,
        at: Timestamp,
        address: u16,
        words: &[u16],
        registers: &mut RegisterMap,
    ) -> Result<(), ExceptionCode> {
        if !self.writable(address, words.len() as u16) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut proposed = registers.clone();
        proposed.set(Function::Holding, address, words);
        let limit = self.limit_from(&proposed, at);
        if limit.is_some_and(|l| l.percent > 100.0) {
            return Err(ExceptionCode::IllegalDataValue);
        }
        *registers = proposed;
        // A write that leaves the limit as it was (the connect points of 123) leaves its timer.
        if limit.map(|l| l.percent) != self.limit.map(|l| l.percent)
            || self.touches_limit(address, words.len())
        {
            self.set_limit(limit);
        }
        Ok(())
    }
}

use std::sync::{Arc, PoisonError, RwLock};

use crate::device::{PowerReading, PowerSensor};
use crate::sim::ina219::Analog;
use crate::time::{Clock, Timestamp};
use crate::units::{MicroAmps, MilliVolts, MilliWatts};

/// How a simulated load or producer behaves over a day (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// A home: standby at night, a morning and a larger evening peak, appliances switching at random.
    Household {
        /// Power at the highest evening peak.
        peak: MilliWatts,
    },
    /// PV production between 06:00 and 18:00 with passing clouds; negative, as production is.
    Solar {
        /// Production in full sun at noon, as a positive number.
        peak: MilliWatts,
    },
    /// A steady load, such as a water heater or a charger, with a little ripple.
    Constant {
        /// Its power while running.
        power: MilliWatts,
    },
}

/// A simulated load or producer.
pub struct Load {
    name: String,
    profile: Profile,
    running: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl core::fmt::Debug for Load {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Load")
            .field("name", &self.name)
            .field("profile", &self.profile)
            .field("switched", &self.running.is_some())
            .finish()
    }
}

impl Load {
    /// A load that always runs its profile.
    pub fn new(name: impl Into<String>, profile: Profile) -> Self {
        Self {
            name: name.into(),
            profile,
            running: None,
        }
    }

    /// A load that runs only while `running` says so (a relay contact, typically).
    pub fn switched(
        name: impl Into<String>,
        profile: Profile,
        running: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            profile,
            running: Some(Box::new(running)),
        }
    }
}

/// A simulated site: loads and producers whose power is a pure function of the seed, the time and
/// the caps in force, so that a run can be repeated exactly.
#[derive(Debug)]
pub struct Site {
    seed: u64,
    loads: Vec<Load>,
    caps: RwLock<Vec<Cap>>,
}

/// A limit on the total production of some loads (an inverter's output limit over its strings).
#[derive(Debug)]
struct Cap {
    loads: Vec<usize>,
    most: i64,
}

/// Nominal AC voltage for sensors that report one.
const MAINS_MV: i64 = 230_000;

impl Site {
    /// A site with no loads yet.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            loads: Vec::new(),
            caps: RwLock::default(),
        }
    }

    /// Adds a load or producer.
    pub fn add(&mut self, load: Load) {
        self.loads.push(load);
    }

    /// Whether a load of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.loads.iter().any(|l| l.name == name)
    }

    /// Caps the total production of the named loads at `cap` (positive); `None` lifts the cap.
    pub fn set_cap(&self, loads: &[String], cap: Option<MilliWatts>) {
        let indices: Vec<usize> = self
            .loads
            .iter()
            .enumerate()
            .filter(|(_, l)| loads.contains(&l.name))
            .map(|(i, _)| i)
            .collect();
        let mut caps = self.caps.write().unwrap_or_else(PoisonError::into_inner);
        caps.retain(|c| c.loads != indices);
        if let Some(cap) = cap.filter(|_| !indices.is_empty()) {
            caps.push(Cap {
                loads: indices,
                most: cap.0.max(0),
            });
        }
    }

    /// The total power of the named loads at `at` (unknown names count nothing).
    pub fn power(&self, names: &[String], at: Timestamp) -> MilliWatts {
        let named = |l: &Load| names.contains(&l.name);
        let caps = self.caps.read().unwrap_or_else(PoisonError::into_inner);
        if caps.is_empty() {
            return self
                .loads
                .iter()
                .enumerate()
                .filter(|(_, l)| named(l))
                .map(|(i, l)| self.load_power(i as u64, l, at))
                .sum();
        }
        // A cap depends on every load it covers, named or not.
        let mut power: Vec<i64> = self
            .loads
            .iter()
            .enumerate()
            .map(|(i, l)| self.load_power(i as u64, l, at).0)
            .collect();
        for cap in caps.iter() {
            let produced: i64 = cap.loads.iter().map(|&i| (-power[i]).max(0)).sum();
            if produced > cap.most {
                // The producers give up the same share of their output, as an inverter's strings do.
                for &i in &cap.loads {
                    if power[i] < 0 {
                        let scaled =
                            i128::from(power[i]) * i128::from(cap.most) / i128::from(produced);
                        power[i] = scaled as i64;
                    }
                }
            }
        }
        MilliWatts(
            self.loads
                .iter()
                .zip(power)
                .filter(|(l, _)| named(l))
                .map(|(_, p)| p)
                .sum(),
        )
    }

    fn load_power(&self, index: u64, load: &Load, at: Timestamp) -> MilliWatts {
        if load.running.as_ref().is_some_and(|running| !running()) {
            return MilliWatts(0);
        }
        let hour = at.millis_of_day() as f64 / 3_600_000.0;
        let noise = |period_ms: i64, salt: u64| {
            unit_noise(
                self.seed ^ index.rotate_left(17) ^ salt,
                at.0.div_euclid(period_ms),
            )
        };
        let watts = match load.profile {
            Profile::Household { peak } => {
                let bump = |centre: f64, width: f64, height: f64| {
                    height * (-((hour - centre) / width).powi(2)).exp()
                };
                let shape =
                    0.08 + bump(7.5, 1.0, 0.35) + bump(12.5, 1.5, 0.10) + bump(19.5, 1.8, 0.50);
                // Now and then an appliance (kettle, oven, washing machine) runs for a few minutes.
                let appliance = if noise(300_000, 1) > 0.85 { 0.45 } else { 0.0 };
                peak.watts() * (shape + appliance) * (0.9 + 0.2 * noise(10_000, 2))
            }
            Profile::Solar { peak } => {
                if !(6.0..18.0).contains(&hour) {
                    0.0
                } else {
                    let sun = (core::f64::consts::PI * (hour - 6.0) / 12.0)
                        .sin()
                        .powf(1.5);
                    // Clouds: a value per quarter hour, blended linearly into the next.
                    let quarter = 900_000;
                    let frac = at.0.rem_euclid(quarter) as f64 / quarter as f64;
                    let now = unit_noise(self.seed ^ 3, at.0.div_euclid(quarter));
                    let next = unit_noise(self.seed ^ 3, at.0.div_euclid(quarter) + 1);
                    let cloud = 0.35 + 0.65 * (now + (next - now) * frac);
                    -peak.watts() * sun * cloud
                }
            }
            Profile::Constant { power } => power.watts() * (0.99 + 0.02 * noise(1000, 4)),
        };
        MilliWatts::from_watts(watts)
    }

    /// What an INA219 with a shunt of `shunt_uohm` on a DC bus at `bus_mv` sees when the named loads
    /// draw their power through it.
    pub fn ina219_input(
        self: &Arc<Self>,
        names: Vec<String>,
        bus_mv: i64,
        shunt_uohm: i64,
    ) -> impl FnMut(Timestamp) -> Analog + Send + 'static {
        let site = Arc::clone(self);
        move |at| {
            let power_mw = i128::from(site.power(&names, at).0);
            // I = P / V, then V_shunt = I × R, kept in integers: µV = mW / mV × µΩ.
            let shunt_uv = power_mw * i128::from(shunt_uohm) / i128::from(bus_mv.max(1));
            Analog {
                shunt_uv: shunt_uv as i64,
                bus_mv,
            }
        }
    }
}

/// A uniform value in [0, 1) from a seed and a step number (splitmix64).
fn unit_noise(seed: u64, step: i64) -> f64 {
    let mut z = seed.wrapping_add((step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A power sensor measuring the sum of some loads of a [`Site`] on the mains (a CT clamp, a meter).
#[derive(Debug)]
pub struct SitePowerSensor<C> {
    site: Arc<Site>,
    loads: Vec<String>,
    clock: C,
}

impl<C: Clock> SitePowerSensor<C> {
    /// A sensor on the named loads of `site`.
    pub fn new(site: Arc<Site>, loads: Vec<String>, clock: C) -> Self {
        Self { site, loads, clock }
    }
}

impl<C: Clock> PowerSensor for SitePowerSensor<C> {
    type Error = core::convert::Infallible;

    fn read(&mut self) -> Result<PowerReading, Self::Error> {
        let power = self.site.power(&self.loads, self.clock.now());
        Ok(PowerReading {
            voltage: MilliVolts(MAINS_MV as i32),
            current: MicroAmps(power.0 * 1_000_000 / MAINS_MV),
            power,
        })
    }
}

impl crate::error::Error for core::convert::Infallible {
    fn kind(&self) -> crate::error::ErrorKind {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: Timestamp = Timestamp(1_795_608_000_000); // 2026-11-25T12:00:00Z

    fn site() -> Site {
        let mut site = Site::new(7);
        site.add(Load::new(
            "house",
            Profile::Household {
                peak: MilliWatts(3_000_000),
            },
        ));
        site.add(Load::new(
            "pv",
            Profile::Solar {
                peak: MilliWatts(4_000_000),
            },
        ));
        site
    }

    #[test]
    fn is_deterministic() {
        let names = ["house".to_owned(), "pv".to_owned()];
        let a: Vec<_> = (0..100)
            .map(|s| site().power(&names, NOON.plus(std::time::Duration::from_secs(s * 37))))
            .collect();
        let b: Vec<_> = (0..100)
            .map(|s| site().power(&names, NOON.plus(std::time::Duration::from_secs(s * 37))))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn produces_by_day_and_not_by_night() {
        let pv = ["pv".to_owned()];
        let midnight = Timestamp(NOON.0 - 12 * 3_600_000);
        assert_eq!(site().power(&pv, midnight), MilliWatts(0));
        let noon = site().power(&pv, NOON);
        assert!(noon.0 < -1_000_000 && noon.0 >= -4_000_000, "{noon}");
    }

    #[test]
    fn caps_limit_production_and_leave_consumption_alone() {
        let site = site();
        let (house, pv) = (["house".to_owned()], ["pv".to_owned()]);
        let both = ["house".to_owned(), "pv".to_owned()];
        let (consumed, produced) = (site.power(&house, NOON), site.power(&pv, NOON));
        assert!(produced.0 < -1_000_000, "{produced}");

        // A cap over both: the house is no producer, so it keeps its power.
        site.set_cap(&both, Some(MilliWatts(500_000)));
        assert_eq!(site.power(&pv, NOON), MilliWatts(-500_000));
        assert_eq!(site.power(&house, NOON), consumed);
        assert_eq!(site.power(&both, NOON), consumed + MilliWatts(-500_000));

        // A cap above the production changes nothing, and a cap never makes a producer consume.
        site.set_cap(&both, Some(MilliWatts(10_000_000)));
        assert_eq!(site.power(&pv, NOON), produced);
        site.set_cap(&both, Some(MilliWatts(0)));
        assert_eq!(site.power(&pv, NOON), MilliWatts(0));

        site.set_cap(&both, None);
        assert_eq!(site.power(&both, NOON), consumed + produced);
    }

    #[test]
    fn a_cap_shares_out_between_producers() {
        let mut site = site();
        site.add(Load::new(
            "pv2",
            Profile::Solar {
                peak: MilliWatts(2_000_000),
            },
        ));
        let strings = ["pv".to_owned(), "pv2".to_owned()];
        let one = site.power(&strings[..1], NOON);
        let total = site.power(&strings, NOON);
        site.set_cap(&strings, Some(MilliWatts(1_000_000)));
        let capped = site.power(&strings, NOON).0;
        assert!((-1_000_000..=-999_998).contains(&capped), "{capped}");
        // Each string keeps its share of the output, so a sensor on one of them sees its part.
        let share = i128::from(one.0) * 1_000_000 / i128::from(-total.0);
        assert_eq!(i128::from(site.power(&strings[..1], NOON).0), share);
    }

    #[test]
    fn switched_loads_follow_their_switch() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let on = Arc::new(AtomicBool::new(false));
        let mut site = Site::new(1);
        let flag = Arc::clone(&on);
        site.add(Load::switched(
            "boiler",
            Profile::Constant {
                power: MilliWatts(2_000_000),
            },
            move || flag.load(Ordering::SeqCst),
        ));
        let boiler = ["boiler".to_owned()];
        assert_eq!(site.power(&boiler, NOON), MilliWatts(0));
        on.store(true, Ordering::SeqCst);
        let p = site.power(&boiler, NOON).0;
        assert!((1_980_000..=2_020_000).contains(&p), "{p}");
    }
}

//! The export limit: curtails the inverters, in whole percent of their rated power, so that what
//! the building exports stays under a limit, and lifts the curtailment step by step when there is
//! room again. The inverters are told a limit with a revert timer, renewed by whoever carries it
//! out: if the gateway dies, they go back to full power by themselves.

use std::time::Duration;

use daisee_hal::{MilliWatts, Timestamp};

/// How far under the export limit the controller aims, in percent of the curtailed inverters'
/// rated power: a passing cloud or a kettle should not make it hunt around the limit.
const MARGIN_PERCENT: i64 = 2;

/// A power limit as an inverter is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Output at most this percent of rated power.
    pub percent: u8,
    /// The inverter lifts the limit by itself if it is not renewed within this time.
    pub revert: Duration,
}

/// An inverter the export limit may curtail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Curtailable {
    /// Its name.
    pub name: String,
    /// Its rated AC power.
    pub rated: MilliWatts,
    /// The revert time of the limits it is told.
    pub revert: Duration,
}

/// A limit set by hand, until its revert time has passed or it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOverride {
    /// The limit.
    pub limit: Limit,
    /// When it lapses.
    pub until: Timestamp,
}

/// Who decides an inverter's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InverterMode {
    /// Nobody: it runs at full power.
    Free,
    /// The export limit.
    Auto,
    /// A person, until the limit lapses or is released.
    Manual,
}

impl InverterMode {
    /// `"free"`, `"auto"` or `"manual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InverterMode::Free => "free",
            InverterMode::Auto => "auto",
            InverterMode::Manual => "manual",
        }
    }
}

struct State {
    inverter: Curtailable,
    manual: Option<LimitOverride>,
}

/// The export limit of one building over its inverters.
pub struct ExportLimiter {
    limit: Option<MilliWatts>,
    inverters: Vec<State>,
    /// The automatic limit, in percent of rated power, shared by every inverter not held by hand.
    percent: u8,
}

impl std::fmt::Debug for ExportLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportLimiter")
            .field("limit", &self.limit)
            .field("percent", &self.percent)
            .finish_non_exhaustive()
    }
}

impl ExportLimiter {
    /// A limiter for `inverters`, with no curtailment yet.
    pub fn new(limit: Option<MilliWatts>, inverters: Vec<Curtailable>) -> Self {
        Self {
            limit,
            inverters: inverters
                .into_iter()
                .map(|inverter| State {
                    inverter,
                    manual: None,
                })
                .collect(),
            percent: 100,
        }
    }

    /// Changes the export limit (`None`: no limit, curtailment lifted).
    pub fn set_limit(&mut self, limit: Option<MilliWatts>) {
        self.limit = limit;
        if limit.is_none() {
            self.percent = 100;
        }
    }

    /// The export limit in force.
    pub fn limit(&self) -> Option<MilliWatts> {
        self.limit
    }

    /// Holds an inverter at a limit by hand (`Some`) or gives it back (`None`). Returns false if
    /// there is no such inverter.
    pub fn set_override(&mut self, inverter: &str, manual: Option<LimitOverride>) -> bool {
        match self
            .inverters
            .iter_mut()
            .find(|s| s.inverter.name == inverter)
        {
            Some(s) => {
                s.manual = manual;
                true
            }
            None => false,
        }
    }

    /// Who decides an inverter's limit at `now`.
    pub fn mode(&self, inverter: &str, now: Timestamp) -> InverterMode {
        match self.inverters.iter().find(|s| s.inverter.name == inverter) {
            Some(s) if s.manual.is_some_and(|m| now < m.until) => InverterMode::Manual,
            Some(_) if self.limit.is_some() => InverterMode::Auto,
            _ => InverterMode::Free,
        }
    }

    /// Decides at `now`, given the grid power (`None` when it is stale: the curtailment is held
    /// as it is) and each inverter's output as last read, in the order they were given; returns
    /// the limit each inverter should be under (`None`: none).
    pub fn tick(
        &mut self,
        now: Timestamp,
        grid: Option<MilliWatts>,
        output: &[Option<MilliWatts>],
    ) -> Vec<(String, Option<Limit>)> {
        for s in &mut self.inverters {
            s.manual = s.manual.filter(|m| now < m.until);
        }
        if let (Some(limit), Some(grid)) = (self.limit, grid) {
            self.percent = self.step(limit, grid, output);
        }
        self.inverters
            .iter()
            .map(|s| {
                let limit = match s.manual {
                    Some(m) => Some(m.limit),
                    None => (self.percent < 100).then_some(Limit {
                        percent: self.percent,
                        revert: s.inverter.revert,
                    }),
                };
                (s.inverter.name.clone(), limit)
            })
            .collect()
    }

    /// The next automatic percent: lower at once by what the export is over the limit, higher
    /// by the room under it, aiming a margin below the limit; unchanged within the margin.
    fn step(&self, limit: MilliWatts, grid: MilliWatts, output: &[Option<MilliWatts>]) -> u8 {
        let (mut rated, mut produced) = (0i64, 0i64);
        for (s, output) in self.inverters.iter().zip(output) {
            if s.manual.is_none() {
                rated += s.inverter.rated.0;
                // Production is negative power: a consuming inverter (at night) produces nothing;
                // one not read yet is taken to produce all its limit allows.
                let unknown = s.inverter.rated.0 * i64::from(self.percent) / 100;
                produced += output.map_or(unknown, |p| (-p.0).max(0));
            }
        }
        if rated <= 0 {
            return self.percent;
        }
        // Negative while importing: an import is room to produce more.
        let export = -grid.0;
        let margin = rated * MARGIN_PERCENT / 100;
        let aim = limit.0 - margin;
        let percent_of = |production: i64| (production.max(0) * 100 / rated).min(100) as u8;
        if export > limit.0 {
            percent_of(produced - (export - aim)).min(self.percent.saturating_sub(1))
        } else if self.percent < 100 && export < aim - margin {
            percent_of(produced + (aim - export)).max(self.percent)
        } else {
            self.percent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_750_000_000_000);

    fn limiter(limit_w: i64) -> ExportLimiter {
        ExportLimiter::new(
            Some(MilliWatts(limit_w * 1000)),
            vec![Curtailable {
                name: "pv".into(),
                rated: MilliWatts(6_000_000),
                revert: Duration::from_secs(60),
            }],
        )
    }

    fn kw(kw: f64) -> MilliWatts {
        MilliWatts((kw * 1e6) as i64)
    }

    fn percent(decided: &[(String, Option<Limit>)]) -> Option<u8> {
        decided[0].1.map(|l| l.percent)
    }

    #[test]
    fn a_breach_curtails_at_once_below_the_limit_and_room_lifts_it() {
        let mut l = limiter(1000);
        // 5 kW produced, 0.5 kW consumed: 4.5 kW exported against a 1 kW limit.
        let first = l.tick(T0, Some(kw(-4.5)), &[Some(kw(-5.0))]);
        // 5 - (4.5 - (1 - 0.12)) = 1.38 kW of 6 kW: 23 %.
        assert_eq!(percent(&first), Some(23));
        assert_eq!(first[0].1.map(|l| l.revert), Some(Duration::from_secs(60)));
        // Now 1.38 kW produced, 0.88 exported: within the margin, held.
        assert_eq!(
            percent(&l.tick(T0, Some(kw(-0.88)), &[Some(kw(-1.38))])),
            Some(23)
        );
        // The house starts a 3 kW load: 2.12 kW imported, room for 3 kW more.
        let lifted = l.tick(T0, Some(kw(2.12)), &[Some(kw(-1.38))]);
        assert_eq!(percent(&lifted), Some(73));
        // Lots of room: no limit at all.
        assert_eq!(percent(&l.tick(T0, Some(kw(5.0)), &[Some(kw(-4.2))])), None);
    }

    #[test]
    fn a_limit_the_inverter_does_not_reach_still_goes_down_step_by_step() {
        let mut l = limiter(0);
        // The inverter reports less than the export (another producer): the limit still falls.
        assert_eq!(
            percent(&l.tick(T0, Some(kw(-2.0)), &[Some(kw(-1.0))])),
            Some(0)
        );
        let mut l = limiter(1000);
        l.percent = 50;
        // Over the limit while the computed target is above the limit in force: one step down.
        assert_eq!(
            percent(&l.tick(T0, Some(kw(-1.1)), &[Some(kw(-4.0))])),
            Some(49)
        );
    }

    #[test]
    fn stale_measurements_hold_the_curtailment() {
        let mut l = limiter(1000);
        l.tick(T0, Some(kw(-4.5)), &[Some(kw(-5.0))]);
        assert_eq!(percent(&l.tick(T0, None, &[None])), Some(23));
    }

    #[test]
    fn a_limit_by_hand_wins_until_it_lapses() {
        let mut l = limiter(1000);
        let manual = LimitOverride {
            limit: Limit {
                percent: 40,
                revert: Duration::from_secs(30),
            },
            until: T0.plus(Duration::from_secs(30)),
        };
        assert!(l.set_override("pv", Some(manual)));
        assert!(!l.set_override("wind", None));
        assert_eq!(l.mode("pv", T0), InverterMode::Manual);
        assert_eq!(
            percent(&l.tick(T0, Some(kw(-4.5)), &[Some(kw(-2.4))])),
            Some(40)
        );
        let later = T0.plus(Duration::from_secs(30));
        assert_eq!(l.mode("pv", later), InverterMode::Auto);
        assert_eq!(
            percent(&l.tick(later, Some(kw(-4.5)), &[Some(kw(-5.0))])),
            Some(23)
        );
        l.set_limit(None);
        assert_eq!(l.mode("pv", later), InverterMode::Free);
        assert_eq!(percent(&l.tick(later, Some(kw(-4.5)), &[None])), None);
    }
}

//! Demand response: which loads to switch, and when. Pure decisions on a clock the caller gives,
//! so that a day of control can be replayed in a test in a second.
//!
//! Each tick the [`Controller`] is given the time and the latest grid power, and answers with the
//! relay commands to carry out. Who decides, strongest first:
//! 1. a manual override (from D-Bus), until released;
//! 2. stale measurements: every load to its safe state;
//! 3. the automatic strategies: a load's schedule says whether it should run; an external
//!    allocation (the dialogue's) caps the power of the flexible loads; the import limit sheds the
//!    lowest priority loads while the grid import exceeds it and restores them, one per tick,
//!    once there is room for them below the limit minus the hysteresis.
//!
//! Automatic switching never breaks a load's minimum on and off times or its switches per hour;
//! overrides and the safe state do, as they must.

mod export;
mod load;
mod schedule;

use std::time::Duration;

use daisee_hal::{MilliWatts, RelayState, Timestamp};

pub use export::{Curtailable, ExportLimiter, InverterMode, Limit, LimitOverride};
pub use load::{FlexLoad, Switching};
pub use schedule::{Window, WindowError};

/// Shed loads while the grid import is above `limit`; restore them once the import plus a load's
/// nominal power is at most `limit - hysteresis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimit {
    /// The most the building should take from the grid.
    pub limit: MilliWatts,
    /// How far below the limit the import must stay after restoring a load.
    pub hysteresis: MilliWatts,
}

/// What the dialogue allows the building in one slot: a power budget for the flexible loads and,
/// when the clearing curtailed its inverters, an export limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Start of the slot.
    pub slot: Timestamp,
    /// Slot length; the allocation lapses after it.
    pub length: Duration,
    /// The most the flexible loads may draw together (their nominal powers).
    pub budget: MilliWatts,
    /// The most the building may export in the slot, if the clearing curtailed its inverters.
    pub export_limit: Option<MilliWatts>,
}

/// How the controller works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The import limit, if any.
    pub import_limit: Option<ImportLimit>,
    /// Grid readings older than this are stale.
    pub stale_after: Duration,
}

/// Why a relay is switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Shed to keep the import under the limit.
    ImportLimit,
    /// Restored after shedding, with room under the limit.
    Restore,
    /// Its schedule starts or ends.
    Schedule,
    /// Nothing stops it from running (a load without a schedule, at start).
    Automatic,
    /// The external allocation leaves it no room, or room again.
    Allocation,
    /// A manual override.
    Override,
    /// A relay without demand response given back: its safe state.
    Released,
    /// Grid measurements are stale: the safe state.
    Stale,
}

impl Cause {
    /// A short name, for logs and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ImportLimit => "import limit",
            Cause::Restore => "restore",
            Cause::Schedule => "schedule",
            Cause::Automatic => "automatic",
            Cause::Allocation => "allocation",
            Cause::Override => "override",
            Cause::Released => "released to its safe state",
            Cause::Stale => "stale measurements",
        }
    }
}

/// Switch a load's relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The load's name.
    pub load: String,
    /// The state to switch to.
    pub state: RelayState,
    /// Why.
    pub cause: Cause,
}

struct Controlled {
    load: FlexLoad,
    switching: Switching,
    manual: Option<RelayState>,
    shed: bool,
}

/// A relay without demand response: in its safe state unless held by hand.
struct Fixed {
    name: String,
    safe: RelayState,
    manual: Option<RelayState>,
    state: RelayState,
}

/// Who decides a relay's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nobody: it stays in its safe state.
    Fixed,
    /// Demand response.
    Auto,
    /// A person, until released.
    Manual,
}

impl Mode {
    /// `"fixed"`, `"auto"` or `"manual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fixed => "fixed",
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        }
    }
}

/// What demand response acted on at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The grid power, if it was ever read.
    pub grid: Option<MilliWatts>,
    /// Whether it was too old to act on (the loads went to their safe states).
    pub stale: bool,
    /// The import limit in force.
    pub import_limit: Option<MilliWatts>,
}

/// The demand-response controller of one building.
pub struct Controller {
    settings: Settings,
    loads: Vec<Controlled>,
    fixed: Vec<Fixed>,
    /// The dialogue's allocations of the slot under way and the next, by start.
    allocations: Vec<Allocation>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("settings", &self.settings)
            .field(
                "loads",
                &self.loads.iter().map(|c| &c.load.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What a tick decided for one load before the switching limits are applied.
struct Wish {
    state: RelayState,
    cause: Cause,
    forced: bool,
}

impl Controller {
    /// A controller for `loads`, whose relays were put in their safe states at `start` (as the
    /// agent starts them).
    pub fn new(settings: Settings, loads: Vec<FlexLoad>, start: Timestamp) -> Self {
        let loads = loads
            .into_iter()
            .map(|load| Controlled {
                switching: Switching::new(load.safe, start),
                load,
                manual: None,
                shed: false,
            })
            .collect();
        Self {
            settings,
            loads,
            fixed: Vec::new(),
            allocations: Vec::new(),
        }
    }

    /// Adds a relay without demand response, in its `safe` state: only a person switches it.
    pub fn add_fixed(&mut self, name: &str, safe: RelayState) {
        self.fixed.push(Fixed {
            name: name.to_owned(),
            safe,
            manual: None,
            state: safe,
        });
    }

    /// Overrides a relay by hand (`Some`) or gives it back (`None`): to the strategies, or to
    /// its safe state if it has none. Returns false if there is no such relay.
    pub fn set_override(&mut self, relay: &str, state: Option<RelayState>) -> bool {
        if let Some(c) = self.loads.iter_mut().find(|c| c.load.name == relay) {
            c.manual = state;
            return true;
        }
        match self.fixed.iter_mut().find(|f| f.name == relay) {
            Some(f) => {
                f.manual = state;
                true
            }
            None => false,
        }
    }

    /// The manual override of a relay, if any.
    pub fn manual(&self, relay: &str) -> Option<RelayState> {
        self.loads
            .iter()
            .find(|c| c.load.name == relay)
            .map(|c| c.manual)
            .or_else(|| {
                self.fixed
                    .iter()
                    .find(|f| f.name == relay)
                    .map(|f| f.manual)
            })
            .flatten()
    }

    /// Who decides a relay's state now.
    pub fn mode(&self, relay: &str) -> Mode {
        match (self.has(relay), self.manual(relay)) {
            (_, Some(_)) => Mode::Manual,
            (true, None) => Mode::Auto,
            (false, None) => Mode::Fixed,
        }
    }

    /// What the controller acts on at `now`, given the grid reading it was last given.
    pub fn status(&self, now: Timestamp, grid: Option<(Timestamp, MilliWatts)>) -> Status {
        Status {
            grid: grid.map(|(_, p)| p),
            stale: self.is_stale(now, grid),
            import_limit: self.settings.import_limit.map(|l| l.limit),
        }
    }

    /// Takes the external allocation of a slot (in place of any earlier one for that slot): the
    /// next slot's arrives while the current one's still holds.
    pub fn allocate(&mut self, allocation: Allocation) {
        self.allocations.retain(|a| a.slot != allocation.slot);
        self.allocations.push(allocation);
    }

    /// The allocation of the slot under way at `now`, if the dialogue gave one.
    pub fn allocation(&self, now: Timestamp) -> Option<Allocation> {
        self.allocations
            .iter()
            .copied()
            .find(|a| (a.slot..a.slot.plus(a.length)).contains(&now))
    }

    /// Changes the settings (a new import limit from the configuration).
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether a load of that name is under control.
    pub fn has(&self, load: &str) -> bool {
        self.loads.iter().any(|c| c.load.name == load)
    }

    /// Whether `grid`, as given to [`Controller::tick`] at `now`, is too old to act on.
    pub fn is_stale(&self, now: Timestamp, grid: Option<(Timestamp, MilliWatts)>) -> bool {
        grid.is_none_or(|(at, _)| {
            now.millis_since(at) > self.settings.stale_after.as_millis() as i64
        })
    }

    /// A switch that [`Controller::tick`] asked for did not happen (the relay did not follow):
    /// the load is back in its state before it, and the next tick tries again.
    pub fn failed(&mut self, load: &str) {
        if let Some(c) = self.loads.iter_mut().find(|c| c.load.name == load) {
            c.switching.undo();
        }
        if let Some(f) = self.fixed.iter_mut().find(|f| f.name == load) {
            // Unknown now: the next tick commands it again.
            f.state = match f.state {
                RelayState::On => RelayState::Off,
                RelayState::Off => RelayState::On,
            };
        }
    }

    /// The state each load is in, as commanded.
    pub fn states(&self) -> impl Iterator<Item = (&str, RelayState)> {
        self.loads
            .iter()
            .map(|c| (c.load.name.as_str(), c.switching.state()))
    }

    /// Decides at `now`, given the latest grid power and when it was measured; returns the
    /// commands to carry out (already counted as done).
    pub fn tick(&mut self, now: Timestamp, grid: Option<(Timestamp, MilliWatts)>) -> Vec<Command> {
        let fresh = grid.filter(|_| !self.is_stale(now, grid));
        let wishes = match fresh {
            None => self.safe_wishes(),
            Some((_, power)) => self.automatic_wishes(now, power),
        };
        let mut commands = Vec::new();
        for (c, wish) in self.loads.iter_mut().zip(wishes) {
            if wish.state == c.switching.state() {
                continue;
            }
            if wish.forced || c.switching.allows(&c.load, now, wish.state) {
                c.switching.record(now, wish.state);
                commands.push(Command {
                    load: c.load.name.clone(),
                    state: wish.state,
                    cause: wish.cause,
                });
            }
        }
        commands.extend(self.fixed_commands());
        commands
    }

    /// The switches the hands on the relays call for at `now`, before anything is measured: a
    /// person's order is carried out at once, and the turn's readings already see it.
    pub fn overrides(&mut self, now: Timestamp) -> Vec<Command> {
        let mut commands = Vec::new();
        for c in &mut self.loads {
            if let Some(state) = c.manual.filter(|s| *s != c.switching.state()) {
                c.switching.record(now, state);
                commands.push(Command {
                    load: c.load.name.clone(),
                    state,
                    cause: Cause::Override,
                });
            }
        }
        commands.extend(self.fixed_commands());
        commands
    }

    /// Relays without demand response follow the hand that holds them, else their safe state.
    fn fixed_commands(&mut self) -> impl Iterator<Item = Command> + '_ {
        self.fixed.iter_mut().filter_map(|f| {
            let (state, cause) = match f.manual {
                Some(state) => (state, Cause::Override),
                None => (f.safe, Cause::Released),
            };
            (state != f.state).then(|| {
                f.state = state;
                Command {
                    load: f.name.clone(),
                    state,
                    cause,
                }
            })
        })
    }

    /// Each load's override, or what `otherwise` says for it.
    fn wishes(&self, otherwise: impl Fn(&Controlled) -> Wish) -> Vec<Wish> {
        self.loads
            .iter()
            .map(|c| match c.manual {
                Some(state) => Wish {
                    state,
                    cause: Cause::Override,
                    forced: true,
                },
                None => otherwise(c),
            })
            .collect()
    }

    fn safe_wishes(&self) -> Vec<Wish> {
        self.wishes(|c| Wish {
            state: c.load.safe,
            cause: Cause::Stale,
            forced: true,
        })
    }

    fn automatic_wishes(&mut self, now: Timestamp, grid: MilliWatts) -> Vec<Wish> {
        let mut wishes = self.wishes(|c| Wish {
            state: c.load.scheduled(now),
            cause: if c.load.schedule.is_empty() {
                Cause::Automatic
            } else {
                Cause::Schedule
            },
            forced: false,
        });

        // A shed load whose schedule has ended has nothing left to restore.
        for (c, w) in self.loads.iter_mut().zip(&wishes) {
            if w.state == RelayState::Off || c.manual.is_some() {
                c.shed = false;
            }
        }

        self.allocations.retain(|a| now < a.slot.plus(a.length));
        if let Some(a) = self.allocation(now) {
            // Loads that are on and may not go off yet draw what they draw: they use the budget
            // first. Then the most important loads, as long as the budget holds them.
            let locked = |c: &Controlled| {
                c.switching.state() == RelayState::On
                    && !c.switching.allows(&c.load, now, RelayState::Off)
            };
            let mut used = MilliWatts(0);
            for (c, w) in self.loads.iter().zip(&wishes) {
                if !w.forced && w.state == RelayState::On && locked(c) {
                    used = used + c.load.nominal;
                }
            }
            let mut order: Vec<usize> = (0..self.loads.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(self.loads[i].load.priority));
            for i in order {
                let w = &mut wishes[i];
                let c = &self.loads[i];
                if w.forced || w.state == RelayState::Off || locked(c) {
                    continue;
                }
                if used.0 + c.load.nominal.0 <= a.budget.0 {
                    used = used + c.load.nominal;
                } else {
                    w.state = RelayState::Off;
                    w.cause = Cause::Allocation;
                }
            }
        }

        if let Some(limit) = self.settings.import_limit {
            self.limit_import(now, grid, limit, &mut wishes);
        }
        wishes
    }

    /// Against the import limit: above it, sheds running loads, lowest priority first, until
    /// their nominal power covers the excess; below it, lets at most one waiting load (shed, or
    /// newly scheduled) switch on, the most important that fits under the limit minus the
    /// hysteresis. Every other waiting load stays off this tick.
    fn limit_import(
        &mut self,
        now: Timestamp,
        grid: MilliWatts,
        limit: ImportLimit,
        wishes: &mut [Wish],
    ) {
        let automatic = |c: &Controlled, w: &Wish| !w.forced && c.manual.is_none();
        let on: Vec<bool> = self
            .loads
            .iter()
            .map(|c| c.switching.state() == RelayState::On)
            .collect();
        let eligible: Vec<usize> = (0..self.loads.len())
            .filter(|&i| automatic(&self.loads[i], &wishes[i]))
            .collect();
        if grid.0 > limit.limit.0 {
            let mut running: Vec<usize> = eligible
                .iter()
                .copied()
                .filter(|&i| {
                    let c = &self.loads[i];
                    on[i] && c.switching.allows(&c.load, now, RelayState::Off)
                })
                .collect();
            running.sort_by_key(|&i| self.loads[i].load.priority);
            // Loads going off this tick anyway (a schedule ending, the allocation) count first.
            let mut excess = grid.0 - limit.limit.0;
            for &i in &running {
                if wishes[i].state == RelayState::Off {
                    excess -= self.loads[i].load.nominal.0;
                }
            }
            let running: Vec<usize> = running
                .into_iter()
                .filter(|&i| wishes[i].state == RelayState::On)
                .collect();
            for i in running {
                if excess <= 0 {
                    break;
                }
                self.loads[i].shed = true;
                wishes[i].state = RelayState::Off;
                wishes[i].cause = Cause::ImportLimit;
                excess -= self.loads[i].load.nominal.0;
            }
        }
        let room = limit.limit.0 - limit.hysteresis.0 - grid.0;
        let waiting: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| !on[i] && wishes[i].state == RelayState::On)
            .collect();
        let chosen = waiting
            .iter()
            .copied()
            .filter(|&i| {
                let c = &self.loads[i];
                c.load.nominal.0 <= room && c.switching.allows(&c.load, now, RelayState::On)
            })
            .max_by_key(|&i| self.loads[i].load.priority);
        for i in waiting {
            if Some(i) == chosen {
                if std::mem::take(&mut self.loads[i].shed) {
                    wishes[i].cause = Cause::Restore;
                }
            } else {
                wishes[i].state = RelayState::Off;
            }
        }
    }
}

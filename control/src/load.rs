//! A load under control and the limits on switching it.

use std::collections::VecDeque;
use std::time::Duration;

use daisee_hal::{MilliWatts, RelayState, Timestamp};

use crate::schedule::Window;

/// A load on a relay that demand response may switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexLoad {
    /// Its name (the relay's).
    pub name: String,
    /// Higher is more important: shed last, restored first.
    pub priority: u8,
    /// What it draws when on.
    pub nominal: MilliWatts,
    /// The least time it stays on once switched on (compressors, heat pumps).
    pub min_on: Duration,
    /// The least time it stays off once switched off.
    pub min_off: Duration,
    /// The most switches (on or off) in any hour.
    pub max_switches_per_hour: u32,
    /// The state it takes when measurements are stale, and at start.
    pub safe: RelayState,
    /// When it should run (UTC); always, if empty.
    pub schedule: Vec<Window>,
}

impl FlexLoad {
    /// Whether its schedule wants it on at `now`.
    pub fn scheduled(&self, now: Timestamp) -> RelayState {
        if self.schedule.is_empty() || self.schedule.iter().any(|w| w.contains(now)) {
            RelayState::On
        } else {
            RelayState::Off
        }
    }
}

/// A load's switching history: its state, when it last changed, its switches in the last hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switching {
    state: RelayState,
    since: Timestamp,
    recent: VecDeque<Timestamp>,
    /// The state and its start before the last switch, to take a failed switch back.
    before: Option<(RelayState, Timestamp)>,
}

impl Switching {
    /// A load put in `state` at `since` (the agent starts every relay in its safe state, and that
    /// counts: an agent restarting in a loop must not switch a compressor faster than its minimum
    /// times allow).
    pub fn new(state: RelayState, since: Timestamp) -> Self {
        Self {
            state,
            since,
            recent: VecDeque::new(),
            before: None,
        }
    }

    /// The state it is in.
    pub fn state(&self) -> RelayState {
        self.state
    }

    /// Whether switching `load` to `to` at `now` keeps its minimum times and switch budget.
    pub fn allows(&self, load: &FlexLoad, now: Timestamp, to: RelayState) -> bool {
        if to == self.state {
            return true;
        }
        let held = match self.state {
            RelayState::On => load.min_on,
            RelayState::Off => load.min_off,
        };
        let held = i64::try_from(held.as_millis()).unwrap_or(i64::MAX);
        // A clock stepped back makes the time in this state unknown: better to allow a switch
        // than to block shedding until the clock catches up.
        let elapsed = now.millis_since(self.since);
        let long_enough = elapsed < 0 || elapsed >= held;
        let hour_ago = now.0 - 3_600_000;
        let in_last_hour = self.recent.iter().filter(|t| t.0 > hour_ago).count();
        long_enough && in_last_hour < load.max_switches_per_hour as usize
    }

    /// Records a switch to `to` at `now`.
    pub fn record(&mut self, now: Timestamp, to: RelayState) {
        self.before = Some((self.state, self.since));
        self.state = to;
        self.since = now;
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| t.0 <= now.0 - 3_600_000)
        {
            self.recent.pop_front();
        }
    }

    /// Takes the last switch back: the relay did not follow. It still counts against the
    /// switches per hour (the attempt wore the contact as much as a switch).
    pub fn undo(&mut self) {
        if let Some((state, since)) = self.before.take() {
            self.state = state;
            self.since = since;
        }
    }
}

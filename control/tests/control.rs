//! The controller on a clock the test drives: shedding within one tick, a whole noisy day within
//! every load's limits, stale data, overrides and allocations.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daisee_control::{
    Allocation, Cause, Command, Controller, FlexLoad, ImportLimit, Mode, Settings,
};
use daisee_hal::sim::{Load, Profile, Site};
use daisee_hal::{MilliWatts, RelayState, Timestamp};

/// 2026-11-25T00:00:00Z.
const MIDNIGHT: Timestamp = Timestamp(1_795_564_800_000);
const MIN: Duration = Duration::from_secs(60);

fn load(name: &str, priority: u8, kw: f64, min_on: u64, min_off: u64, per_hour: u32) -> FlexLoad {
    FlexLoad {
        name: name.into(),
        priority,
        nominal: MilliWatts::from_watts(kw * 1000.0),
        min_on: MIN * min_on as u32,
        min_off: MIN * min_off as u32,
        max_switches_per_hour: per_hour,
        safe: RelayState::Off,
        schedule: Vec::new(),
    }
}

fn loads() -> Vec<FlexLoad> {
    let mut pool = load("pool_pump", 0, 1.0, 30, 10, 2);
    pool.schedule = vec!["10:00-16:00".parse().unwrap()];
    vec![
        load("heat_pump", 3, 2.0, 10, 5, 6),
        load("water_heater", 2, 2.5, 5, 5, 4),
        load("ev_charger", 1, 3.7, 15, 15, 4),
        pool,
    ]
}

fn settings(limit_kw: f64) -> Settings {
    Settings {
        import_limit: Some(ImportLimit {
            limit: MilliWatts::from_watts(limit_kw * 1000.0),
            hysteresis: MilliWatts(500_000),
        }),
        stale_after: Duration::from_secs(10),
    }
}

fn at(s: i64) -> Timestamp {
    Timestamp(MIDNIGHT.0 + s * 1000)
}

/// A controller whose loads have started: everything that may run is on, from 0 s.
fn started(limit_kw: f64) -> Controller {
    let mut c = Controller::new(settings(limit_kw), loads(), at(-3600));
    for s in 0..4 {
        c.tick(at(s), Some((at(s), MilliWatts(0))));
    }
    c
}

/// The loads that are on.
fn running(c: &Controller) -> Vec<&str> {
    c.states()
        .filter(|(_, s)| *s == RelayState::On)
        .map(|(n, _)| n)
        .collect()
}

fn switched<'a>(commands: &'a [Command], name: &str) -> Option<&'a Command> {
    commands.iter().find(|c| c.load == name)
}

#[test]
fn above_the_limit_the_lowest_priority_load_goes_within_one_tick() {
    // Everything that may run switches on, one per tick, while there is room.
    let mut c = started(8.0);
    let on = running(&c);
    assert_eq!(
        on,
        ["heat_pump", "water_heater", "ev_charger"],
        "the pool pump waits for 10:00"
    );
    // An hour later the house draws: 9 kW, 1 kW over. The EV charger (lowest priority) goes.
    let commands = c.tick(at(3600), Some((at(3600), MilliWatts(9_000_000))));
    assert_eq!(
        commands,
        [Command {
            load: "ev_charger".into(),
            state: RelayState::Off,
            cause: Cause::ImportLimit
        }]
    );
    // 5 kW over: the charger is not enough, the water heater goes too; the heat pump stays.
    let mut c = started(8.0);
    let commands = c.tick(at(3600), Some((at(3600), MilliWatts(13_000_000))));
    let off: Vec<_> = commands.iter().map(|c| c.load.as_str()).collect();
    assert_eq!(off, ["water_heater", "ev_charger"]);
}

#[test]
fn a_load_inside_its_minimum_on_time_is_skipped_for_the_next() {
    let mut c = started(8.0);
    // Two minutes after they started: the charger (15 min) and the water heater (5 min) are
    // held on; the heat pump (10 min) too. Nothing may go yet.
    assert!(
        c.tick(at(120), Some((at(120), MilliWatts(9_000_000))))
            .is_empty()
    );
    // At 6 minutes the water heater's 5 are over: it goes, though it outranks the charger.
    let commands = c.tick(at(360), Some((at(360), MilliWatts(9_000_000))));
    assert_eq!(
        switched(&commands, "water_heater").unwrap().state,
        RelayState::Off
    );
    assert!(switched(&commands, "ev_charger").is_none());
}

#[test]
fn restored_one_at_a_time_with_room_below_the_hysteresis() {
    let mut c = started(8.0);
    c.tick(at(3600), Some((at(3600), MilliWatts(13_000_000))));
    // 5 kW import after shedding: 8 - 0.5 - 5 = 2.5 kW of room: the water heater (2.5 kW, the
    // more important) comes back, alone; the charger (3.7 kW) does not fit.
    let t = 3600 + 600;
    let commands = c.tick(at(t), Some((at(t), MilliWatts(5_000_000))));
    assert_eq!(
        commands,
        [Command {
            load: "water_heater".into(),
            state: RelayState::On,
            cause: Cause::Restore
        }]
    );
    assert!(
        c.tick(at(t + 1), Some((at(t + 1), MilliWatts(7_400_000))))
            .is_empty()
    );
}

/// What the test itself knows of each load's switching, to check the controller independently.
#[derive(Default)]
struct Log {
    state: HashMap<String, RelayState>,
    switches: HashMap<String, Vec<i64>>,
}

impl Log {
    fn state(&self, name: &str) -> RelayState {
        self.state.get(name).copied().unwrap_or(RelayState::Off)
    }

    /// Whether the load may switch at `t` (seconds): its minimum time in its state is over and it
    /// switched fewer than its limit in the last hour.
    fn may_switch(&self, l: &FlexLoad, t: i64) -> bool {
        let times = self.switches.get(&l.name).map(Vec::as_slice).unwrap_or(&[]);
        let held = match self.state(&l.name) {
            RelayState::On => l.min_on,
            RelayState::Off => l.min_off,
        };
        let long_enough = times
            .last()
            .is_none_or(|last| t - last >= held.as_secs() as i64);
        let last_hour = times.iter().filter(|s| **s > t - 3600).count();
        long_enough && last_hour < l.max_switches_per_hour as usize
    }

    fn apply(&mut self, commands: &[Command], t: i64, loads: &[FlexLoad]) {
        for cmd in commands {
            let l = loads.iter().find(|l| l.name == cmd.load).unwrap();
            assert!(
                self.may_switch(l, t),
                "{} switched {} at {t} s breaking its limits: {:?}",
                l.name,
                cmd.state,
                self.switches.get(&l.name)
            );
            self.state.insert(cmd.load.clone(), cmd.state);
            self.switches.entry(cmd.load.clone()).or_default().push(t);
        }
    }
}

#[test]
fn a_noisy_day_keeps_every_limit_and_sheds_at_once() {
    let mut site = Site::new(11);
    site.add(Load::new(
        "house",
        Profile::Household {
            peak: MilliWatts(5_000_000),
        },
    ));
    let site = Arc::new(site);
    let house = vec!["house".to_owned()];
    let loads = loads();
    let limit = MilliWatts(7_000_000);
    let mut c = Controller::new(settings(7.0), loads.clone(), at(-3600));
    let mut log = Log::default();
    let (mut sheds, mut restores, mut breaches) = (0, 0, 0);
    for t in 0..86_400 {
        let now = at(t);
        let running: i64 = loads
            .iter()
            .filter(|l| log.state(&l.name) == RelayState::On)
            .map(|l| l.nominal.0)
            .sum();
        let grid = MilliWatts(site.power(&house, now).0 + running);
        // The load the limit must shed at once, if the grid is over it: the lowest priority one
        // that is on and may switch.
        let due = (grid.0 > limit.0)
            .then(|| {
                loads
                    .iter()
                    .filter(|l| log.state(&l.name) == RelayState::On && log.may_switch(l, t))
                    .min_by_key(|l| l.priority)
            })
            .flatten();
        let commands = c.tick(now, Some((now, grid)));
        if let Some(l) = due {
            breaches += 1;
            let cmd = switched(&commands, &l.name)
                .unwrap_or_else(|| panic!("{} not shed at {t} s", l.name));
            assert_eq!(
                (cmd.state, cmd.cause),
                (RelayState::Off, Cause::ImportLimit)
            );
        }
        sheds += commands
            .iter()
            .filter(|c| c.cause == Cause::ImportLimit)
            .count();
        restores += commands
            .iter()
            .filter(|c| c.cause == Cause::Restore)
            .count();
        log.apply(&commands, t, &loads);
    }
    assert!(
        breaches > 5 && sheds > 5 && restores > 5,
        "a day that tests something: {breaches} {sheds} {restores}"
    );
}

#[test]
fn minimum_times_hold_from_the_start_and_a_failed_switch_is_tried_again() {
    // Started a minute ago with every relay in its safe state (off): the loads' minimum off
    // times (5 and 15 min) count from then, across a restart.
    let mut c = Controller::new(settings(8.0), loads(), at(-60));
    assert!(c.tick(at(0), Some((at(0), MilliWatts(0)))).is_empty());
    let on = c.tick(at(240), Some((at(240), MilliWatts(0))));
    assert_eq!(
        on.iter().map(|c| c.load.as_str()).collect::<Vec<_>>(),
        ["heat_pump"]
    );
    // The heat pump's relay did not follow: it is off again, and asked again next tick.
    c.failed("heat_pump");
    let again = c.tick(at(241), Some((at(241), MilliWatts(0))));
    assert_eq!(switched(&again, "heat_pump").unwrap().state, RelayState::On);
}

#[test]
fn an_allocation_counts_loads_that_cannot_go_off_yet() {
    let mut c = started(100.0);
    // Six minutes in, the heat pump (10 min) and the charger (15 min) must stay on: 5.7 kW, more
    // than a 4.6 kW budget already. The water heater (5 min) may go, and must, though by
    // priority alone it would fit before the charger.
    c.allocate(Allocation {
        slot: at(360),
        length: Duration::from_secs(900),
        budget: MilliWatts(4_600_000),
        export_limit: None,
    });
    let commands = c.tick(at(360), Some((at(360), MilliWatts(0))));
    assert_eq!(
        commands,
        [Command {
            load: "water_heater".into(),
            state: RelayState::Off,
            cause: Cause::Allocation
        }]
    );
}

#[test]
fn loads_going_off_anyway_count_against_the_excess() {
    let mut c = started(8.0);
    // The water heater (2.5 kW) leaves at its schedule's end in the same tick the import is
    // 2 kW over: that covers the excess, and nothing else is shed.
    let mut loads = loads();
    loads[1].schedule = vec!["00:00-01:00".parse().unwrap()];
    let mut c2 = Controller::new(settings(8.0), loads, at(-3600));
    for s in 0..4 {
        c2.tick(at(s), Some((at(s), MilliWatts(0))));
    }
    let commands = c2.tick(at(3600), Some((at(3600), MilliWatts(10_000_000))));
    assert_eq!(
        commands,
        [Command {
            load: "water_heater".into(),
            state: RelayState::Off,
            cause: Cause::Schedule
        }]
    );
    // Without the schedule the charger, lowest priority, goes instead.
    let commands = c.tick(at(3600), Some((at(3600), MilliWatts(10_000_000))));
    assert_eq!(
        switched(&commands, "ev_charger").unwrap().cause,
        Cause::ImportLimit
    );
}

#[test]
fn stale_measurements_put_every_load_in_its_safe_state_at_once() {
    let mut loads = loads();
    loads[0].safe = RelayState::On;
    let mut c = Controller::new(settings(8.0), loads, at(-3600));
    c.tick(at(0), Some((at(0), MilliWatts(0))));
    c.tick(at(1), Some((at(1), MilliWatts(0))));
    c.tick(at(2), Some((at(2), MilliWatts(0))));
    // The last reading is from 2 s; at 13 s it is 11 s old, past the 10 s allowed.
    assert!(c.tick(at(12), Some((at(2), MilliWatts(0)))).is_empty());
    let commands = c.tick(at(13), Some((at(2), MilliWatts(0))));
    let mut safe: Vec<_> = commands
        .iter()
        .map(|c| (c.load.as_str(), c.state, c.cause))
        .collect();
    safe.sort_by_key(|(n, ..)| *n);
    // The heat pump's safe state is on; it already is. The others were on, inside their minimum
    // on times: safety does not wait for them.
    assert_eq!(
        safe,
        [
            ("ev_charger", RelayState::Off, Cause::Stale),
            ("water_heater", RelayState::Off, Cause::Stale)
        ]
    );
    assert!(
        c.tick(at(14), None).is_empty(),
        "no reading at all is stale too"
    );
}

#[test]
fn an_override_wins_until_released() {
    let mut c = started(8.0);
    assert!(c.set_override("ev_charger", Some(RelayState::On)));
    assert!(!c.set_override("no_such_load", None));
    let t = 3600;
    let commands = c.tick(at(t), Some((at(t), MilliWatts(9_000_000))));
    // The charger is held on by hand: the limit takes the water heater instead.
    assert_eq!(
        switched(&commands, "water_heater").unwrap().state,
        RelayState::Off
    );
    assert!(switched(&commands, "ev_charger").is_none());
    // Switched off by hand, even inside its minimum on time.
    c.set_override("ev_charger", Some(RelayState::Off));
    let commands = c.tick(at(t + 1), Some((at(t + 1), MilliWatts(0))));
    assert_eq!(
        switched(&commands, "ev_charger").unwrap().cause,
        Cause::Override
    );
    c.set_override("ev_charger", None);
    assert_eq!(c.manual("ev_charger"), None);
    // Released: back to automatic, and on again once its minimum off time is over and there is room.
    let back = (t + 2..t + 2000).find(|&s| {
        let cmds = c.tick(at(s), Some((at(s), MilliWatts(0))));
        switched(&cmds, "ev_charger").is_some_and(|c| c.state == RelayState::On)
    });
    assert!(back.unwrap() >= t + 1 + 15 * 60, "{back:?}");
}

#[test]
fn an_allocation_caps_the_flexible_loads_in_its_slot() {
    let mut c = Controller::new(settings(100.0), loads(), at(-3600));
    c.allocate(Allocation {
        slot: at(0),
        length: Duration::from_secs(900),
        budget: MilliWatts(4_600_000),
        export_limit: None,
    });
    for s in 0..10 {
        c.tick(at(s), Some((at(s), MilliWatts(0))));
    }
    // 4.6 kW holds the heat pump (2 kW) and the water heater (2.5 kW), not the charger.
    let on = running(&c);
    assert_eq!(on, ["heat_pump", "water_heater"]);
    // The next slot's allocation arrives before this slot ends, and leaves this one's in force.
    c.allocate(Allocation {
        slot: at(900),
        length: Duration::from_secs(900),
        budget: MilliWatts(10_000_000),
        export_limit: None,
    });
    for s in 10..20 {
        c.tick(at(s), Some((at(s), MilliWatts(0))));
    }
    assert_eq!(running(&c), ["heat_pump", "water_heater"]);
    // The slot is over: the next one's budget lets the charger run.
    let after = (900..960).any(|s| {
        let cmds = c.tick(at(s), Some((at(s), MilliWatts(0))));
        switched(&cmds, "ev_charger").is_some()
    });
    assert!(after);
}

#[test]
fn a_relay_without_demand_response_follows_only_the_hand() {
    let settings = Settings {
        import_limit: None,
        stale_after: MIN,
    };
    let mut c = Controller::new(settings, loads(), MIDNIGHT);
    c.add_fixed("light", RelayState::Off);
    assert_eq!(c.mode("light"), Mode::Fixed);
    assert_eq!(c.mode("ev_charger"), Mode::Auto);
    let light = |commands: Vec<Command>| -> Vec<(RelayState, Cause)> {
        commands
            .into_iter()
            .filter(|c| c.load == "light")
            .map(|c| (c.state, c.cause))
            .collect()
    };
    // Stale or not, nothing switches it but a person.
    assert_eq!(light(c.tick(MIDNIGHT, None)), []);
    assert!(c.set_override("light", Some(RelayState::On)));
    assert_eq!(c.mode("light"), Mode::Manual);
    let now = MIDNIGHT.plus(MIN);
    assert_eq!(
        light(c.tick(now, None)),
        [(RelayState::On, Cause::Override)]
    );
    // It did not follow: asked again at the next tick, then never more.
    c.failed("light");
    assert_eq!(
        light(c.tick(now, None)),
        [(RelayState::On, Cause::Override)]
    );
    assert_eq!(light(c.tick(now, None)), []);
    assert!(c.set_override("light", None));
    assert_eq!(c.mode("light"), Mode::Fixed);
    assert_eq!(
        light(c.tick(now, None)),
        [(RelayState::Off, Cause::Released)]
    );
}

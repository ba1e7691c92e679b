//! The demo gateway and device recovery, on a clock the test drives.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::sync::Arc;
use std::time::Duration;

use daisee_agent::config::{Config, DEMO};
use daisee_agent::devices::{
    Connect, ConnectError, Devices as Gateway, Readings as Snapshot, Reconnecting, Sensor,
};
use daisee_hal::sim::{Ina219Chip, Load, Profile, SimClock, SimI2cBus, Site};
use daisee_hal::{ErrorKind, MilliWatts, RelayState, Timestamp};
use daisee_ina219::{Ina219, Settings};
use daisee_modbus_sim::{ProfileMeter, Simulator};
use tokio::runtime::Runtime;

/// 2026-11-25T12:00:00Z: the sun is up.
const NOON: Timestamp = Timestamp(1_795_608_000_000);

/// The demo gateway on `clock`, and the runtime its Modbus buses are polled on (they only move
/// while a test drives it).
fn demo(clock: &SimClock) -> (Gateway, Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::parse(DEMO).unwrap();
    let gateway = {
        let _entered = runtime.enter();
        Gateway::build(&config, Arc::new(clock.clone())).unwrap()
    };
    // Let the INA219 finish its first conversion.
    clock.advance(Duration::from_millis(200));
    (gateway, runtime)
}

/// A snapshot taken once every Modbus device has been asked (their bus tasks start when the
/// runtime runs).
fn after_first_modbus_round(runtime: &Runtime, gateway: &mut Gateway) -> Snapshot {
    let unread = |s: &Snapshot| s.channels.iter().any(|c| !c.polled);
    let mut s = gateway.read();
    for _ in 0..100 {
        if !unread(&s) {
            break;
        }
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        s = gateway.read();
    }
    s
}

fn power(s: &Snapshot, channel: &str) -> MilliWatts {
    let c = s.channels.iter().find(|c| &*c.name == channel).unwrap();
    c.reading.as_ref().unwrap().power
}

#[test]
fn the_demo_reads_every_channel_and_starts_relays_safe() {
    let clock = SimClock::manual(NOON);
    let (mut gateway, runtime) = demo(&clock);
    assert!(gateway.warnings().is_empty(), "{:?}", gateway.warnings());
    let s = after_first_modbus_round(&runtime, &mut gateway);
    for c in &s.channels {
        assert!(c.reading.is_ok(), "{}: {:?}", c.name, c.reading);
    }
    let relays: Vec<_> = s
        .relays
        .iter()
        .map(|r| (&*r.name, *r.state.as_ref().unwrap(), r.safe))
        .collect();
    assert_eq!(
        relays,
        [
            ("water_heater", RelayState::On, RelayState::On),
            ("ev_charger", RelayState::Off, RelayState::Off)
        ]
    );
    // At noon the PV produces, so its power is negative, and less than its 4.2 kW peak.
    let pv = power(&s, "rooftop_pv").0;
    assert!((-4_200_000..-500_000).contains(&pv), "{pv}");
    // The SunSpec inverter reports the same production in whole watts; the SDM630 sub-meter sees
    // the 2 kW water heater (its relay's safe state is on) and not the charger (off).
    let inverter = power(&s, "pv_inverter").0;
    assert!(
        (inverter - pv).abs() <= 500,
        "inverter {inverter}, sensor {pv}"
    );
    let flex = power(&s, "flex_loads").0;
    assert!((1_950_000..2_050_000).contains(&flex), "{flex}");
}

#[test]
fn the_ina219_channel_reads_the_simulated_physics_through_the_driver() {
    // The same site as the demo, built by hand: same seed, same loads in the same order.
    let mut site = Site::new(42);
    for (name, profile) in [
        (
            "house",
            Profile::Household {
                peak: MilliWatts(3_500_000),
            },
        ),
        (
            "rooftop_pv",
            Profile::Solar {
                peak: MilliWatts(4_200_000),
            },
        ),
        (
            "water_heater",
            Profile::Constant {
                power: MilliWatts(2_000_000),
            },
        ),
        (
            "ev_charger",
            Profile::Constant {
                power: MilliWatts(3_700_000),
            },
        ),
        (
            "shed_panel",
            Profile::Solar {
                peak: MilliWatts(90_000),
            },
        ),
    ] {
        site.add(Load::new(name, profile));
    }
    let clock = SimClock::manual(NOON);
    let (mut gateway, _runtime) = demo(&clock);
    for _ in 0..20 {
        clock.advance(Duration::from_secs(30));
        let s = gateway.read();
        let expected = site.power(&["shed_panel".into()], s.at).0;
        let measured = power(&s, "shed_panel").0;
        // Shunt LSB 10 µV / 10 mΩ = 1 mA, at 12.8 V: 12.8 mW, plus the register truncations.
        assert!(
            (expected - measured).abs() <= 30,
            "at {}: expected {expected} mW, INA219 says {measured} mW",
            s.at
        );
    }
}

#[test]
fn energy_accumulates_by_direction_over_an_hour() {
    let clock = SimClock::manual(NOON);
    let (mut gateway, _runtime) = demo(&clock);
    let mut last = gateway.read();
    for _ in 0..3600 {
        clock.advance(Duration::from_secs(1));
        last = gateway.read();
    }
    let energy = |name: &str| {
        last.channels
            .iter()
            .find(|c| &*c.name == name)
            .unwrap()
            .energy
    };
    let pv = energy("rooftop_pv");
    // Around noon, an hour of a 4.2 kW-peak array under passing clouds: between 1 and 4.2 kWh.
    assert_eq!(pv.import.0, 0);
    assert!((1_000_000..4_200_000).contains(&pv.export.0), "{pv:?}");
    let shed = energy("shed_panel");
    assert!(shed.export.0 > 10_000 && shed.import.0 == 0, "{shed:?}");
}

#[test]
fn a_chip_missing_at_start_or_losing_power_is_set_up_again() {
    let clock = SimClock::manual(NOON);
    let bus = SimI2cBus::new();
    let attach = || {
        bus.attach(
            0x40,
            Ina219Chip::new(clock.clone(), |_| daisee_hal::sim::Analog {
                shunt_uv: 20_000,
                bus_mv: 12_000,
            }),
        )
    };
    let settings = Settings {
        address: 0x40,
        shunt_uohm: 10_000,
        max_current_ua: 10_000_000,
        reverse: false,
    };
    let connect_bus = bus.clone();
    let connect: Connect = Box::new(move || {
        Ina219::new(connect_bus.clone(), settings)
            .map(|s| Box::new(s) as Box<dyn Sensor>)
            .map_err(ConnectError::device)
    });
    // Nothing at the address yet: a fault to warn about, not a failed start.
    let (mut sensor, fault) = Reconnecting::start(connect).unwrap();
    assert_eq!(fault.unwrap().kind, ErrorKind::NotResponding);
    attach();
    assert!(sensor.read().is_err(), "no conversion since the setup yet");
    clock.advance(Duration::from_millis(137));
    let before = sensor.read().unwrap();
    // 20 mV over 10 mΩ is 2 A.
    assert!(
        (1_995_000..=2_000_000).contains(&before.current.0),
        "{before:?}"
    );

    bus.detach(0x40);
    assert_eq!(sensor.read().unwrap_err().kind, ErrorKind::NotResponding);
    assert_eq!(sensor.read().unwrap_err().kind, ErrorKind::NotResponding);

    // Power comes back: the chip is in its reset state, uncalibrated. Reading it as it is would
    // give zero current; the sensor is set up again first.
    attach();
    assert!(
        sensor.read().is_err(),
        "no conversion since the new setup yet"
    );
    clock.advance(Duration::from_millis(137));
    assert_eq!(sensor.read().unwrap(), before);
}

/// A Modbus TCP bus to a separate simulator: a meter read through a profile file of the user's
/// (no recompiling), and a unit nobody answers at, which fails alone.
#[test]
fn modbus_meters_from_a_user_profile_and_a_dead_unit() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = SimClock::manual(NOON);
    let mut site = Site::new(1);
    let kettle = MilliWatts(1_500_000);
    site.add(Load::new("kettle", Profile::Constant { power: kettle }));
    let sim = Simulator::new(Arc::new(clock.clone()));
    let sdm120 = daisee_modbus::profile::SHIPPED[0].1;
    let profile = Arc::new(daisee_modbus::profile::Profile::parse(sdm120).unwrap());
    sim.add(
        3,
        ProfileMeter::new(profile, Arc::new(site), vec!["kettle".into()]),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = sim.clone();
    runtime.spawn(async move { serving.serve_tcp(listener).await });

    let file = std::env::temp_dir().join(format!("daisee-kitchen-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        sdm120.replace("Eastron SDM120-Modbus", "Kitchen meter"),
    )
    .unwrap();
    let config = format!(
        "[[modbus]]\nname = \"lan\"\nbackend = \"tcp\"\naddress = \"{addr}\"\n\n\
         [[meter]]\nname = \"kitchen\"\nmodbus = \"lan\"\nunit = 3\nprofile = \"{}\"\n\n\
         [[meter]]\nname = \"ghost\"\nmodbus = \"lan\"\nunit = 4\nprofile = \"eastron-sdm120\"\ntimeout_ms = 100\n",
        file.display()
    );
    let config = Config::parse(&config).unwrap();
    let mut gateway = {
        let _entered = runtime.enter();
        Gateway::build(&config, Arc::new(clock.clone())).unwrap()
    };
    std::fs::remove_file(&file).unwrap();
    let s = after_first_modbus_round(&runtime, &mut gateway);
    let kitchen = power(&s, "kitchen").0;
    assert!((kitchen - kettle.0).abs() < 20_000, "{kitchen}");
    let ghost = s.channels.iter().find(|c| &*c.name == "ghost").unwrap();
    let fault = ghost.reading.as_ref().unwrap_err();
    assert_eq!(fault.kind, ErrorKind::NotResponding, "{fault}");
    assert!(
        fault.message.contains("no answer"),
        "asked, not just unread: {fault}"
    );
}

#[test]
fn readings_keep_phases_and_frequency_and_leave_out_what_is_not_measured() {
    let clock = SimClock::manual(NOON);
    let (mut gateway, runtime) = demo(&clock);
    let s = after_first_modbus_round(&runtime, &mut gateway);
    let reading = |name: &str| {
        let c = s.channels.iter().find(|c| &*c.name == name).unwrap();
        *c.reading.as_ref().unwrap()
    };
    // The SDM630: three phases and the grid frequency, no single voltage of its own.
    let sdm630 = reading("flex_loads");
    let phases = sdm630.phases.expect("three phases");
    assert!(
        phases
            .iter()
            .all(|p| p.voltage.is_some() && p.power.is_some())
    );
    let hz = sdm630.frequency.expect("frequency").0;
    assert!((49_000..51_000).contains(&hz), "{hz} mHz");
    assert_eq!(sdm630.voltage, None, "L1 is not the meter's voltage");
    // The INA219 on a DC bus: its voltage and current, and no frequency or phases.
    let ina219 = reading("shed_panel");
    assert!(ina219.voltage.is_some() && ina219.current.is_some());
    assert_eq!((ina219.frequency, ina219.phases), (None, None));
}

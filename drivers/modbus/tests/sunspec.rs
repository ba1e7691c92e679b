//! SunSpec against simulated devices over real TCP: discovery at every base and with both
//! lengths of the common model, a hand-built map read point by point, inverter, DER and meter
//! models, and curtailment with its revert timer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use daisee_modbus::bus::{Bus, BusError};
use daisee_modbus::device::{Backoff, Device, Map};
use daisee_modbus::profile::Function;
use daisee_modbus::sunspec::{Role, SunSpec, SunSpecError};
use daisee_modbus_sim::device::scale_exponent;
use daisee_modbus_sim::{Layout, RegisterMap, Simulator, SunSpecDevice};
use tokio_modbus::ExceptionCode;

use common::*;

const T: Duration = Duration::from_secs(2);

fn device(sim: &Simulator, unit: u8, role: Role, layout: Layout) {
    let loads = match role {
        Role::Inverter => vec!["pv".to_owned()],
        Role::Meter => vec!["house".to_owned(), "pv".to_owned()],
    };
    sim.add(unit, SunSpecDevice::new(role, layout, site(), loads));
}

/// Discovers the device at `unit`, reads it through the profile discovery builds, and compares
/// with what the simulator holds.
async fn read_and_compare(sim: &Simulator, bus: &mut Bus, unit: u8, role: Role) -> SunSpec {
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut device = Device::new("sunspec", unit, Map::SunSpec(role), T, backoff);
    let decoded = device.poll(bus).await.unwrap();
    let held = sim.values(unit).unwrap();
    let profile = device.profile().unwrap();
    assert_same(profile, &decoded, &held, |p| scale_exponent(p.unit));
    device.sunspec().unwrap().clone()
}

#[tokio::test]
async fn discovery_at_each_base_with_common_model_lengths_65_and_66() {
    let (sim, _) = simulator();
    let mut unit = 0;
    for base in [40000, 0, 50000] {
        for common_len in [65, 66] {
            unit += 1;
            let layout = Layout {
                base,
                common_len,
                models: vec![103, 120, 123],
            };
            device(&sim, unit, Role::Inverter, layout);
        }
    }
    let mut bus = tcp_bus(&sim).await;
    for unit in 1..=6 {
        let found = read_and_compare(&sim, &mut bus, unit, Role::Inverter).await;
        let base = [40000, 0, 50000][usize::from(unit - 1) / 2];
        let common_len = if unit % 2 == 1 { 65 } else { 66 };
        assert_eq!(found.base, base);
        let ids: Vec<u16> = found.models.iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 103, 120, 123]);
        // The inverter model starts after the marker, two headers and the common model.
        assert_eq!(found.models[1].start, base + 2 + 2 + common_len + 2);
        assert_eq!(found.models[1].len, 50);
        assert_eq!(found.identity.manufacturer, "DAISEE");
        assert_eq!(found.identity.serial, "SIM0001");
        assert_eq!(found.rated.unwrap().0, 6_000_000);
    }
}

/// A map typed in by hand from the model definitions, independent of the simulator's layout code:
/// base 0, a 65-register common model, model 101, end.
#[tokio::test]
async fn a_hand_built_map_reads_point_by_point() {
    let h = Function::Holding;
    let mut map = RegisterMap::default();
    map.set(h, 0, &[0x5375, 0x6E53, 1, 65]);
    map.set(h, 4, &[0; 65]);
    map.set(
        h,
        4,
        &[u16::from_be_bytes(*b"Ac"), u16::from_be_bytes(*b"me")],
    );
    // Model 101 from 71: A 6.5 (A_SF -1), PhVphA 230.1 V (V_SF -1), W 1500 (W_SF 0),
    // Hz 50.01 (Hz_SF -2), WH 65536 Wh (acc32, WH_SF 0).
    map.set(h, 69, &[101, 50]);
    map.set(h, 71, &[0; 50]);
    map.set(h, 71, &[65]);
    map.set(h, 75, &[(-1i16) as u16]);
    map.set(h, 79, &[2301]);
    map.set(h, 82, &[(-1i16) as u16, 1500, 0, 5001, (-2i16) as u16]);
    map.set(h, 93, &[0x0001, 0x0000, 0]);
    map.set(h, 121, &[0xFFFF, 0]);
    let (sim, _) = simulator();
    sim.add_registers(9, map.clone());
    let mut bus = tcp_bus(&sim).await;

    let found = SunSpec::discover(&mut bus, 9, T).await.unwrap();
    assert_eq!(found.base, 0);
    assert_eq!(found.identity.manufacturer, "Acme");
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut device = Device::new("hand", 9, Map::SunSpec(Role::Inverter), T, backoff);
    let v = device.poll(&mut bus).await.unwrap();
    assert_eq!(v.power.unwrap().0, -1_500_000, "produced, so negative");
    assert_eq!(v.current.unwrap().0, 6_500_000);
    assert_eq!(v.voltage.unwrap().0, 230_100);
    assert_eq!(v.frequency_mhz, Some(50_010));
    assert_eq!(v.export.unwrap().0, 65_536_000);

    // "Not implemented" frequency and power scale factor: absent, not zero.
    map.set(h, 85, &[0xFFFF]);
    map.set(h, 84, &[0x8000]);
    sim.add_registers(9, map);
    let v = device.poll(&mut bus).await.unwrap();
    assert_eq!(v.frequency_mhz, None);
    assert_eq!(v.power, None);
    assert_eq!(v.voltage.unwrap().0, 230_100);
}

#[tokio::test]
async fn float_inverter_der_inverter_and_meters() {
    let (sim, _) = simulator();
    let float = Layout {
        models: vec![113, 120, 123],
        ..Layout::inverter()
    };
    let float_meter = Layout {
        models: vec![213],
        ..Layout::meter()
    };
    device(&sim, 1, Role::Inverter, float);
    device(&sim, 2, Role::Inverter, Layout::der());
    device(&sim, 3, Role::Meter, Layout::meter());
    device(&sim, 4, Role::Meter, float_meter);
    let mut bus = tcp_bus(&sim).await;
    for (unit, role, model) in [
        (1, Role::Inverter, 113),
        (2, Role::Inverter, 701),
        (3, Role::Meter, 203),
        (4, Role::Meter, 213),
    ] {
        let found = read_and_compare(&sim, &mut bus, unit, role).await;
        assert!(
            found
                .profile(role)
                .unwrap()
                .source
                .contains(&model.to_string())
        );
    }
    let inverter = sim.values(2).unwrap();
    assert!(inverter.power.unwrap().0 < 0, "the sun is up: {inverter:?}");
}

/// Limits the inverter at `unit` to 10 % for a minute, reads the limit back, sees the output
/// follow, and sees the inverter lift the limit by itself once the minute is over.
async fn curtail(model: u16, layout: Layout) {
    let (sim, clock) = simulator();
    device(&sim, 1, Role::Inverter, layout);
    let mut bus = tcp_bus(&sim).await;
    let found = SunSpec::discover(&mut bus, 1, T).await.unwrap();
    let control = found.limit_control().unwrap();
    assert_eq!(control.model(), model);
    let free = sim.values(1).unwrap().power.unwrap().0;
    assert!(free < -600_000, "produces more than the limit: {free}");

    control
        .set(&mut bus, 1, T, 10.0, Duration::from_secs(60))
        .await
        .unwrap();
    let limit = control.get(&mut bus, 1, T).await.unwrap();
    assert!(limit.enabled && limit.percent == 10.0, "{limit:?}");
    clock.advance(Duration::from_secs(30));
    sim.tick();
    assert_eq!(sim.values(1).unwrap().power.unwrap().0, -600_000);

    clock.advance(Duration::from_secs(31));
    sim.tick();
    assert!(
        !control.get(&mut bus, 1, T).await.unwrap().enabled,
        "reverted"
    );
    assert!(sim.values(1).unwrap().power.unwrap().0 < -600_000);

    control
        .set(&mut bus, 1, T, 50.0, Duration::from_secs(60))
        .await
        .unwrap();
    control.clear(&mut bus, 1, T).await.unwrap();
    assert!(
        !control.get(&mut bus, 1, T).await.unwrap().enabled,
        "cleared"
    );

    let over = control
        .set(&mut bus, 1, T, 120.0, Duration::from_secs(60))
        .await;
    assert!(matches!(over, Err(SunSpecError::Refused(_))), "{over:?}");
    let between_steps = control
        .set(&mut bus, 1, T, 10.05, Duration::from_secs(60))
        .await;
    assert!(
        matches!(between_steps, Err(SunSpecError::Refused(_))),
        "{between_steps:?}"
    );
    let forever = control.set(&mut bus, 1, T, 50.0, Duration::ZERO).await;
    assert!(
        matches!(forever, Err(SunSpecError::Refused(_))),
        "{forever:?}"
    );
}

#[tokio::test]
async fn curtailment_through_model_123() {
    curtail(123, Layout::inverter()).await;
}

#[tokio::test]
async fn curtailment_through_model_704() {
    curtail(704, Layout::der()).await;
}

#[tokio::test]
async fn measurements_are_not_writable() {
    let (sim, _) = simulator();
    device(&sim, 1, Role::Inverter, Layout::inverter());
    let mut bus = tcp_bus(&sim).await;
    let found = SunSpec::discover(&mut bus, 1, T).await.unwrap();
    let w = found.model(&[103]).unwrap().start + 12;
    let refused = bus.write(1, w, &[0], T).await;
    assert_eq!(
        refused,
        Err(BusError::Exception(ExceptionCode::IllegalDataAddress))
    );
}

#[tokio::test]
async fn no_map_and_broken_chains_are_errors() {
    let h = Function::Holding;
    let (sim, _) = simulator();
    let mut plain = RegisterMap::default();
    plain.set(h, 0, &[1, 2, 3, 4]);
    sim.add_registers(1, plain);
    // A chain that never ends: model 1, then headers pointing past the last register.
    let mut endless = RegisterMap::default();
    endless.set(h, 40000, &[0x5375, 0x6E53, 1, 66]);
    endless.set(h, 40004, &[0; 66]);
    endless.set(h, 40070, &[103, 30000]);
    sim.add_registers(2, endless);
    let mut bus = tcp_bus(&sim).await;

    let before = bus.stats().requests;
    assert_eq!(
        SunSpec::discover(&mut bus, 1, T).await,
        Err(SunSpecError::NotFound)
    );
    assert_eq!(bus.stats().requests - before, 3, "one probe per base");
    let broken = SunSpec::discover(&mut bus, 2, T).await.unwrap_err();
    assert!(
        matches!(broken, SunSpecError::Chain { address: 40070, .. }),
        "{broken}"
    );
}

//! Every shipped profile, read from a simulated meter over real TCP and a real pseudo-terminal,
//! decodes to the values the meter holds.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use daisee_modbus::bus::Bus;
use daisee_modbus::device::Device;
use daisee_modbus::plan::ReadPlan;
use daisee_modbus::profile::SHIPPED;
use daisee_modbus_sim::Simulator;

use common::*;

/// Adds one meter per shipped profile (units 1, 2, …), all on the site's house and PV.
fn meters(sim: &Simulator) -> Vec<Device> {
    let site = site();
    SHIPPED
        .iter()
        .zip(1u8..)
        .map(|((name, _), unit)| meter(sim, &site, unit, name, Duration::from_secs(2)))
        .collect()
}

/// Polls every meter at a morning, noon (exporting) and evening (importing) moment and compares.
async fn check_all(sim: &Simulator, clock: &daisee_hal::sim::SimClock, bus: &mut Bus) {
    let mut devices = meters(sim);
    let mut signs = Vec::new();
    for hours in [0, 2, 8] {
        clock.advance(Duration::from_secs(3600 * hours));
        sim.tick();
        for device in &mut devices {
            let decoded = device.poll(bus).await.unwrap();
            let held = sim.values(device.unit).unwrap();
            let profile = shipped(&device.name);
            assert_same(&profile, &decoded, &held, |_| 0);
            signs.push(held.power.unwrap().0.signum());
        }
    }
    assert!(
        signs.contains(&1) && signs.contains(&-1),
        "import and export both seen: {signs:?}"
    );
}

#[tokio::test]
async fn shipped_profiles_decode_over_tcp() {
    let (sim, clock) = simulator();
    let mut bus = tcp_bus(&sim).await;
    check_all(&sim, &clock, &mut bus).await;
}

#[tokio::test]
async fn shipped_profiles_decode_over_rtu_on_a_pty() {
    let (sim, clock) = simulator();
    let (mut bus, _port) = rtu_bus(&sim).await;
    check_all(&sim, &clock, &mut bus).await;
}

#[tokio::test]
async fn reads_are_coalesced_within_each_devices_limits() {
    let (sim, _clock) = simulator();
    let mut bus = tcp_bus(&sim).await;
    for mut device in meters(&sim) {
        let before = bus.stats().requests;
        device.poll(&mut bus).await.unwrap();
        let requests = bus.stats().requests - before;
        let expected = match device.name.as_str() {
            // V I P at 0x00-0x0E, then Hz and energy at 0x46-0x4C.
            "eastron-sdm120" => 2,
            // Phases at 0x00-0x12; total power at 0x34 with Hz and energy at 0x46-0x4C, across a
            // gap of 16 registers.
            "eastron-sdm630" => 2,
            // 20 registers per read: 0x00-0x13, 0x14-0x17, 0x28-0x35, 0x4E-0x4F.
            "carlo-gavazzi-em340" => 4,
            other => panic!("no expectation for {other}"),
        };
        assert_eq!(requests, expected, "{}", device.name);
        assert_eq!(requests, device.plan().reads.len() as u64);
        let one_per_value = ReadPlan::one_per_value(&shipped(&device.name)).reads.len() as u64;
        assert!(
            requests < one_per_value,
            "{}: {requests} of {one_per_value}",
            device.name
        );
    }
}

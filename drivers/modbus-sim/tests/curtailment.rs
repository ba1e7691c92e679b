//! The site follows the simulated inverter's power limit: a sensor and a grid meter on the same
//! loads see a limit written over Modbus TCP at once, and its end when the revert timer runs out.

#![allow(clippy::unwrap_used)]

// The simulator's end-to-end helpers (site, manual clock, TCP bus) live with the driver's tests.
#[path = "../../modbus/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use daisee_hal::sim::SitePowerSensor;
use daisee_hal::{Clock, MilliWatts, PowerSensor};
use daisee_modbus::sunspec::{Role, SunSpec};
use daisee_modbus_sim::{Layout, SunSpecDevice};

use common::*;

const T: Duration = Duration::from_secs(2);

/// Limits the inverter to 10 % (600 W) for a minute and watches the PV and the grid connection.
async fn site_follows_the_limit(layout: Layout) {
    let (sim, clock) = simulator();
    // The same site with no inverter on it: what the loads do uncurtailed.
    let free = site();
    let site = site();
    let pv = vec!["pv".to_owned()];
    let house = ["house".to_owned()];
    sim.add(
        1,
        SunSpecDevice::new(Role::Inverter, layout, site.clone(), pv.clone()),
    );
    let mut grid_meter = meter(&sim, &site, 2, "eastron-sdm630", T);
    let mut sensor = SitePowerSensor::new(site.clone(), pv.clone(), clock.clone());
    let mut bus = tcp_bus(&sim).await;
    let control = SunSpec::discover(&mut bus, 1, T)
        .await
        .unwrap()
        .limit_control()
        .unwrap();
    let house_now = || free.power(&house, clock.now());
    let pv_now = || free.power(&pv, clock.now());

    let capped = MilliWatts(-600_000);
    assert!(pv_now() < capped, "produces more than the limit");
    assert_eq!(sensor.read().unwrap().power, pv_now());

    control
        .set(&mut bus, 1, T, 10.0, Duration::from_secs(60))
        .await
        .unwrap();
    // No tick yet: the write alone curtails.
    assert_eq!(sensor.read().unwrap().power, capped);

    clock.advance(Duration::from_secs(30));
    sim.tick();
    assert_eq!(sensor.read().unwrap().power, capped);
    assert_eq!(sim.values(1).unwrap().power, Some(capped));
    let net = house_now() + capped;
    assert_eq!(sim.values(2).unwrap().power, Some(net));
    let read = grid_meter.poll(&mut bus).await.unwrap().power.unwrap();
    assert!((read.0 - net.0).abs() <= 1_000, "{read} vs {net}");

    clock.advance(Duration::from_secs(31));
    sim.tick();
    assert_eq!(sensor.read().unwrap().power, pv_now(), "reverted");
    assert_eq!(sim.values(2).unwrap().power, Some(house_now() + pv_now()));

    control
        .set(&mut bus, 1, T, 50.0, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        sensor.read().unwrap().power,
        MilliWatts(-3_000_000).max(pv_now())
    );
    control.clear(&mut bus, 1, T).await.unwrap();
    assert_eq!(sensor.read().unwrap().power, pv_now(), "cleared");
}

#[tokio::test]
async fn site_follows_a_limit_through_model_123() {
    site_follows_the_limit(Layout::inverter()).await;
}

#[tokio::test]
async fn site_follows_a_limit_through_model_704() {
    site_follows_the_limit(Layout::der()).await;
}

//! What the tests against the simulator share: a site, a clock, buses, and how close a decoded
//! value must come to the one the simulator holds.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::sim::{Load, Profile as LoadProfile, SimClock, Site};
use daisee_hal::{MilliWatts, Timestamp};
use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::decode::Values;
use daisee_modbus::device::{Backoff, Device, Map};
use daisee_modbus::profile::{DataType, Point, Profile, Scale, Unit};
use daisee_modbus::serial::{LineSettings, Parity};
use daisee_modbus_sim::{ProfileMeter, RtuPort, Simulator};

/// 2024-06-21T10:30:00Z: the sun is up, the house is busy.
pub const MORNING: Timestamp = Timestamp(1_718_965_800_000);

/// A house with PV: a household load, and a producer big enough to export at noon.
pub fn site() -> Arc<Site> {
    let mut site = Site::new(7);
    site.add(Load::new(
        "house",
        LoadProfile::Household {
            peak: MilliWatts(4_000_000),
        },
    ));
    site.add(Load::new(
        "pv",
        LoadProfile::Solar {
            peak: MilliWatts(6_000_000),
        },
    ));
    Arc::new(site)
}

/// A simulator on a manual clock.
pub fn simulator() -> (Simulator, SimClock) {
    let clock = SimClock::manual(MORNING);
    (Simulator::new(Arc::new(clock.clone())), clock)
}

/// A shipped profile.
pub fn shipped(name: &str) -> Arc<Profile> {
    Arc::new(Profile::shipped(name).unwrap().unwrap())
}

/// Adds a meter with the shipped profile `name` on the house and PV of `site` at `unit`, and
/// returns the device that reads it with `timeout`, backed off from one second up to a minute.
pub fn meter(sim: &Simulator, site: &Arc<Site>, unit: u8, name: &str, timeout: Duration) -> Device {
    let profile = shipped(name);
    let loads = vec!["house".to_owned(), "pv".to_owned()];
    sim.add(
        unit,
        ProfileMeter::new(profile.clone(), site.clone(), loads),
    );
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    Device::new(name, unit, Map::Profile(profile), timeout, backoff)
}

/// The simulator served over Modbus TCP on loopback; its address.
pub async fn serve_tcp(sim: &Simulator) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = sim.clone();
    tokio::spawn(async move { serving.serve_tcp(listener).await });
    addr
}

/// The simulator served over Modbus TCP on loopback, and a bus to it.
pub async fn tcp_bus(sim: &Simulator) -> Bus {
    Bus::new(Endpoint::Tcp(serve_tcp(sim).await), Duration::ZERO)
}

/// The simulator on a pseudo-terminal, and an RTU bus (9600 8N1) on it. A pseudo-terminal has no
/// parity bit: glibc refuses 8E1 on one with EINVAL.
pub async fn rtu_bus(sim: &Simulator) -> (Bus, RtuPort) {
    let port = RtuPort::open(sim).await.unwrap();
    let endpoint = Endpoint::Rtu {
        path: port.path().to_owned(),
        line: LineSettings {
            baud: 9600,
            parity: Parity::None,
            stop_bits: 1,
        },
    };
    (Bus::new(endpoint, Duration::ZERO), port)
}

/// The largest difference the register format of `point` allows between the value a device
/// holds and the one decoded from its registers, in the fixed-point units of [`Values`].
pub fn resolution(point: &Point, value: i64, scale_factor: i16) -> i64 {
    let unit = match point.unit {
        Unit::W | Unit::Wh | Unit::V | Unit::Hz => 1e3,
        Unit::KW | Unit::KWh | Unit::A => 1e6,
    };
    let step = match (point.data_type, point.scaling()) {
        // Half an ulp of a float of that magnitude.
        (DataType::F32, _) => value.unsigned_abs() as f64 / f64::from(1u32 << 24),
        (_, Scale::Factor(f)) => f * unit / 2.0,
        (_, Scale::Register(_)) => 10f64.powi(i32::from(scale_factor)) * unit / 2.0,
    };
    step.ceil() as i64 + 1
}

/// Asserts that every point of `profile` decoded to the value the simulator holds, within the
/// resolution of its register format.
pub fn assert_same(
    profile: &Profile,
    decoded: &Values,
    held: &Values,
    scale_factor: impl Fn(&Point) -> i16,
) {
    for point in &profile.points {
        let want = held
            .get(point)
            .unwrap_or_else(|| panic!("simulator lacks {point:?}"));
        let got = decoded
            .get(point)
            .unwrap_or_else(|| panic!("{} did not decode {point:?}", profile.name));
        let tolerance = resolution(point, want, scale_factor(point));
        assert!(
            (got - want).abs() <= tolerance,
            "{}: {:?} phase {:?} at {:#06x}: decoded {got}, held {want} (±{tolerance})",
            profile.name,
            point.quantity,
            point.phase,
            point.address
        );
    }
}

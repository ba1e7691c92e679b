//! One misbehaving device on a bus shared with two healthy ones, over real TCP and a real
//! pseudo-terminal: it yields errors, is backed off, and the others keep their poll rate.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use daisee_modbus::bus::{Bus, BusError};
use daisee_modbus::device::{DeviceError, Poller};
use daisee_modbus::plan::ReadPlan;
use daisee_modbus_sim::{Fault, Simulator};
use tokio::time::Instant;
use tokio_modbus::ExceptionCode;

use common::*;

const ROUNDS: u64 = 12;
const FAULTY: u8 = 2;
/// With a one-second poll interval, a device failing from the start is asked at these rounds:
/// at once again, then after 1, 2 and 4 intervals.
const ATTEMPTS: [u64; 5] = [0, 1, 2, 4, 8];

fn poller(sim: &Simulator, bus: Bus) -> Poller {
    let site = site();
    let devices = [
        (1, "eastron-sdm630"),
        (FAULTY, "eastron-sdm120"),
        (3, "carlo-gavazzi-em340"),
    ]
    .into_iter()
    .map(|(unit, name)| meter(sim, &site, unit, name, Duration::from_millis(800)))
    .collect();
    Poller { bus, devices }
}

/// Runs `ROUNDS` one-second rounds with the faulty device misbehaving while `down(round)`, and
/// returns the faulty device's result per round.
async fn run(
    sim: &Simulator,
    mut poller: Poller,
    down: impl Fn(u64) -> bool,
    fault: Option<Fault>,
) -> Vec<Result<(), DeviceError>> {
    let start = Instant::now();
    let mut faulty = Vec::new();
    for round in 0..ROUNDS {
        sim.set_fault(FAULTY, fault.filter(|_| down(round)));
        sim.set_online(FAULTY, fault.is_some() || !down(round));
        let results = poller.round_at(start + Duration::from_secs(round)).await;
        for (device, result) in poller.devices.iter().zip(results) {
            if device.unit == FAULTY {
                faulty.push(result.map(|_| ()));
            } else {
                let values =
                    result.unwrap_or_else(|e| panic!("{} in round {round}: {e}", device.name));
                assert!(values.power.is_some());
            }
        }
    }
    for device in &poller.devices {
        if device.unit != FAULTY {
            let per_poll = device.plan().reads.len() as u64;
            assert_eq!(
                sim.requests(device.unit),
                ROUNDS * per_poll,
                "{} kept its rate",
                device.name
            );
        }
    }
    faulty
}

/// Checks that the faulty device failed with `expected` exactly at the backoff's attempts, was
/// left alone in between, and cost one request per attempt.
async fn persistent(sim: &Simulator, bus: Bus, fault: Fault, expected: impl Fn(&BusError) -> bool) {
    let poller = poller(sim, bus);
    let results = run(sim, poller, |_| true, Some(fault)).await;
    for (round, result) in (0..).zip(&results) {
        match result {
            Err(DeviceError::Bus(e)) if ATTEMPTS.contains(&round) => {
                assert!(expected(e), "{fault:?}, round {round}: {e}")
            }
            Err(DeviceError::BackedOff { .. }) if !ATTEMPTS.contains(&round) => {}
            other => panic!("{fault:?}, round {round}: {other:?}"),
        }
    }
    assert_eq!(sim.requests(FAULTY), ATTEMPTS.len() as u64);
}

fn timeout(e: &BusError) -> bool {
    matches!(e, BusError::Timeout(_))
}

fn malformed(e: &BusError) -> bool {
    matches!(e, BusError::Malformed(_))
}

#[tokio::test]
async fn silent_device_over_tcp() {
    let (sim, _) = simulator();
    persistent(&sim, tcp_bus(&sim).await, Fault::Silent, timeout).await;
}

#[tokio::test]
async fn silent_device_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    persistent(&sim, bus, Fault::Silent, timeout).await;
}

#[tokio::test]
async fn exception_over_tcp() {
    let (sim, _) = simulator();
    let failure = Fault::Exception(ExceptionCode::ServerDeviceFailure);
    let is = |e: &BusError| *e == BusError::Exception(ExceptionCode::ServerDeviceFailure);
    persistent(&sim, tcp_bus(&sim).await, failure, is).await;
}

#[tokio::test]
async fn exception_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    let busy = Fault::Exception(ExceptionCode::ServerDeviceBusy);
    let is = |e: &BusError| *e == BusError::Exception(ExceptionCode::ServerDeviceBusy);
    persistent(&sim, bus, busy, is).await;
}

/// Garbage may announce a longer frame than arrives: then the client waits for the rest.
#[tokio::test]
async fn garbage_over_tcp() {
    let (sim, _) = simulator();
    let e = |e: &BusError| timeout(e) || malformed(e);
    persistent(&sim, tcp_bus(&sim).await, Fault::Garbage, e).await;
}

/// On a serial line the receiver skips bytes that do not frame, looking for a frame start
/// (Modbus over serial line V1.02, 2.5.1.1): garbage ends in a timeout or a framing error.
#[tokio::test]
async fn garbage_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    persistent(&sim, bus, Fault::Garbage, |e| timeout(e) || malformed(e)).await;
}

#[tokio::test]
async fn bad_checksum_over_tcp() {
    let (sim, _) = simulator();
    persistent(&sim, tcp_bus(&sim).await, Fault::BadCrc, malformed).await;
}

/// Fewer registers than asked for, in a well-formed frame: refused, not indexed past its end.
#[tokio::test]
async fn short_answer_over_tcp() {
    let (sim, _) = simulator();
    persistent(&sim, tcp_bus(&sim).await, Fault::Short, malformed).await;
}

#[tokio::test]
async fn short_answer_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    persistent(&sim, bus, Fault::Short, malformed).await;
}

#[tokio::test]
async fn bad_crc_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    persistent(&sim, bus, Fault::BadCrc, malformed).await;
}

/// Off the bus for rounds 0 to 5, back from round 6: it is found again at the backoff's next
/// attempt (round 8) and polled every round after.
async fn drops_off_and_comes_back(sim: &Simulator, bus: Bus) {
    let poller = poller(sim, bus);
    let results = run(sim, poller, |round| round < 6, None).await;
    for (round, result) in (0..).zip(&results) {
        match (round, result) {
            (0 | 1 | 2 | 4, Err(DeviceError::Bus(e))) => assert!(timeout(e), "{e}"),
            (3 | 5 | 6 | 7, Err(DeviceError::BackedOff { .. })) => {}
            (8.., Ok(())) => {}
            other => panic!("{other:?}"),
        }
    }
    // One unanswered request per failed attempt, a whole poll per success.
    let per_poll = ReadPlan::for_profile(&shipped("eastron-sdm120"))
        .reads
        .len() as u64;
    assert_eq!(sim.requests(FAULTY), 4 + 4 * per_poll);
}

#[tokio::test]
async fn device_drops_off_and_comes_back_over_tcp() {
    let (sim, _) = simulator();
    let bus = tcp_bus(&sim).await;
    drops_off_and_comes_back(&sim, bus).await;
}

#[tokio::test]
async fn device_drops_off_and_comes_back_over_rtu() {
    let (sim, _) = simulator();
    let (bus, _port) = rtu_bus(&sim).await;
    drops_off_and_comes_back(&sim, bus).await;
}

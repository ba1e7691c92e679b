//! The bus itself: pauses between frames, and counts of what crossed the wire.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::plan::Read;
use daisee_modbus::profile::Function;
use daisee_modbus_sim::RegisterMap;

use common::*;

fn read() -> Read {
    Read {
        function: Function::Holding,
        start: 0,
        count: 4,
    }
}

/// Five requests with 30 ms between frames cannot take less than 4 × 30 ms; on loopback they take
/// about a millisecond without the pause. (A lower bound: a slow machine cannot fail it.)
#[tokio::test]
async fn the_inter_frame_delay_separates_exchanges() {
    let (sim, _) = simulator();
    let mut map = RegisterMap::default();
    map.set(Function::Holding, 0, &[1, 2, 3, 4]);
    sim.add_registers(1, map);
    let addr = serve_tcp(&sim).await;
    let mut bus = Bus::new(Endpoint::Tcp(addr), Duration::from_millis(30));
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            bus.read(1, read(), Duration::from_secs(2)).await.unwrap(),
            [1, 2, 3, 4]
        );
    }
    assert!(
        start.elapsed() >= Duration::from_millis(120),
        "{:?}",
        start.elapsed()
    );
}

/// Counted bytes are whole frames: TCP 12-byte requests and 9 + 2n-byte answers; RTU 8 and 5 + 2n.
#[tokio::test]
async fn wire_counts_follow_the_framing() {
    let (sim, _) = simulator();
    let mut map = RegisterMap::default();
    map.set(Function::Holding, 0, &[1, 2, 3, 4]);
    sim.add_registers(1, map);
    let mut tcp = tcp_bus(&sim).await;
    tcp.read(1, read(), Duration::from_secs(2)).await.unwrap();
    assert_eq!((tcp.stats().requests, tcp.stats().bytes), (1, 12 + 9 + 8));
    let (mut rtu, _port) = rtu_bus(&sim).await;
    rtu.read(1, read(), Duration::from_secs(2)).await.unwrap();
    assert_eq!((rtu.stats().requests, rtu.stats().bytes), (1, 8 + 5 + 8));
}

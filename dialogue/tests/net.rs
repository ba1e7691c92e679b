//! Gateways over real libp2p on loopback (TCP, noise, yamux, gossipsub, request-response): five
//! agree on the same clearing for consecutive slots, and still do with one of them stopped.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod common;

use std::sync::Arc;
use std::time::Duration;

use daisee_dialogue::net::{NetConfig, Node, NodeCommand, NodeEvent};
use daisee_dialogue::{Bid, GatewayKey, Phase, Slot, Step, Terms};
use tokio::sync::mpsc;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Gateway {
    commands: mpsc::Sender<NodeCommand>,
    events: mpsc::Receiver<NodeEvent>,
}

impl Gateway {
    /// The next event that `pick` picks, within `within`.
    async fn next<T>(&mut self, within: Duration, pick: impl Fn(NodeEvent) -> Option<T>) -> T {
        tokio::time::timeout(within, async {
            loop {
                if let Some(t) = pick(self.events.recv().await.expect("the node runs")) {
                    return t;
                }
            }
        })
        .await
        .expect("in time")
    }
}

/// Starts a node per key, each dialing those before it (as mDNS would find them on a LAN);
/// returns them once each sees every other.
async fn start(keys: &[GatewayKey], terms: &Arc<Terms>) -> Vec<Gateway> {
    let mut gateways = Vec::new();
    let mut addresses = Vec::new();
    for key in keys {
        let net = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: addresses.clone(),
            mdns: false,
        };
        let node = Node::new(key.clone(), terms.clone(), &net, Arc::new(now_ms)).unwrap();
        let (commands, inbox) = mpsc::channel(16);
        let (outbox, events) = mpsc::channel(256);
        tokio::spawn(node.run(inbox, outbox));
        let mut g = Gateway { commands, events };
        let address = g
            .next(Duration::from_secs(5), |e| match e {
                NodeEvent::Listening(a) => Some(a),
                _ => None,
            })
            .await;
        addresses.push(address);
        gateways.push(g);
    }
    let n = gateways.len();
    for g in &mut gateways {
        let mut joined = std::collections::HashSet::new();
        while joined.len() < n - 1 {
            let peer = g
                .next(Duration::from_secs(20), |e| match e {
                    NodeEvent::PeerJoined(p) => Some(p),
                    _ => None,
                })
                .await;
            joined.insert(peer);
        }
    }
    gateways
}

/// Every gateway bids for the slot after next; returns how each one's slot settled.
async fn run_slot(gateways: &mut [Gateway], terms: &Terms, bidders: usize) -> Vec<Phase> {
    let slot = Slot(terms.slot_at(now_ms()).0 + 2 * terms.slot_ms);
    for (i, g) in gateways.iter().enumerate().take(bidders) {
        let bid = Bid {
            terms: terms.digest(),
            slot,
            powers: common::powers(i),
        };
        g.commands.send(NodeCommand::Bid(bid)).await.unwrap();
    }
    let mut phases = Vec::new();
    for g in gateways.iter_mut() {
        let phase = g
            .next(Duration::from_secs(20), |e| match e {
                NodeEvent::Settled { slot: s, phase, .. } if s == slot => Some(phase),
                _ => None,
            })
            .await;
        phases.push(phase);
    }
    phases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_gateways_agree_slot_after_slot_and_without_a_stopped_one() {
    let keys = common::keys(5);
    // Seconds, not minutes: bids close 1.5 s before a 4 s slot, 1 s to agree.
    let terms = common::terms(&keys, 4_000, 1_500, 1_000);
    let mut gateways = start(&keys, &terms).await;
    for _ in 0..2 {
        let phases = run_slot(&mut gateways, &terms, 5).await;
        let Phase::Agreed(clearing) = &phases[0] else {
            panic!("{phases:?}")
        };
        assert!(phases.iter().all(|p| p == &phases[0]), "{phases:?}");
        assert_eq!(clearing.price, Step(20));
        assert_eq!(clearing.allocations.len(), 5);
    }
    // Gateway 4 stops: the four others are a quorum and still agree, on their four bids.
    let stopped = gateways.pop().unwrap();
    drop(stopped);
    let phases = run_slot(&mut gateways, &terms, 4).await;
    let Phase::Agreed(clearing) = &phases[0] else {
        panic!("{phases:?}")
    };
    assert!(phases.iter().all(|p| p == &phases[0]), "{phases:?}");
    assert_eq!(clearing.allocations.len(), 4);
}

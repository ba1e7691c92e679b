//! Gateways over real libp2p on loopback (TCP, noise, yamux, gossipsub, request-response): five
//! agree on the same clearing for consecutive slots, and still do with one of them stopped; a
//! partition gives no trade on both sides; a node whose port is taken dials out, then listens.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod clock;
mod common;

use std::sync::Arc;
use std::time::Duration;

use clock::now_ms;
use daisee_dialogue::net::{NetConfig, Node, NodeCommand, NodeEvent};
use daisee_dialogue::{Bid, GatewayKey, NoTrade, Phase, Slot, Step, Terms};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

struct Gateway {
    commands: mpsc::Sender<NodeCommand>,
    events: mpsc::Receiver<NodeEvent>,
}

impl Gateway {
    /// The next event that `pick` picks, within `within`.
    async fn next<T>(&mut self, within: Duration, pick: impl Fn(NodeEvent) -> Option<T>) -> T {
        tokio::time::timeout(within, async {
            loop {
                let e = self.events.recv().await.expect("the node runs");
                if let Some(t) = pick(e) {
                    return t;
                }
            }
        })
        .await
        .expect("in time")
    }

    /// The address the node listens on, once it does, within `within`.
    async fn listening(&mut self, within: Duration) -> Multiaddr {
        self.next(within, |e| match e {
            NodeEvent::Listening(a) => Some(a),
            _ => None,
        })
        .await
    }

    /// The next peer that joins the topic (within 20 s).
    async fn joined(&mut self) -> libp2p::PeerId {
        self.next(Duration::from_secs(20), |e| match e {
            NodeEvent::PeerJoined(p) => Some(p),
            _ => None,
        })
        .await
    }
}

/// The wires between gateways: every connection goes through a relay of the harness on
/// loopback, which cuts the ones across the partition when it is ordered (this kernel has no
/// netem, and no packet filter to do it).
struct Wires {
    cut: watch::Sender<bool>,
    /// Which side of the partition each gateway is on.
    side: fn(usize) -> bool,
}

impl Wires {
    /// A relay from a fresh port to `target`, cut if `from` and `to` are on different sides.
    async fn relay(&self, from: usize, to: usize, target: &Multiaddr) -> Multiaddr {
        let port = target
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_port = listener.local_addr().unwrap().port();
        let across = (self.side)(from) != (self.side)(to);
        let cut = self.cut.subscribe();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = cut.clone();
                if across && *cut.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| across && *c) => {}
                    }
                });
            }
        });
        format!("/ip4/127.0.0.1/tcp/{relay_port}").parse().unwrap()
    }
}

/// Starts a node listening on `listen` and dialling `bootstrap`.
fn spawn(key: &GatewayKey, terms: &Arc<Terms>, listen: &str, bootstrap: Vec<Multiaddr>) -> Gateway {
    let net = NetConfig {
        listen: vec![listen.parse().unwrap()],
        bootstrap,
        mdns: false,
    };
    let node = Node::new(key.clone(), terms.clone(), &net, Arc::new(now_ms)).unwrap();
    let (commands, inbox) = mpsc::channel(16);
    let (outbox, events) = mpsc::channel(256);
    tokio::spawn(node.run(inbox, outbox));
    Gateway { commands, events }
}

/// Starts a node per key, each dialing those before it through `wires` (as mDNS would find
/// them on a LAN); returns them once each sees every other.
async fn start(keys: &[GatewayKey], terms: &Arc<Terms>, wires: &Wires) -> Vec<Gateway> {
    let mut gateways = Vec::new();
    let mut addresses: Vec<Multiaddr> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut bootstrap = Vec::new();
        for (j, address) in addresses.iter().enumerate() {
            bootstrap.push(wires.relay(i, j, address).await);
        }
        let mut g = spawn(key, terms, "/ip4/127.0.0.1/tcp/0", bootstrap);
        let address = g.listening(Duration::from_secs(5)).await;
        addresses.push(address);
        gateways.push(g);
    }
    let n = gateways.len();
    for g in &mut gateways {
        let mut joined = std::collections::HashSet::new();
        while joined.len() < n - 1 {
            let peer = g.joined().await;
            joined.insert(peer);
        }
    }
    gateways
}

/// The first `bidders` gateways bid for the slot after next; `meanwhile` runs once the bids are
/// out. Returns how each gateway's slot settled.
async fn run_slot(
    gateways: &mut [Gateway],
    terms: &Terms,
    bidders: usize,
    meanwhile: impl AsyncFnOnce(),
) -> Vec<Phase> {
    let slot = Slot(terms.slot_at(now_ms()).0 + 2 * terms.slot_ms);
    for (i, g) in gateways.iter().enumerate().take(bidders) {
        let bid = Bid {
            terms: terms.digest(),
            slot,
            powers: common::powers(i),
        };
        g.commands.send(NodeCommand::Bid(bid)).await.unwrap();
    }
    meanwhile().await;
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
    let wires = Wires {
        cut: watch::channel(false).0,
        side: |_| true,
    };
    let mut gateways = start(&keys, &terms, &wires).await;
    for _ in 0..2 {
        let phases = run_slot(&mut gateways, &terms, 5, async || {}).await;
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
    let phases = run_slot(&mut gateways, &terms, 4, async || {}).await;
    let Phase::Agreed(clearing) = &phases[0] else {
        panic!("{phases:?}")
    };
    assert!(phases.iter().all(|p| p == &phases[0]), "{phases:?}");
    assert_eq!(clearing.allocations.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_gives_no_trade_on_both_sides() {
    let keys = common::keys(5);
    let terms = common::terms(&keys, 4_000, 1_500, 1_000);
    let wires = Wires {
        cut: watch::channel(false).0,
        side: |g| g < 3,
    };
    let mut gateways = start(&keys, &terms, &wires).await;
    // The bids go out whole; then {0, 1, 2} and {3, 4} are cut apart before gate closure.
    let phases = run_slot(&mut gateways, &terms, 5, async || {
        tokio::time::sleep(Duration::from_millis(500)).await;
        wires.cut.send_replace(true);
    })
    .await;
    // Neither side can reach the quorum of 4: no trade anywhere, whatever each side managed to
    // reconcile before the grace period ended.
    for (g, phase) in phases.iter().enumerate() {
        let side = if g < 3 { 3 } else { 2 };
        assert!(
            matches!(phase, Phase::NoTrade(NoTrade::NoQuorum { agreeing, quorum: 4 }) if *agreeing <= side),
            "gateway {g}: {phase:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_port_is_taken_dials_out_and_listens_once_the_port_is_free() {
    let keys = common::keys(3);
    let terms = common::terms(&keys, 4_000, 1_500, 1_000);
    let mut first = spawn(&keys[0], &terms, "/ip4/127.0.0.1/tcp/0", Vec::new());
    let first_address = first.listening(Duration::from_secs(5)).await;
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let wanted = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut second = spawn(&keys[1], &terms, &wanted, vec![first_address]);
    let (address, why) = second
        .next(Duration::from_secs(5), |e| match e {
            NodeEvent::NotListening(a, why) => Some((a, why)),
            _ => None,
        })
        .await;
    assert_eq!(address.to_string(), wanted);
    assert!(why.contains("in use"), "{why}");
    // Not listening, it still takes part: it dialled the first.
    second.joined().await;
    drop(squatter);
    let bound = second.listening(Duration::from_secs(10)).await;
    assert_eq!(bound.to_string(), wanted);
    // Now a third reaches it on its port.
    let mut third = spawn(&keys[2], &terms, "/ip4/127.0.0.1/tcp/0", vec![bound]);
    third.joined().await;
}

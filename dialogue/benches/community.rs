//! The dialogue at community scale: N gateways (10, 50, 200) as libp2p nodes in one process on
//! loopback, each bidding a random curve for three consecutive slots, without and with 5 % of
//! the gossiped messages lost (dropped by each node before it looks at them: this kernel has no
//! netem). Prints, per gateway and slot: the share that agreed, the time from gate closure until
//! the node held a quorum of votes, messages and bytes received; and the welfare of what was
//! executed as a share of the gain an independent solver (a linear program over the same bids)
//! finds over no local trade; and where a node saw no quorum, the median of the votes it held
//! for its own bid set (the quorum is ⌊2N/3⌋+1).
//!
//! `cargo bench -p daisee-dialogue --bench community [N …]`. All nodes share this machine's
//! cores, so the times grow with N faster than they would between N gateways.

use std::sync::Arc;
use std::time::Duration;

use daisee_dialogue::net::{Multiaddr, NetConfig, Node, NodeCommand, NodeEvent, Traffic};
use daisee_dialogue::{Address, BidCurve};
use daisee_dialogue::{
    Bid, Clearing, GatewayKey, Member, NoTrade, Phase, PriceBasis, Slot, Step, Terms, clear,
};
use microlp::{ComparisonOp, OptimizationDirection, Problem};
use tokio::sync::mpsc;

/// Slots measured per run.
const SLOTS: usize = 3;
/// Each node dials this many earlier ones (a connected mesh, as on a LAN with mDNS a few hops).
const DIALS: usize = 8;

#[path = "../tests/clock/mod.rs"]
mod clock;

use clock::now_ms;

/// SplitMix64: the bids repeat from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The community: 40 price steps, the grid selling at 30 and buying at 8, 10 kW ratings, feeder
/// caps of 3 kW a member, slots timed for `n` nodes sharing two cores.
fn terms(keys: &[GatewayKey]) -> Terms {
    let n = keys.len();
    // Every node checks every bid, holding and vote, and forwards each to its mesh: n² messages
    // a slot through one machine's two cores, all published at the same instants. Reconciling a
    // lossy set takes rounds.
    let (slot_ms, gate_ms, grace_ms) = match n {
        0..=20 => (6_000, 2_000, 2_000),
        21..=60 => (24_000, 8_000, 12_000),
        _ => (120_000, 40_000, 40_000),
    };
    Terms {
        community: "bench".into(),
        basis: PriceBasis {
            first: 0,
            increment: 10_000,
            steps: 40,
        },
        import_tariff: Step(30),
        feed_in_tariff: Step(8),
        import_cap_mw: 3_000_000 * n as i64,
        export_cap_mw: 3_000_000 * n as i64,
        slot_ms,
        gate_ms,
        grace_ms,
        quorum: Terms::default_quorum(n),
        members: keys
            .iter()
            .map(|k| Member {
                address: k.address(),
                import_mw: 10_000_000,
                export_mw: 10_000_000,
            })
            .collect(),
    }
}

/// A gateway's curve: a base between −4 and +3 kW and up to three flexible loads of 0.5 to 3 kW,
/// each worth running up to a step between the tariffs (as the agent bids).
fn curve(rng: &mut Rng) -> Vec<i64> {
    let base = rng.below(7_000) as i64 * 1000 - 4_000_000;
    let loads: Vec<(u8, i64)> = (0..rng.below(4))
        .map(|_| {
            (
                9 + rng.below(21) as u8,
                500_000 + rng.below(2_500) as i64 * 1000,
            )
        })
        .collect();
    (0..40u8)
        .map(|step| {
            let flexible: i64 = loads
                .iter()
                .filter(|(r, _)| *r >= step)
                .map(|(_, p)| p)
                .sum();
            (base + flexible).clamp(-10_000_000, 10_000_000)
        })
        .collect()
}

/// The welfare of serving `powers` at `served` (mW): each fall of the curve between steps k and
/// k+1 is a block worth the price of step k+1; what is served above the curve's floor fills the
/// dearest blocks first. In µ-units × mW per kWh.
fn value(terms: &Terms, powers: &[i64], served: i64) -> f64 {
    let floor = *powers.last().unwrap_or(&0);
    let mut left = served - floor;
    let mut total = 0.0;
    for k in (0..powers.len() - 1).rev() {
        let block = powers[k] - powers[k + 1];
        let take = left.clamp(0, block);
        total += take as f64 * terms.basis.price(Step(k as u8 + 1)) as f64;
        left -= take;
    }
    total
}

/// The grid's side: what the community pays for its import, or is paid for its export.
fn grid_value(terms: &Terms, grid_mw: i64) -> f64 {
    let price = if grid_mw > 0 {
        terms.basis.price(terms.import_tariff)
    } else {
        terms.basis.price(terms.feed_in_tariff)
    };
    -(grid_mw as f64) * price as f64
}

/// Each gateway alone with the grid (no local trade): its power and its welfare, its own import
/// paid and export paid for at the tariffs.
fn alone(terms: &Terms, bids: &[Vec<i64>], addresses: &[Address]) -> Vec<(i64, f64)> {
    bids.iter()
        .zip(addresses)
        .map(|(powers, address)| {
            let member = *terms.member(address).expect("a member");
            let lone = Terms {
                members: vec![member],
                quorum: 1,
                ..terms.clone()
            };
            let curve = BidCurve::new(powers.clone(), terms.basis.steps, &member).expect("a curve");
            let power = clear(&lone, &[(*address, curve)]).map_or(0, |c| c.grid_mw);
            (
                power,
                value(terms, powers, power) + grid_value(terms, power),
            )
        })
        .collect()
}

/// The welfare of what was executed: the gateways that agreed draw their allocations and meet
/// the grid together; the others act alone.
fn executed(
    terms: &Terms,
    bids: &[Vec<i64>],
    addresses: &[Address],
    lone: &[(i64, f64)],
    agreed: &[Option<Clearing>],
) -> f64 {
    let mut total = 0.0;
    let mut together = 0;
    for i in 0..bids.len() {
        let allocation = agreed[i].as_ref().and_then(|c| {
            c.allocations
                .iter()
                .find(|(a, _)| *a == addresses[i])
                .map(|(_, p)| *p)
        });
        match allocation {
            Some(power) => {
                total += value(terms, &bids[i], power);
                together += power;
            }
            None => total += lone[i].1,
        }
    }
    total + grid_value(terms, together)
}

/// The optimum by a linear program: every block of every curve a variable bounded by its size,
/// worth its price; the grid's import and export two more, within the feeder caps; consumption
/// and production balanced.
fn optimum(terms: &Terms, bids: &[Vec<i64>]) -> f64 {
    let mut lp = Problem::new(OptimizationDirection::Maximize);
    let mut balance = Vec::new();
    let mut floors = 0.0;
    for powers in bids {
        floors += *powers.last().unwrap_or(&0) as f64;
        for k in 0..powers.len() - 1 {
            let block = (powers[k] - powers[k + 1]) as f64;
            if block > 0.0 {
                let price = terms.basis.price(Step(k as u8 + 1)) as f64;
                balance.push((lp.add_var(price, (0.0, block)), 1.0));
            }
        }
    }
    let import = terms.basis.price(terms.import_tariff) as f64;
    let feed_in = terms.basis.price(terms.feed_in_tariff) as f64;
    balance.push((lp.add_var(-import, (0.0, terms.import_cap_mw as f64)), -1.0));
    balance.push((lp.add_var(feed_in, (0.0, terms.export_cap_mw as f64)), 1.0));
    // Served blocks + floors = import − export.
    lp.add_constraint(&balance, ComparisonOp::Eq, -floors);
    lp.solve().map_or(f64::NAN, |s| s.objective())
}

/// One node's view of one slot.
struct Seen {
    phase: Phase,
    agreed_at: Option<i64>,
    received: Traffic,
}

/// Starts `n` nodes; each dials up to [`DIALS`] earlier ones. Returns their command senders and
/// one stream of (node, event).
async fn start(
    keys: &[GatewayKey],
    terms: &Arc<Terms>,
    loss_permille: u16,
) -> (
    Vec<mpsc::Sender<NodeCommand>>,
    mpsc::Receiver<(usize, NodeEvent)>,
) {
    let (all, events) = mpsc::channel(100_000);
    let mut commands = Vec::new();
    let mut addresses: Vec<Multiaddr> = Vec::new();
    let mut rng = Rng(7);
    for (i, key) in keys.iter().enumerate() {
        let bootstrap = (0..DIALS.min(i))
            .map(|_| addresses[rng.below(i as u64) as usize].clone())
            .collect();
        let net = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("an address")],
            bootstrap,
            mdns: false,
        };
        let mut node =
            Node::new(key.clone(), terms.clone(), &net, Arc::new(now_ms)).expect("a node");
        if loss_permille > 0 {
            node.lose_messages(loss_permille, i as u64 + 1);
        }
        let (to_node, inbox) = mpsc::channel(16);
        let (outbox, mut from_node) = mpsc::channel(1024);
        tokio::spawn(node.run(inbox, outbox));
        let address = loop {
            if let Some(NodeEvent::Listening(a)) = from_node.recv().await {
                break a;
            }
        };
        addresses.push(address);
        let all = all.clone();
        tokio::spawn(async move {
            while let Some(e) = from_node.recv().await {
                if all.send((i, e)).await.is_err() {
                    return;
                }
            }
        });
        commands.push(to_node);
    }
    (commands, events)
}

/// Runs [`SLOTS`] slots of `n` gateways and prints a row.
async fn run(n: usize, loss_permille: u16) {
    let keys: Vec<GatewayKey> = (0..n)
        .map(|i| {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            GatewayKey::from_secret(&secret).expect("a key")
        })
        .collect();
    let addresses: Vec<Address> = keys.iter().map(GatewayKey::address).collect();
    let terms = Arc::new(terms(&keys));
    let (commands, mut events) = start(&keys, &terms, loss_permille).await;
    // Let the meshes form.
    tokio::time::sleep(Duration::from_secs(3 + n as u64 / 20)).await;
    let mut rng = Rng(n as u64 * 1000 + u64::from(loss_permille));
    let mut last_traffic = vec![Traffic::default(); n];
    let (mut agreed, mut delays, mut messages, mut bytes) = (0usize, Vec::new(), 0u64, 0u64);
    // Where a node saw no quorum, how many votes it held for its own set.
    let mut short = Vec::new();
    let (mut achieved, mut best, mut base) = (0.0, 0.0, 0.0);
    // The first slot whose gate is a second away or more.
    let next = Slot(terms.slot_at(now_ms()).0 + terms.slot_ms);
    let first = if now_ms() + 1000 < terms.gate_closure(next) {
        next
    } else {
        Slot(next.0 + terms.slot_ms)
    };
    for s in 0..SLOTS {
        let slot = Slot(first.0 + s as i64 * terms.slot_ms);
        let bids: Vec<Vec<i64>> = (0..n).map(|_| curve(&mut rng)).collect();
        for (i, c) in commands.iter().enumerate() {
            let bid = Bid {
                terms: terms.digest(),
                slot,
                powers: bids[i].clone(),
            };
            c.send(NodeCommand::Bid(bid)).await.expect("the node runs");
        }
        let mut seen: Vec<Option<Seen>> = (0..n).map(|_| None).collect();
        while seen.iter().any(Option::is_none) {
            let Some((i, e)) = events.recv().await else {
                break;
            };
            if let NodeEvent::Settled {
                slot: at,
                phase,
                agreed_at,
                received,
                ..
            } = e
                && at == slot
            {
                seen[i] = Some(Seen {
                    phase,
                    agreed_at,
                    received,
                });
            }
        }
        let gate = terms.gate_closure(slot);
        let mut clearings = Vec::new();
        for (i, v) in seen.into_iter().flatten().enumerate() {
            messages += v.received.messages - last_traffic[i].messages;
            bytes += v.received.bytes - last_traffic[i].bytes;
            last_traffic[i] = v.received;
            clearings.push(match v.phase {
                Phase::Agreed(c) => {
                    agreed += 1;
                    delays.extend(v.agreed_at.map(|at| at - gate));
                    Some(c)
                }
                Phase::NoTrade(NoTrade::NoQuorum { agreeing, .. }) => {
                    short.push(agreeing);
                    None
                }
                _ => None,
            });
        }
        let lone = alone(&terms, &bids, &addresses);
        achieved += executed(&terms, &bids, &addresses, &lone, &clearings);
        best += optimum(&terms, &bids);
        base += lone.iter().map(|(_, w)| w).sum::<f64>();
    }
    drop(commands);
    let median = quantile(&mut delays, 0.5).unwrap_or(-1);
    let worst = quantile(&mut delays, 1.0).unwrap_or(-1);
    let short = quantile(&mut short, 0.5).map_or_else(|| "-".to_owned(), |v| v.to_string());
    let gain = best - base;
    let share = if gain.abs() < 1.0 {
        100.0
    } else {
        (achieved - base) / gain * 100.0
    };
    let per = (n * SLOTS) as f64;
    println!(
        "{n:>5} {:>6.1} {:>9.1} {:>10} {:>10} {:>12.0} {:>14.0} {:>11.2} {short:>16}",
        f64::from(loss_permille) / 10.0,
        agreed as f64 / per * 100.0,
        median,
        worst,
        messages as f64 / per,
        bytes as f64 / per,
        share
    );
}

/// The value at quantile `q` of `values` (sorted in place), if there is one.
fn quantile<T: Ord + Copy>(values: &mut [T], q: f64) -> Option<T> {
    values.sort_unstable();
    values
        .get(((values.len() as f64 - 1.0) * q) as usize)
        .copied()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 50, 200]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{SLOTS} slots per run, random curves (base −4 to +3 kW, up to three flexible loads), one process, two cores"
    );
    println!(
        "{:>5} {:>6} {:>9} {:>10} {:>10} {:>12} {:>14} {:>11} {:>16}",
        "N",
        "loss %",
        "agreed %",
        "agree ms",
        "worst ms",
        "msgs/gw/slot",
        "bytes/gw/slot",
        "welfare %",
        "votes, no quorum"
    );
    for n in sizes {
        for loss in [0, 50] {
            runtime.block_on(run(n, loss));
        }
    }
}

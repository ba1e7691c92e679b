//! Gateways as separate `daisee-agent` processes, each on its own `dbus-daemon` with its own key
//! and history, bidding over real libp2p on loopback in slots of four seconds: they agree slot
//! after slot, the signed bid sets they kept audit to what each executed, one that is killed is
//! left out while the rest agree, a partition gives no trade on both sides until it heals, a
//! network slower than the grace period gives no trade everywhere, and a relay held on beyond
//! the allocation shows in the report; over the feeder's export cap, the
//! inverters share the curtailment and each export limiter holds its home to its allocation;
//! the base a gateway bids follows the course its history shows for the time of day.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod community;

use std::path::Path;
use std::sync::atomic::Ordering;

use community::*;
use daisee_hal::{Energy, Timestamp};
use daisee_store::{MarketLog, MarketSlot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_agree_slot_after_slot_and_a_killed_one_is_left_out() {
    let mut gateways = community("agree", 5, None, Weather::Cloudy);
    let mut proxies = dialogues(&gateways).await;
    // The first slot each bid for may have missed peers not yet up: take the next two.
    let first = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, first + SLOT_MS).await;
    for slot in [first, first + SLOT_MS] {
        assert_eq!(agreed_everywhere(&gateways, &proxies, slot).await, 5);
    }
    let (ok, status) = gateways[0].daiseectl(&["dialogue", "status"]);
    assert!(
        ok && status.contains("community `test-street`, 4 peers"),
        "{status}"
    );

    // Killed mid-slot: its bid for the next slot may be out; the one after has four bids.
    gateways[4].agent.take();
    proxies.pop();
    let after = bidding(&proxies[0]).await + SLOT_MS;
    settled(&proxies, after).await;
    assert_eq!(agreed_everywhere(&gateways[..4], &proxies, after).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_gives_no_trade_on_both_sides_until_it_heals() {
    let wires = Wires::new(|g| g < 3);
    let gateways = community("partition", 5, Some(&wires), Weather::Cloudy);
    let proxies = dialogues(&gateways).await;
    let whole = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, whole).await;
    assert_eq!(agreed_everywhere(&gateways, &proxies, whole).await, 5);

    // {0, 1, 2} and {3, 4}: neither side is the quorum of four.
    wires.cut.store(true, Ordering::SeqCst);
    let apart = bidding(&proxies[0]).await + SLOT_MS;
    settled(&proxies, apart).await;
    no_trade_everywhere(&gateways, &proxies, apart).await;

    // Healed: the bootstrap peers are dialled again, and the five agree again.
    wires.cut.store(false, Ordering::SeqCst);
    let again = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, again).await;
    assert_eq!(agreed_everywhere(&gateways, &proxies, again).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_network_still_agrees_and_one_slower_than_the_grace_period_gives_no_trade() {
    let wires = Wires::new(|_| true);
    wires.delay_ms.store(200, Ordering::SeqCst);
    let gateways = community("delay", 5, Some(&wires), Weather::Cloudy);
    let proxies = dialogues(&gateways).await;
    let slow = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, slow).await;
    assert_eq!(agreed_everywhere(&gateways, &proxies, slow).await, 5);

    // 4 s each way: bids arrive after gate closure, holdings after the grace period. Each
    // gateway holds its own bid and vote alone: no trade anywhere, never a clearing of its own.
    wires.delay_ms.store(4_000, Ordering::SeqCst);
    let stuck = bidding(&proxies[0]).await + SLOT_MS;
    settled(&proxies, stuck).await;
    no_trade_everywhere(&gateways, &proxies, stuck).await;

    // Fast again, once the bytes held back have passed: the five agree again.
    wires.delay_ms.store(0, Ordering::SeqCst);
    let again = bidding(&proxies[0]).await + 3 * SLOT_MS;
    settled(&proxies, again).await;
    assert_eq!(agreed_everywhere(&gateways, &proxies, again).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_held_on_beyond_the_allocation_shows_in_the_signed_report() {
    let gateways = community("deviation", 3, None, Weather::Cloudy);
    let proxies = dialogues(&gateways).await;
    // Everyone imports: the clearing is at the import tariff, where no charger is worth running,
    // so each allocation is the base load alone. Gateway 0 holds its charger on anyway.
    let (ok, out) = gateways[0].daiseectl(&["relay", "ev", "on"]);
    assert!(ok, "{out}");
    let from = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, from).await;
    let mut reports = Vec::new();
    for p in &proxies {
        reported(p, from).await;
        let (outcome, step, ..) = p.slot(from).await.unwrap();
        assert_eq!((outcome.as_str(), step), ("agreed", 30));
        reports.push(p.deviation().await.unwrap());
    }
    // 3 kW for four seconds: 3.3 Wh beyond the allocation; the others within metering error.
    let held = 3_000_000 * SLOT_MS / 3_600_000;
    assert!(
        (reports[0] - held).abs() < held / 4,
        "{reports:?}, {}",
        gateways[0].log()
    );
    for r in &reports[1..] {
        assert!(r.abs() < held / 8, "{reports:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_feeders_export_cap_the_inverters_share_the_curtailment() {
    let gateways = community("curtailed", 3, None, Weather::Sunny);
    let proxies = dialogues(&gateways).await;
    // At noon the three homes export 5.7 kW or more with every charger on: over the feeder's
    // 2 kW, so the price falls to step 1, where the bids give up their inverters' production.
    let slot = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, slot).await;
    let mut allocations = Vec::new();
    for (g, p) in gateways.iter().zip(&proxies) {
        let (outcome, step, allocation, _) = p.slot(slot).await.unwrap();
        assert_eq!((outcome.as_str(), step), ("agreed", 1), "{}", g.log());
        allocations.push(allocation);
    }
    assert_eq!(
        allocations.iter().sum::<i64>(),
        -2_000_000,
        "the feeder's cap"
    );
    // Each export limiter held its home to its allocation: without it each would have
    // exported 1.2 kW more or so, 1.3 Wh in the slot.
    for (g, p) in gateways.iter().zip(&proxies) {
        reported(p, slot).await;
        let deviation = p.deviation().await.unwrap();
        assert!(
            deviation > -300,
            "{deviation} mWh beyond {allocations:?}: {}",
            g.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_course_of_the_day_before_moves_the_base_a_gateway_bids() {
    // Yesterday around this time of day the base load rose by 1 kW a slot.
    const DAY_MS: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let yesterday = |path: &Path| {
        let log = MarketLog::open(path).unwrap();
        for k in -20..100 {
            let start = Timestamp((now / SLOT_MS + k) * SLOT_MS - DAY_MS);
            let slot = MarketSlot {
                start,
                outcome: "agreed".into(),
                price_step: Some(30),
                allocation_mw: Some(0),
                bid_set: "{}".into(),
                metered: None,
                base_mw: None,
            };
            log.settled(&slot).unwrap();
            log.metered(start, Energy::default(), k * 1_000_000)
                .unwrap();
        }
    };
    let gateways = community_with("forecast", 1, None, Weather::Cloudy, yesterday);
    let proxies = dialogues(&gateways).await;
    // Alone, the gateway imports at the import tariff, where its charger is not worth running:
    // its allocation is the base it bid. A slot two after its first bid starts from a whole
    // slot it metered (the house's 1 kW), two slots before: yesterday's course adds 2 kW.
    let slot = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, slot).await;
    let (outcome, step, allocation, _) = proxies[0].slot(slot).await.unwrap();
    assert_eq!(
        (outcome.as_str(), step),
        ("agreed", 30),
        "{}",
        gateways[0].log()
    );
    assert!(
        (allocation - 3_000_000).abs() < 300_000,
        "{allocation} mW, {}",
        gateways[0].log()
    );
}

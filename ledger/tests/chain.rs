//! The ledger against a real node (anvil on loopback, one per test): gateways register, commit
//! their readings, anyone verifies a reading with an `eth_call`, slots settle; and every way the
//! contract must refuse, the node going away and a crash between signing and confirmation.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use daisee_hal::{Energy, MilliWattHours, MilliWatts, Timestamp};
use daisee_ledger::admin::{Admin, community_id};
use daisee_ledger::contract::DaiseeLedger::{self, DaiseeLedgerErrors, SlotResult};
use daisee_ledger::devnet::{CHAIN_ID, Devnet, GRID, OPERATOR_SECRET, POOL, terms};
use daisee_ledger::{Chain, Courier, Failure, INTERVAL_MS, Interval, Reading};
use daisee_store::{Outbox, Posting, Reader, Retention, Store};

const COMMUNITY: &str = "rue-des-lilas";
const SLOT_MS: i64 = 900_000;
/// 0.20 a kWh, between the grid's tariffs (0.30 and 0.08, `devnet::terms`).
const PRICE: u64 = 200_000;
/// The credits each account starts with: 1000 units of currency.
const START_CREDITS: u64 = 1_000_000_000_000_000_000;

/// A node with the contract deployed, a community, and `n` registered, funded gateways.
struct Ledger {
    node: Devnet,
    operator: Admin,
    contract: Address,
    gateways: Vec<[u8; 32]>,
    dir: PathBuf,
}

impl Ledger {
    async fn start(n: usize, name: &str) -> Self {
        Self::start_on(Devnet::start(0, None, true).unwrap(), n, name).await
    }

    async fn start_on(node: Devnet, n: usize, name: &str) -> Self {
        let operator = Admin::new(&node.url(), &OPERATOR_SECRET).unwrap();
        let contract = operator.deploy().await.unwrap();
        let terms = terms(COMMUNITY, operator.address(), SLOT_MS);
        operator.create_community(contract, &terms).await.unwrap();
        for account in [POOL, GRID] {
            operator
                .mint(contract, account, U256::from(START_CREDITS))
                .await
                .unwrap();
        }
        let gateways: Vec<[u8; 32]> = (1..=n as u8).map(|i| [i; 32]).collect();
        let dir = std::env::temp_dir().join(format!("daisee-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ledger = Self {
            node,
            operator,
            contract,
            gateways,
            dir,
        };
        for i in 0..n {
            ledger.register(i).await;
        }
        ledger
    }

    fn chain(&self, i: usize) -> Chain {
        Chain::new(&self.node.url(), CHAIN_ID, self.contract, &self.gateways[i]).unwrap()
    }

    /// Gives gateway `i` gas and credits, and registers it.
    async fn register(&self, i: usize) {
        let eth = U256::from(10u64).pow(U256::from(19u64));
        let credits = U256::from(START_CREDITS);
        let address = self.chain(i).address();
        let ratings = (10_000_000, 10_000_000);
        self.operator
            .enroll(self.contract, address, COMMUNITY, ratings, (eth, credits))
            .await
            .unwrap();
    }

    fn history(&self, i: usize) -> PathBuf {
        self.dir.join(format!("history-{i}.sqlite"))
    }

    fn courier(&self, i: usize) -> Courier {
        Courier::new(self.chain(i), Outbox::open(&self.history(i)).unwrap())
    }

    async fn credits(&self, account: Address) -> U256 {
        let call = DaiseeLedger::balanceOfCall { account };
        let out = self.chain(0).call(&call.abi_encode()).await.unwrap();
        DaiseeLedger::balanceOfCall::abi_decode_returns(&out).unwrap()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One interval of readings at 1 Hz for a minute on two channels, and its grid energy.
const INTERVAL: Timestamp = Timestamp(1_800_000_000_000);

fn record_interval(path: &Path) {
    record_intervals(path, 1);
}

/// A minute of readings at the start of each of `n` intervals from [`INTERVAL`] on (those
/// recorded already are dropped as old).
fn record_intervals(path: &Path, n: i64) {
    let retention = Retention {
        samples: std::time::Duration::from_secs(86_400 * 3650),
        max_pending: 100_000,
    };
    let mut store = Store::open(path, retention).unwrap();
    for s in (0..n).flat_map(|i| (0..60).map(move |s| s + i * INTERVAL_MS / 1_000)) {
        let at = Timestamp(INTERVAL.0 + 1_000 * s);
        let imported = MilliWattHours(1_000 * s as u64);
        let grid = Energy {
            import: imported,
            export: MilliWattHours(0),
        };
        store.record(at, "grid", MilliWatts(3_600_000), grid);
        store.record(at, "pv", MilliWatts(-1_000 * s), Energy::default());
    }
    store.flush().unwrap();
}

/// Delivers until nothing is due, advancing the courier's clock past every wait.
async fn deliver_all(courier: &mut Courier) -> daisee_ledger::Pass {
    let mut total = daisee_ledger::Pass::default();
    for step in 0..20 {
        let pass = courier
            .deliver(Timestamp(INTERVAL.0 + 10_000_000 + step * 400_000))
            .await
            .unwrap();
        total.confirmed += pass.confirmed;
        total.sent += pass.sent;
        total.refused.extend(pass.refused);
        total.away = pass.away.or(total.away);
        if courier.outbox().state().unwrap().queued == 0 {
            break;
        }
    }
    total
}

fn commit_interval(ledger: &Ledger, i: usize) -> Interval {
    record_interval(&ledger.history(i));
    let interval =
        Interval::read(&Reader::open(&ledger.history(i)).unwrap(), INTERVAL, "grid").unwrap();
    let outbox = Outbox::open(&ledger.history(i)).unwrap();
    outbox
        .queue(
            Posting::Commitment,
            INTERVAL,
            &interval.commit_call().unwrap(),
            INTERVAL,
        )
        .unwrap();
    interval
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_commits_its_readings_and_anyone_verifies_one_with_a_call() {
    let ledger = Ledger::start(1, "commit").await;
    let interval = commit_interval(&ledger, 0);
    assert_eq!(interval.readings().len(), 120);
    let mut courier = ledger.courier(0);
    let pass = deliver_all(&mut courier).await;
    assert_eq!((pass.confirmed, pass.sent, pass.refused.len()), (1, 1, 0));
    let state = courier.outbox().state().unwrap();
    assert_eq!(state.last_commitment, Some(INTERVAL));

    // The chain holds the root and the grid's energy of the interval.
    let chain = ledger.chain(0);
    let call = DaiseeLedger::commitmentOfCall {
        gateway: chain.address(),
        interval: INTERVAL.0,
    };
    let out = chain.call(&call.abi_encode()).await.unwrap();
    let held = DaiseeLedger::commitmentOfCall::abi_decode_returns(&out).unwrap();
    assert_eq!(
        (held.root, held.readings, held.importMwh, held.exportMwh),
        (interval.root(), 120, 59_000, 0)
    );

    // Anyone checks a reading with its proof; a tampered reading or a wrong proof fails.
    let (reading, proof) = interval
        .prove("pv", Timestamp(INTERVAL.0 + 30_500))
        .unwrap();
    assert_eq!(
        reading,
        Reading {
            channel: "pv".into(),
            at: Timestamp(INTERVAL.0 + 30_000),
            power: MilliWatts(-30_000)
        }
    );
    assert!(
        chain
            .verify(chain.address(), &reading, &proof)
            .await
            .unwrap()
    );
    let tampered = Reading {
        power: MilliWatts(-29_000),
        ..reading.clone()
    };
    assert!(
        !chain
            .verify(chain.address(), &tampered, &proof)
            .await
            .unwrap()
    );
    let (_, other_proof) = interval
        .prove("pv", Timestamp(INTERVAL.0 + 10_000))
        .unwrap();
    assert!(
        !chain
            .verify(chain.address(), &reading, &other_proof)
            .await
            .unwrap()
    );
    let mut short = proof.clone();
    short.pop();
    assert!(
        !chain
            .verify(chain.address(), &reading, &short)
            .await
            .unwrap()
    );
    // Another gateway's commitment, or none for the interval, is an error, not a yes.
    let later = Reading {
        at: Timestamp(INTERVAL.0 + INTERVAL_MS),
        ..reading.clone()
    };
    let refused = chain
        .verify(chain.address(), &later, &proof)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Failure::Refused(DaiseeLedgerErrors::NoCommitment(_))
        ),
        "{refused:?}"
    );
    assert!(
        chain
            .verify(Address::repeat_byte(1), &reading, &proof)
            .await
            .is_err()
    );

    // The same interval again is on chain already: confirmed, never sent.
    let outbox = Outbox::open(&ledger.history(0)).unwrap();
    assert!(
        !outbox
            .queue(
                Posting::Commitment,
                INTERVAL,
                &interval.commit_call().unwrap(),
                INTERVAL
            )
            .unwrap()
    );
    assert_eq!(chain.nonce(false).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_from_an_unregistered_key_is_refused_and_lands_once_registered() {
    let mut ledger = Ledger::start(0, "unregistered").await;
    ledger.gateways.push([9; 32]);
    let chain = ledger.chain(0);
    let eth = U256::from(10u64).pow(U256::from(19u64));
    ledger.operator.fund(chain.address(), eth).await.unwrap();
    commit_interval(&ledger, 0);
    let call = Outbox::open(&ledger.history(0))
        .unwrap()
        .due(Timestamp(i64::MAX), 1)
        .unwrap()[0]
        .call
        .clone();
    let refused = chain.simulate(&call).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Failure::Refused(DaiseeLedgerErrors::UnknownGateway(_))
        ),
        "{refused:?}"
    );
    // The courier keeps it, spends nothing on it, and sends it once the admin registers the key.
    let mut courier = ledger.courier(0);
    let pass = courier.deliver(INTERVAL).await.unwrap();
    assert_eq!((pass.sent, pass.confirmed), (0, 0));
    assert_eq!(courier.outbox().state().unwrap().queued, 1);
    // Only the community's admin registers.
    let stranger = Admin::new(&ledger.node.url(), &[7; 32]).unwrap();
    ledger.operator.fund(stranger.address(), eth).await.unwrap();
    let e = stranger
        .register(ledger.contract, chain.address(), COMMUNITY, 1, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Failure::Refused(DaiseeLedgerErrors::NotCommunityAdmin(_))
        ),
        "{e:?}"
    );
    ledger
        .operator
        .register(ledger.contract, chain.address(), COMMUNITY, 1, 1)
        .await
        .unwrap();
    let pass = deliver_all(&mut courier).await;
    assert_eq!((pass.sent, pass.confirmed), (1, 1));
    assert_eq!(chain.nonce(false).await.unwrap(), 1);
}

const SLOT: i64 = 1_800_000_000_000;

/// Gateway `i`'s result of the slot: its allocation, what its meter counted, the clearing's
/// price and grid share.
fn result(allocation_mw: i64, grid_mw: i64, import_mwh: u64, export_mwh: u64) -> SlotResult {
    SlotResult {
        community: community_id(COMMUNITY),
        slot: SLOT,
        digest: B256::repeat_byte(0x5E),
        price: PRICE,
        gridMw: grid_mw,
        allocationMw: allocation_mw,
        importMwh: import_mwh,
        exportMwh: export_mwh,
    }
}

/// Settles each gateway's result through its own courier; the credits every account holds after.
async fn settle(ledger: &Ledger, results: &[SlotResult]) -> Vec<U256> {
    for (i, r) in results.iter().enumerate() {
        let outbox = Outbox::open(&ledger.history(i)).unwrap();
        outbox
            .queue(
                Posting::Settlement,
                Timestamp(SLOT),
                &ledger.chain(i).settle_call(r),
                Timestamp(SLOT),
            )
            .unwrap();
        let pass = deliver_all(&mut ledger.courier(i)).await;
        assert_eq!(
            (pass.confirmed, pass.refused.len()),
            (1, 0),
            "gateway {i}: {pass:?}"
        );
    }
    let mut credits = Vec::new();
    for i in 0..results.len() {
        credits.push(ledger.credits(ledger.chain(i).address()).await);
    }
    credits
}

/// `a − b` of two credit balances, signed.
fn change(after: U256, before: u64) -> i128 {
    i128::try_from(after).unwrap() - i128::from(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_settle_a_slot_the_pool_nets_to_zero_and_deviations_go_to_the_grid() {
    let ledger = Ledger::start(2, "settle-two").await;
    // 1 kW from one to the other for 15 minutes (250 Wh); the buyer took 300 Wh, 50 Wh beyond.
    let credits = settle(
        &ledger,
        &[
            result(1_000_000, 0, 300_000, 0),
            result(-1_000_000, 0, 0, 250_000),
        ],
    )
    .await;
    // 250 Wh at 0.20 is 0.05; 50 Wh at the import tariff 0.30 is 0.015 (credits have 15 decimals).
    assert_eq!(
        change(credits[0], START_CREDITS),
        -50_000_000_000_000 - 15_000_000_000_000
    );
    assert_eq!(change(credits[1], START_CREDITS), 50_000_000_000_000);
    assert_eq!(change(ledger.credits(POOL).await, START_CREDITS), 0);
    assert_eq!(
        change(ledger.credits(GRID).await, START_CREDITS),
        15_000_000_000_000
    );
    let call = DaiseeLedger::clearingOfCall {
        id: community_id(COMMUNITY),
        slot: SLOT,
    };
    let out = ledger.chain(0).call(&call.abi_encode()).await.unwrap();
    let clearing = DaiseeLedger::clearingOfCall::abi_decode_returns(&out).unwrap();
    assert_eq!((clearing.price, clearing.settled), (PRICE, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_gateways_settle_a_slot_with_the_grid_s_share_and_the_pool_nets_to_zero() {
    let ledger = Ledger::start(5, "settle-five").await;
    // The community takes 2 kW from the grid together; one gateway sends more than allocated.
    let allocations = [2_000_000, 1_500_000, -1_000_000, -500_000, 0];
    let grid_mw: i64 = allocations.iter().sum();
    let metered = [
        (500_000, 0),
        (375_000, 0),
        (0, 250_000),
        (0, 225_000),
        (1_000, 0),
    ];
    let results: Vec<SlotResult> = allocations
        .iter()
        .zip(metered)
        .map(|(a, (import, export))| result(*a, grid_mw, import, export))
        .collect();
    let credits = settle(&ledger, &results).await;
    // Each pays its allocation at the price (250 nWh per mW over 15 minutes) and its deviation
    // at a tariff: gateway 3 sent 100 Wh more than allocated (feed-in 0.08), gateway 4 took 1 Wh.
    let trade = |mw: i64| -i128::from(mw) * 250 * i128::from(PRICE);
    let expected = [
        trade(2_000_000),
        trade(1_500_000),
        trade(-1_000_000),
        trade(-500_000) + 100_000_000 * 80_000,
        -1_000_000 * 300_000,
    ];
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(change(credits[i], START_CREDITS), *e, "gateway {i}");
    }
    assert_eq!(change(ledger.credits(POOL).await, START_CREDITS), 0);
    let to_grid: i128 = -expected.iter().sum::<i128>();
    assert_eq!(change(ledger.credits(GRID).await, START_CREDITS), to_grid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_without_the_gateway_s_own_signature_a_replay_or_a_disagreeing_result_is_refused()
 {
    let ledger = Ledger::start(2, "settle-refused").await;
    let (me, other) = (ledger.chain(0), ledger.chain(1));
    let mine = result(1_000_000, 0, 250_000, 0);
    let signed_with = |signature: Bytes, r: &SlotResult| {
        DaiseeLedger::settleCall {
            gateway: me.address(),
            r: r.clone(),
            signature,
        }
        .abi_encode()
    };
    let refusal = |e: Failure| match e {
        Failure::Refused(reason) => reason,
        other => panic!("not a refusal: {other:?}"),
    };
    // Signed by another gateway, not signed at all, a signature altered, or signed for another
    // chain: each is refused, whoever sends it.
    let by_other = other.sign_result(&mine);
    let mut altered = me.sign_result(&mine).to_vec();
    altered[10] ^= 1;
    let elsewhere = Chain::new(
        &ledger.node.url(),
        CHAIN_ID + 1,
        ledger.contract,
        &ledger.gateways[0],
    )
    .unwrap();
    for signature in [
        by_other,
        Bytes::new(),
        Bytes::from(altered),
        elsewhere.sign_result(&mine),
    ] {
        let e = refusal(
            other
                .simulate(&signed_with(signature, &mine))
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(e, DaiseeLedgerErrors::NotSignedByGateway(_)),
            "{e:?}"
        );
    }
    // A tampered result under a valid signature is not what was signed.
    let tampered = SlotResult {
        allocationMw: -1_000_000,
        ..mine.clone()
    };
    let e = refusal(
        other
            .simulate(&signed_with(me.sign_result(&mine), &tampered))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(e, DaiseeLedgerErrors::NotSignedByGateway(_)),
        "{e:?}"
    );

    // Settled once through the courier; the same signed call again is a replay.
    let credits = settle(&ledger, std::slice::from_ref(&mine)).await;
    let replay = me.settle_call(&mine);
    let e = refusal(other.simulate(&replay).await.unwrap_err());
    assert!(matches!(e, DaiseeLedgerErrors::AlreadySettled(_)), "{e:?}");
    assert_eq!(ledger.credits(me.address()).await, credits[0]);

    // The other gateway's result names another price: refused, by the contract and the courier.
    let disagreeing = SlotResult {
        price: PRICE + 1,
        allocationMw: -1_000_000,
        importMwh: 0,
        exportMwh: 250_000,
        ..mine.clone()
    };
    let e = refusal(
        other
            .simulate(&other.settle_call(&disagreeing))
            .await
            .unwrap_err(),
    );
    assert!(matches!(e, DaiseeLedgerErrors::ResultDisagrees(_)), "{e:?}");
    let outbox = Outbox::open(&ledger.history(1)).unwrap();
    outbox
        .queue(
            Posting::Settlement,
            Timestamp(SLOT),
            &other.settle_call(&disagreeing),
            Timestamp(SLOT),
        )
        .unwrap();
    let pass = deliver_all(&mut ledger.courier(1)).await;
    assert_eq!((pass.sent, pass.refused.len()), (0, 1));
    assert!(pass.refused[0].1.contains("ResultDisagrees"), "{pass:?}");
    // And another digest too.
    let other_digest = SlotResult {
        digest: B256::repeat_byte(1),
        ..disagreeing.clone()
    };
    let e = refusal(
        other
            .simulate(&other.settle_call(&SlotResult {
                price: PRICE,
                ..other_digest
            }))
            .await
            .unwrap_err(),
    );
    assert!(matches!(e, DaiseeLedgerErrors::ResultDisagrees(_)), "{e:?}");
    assert_eq!(other.nonce(false).await.unwrap(), 0);
}

/// Queues the commitments of `n` intervals of gateway `i` (those queued already stay as they are).
fn queue_intervals(ledger: &Ledger, i: usize, n: i64) {
    record_intervals(&ledger.history(i), n);
    let reader = Reader::open(&ledger.history(i)).unwrap();
    let outbox = Outbox::open(&ledger.history(i)).unwrap();
    for k in 0..n {
        let at = Timestamp(INTERVAL.0 + k * INTERVAL_MS);
        let call = Interval::read(&reader, at, "grid")
            .unwrap()
            .commit_call()
            .unwrap();
        outbox.queue(Posting::Commitment, at, &call, at).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_away_delays_the_transactions_and_each_lands_once_when_it_is_back() {
    let dir = std::env::temp_dir().join(format!("daisee-ledger-away-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("anvil.json");
    let node = Devnet::start(0, Some(&state), true).unwrap();
    let mut ledger = Ledger::start_on(node, 1, "away").await;
    queue_intervals(&ledger, 0, 2);
    let mut courier = ledger.courier(0);
    assert_eq!(deliver_all(&mut courier).await.confirmed, 2);

    ledger.node.stop().unwrap();
    queue_intervals(&ledger, 0, 5);
    // The passes while it is away send nothing and give up early; every call waits.
    let pass = courier
        .deliver(Timestamp(INTERVAL.0 + 10_000_000))
        .await
        .unwrap();
    assert!(pass.away.is_some(), "{pass:?}");
    assert_eq!(
        (pass.sent, courier.outbox().state().unwrap().queued),
        (0, 3)
    );
    // Restarted from its state, as an operator's node would be: the three land, once each.
    ledger.node.restart().unwrap();
    let pass = deliver_all(&mut courier).await;
    assert_eq!((pass.confirmed, pass.refused.len()), (3, 0), "{pass:?}");
    assert_eq!(ledger.chain(0).nonce(false).await.unwrap(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_killed_between_signing_and_confirmation_sends_nothing_twice() {
    let ledger = Ledger::start(1, "killed").await;
    queue_intervals(&ledger, 0, 2);
    let chain = ledger.chain(0);
    // Killed after recording the first transaction as signed, before sending it.
    let outbox = Outbox::open(&ledger.history(0)).unwrap();
    let first = outbox.due(INTERVAL, 1).unwrap().remove(0);
    let gas = chain.simulate(&first.call).await.unwrap();
    let signed = chain.sign(&first.call, 0, gas).await.unwrap();
    let record = daisee_store::Signed {
        nonce: 0,
        hash: signed.hash.0,
        raw: signed.raw.clone(),
    };
    outbox.signed(first.id, &record).unwrap();
    drop(outbox);
    // Killed again after sending the second, before its receipt: the node mines nothing yet.
    let provider = daisee_ledger::node(&ledger.node.url()).unwrap();
    use alloy::providers::Provider;
    let _: Option<bool> = provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let pass = ledger
        .courier(0)
        .deliver(Timestamp(INTERVAL.0 + 10_000_000))
        .await
        .unwrap();
    assert_eq!((pass.sent, pass.confirmed), (1, 0), "{pass:?}");
    assert_eq!(chain.nonce(false).await.unwrap(), 0);
    // A new life: the same two transactions, sent again as they were, land once each.
    let _: Option<bool> = provider
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    let _: String = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let pass = deliver_all(&mut ledger.courier(0)).await;
    assert_eq!(
        (pass.sent, pass.confirmed, pass.refused.len()),
        (0, 2, 0),
        "{pass:?}"
    );
    assert_eq!(chain.nonce(false).await.unwrap(), 2);
    let call = DaiseeLedger::commitmentOfCall {
        gateway: chain.address(),
        interval: INTERVAL.0 + INTERVAL_MS,
    };
    let out = chain.call(&call.abi_encode()).await.unwrap();
    assert_eq!(
        DaiseeLedger::commitmentOfCall::abi_decode_returns(&out)
            .unwrap()
            .readings,
        120
    );
}

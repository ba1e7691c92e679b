//! The gateway on its community's ledger, as separate `daisee-agent` processes against a real
//! node (anvil on loopback, one per test): two and then five gateways settle the slots their
//! dialogue agreed, each with its own signature, and the pool nets to zero over each; a gateway
//! commits the intervals its history holds and anyone checks a reading with `daiseectl prove`
//! against the chain (a reading the history changed afterwards fails); and an agent killed with
//! SIGKILL between sending a transaction and its confirmation sends nothing twice.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod community;

use std::path::Path;
use std::time::Duration;

use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use community::*;
use daisee_api::LedgerProxy;
use daisee_hal::{Clock, Energy, MilliWattHours, MilliWatts, SystemClock, Timestamp};
use daisee_ledger::admin::{Admin, community_id};
use daisee_ledger::contract::DaiseeLedger;
use daisee_ledger::devnet::{CHAIN_ID, Devnet, GRID, OPERATOR_SECRET, POOL, terms};
use daisee_ledger::{Address, Chain, U256, interval_of};
use daisee_store::{Retention, Store};

/// The community's name in the harness's configuration.
const COMMUNITY: &str = "test-street";
/// A slot the contract pays exactly (a multiple of 3.6 s), short enough for a test.
const LEDGER_SLOT_MS: i64 = 7200;

/// A node with the contract, the community, and its first `members` gateways (keys 1, 2, …, as
/// the harness gives them) funded and registered.
struct Ledger {
    node: Devnet,
    contract: Address,
}

impl Ledger {
    async fn start(members: u8) -> Self {
        let node = Devnet::start(0, None, true).unwrap();
        let operator = Admin::new(&node.url(), &OPERATOR_SECRET).unwrap();
        let contract = operator.deploy().await.unwrap();
        // The harness's tariffs: import at step 30 and feed-in at step 8 of 0.01 steps.
        let terms = terms(COMMUNITY, operator.address(), LEDGER_SLOT_MS);
        operator.create_community(contract, &terms).await.unwrap();
        let credits = U256::from(10u64).pow(U256::from(18u64));
        for account in [POOL, GRID] {
            operator.mint(contract, account, credits).await.unwrap();
        }
        let ledger = Self { node, contract };
        for i in 1..=members {
            let address = ledger.chain(i).address();
            let ratings = (12_000_000, 15_000_000);
            operator
                .enroll(contract, address, COMMUNITY, ratings, (credits, credits))
                .await
                .unwrap();
        }
        ledger
    }

    /// Gateway `i`'s account on the chain (its key is `[i; 32]`).
    fn chain(&self, i: u8) -> Chain {
        Chain::new(&self.node.url(), CHAIN_ID, self.contract, &[i; 32]).unwrap()
    }

    fn provider(&self) -> RootProvider {
        daisee_ledger::node(&self.node.url()).unwrap()
    }

    /// A gateway's configuration with this ledger, and slots of [`LEDGER_SLOT_MS`].
    fn configure(&self) -> impl Fn(usize, String) -> String {
        let (url, contract) = (self.node.url(), self.contract);
        move |_, text| {
            text.replace(
                &format!("slot_ms = {SLOT_MS}"),
                &format!("slot_ms = {LEDGER_SLOT_MS}"),
            ) + &format!(
                "\n[ledger]\nrpc_url = \"{url}\"\nchain_id = {CHAIN_ID}\ncontract = \"{contract}\"\ngrid = \"grid\"\n"
            )
        }
    }

    async fn call<C: SolCall>(&self, call: C) -> C::Return {
        let out = self.chain(1).call(&call.abi_encode()).await.unwrap();
        C::abi_decode_returns(&out).unwrap()
    }
}

/// The gateway's Ledger object, once it serves it.
async fn ledger_of(gateway: &Gateway) -> LedgerProxy<'static> {
    for _ in 0..250 {
        let conn = gateway.connect().await;
        if let Ok(proxy) = LedgerProxy::new(&conn).await
            && proxy.address().await.is_ok()
        {
            return proxy;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("no Ledger object: {}", gateway.log());
}

/// Waits (at most 90 s) until `done` holds of the gateway's Ledger object.
async fn until(gateway: &Gateway, what: &str, done: impl AsyncFn(&LedgerProxy<'static>) -> bool) {
    let proxy = ledger_of(gateway).await;
    for _ in 0..900 {
        if done(&proxy).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = proxy.error().await.unwrap_or_default();
    panic!("{what} did not happen ({error}): {}", gateway.log());
}

/// `n` gateways agree a slot in their dialogue and each settles it on the ledger, signed by
/// itself: the contract counts all of them, and the pool's payments over the slot net to zero.
async fn settle_an_agreed_slot(name: &str, n: u8) {
    let ledger = Ledger::start(n).await;
    let gateways = community_edited(
        name,
        usize::from(n),
        None,
        Weather::Cloudy,
        |_| {},
        ledger.configure(),
    );
    let proxies = dialogues(&gateways).await;
    let slot = bidding(&proxies[0]).await + 2 * LEDGER_SLOT_MS;
    settled(&proxies, slot).await;
    agreed_everywhere(&gateways, &proxies, slot).await;
    for g in &gateways {
        until(g, "the settlement", async |l| {
            l.last_slot().await.unwrap() >= slot
        })
        .await;
    }
    let clearing = ledger
        .call(DaiseeLedger::clearingOfCall {
            id: community_id(COMMUNITY),
            slot,
        })
        .await;
    assert_eq!(clearing.settled, u32::from(n));
    let (record, _, allocation, _) = proxies[0].slot(slot).await.unwrap();
    assert_eq!(record, "agreed");
    // Every settlement of the slot, from the chain's own log.
    let filter = Filter::new()
        .address(ledger.contract)
        .event_signature(DaiseeLedger::Settled::SIGNATURE_HASH)
        .from_block(0);
    let settlements: Vec<DaiseeLedger::Settled> = ledger
        .provider()
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|log| {
            log.log_decode::<DaiseeLedger::Settled>()
                .unwrap()
                .inner
                .data
        })
        .filter(|s| s.slot == slot)
        .collect();
    assert_eq!(settlements.len(), usize::from(n));
    let mine = settlements
        .iter()
        .find(|s| s.gateway == ledger.chain(1).address())
        .unwrap();
    let per_mw = i128::from(LEDGER_SLOT_MS / 3600);
    let price = i128::from(clearing.price);
    assert_eq!(
        i128::try_from(mine.paidToPool).unwrap(),
        i128::from(allocation) * per_mw * price
    );
    // The pool paid the grid its share when the slot first settled; with every gateway's
    // allocation paid, it is even.
    let paid_in: i128 = settlements
        .iter()
        .map(|s| i128::try_from(s.paidToPool).unwrap())
        .sum();
    assert_eq!(paid_in, i128::from(clearing.gridMw) * per_mw * price);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_settle_the_slot_their_dialogue_agreed() {
    settle_an_agreed_slot("ledger-two", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_gateways_settle_the_slot_their_dialogue_agreed() {
    settle_an_agreed_slot("ledger-five", 5).await;
}

/// The interval an hour before now, and a writer of a minute of its readings on `channel`.
fn an_hour_ago() -> Timestamp {
    interval_of(Timestamp(SystemClock.now().0 - 3_600_000))
}

fn record_minute(path: &Path, interval: Timestamp, channel: &str, power_w: i64) {
    let retention = Retention {
        samples: Duration::from_secs(86_400 * 30),
        max_pending: 10_000,
    };
    let mut store = Store::open(path, retention).unwrap();
    for s in 0..60 {
        let counted = MilliWattHours(u64::try_from(s).unwrap() * 100);
        let energy = Energy {
            import: counted,
            export: MilliWattHours(0),
        };
        let at = Timestamp(interval.0 + 1_000 * s);
        store.record(at, channel, MilliWatts(power_w * 1000 + s), energy);
    }
    store.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_commits_its_history_and_daiseectl_prove_checks_a_reading_on_chain() {
    let ledger = Ledger::start(1).await;
    let interval = an_hour_ago();
    let history = |path: &Path| record_minute(path, interval, "grid", 360);
    let gateways = community_edited(
        "ledger-prove",
        1,
        None,
        Weather::Cloudy,
        history,
        ledger.configure(),
    );
    let g = &gateways[0];
    until(g, "the commitment", async |l| {
        l.last_interval().await.unwrap() >= interval.0
    })
    .await;
    let commitment = ledger
        .call(DaiseeLedger::commitmentOfCall {
            gateway: ledger.chain(1).address(),
            interval: interval.0,
        })
        .await;
    assert_eq!((commitment.readings, commitment.importMwh), (60, 5_900));

    let time = (interval.0 + 30_500).to_string();
    let (ok, out) = g.daiseectl(&["prove", "grid", &time]);
    assert!(
        ok && out.contains("360030 mW") && out.contains("the chain confirms"),
        "{out}"
    );
    let (ok, out) = g.daiseectl(&["ledger"]);
    assert!(
        ok && out.contains(&format!("last interval  {}", interval.0)),
        "{out}"
    );
    assert!(
        out.contains(&ledger.chain(1).address().to_string()),
        "{out}"
    );
    // Nothing before the interval's first reading; no such channel.
    let (ok, out) = g.daiseectl(&["prove", "grid", &(interval.0 - 1).to_string()]);
    assert!(!ok && out.contains("no reading"), "{out}");

    // A reading slipped into the interval's history afterwards changes its tree: the chain
    // does not confirm what the gateway now proves.
    record_minute(&g.dir.join("data/history.sqlite"), interval, "forged", 1);
    let (ok, out) = g.daiseectl(&["prove", "grid", &time]);
    assert!(!ok && out.contains("does NOT confirm"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_between_sending_and_confirmation_sends_nothing_twice() {
    let ledger = Ledger::start(1).await;
    let provider = ledger.provider();
    // The node holds what it gets without mining it, until the test says so.
    let _: Option<bool> = provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let interval = an_hour_ago();
    let history = |path: &Path| record_minute(path, interval, "grid", 500);
    let mut gateways = community_edited(
        "ledger-killed",
        1,
        None,
        Weather::Cloudy,
        history,
        ledger.configure(),
    );
    let chain = ledger.chain(1);
    for _ in 0..600 {
        if chain.nonce(true).await.unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chain.nonce(true).await.unwrap(), 1, "{}", gateways[0].log());
    // SIGKILL, the transaction sent and not mined; then the node mines it.
    gateways[0].agent.take();
    let _: String = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: Option<bool> = provider
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();
    gateways[0].restart();
    let g = &gateways[0];
    until(g, "the confirmation", async |l| {
        l.last_interval().await.unwrap() >= interval.0 && l.queued().await.unwrap() == 0
    })
    .await;
    // One transaction from the gateway's account, ever: the same one, sent again at most.
    assert_eq!(chain.nonce(false).await.unwrap(), 1);
}

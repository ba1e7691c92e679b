//! The gateway on its community's ledger: an adapter thread beside the daemon. Each turn it
//! queues the commitment of every interval the history has closed and the settlement of every
//! slot the dialogue agreed and metered (both from the history, so that neither the daemon nor
//! the dialogue waits on a chain), lets the courier send the outbox, and publishes a
//! [`LedgerStatus`] for D-Bus. Its own thread and runtime: SQLite and the node's answers may be
//! slow, and the daemon's runtime must not wait on them.

mod result;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daisee_dialogue::GatewayKey;
use daisee_hal::{Clock, Timestamp};
use daisee_ledger::{Chain, Courier, Failure, INTERVAL_MS, Interval, Pass, interval_of};
use daisee_store::{Outbox, Posting, Reader, StoreError};
use tokio::sync::watch;

use crate::config::{LedgerConfig, StoreConfig};
use crate::journal::{Journal, Priority};

/// Time between two turns.
const TURN: Duration = Duration::from_secs(5);

/// How far back a ledger enabled for the first time commits the intervals already in the
/// history: a day.
const FIRST_DAY_MS: i64 = 24 * 3600 * 1000;

/// The most intervals or slots queued in one turn (a day of intervals, caught up in a turn).
const PER_TURN: usize = 96;

/// What the ledger shows: published at every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerStatus {
    /// The gateway's account.
    pub address: String,
    /// The chain's id.
    pub chain_id: u64,
    /// The contract's address.
    pub contract: String,
    /// The node's URL.
    pub rpc_url: String,
    /// The account's energy credits, in the token's smallest unit (decimal); empty until read.
    pub credits: String,
    /// Transactions not yet confirmed.
    pub queued: u64,
    /// Transactions the contract refused (each in the journal with its reason).
    pub refused: u64,
    /// The newest interval whose commitment is confirmed, ms since 1970; 0 before the first.
    pub last_interval: i64,
    /// The newest slot whose settlement is confirmed; 0 before the first.
    pub last_slot: i64,
    /// Why the chain is not reached now; empty when it is.
    pub error: String,
}

/// Starts the ledger's thread for the gateway of `key`; its status.
pub fn spawn(
    config: &LedgerConfig,
    store: &StoreConfig,
    key: &GatewayKey,
    clock: Arc<dyn Clock>,
) -> Result<watch::Receiver<LedgerStatus>, Failure> {
    let chain = Chain::new(
        &config.rpc_url,
        config.chain_id,
        config.contract,
        &key.secret(),
    )?;
    let history = store.dir.join("history.sqlite");
    let first = LedgerStatus {
        address: chain.address().to_string(),
        chain_id: config.chain_id,
        contract: config.contract.to_string(),
        rpc_url: config.rpc_url.clone(),
        ..LedgerStatus::default()
    };
    let (publish, status) = watch::channel(first);
    // Samples of an interval are in the history one flush after it ends.
    let margin_ms = i64::try_from(store.flush_interval.as_millis()).unwrap_or(i64::MAX) + 5_000;
    let adapter = Adapter {
        chain,
        history,
        grid: config.grid.clone(),
        margin_ms,
        clock,
        journal: Journal::from_env(),
        courier: None,
        next_interval: None,
        publish,
    };
    std::thread::Builder::new()
        .name("ledger".into())
        .spawn(move || adapter.run())
        .map_err(|e| Failure::Misconfigured(format!("the ledger's thread: {e}")))?;
    Ok(status)
}

struct Adapter {
    chain: Chain,
    history: PathBuf,
    grid: String,
    margin_ms: i64,
    clock: Arc<dyn Clock>,
    journal: Journal,
    /// The courier, once the history opened.
    courier: Option<Courier>,
    /// The next interval to commit, once known.
    next_interval: Option<Timestamp>,
    publish: watch::Sender<LedgerStatus>,
}

impl Adapter {
    fn run(mut self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return self.log(Priority::Error, &format!("ledger: no runtime: {e}")),
        };
        runtime.block_on(async {
            loop {
                self.turn().await;
                tokio::time::sleep(TURN).await;
            }
        });
    }

    async fn turn(&mut self) {
        let now = self.clock.now();
        let queued = self.queue(now);
        let mut status = self.publish.borrow().clone();
        let Some(courier) = self.courier.as_mut() else {
            // The history cannot be opened: nothing can be queued or sent, and D-Bus says why.
            status.error = format!(
                "history: {}",
                queued.err().map(|e| e.to_string()).unwrap_or_default()
            );
            self.publish
                .send_if_modified(|old| std::mem::replace(old, status.clone()) != status);
            return;
        };
        let delivered = courier.deliver(now).await.map_err(|e| e.to_string());
        status.error = match (&queued, &delivered) {
            (Err(e), _) => format!("history: {e}"),
            (_, Err(e)) => e.clone(),
            (_, Ok(pass)) => pass.away.clone().unwrap_or_default(),
        };
        if let Ok(pass) = &delivered {
            self.report(pass, &status.error);
            if (pass.confirmed > 0 || status.credits.is_empty())
                && let Ok(credits) = self.chain.credits().await
            {
                status.credits = credits.to_string();
            }
        }
        if let Some(Ok(state)) = self.courier.as_ref().map(|c| c.outbox().state()) {
            status.queued = state.queued;
            status.refused = state.refused;
            status.last_interval = state.last_commitment.map_or(0, |t| t.0);
            status.last_slot = state.last_settlement.map_or(0, |t| t.0);
        }
        self.publish
            .send_if_modified(|old| std::mem::replace(old, status.clone()) != status);
    }

    /// Queues what the history closed since the last turn: intervals, then agreed slots.
    fn queue(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if self.courier.is_none() {
            let outbox = Outbox::open(&self.history)?;
            self.courier = Some(Courier::new(self.chain.clone(), outbox));
        }
        let Some(courier) = &self.courier else {
            return Ok(());
        };
        let outbox = courier.outbox();
        let reader = Reader::open(&self.history)?;
        let first = match self.next_interval {
            Some(next) => next,
            None => match outbox.newest(Posting::Commitment)? {
                Some(newest) => Timestamp(newest.0 + INTERVAL_MS),
                None => interval_of(Timestamp(now.0 - FIRST_DAY_MS)),
            },
        };
        let mut at = first;
        for _ in 0..PER_TURN {
            if at.0 + INTERVAL_MS + self.margin_ms > now.0 {
                break;
            }
            // An interval without readings (the gateway was off) has nothing to commit.
            if let Some(call) = Interval::read(&reader, at, &self.grid)?.commit_call() {
                outbox.queue(Posting::Commitment, at, &call, now)?;
            }
            at = Timestamp(at.0 + INTERVAL_MS);
        }
        self.next_interval = Some(at);
        for slot in outbox.unsettled(PER_TURN)? {
            match result::of(&slot) {
                Ok(r) => {
                    outbox.queue(
                        Posting::Settlement,
                        slot.start,
                        &self.chain.settle_call(&r),
                        now,
                    )?;
                }
                Err(why) => {
                    let message = format!("ledger: slot {} is not settled: {why}", slot.start.0);
                    self.journal.log(Priority::Error, &message, &[]);
                    outbox.skip(Posting::Settlement, slot.start, &why, now)?;
                }
            }
        }
        Ok(())
    }

    /// Logs what a pass did that someone should know: refusals, and the chain going away or
    /// coming back (once each, not every turn).
    fn report(&self, pass: &Pass, error: &str) {
        for (at, why) in &pass.refused {
            let message = format!(
                "ledger: the contract refused the transaction of {}: {why}",
                at.0
            );
            self.journal.log(Priority::Error, &message, &[]);
        }
        let before = &self.publish.borrow().error;
        if before != error {
            if error.is_empty() {
                self.log(Priority::Info, "ledger: the chain is reached again");
            } else {
                self.log(
                    Priority::Warning,
                    &format!("ledger: {error}; transactions wait in the outbox"),
                );
            }
        }
    }

    fn log(&self, priority: Priority, message: &str) {
        self.journal.log(priority, message, &[]);
    }
}

/// Builds the reading and proof of `channel` at `at` from the history at `history`, with the
/// interval's root: what `Ledger.Prove` answers.
pub fn prove(
    history: &Path,
    grid: &str,
    channel: &str,
    at: Timestamp,
) -> Result<
    Option<(
        daisee_ledger::Reading,
        Vec<daisee_ledger::B256>,
        daisee_ledger::B256,
    )>,
    StoreError,
> {
    let interval = Interval::read(&Reader::open(history)?, at, grid)?;
    Ok(interval
        .prove(channel, at)
        .map(|(reading, proof)| (reading, proof, interval.root())))
}

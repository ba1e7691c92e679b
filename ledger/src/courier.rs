//! The courier: brings each transaction of the outbox on chain exactly once. A call is simulated
//! first (the contract's refusal costs nothing), signed with the next nonce and recorded as
//! signed before it is sent; from then on only those same bytes are sent, until a receipt says
//! it landed or the nonce went to another transaction (only then is the call signed again).

use std::time::Duration;

use alloy::primitives::B256;
use daisee_hal::Timestamp;
use daisee_store::{Outbox, Pending, Signed, StoreError};

use crate::chain::{Chain, Failure};
use crate::contract::DaiseeLedger::DaiseeLedgerErrors;

/// How long a transaction sent waits before its receipt is asked for again.
const RECEIPT_POLL: Duration = Duration::from_secs(2);

/// The longest wait between two tries of a call the chain did not take: a chain away for a day
/// is tried every five minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The most transactions handled in one pass.
const PER_PASS: usize = 64;

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Transactions that landed.
    pub confirmed: usize,
    /// Transactions sent for the first time.
    pub sent: usize,
    /// Calls the contract refused, each with its reason (they are not sent again).
    pub refused: Vec<(Timestamp, String)>,
    /// Why the chain could not be reached, if it could not.
    pub away: Option<String>,
}

/// What went wrong with the outbox itself (the history).
#[derive(Debug, thiserror::Error)]
#[error("ledger outbox: {0}")]
pub struct OutboxError(#[from] StoreError);

/// Sends the outbox's transactions with one account.
#[derive(Debug)]
pub struct Courier {
    chain: Chain,
    outbox: Outbox,
    chain_checked: bool,
}

impl Courier {
    /// A courier for `outbox` on `chain`.
    pub fn new(chain: Chain, outbox: Outbox) -> Self {
        Self {
            chain,
            outbox,
            chain_checked: false,
        }
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Handles every transaction due at `now`; stops at the first sign that the chain is away.
    pub async fn deliver(&mut self, now: Timestamp) -> Result<Pass, OutboxError> {
        let mut pass = Pass::default();
        if !self.chain_checked {
            match self.chain.check_chain().await {
                Ok(()) => self.chain_checked = true,
                Err(e) => {
                    pass.away = Some(e.to_string());
                    return Ok(pass);
                }
            }
        }
        for pending in self.outbox.due(now, PER_PASS)? {
            let result = match &pending.signed {
                None => self.send(&pending, now, &mut pass).await,
                Some(signed) => self.follow(&pending, signed, now, &mut pass).await,
            };
            if let Err(failure) = result {
                let wait = backoff(pending.attempts);
                self.outbox
                    .retry(pending.id, later(now, wait), &failure.to_string())?;
                if let Failure::Away(why) = failure {
                    pass.away = Some(why);
                    break;
                }
            }
        }
        Ok(pass)
    }

    /// Simulates, signs, records and sends a call not signed yet.
    async fn send(
        &mut self,
        pending: &Pending,
        now: Timestamp,
        pass: &mut Pass,
    ) -> Result<(), Failure> {
        let gas = match self.chain.simulate(&pending.call).await {
            Ok(gas) => gas,
            Err(Failure::Refused(reason)) if is_done(&reason) => {
                // On chain already: sent by an earlier life of this history.
                self.outbox
                    .confirmed(pending.id, now)
                    .map_err(store_failure)?;
                pass.confirmed += 1;
                return Ok(());
            }
            Err(Failure::Refused(reason)) if is_final(&reason) => {
                let why = format!("{reason:?}");
                self.outbox
                    .refused(pending.id, &why, now)
                    .map_err(store_failure)?;
                pass.refused.push((pending.at, why));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let chain_nonce = self.chain.nonce(true).await?;
        let nonce = chain_nonce.max(
            self.outbox
                .next_nonce()
                .map_err(store_failure)?
                .unwrap_or(0),
        );
        let signed = self.chain.sign(&pending.call, nonce, gas).await?;
        let record = Signed {
            nonce,
            hash: signed.hash.0,
            raw: signed.raw.clone(),
        };
        self.outbox
            .signed(pending.id, &record)
            .map_err(store_failure)?;
        pass.sent += 1;
        self.chain.broadcast(&signed.raw).await?;
        self.outbox
            .wait(pending.id, later(now, RECEIPT_POLL))
            .map_err(store_failure)?;
        Ok(())
    }

    /// Asks whether a signed transaction landed; sends it again if it may still.
    async fn follow(
        &mut self,
        pending: &Pending,
        signed: &Signed,
        now: Timestamp,
        pass: &mut Pass,
    ) -> Result<(), Failure> {
        // The nonce before the receipt: a transaction mined between the two questions then
        // shows in the receipt, and is never taken for one whose nonce went elsewhere.
        let mined = self.chain.nonce(false).await?;
        match self.chain.landed(B256::from(signed.hash)).await? {
            Some(true) => {
                self.outbox
                    .confirmed(pending.id, now)
                    .map_err(store_failure)?;
                pass.confirmed += 1;
            }
            Some(false) => {
                let why = "reverted on chain".to_owned();
                self.outbox
                    .refused(pending.id, &why, now)
                    .map_err(store_failure)?;
                pass.refused.push((pending.at, why));
            }
            None if mined > signed.nonce => {
                self.outbox.unsigned(pending.id).map_err(store_failure)?
            }
            None => {
                self.chain.broadcast(&signed.raw).await?;
                self.outbox
                    .wait(pending.id, later(now, RECEIPT_POLL))
                    .map_err(store_failure)?;
            }
        }
        Ok(())
    }
}

/// Refusals that mean the call is on chain already.
fn is_done(reason: &DaiseeLedgerErrors) -> bool {
    matches!(
        reason,
        DaiseeLedgerErrors::AlreadyCommitted(_) | DaiseeLedgerErrors::AlreadySettled(_)
    )
}

/// Refusals no later try can change. Others (an unknown gateway, credits short) may change
/// when the community's admin acts, and are tried again.
fn is_final(reason: &DaiseeLedgerErrors) -> bool {
    use DaiseeLedgerErrors as E;
    matches!(
        reason,
        E::NotSignedByGateway(_)
            | E::ResultDisagrees(_)
            | E::BeyondRatings(_)
            | E::NotAligned(_)
            | E::NoReadings(_)
    )
}

/// The wait after `attempts` failed tries: 2 s doubling, at most [`MAX_BACKOFF`].
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.saturating_add(1))).min(MAX_BACKOFF)
}

fn later(now: Timestamp, wait: Duration) -> Timestamp {
    Timestamp(
        now.0
            .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
    )
}

fn store_failure(e: StoreError) -> Failure {
    // The history refusing a write is not the chain's fault, but it is also retried later.
    Failure::Misconfigured(format!("history: {e}"))
}

//! `org.daisee.Gateway1.Ledger` at `Ledger`: the gateway on its community's ledger (its account,
//! the chain, its credits, the outbox), and each reading's proof for anyone to check on chain.
//! There only when the configuration has a `[ledger]`.

use std::path::PathBuf;

use daisee_hal::Timestamp;
use zbus::interface;

use super::Error;
use super::changes::Changes;
use crate::ledger::{LedgerStatus, prove};

/// The ledger, as its properties show it.
pub(super) struct LedgerObject {
    pub(super) shown: LedgerStatus,
    /// The history, where the readings are.
    pub(super) history: PathBuf,
    /// The channel each commitment totals.
    pub(super) grid: String,
    /// One proof at a time: anyone may ask, and each reads an interval from the SD card.
    pub(super) one_at_a_time: tokio::sync::Semaphore,
}

impl LedgerObject {
    pub(super) fn update(&mut self, new: &LedgerStatus) -> Changes {
        let mut changed = Changes::default();
        let old = &mut self.shown;
        changed.set("Credits", &mut old.credits, new.credits.clone());
        changed.set("Queued", &mut old.queued, new.queued);
        changed.set("Refused", &mut old.refused, new.refused);
        changed.set("LastInterval", &mut old.last_interval, new.last_interval);
        changed.set("LastSlot", &mut old.last_slot, new.last_slot);
        changed.set("Error", &mut old.error, new.error.clone());
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Ledger")]
impl LedgerObject {
    /// The gateway's account (its key's), which signs its commitments and settlements.
    #[zbus(property)]
    fn address(&self) -> String {
        self.shown.address.clone()
    }

    /// The chain's id.
    #[zbus(property)]
    fn chain_id(&self) -> u64 {
        self.shown.chain_id
    }

    /// The ledger contract's address.
    #[zbus(property)]
    fn contract(&self) -> String {
        self.shown.contract.clone()
    }

    /// The node's JSON-RPC URL, where anyone can check a reading.
    #[zbus(property)]
    fn rpc_url(&self) -> String {
        self.shown.rpc_url.clone()
    }

    /// The account's energy credits in the token's smallest unit (15 decimals), in decimal;
    /// empty until read from the chain.
    #[zbus(property)]
    fn credits(&self) -> String {
        self.shown.credits.clone()
    }

    /// Transactions in the outbox not yet confirmed.
    #[zbus(property)]
    fn queued(&self) -> u64 {
        self.shown.queued
    }

    /// Transactions the contract refused (each in the journal with its reason).
    #[zbus(property)]
    fn refused(&self) -> u64 {
        self.shown.refused
    }

    /// The newest interval whose commitment is confirmed, ms since 1970; 0 before the first.
    #[zbus(property)]
    fn last_interval(&self) -> i64 {
        self.shown.last_interval
    }

    /// The newest market slot whose settlement is confirmed; 0 before the first.
    #[zbus(property)]
    fn last_slot(&self) -> i64 {
        self.shown.last_slot
    }

    /// Why the chain is not reached now; empty when it is.
    #[zbus(property)]
    fn error(&self) -> String {
        self.shown.error.clone()
    }

    /// The reading of `channel` at `time` (or the last before it in its 15-minute interval) with
    /// its Merkle proof: (its time, its power in mW, the interval's start, the root the history
    /// gives the interval, the proof). Check it with the contract's `verifyReading`.
    async fn prove(
        &self,
        channel: String,
        time: i64,
    ) -> Result<(i64, i64, i64, Vec<u8>, Vec<Vec<u8>>), Error> {
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| Error::History(e.to_string()))?;
        let (history, grid) = (self.history.clone(), self.grid.clone());
        let what = channel.clone();
        let proved =
            tokio::task::spawn_blocking(move || prove(&history, &grid, &what, Timestamp(time)))
                .await
                .map_err(|e| Error::History(e.to_string()))?
                .map_err(|e| Error::History(e.to_string()))?;
        let (reading, proof, root) = proved.ok_or_else(|| {
            Error::NotFound(format!(
                "no reading of {channel} at or before {time} in its interval"
            ))
        })?;
        let interval = daisee_ledger::interval_of(Timestamp(time)).0;
        Ok((
            reading.at.0,
            reading.power.0,
            interval,
            root.to_vec(),
            proof.iter().map(|p| p.to_vec()).collect(),
        ))
    }
}

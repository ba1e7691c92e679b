//! `org.daisee.Gateway1.Dialogue` at `Dialogue`: the gateway in its community's machine dialogue
//! (its identity, peers, the latest slot and report), and the record of each settled slot for
//! audits. There only when the configuration has a `[dialogue]`.

use std::path::PathBuf;

use daisee_hal::Timestamp;
use daisee_store::Reader;
use zbus::interface;

use super::Error;
use super::changes::Changes;
use crate::dialogue::DialogueStatus;

/// The dialogue, as its properties show it.
pub(super) struct DialogueObject {
    pub(super) community: String,
    pub(super) peer_id: String,
    pub(super) shown: Shown,
    /// The history, where settled slots are kept.
    pub(super) history: Option<PathBuf>,
    /// One query at a time: anyone may ask, and each reads the SD card.
    pub(super) one_at_a_time: tokio::sync::Semaphore,
}

/// The properties that change.
#[derive(Debug, Clone, Default)]
pub(super) struct Shown {
    peers: u32,
    bid_slot: i64,
    last_slot: i64,
    outcome: String,
    price: i64,
    price_step: i32,
    allocation: i64,
    kept_local: i64,
    report_slot: i64,
    deviation: i64,
    rejected: u64,
}

impl Shown {
    /// The properties of a status.
    pub(super) fn of(status: &DialogueStatus) -> Self {
        let (report_slot, deviation) = status.report.unwrap_or_default();
        let mut shown = Self {
            peers: status.peers,
            bid_slot: status.bid_slot,
            price_step: -1,
            report_slot,
            deviation,
            rejected: status.rejected,
            ..Self::default()
        };
        if let Some(last) = &status.last {
            shown.last_slot = last.slot;
            match &last.cleared {
                Ok((c, mine)) => {
                    shown.outcome = "agreed".into();
                    shown.price = c.price;
                    shown.price_step = i32::from(c.step);
                    shown.allocation = *mine;
                    shown.kept_local = c.kept_mw;
                }
                Err(why) => shown.outcome.clone_from(why),
            }
        }
        shown
    }
}

impl DialogueObject {
    pub(super) fn update(&mut self, status: &DialogueStatus) -> Changes {
        let mut changed = Changes::default();
        let new = Shown::of(status);
        let old = &mut self.shown;
        changed.set("Peers", &mut old.peers, new.peers);
        changed.set("BidSlot", &mut old.bid_slot, new.bid_slot);
        changed.set("LastSlot", &mut old.last_slot, new.last_slot);
        changed.set("Outcome", &mut old.outcome, new.outcome);
        changed.set("Price", &mut old.price, new.price);
        changed.set("PriceStep", &mut old.price_step, new.price_step);
        changed.set("Allocation", &mut old.allocation, new.allocation);
        changed.set("KeptLocal", &mut old.kept_local, new.kept_local);
        changed.set("ReportSlot", &mut old.report_slot, new.report_slot);
        changed.set("Deviation", &mut old.deviation, new.deviation);
        changed.set("Rejected", &mut old.rejected, new.rejected);
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Dialogue")]
impl DialogueObject {
    /// The community's name.
    #[zbus(property)]
    fn community(&self) -> String {
        self.community.clone()
    }

    /// The gateway's libp2p identity (the same key as its account).
    #[zbus(property)]
    fn peer_id(&self) -> String {
        self.peer_id.clone()
    }

    /// Peers of the community connected now.
    #[zbus(property)]
    fn peers(&self) -> u32 {
        self.shown.peers
    }

    /// The start of the latest slot the gateway bid for, in ms since 1970; 0 before its first.
    #[zbus(property)]
    fn bid_slot(&self) -> i64 {
        self.shown.bid_slot
    }

    /// The start of the latest slot that settled; 0 before the first.
    #[zbus(property)]
    fn last_slot(&self) -> i64 {
        self.shown.last_slot
    }

    /// How it settled: `agreed`, or `no trade: ` and why; empty before the first.
    #[zbus(property)]
    fn outcome(&self) -> String {
        self.shown.outcome.clone()
    }

    /// Its clearing price in micro-units of currency per kWh; 0 without trade.
    #[zbus(property)]
    fn price(&self) -> i64 {
        self.shown.price
    }

    /// Its clearing price step; -1 without trade.
    #[zbus(property)]
    fn price_step(&self) -> i32 {
        self.shown.price_step
    }

    /// This gateway's allocation in it, in mW (positive: take from the grid); 0 without trade.
    #[zbus(property)]
    fn allocation(&self) -> i64 {
        self.shown.allocation
    }

    /// Power that moved between members in it rather than to or from the grid, in mW.
    #[zbus(property)]
    fn kept_local(&self) -> i64 {
        self.shown.kept_local
    }

    /// The slot of the latest signed meter report; 0 before the first.
    #[zbus(property)]
    fn report_slot(&self) -> i64 {
        self.shown.report_slot
    }

    /// What the grid meter counted in that slot beyond the allocation, in mWh (negative: less
    /// taken or more sent); 0 for a slot without trade.
    #[zbus(property)]
    fn deviation(&self) -> i64 {
        self.shown.deviation
    }

    /// Messages refused since the agent started (each is in the journal with its reason).
    #[zbus(property)]
    fn rejected(&self) -> u64 {
        self.shown.rejected
    }

    /// The record of the slot starting at `slot` (ms since 1970): its outcome, price step (-1
    /// without trade), this gateway's allocation in mW, and its bid set in the protocol's JSON
    /// form, every bid signed, for `daiseectl dialogue audit`.
    async fn slot(&self, slot: i64) -> Result<(String, i32, i64, String), Error> {
        let path = self
            .history
            .clone()
            .ok_or_else(|| Error::History("no [store] in the configuration".into()))?;
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| Error::History(e.to_string()))?;
        let record =
            tokio::task::spawn_blocking(move || Reader::open(&path)?.market_slot(Timestamp(slot)))
                .await
                .map_err(|e| Error::History(e.to_string()))?
                .map_err(|e| Error::History(e.to_string()))?
                .ok_or_else(|| Error::NotFound(format!("slot {slot} did not settle here")))?;
        Ok((
            record.outcome,
            record.price_step.map_or(-1, i32::from),
            record.allocation_mw.unwrap_or(0),
            record.bid_set,
        ))
    }
}

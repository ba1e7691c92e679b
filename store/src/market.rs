//! The market slots this gateway settled in its community's dialogue: the outcome, the price and
//! its own allocation as it executed them, the signed bid set for audits, and what its grid meter
//! counted. Written by the dialogue's adapter on a connection of its own, beside the history's.

use std::path::Path;

use daisee_hal::{Energy, MilliWattHours, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{StoreError, schema};

/// One market slot as this gateway settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketSlot {
    /// Start of the slot.
    pub start: Timestamp,
    /// `agreed`, or why there was no local trade.
    pub outcome: String,
    /// The clearing price step, if the slot cleared.
    pub price_step: Option<u8>,
    /// This gateway's allocation in mW, if the slot cleared.
    pub allocation_mw: Option<i64>,
    /// The bid set in its JSON form (the protocol's), every bid signed.
    pub bid_set: String,
    /// What the grid meter counted in the slot, once it ended.
    pub metered: Option<Energy>,
    /// The base load in the slot, once it ended: the grid's mean power without the flexible
    /// loads and with the curtailed production given back, in mW.
    pub base_mw: Option<i64>,
}

/// The market slots, written.
#[derive(Debug)]
pub struct MarketLog {
    conn: Connection,
}

impl MarketLog {
    /// Opens the history at `path` (creating it, bringing its schema up to date) for the slots.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: schema::open_writer(path, "NORMAL")?,
        })
    }

    /// Records a settled slot; a slot settles once, so a second record of it changes nothing.
    pub fn settled(&self, slot: &MarketSlot) -> Result<bool, StoreError> {
        let metered = slot.metered.map(|e| (e.import.0, e.export.0));
        let rows = self.conn.execute(
            "INSERT OR IGNORE INTO market_slot
             (start_ms, outcome, price_step, allocation_mw, bid_set, import_mwh, export_mwh)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                slot.start.0,
                slot.outcome,
                slot.price_step,
                slot.allocation_mw,
                slot.bid_set,
                metered.map(|m| m.0),
                metered.map(|m| m.1),
            ],
        )?;
        Ok(rows == 1)
    }

    /// Records what the grid meter counted in a settled slot and its base load; false if the
    /// slot is not recorded.
    pub fn metered(
        &self,
        start: Timestamp,
        energy: Energy,
        base_mw: i64,
    ) -> Result<bool, StoreError> {
        let rows = self.conn.execute(
            "UPDATE market_slot SET import_mwh = ?2, export_mwh = ?3, base_mw = ?4
             WHERE start_ms = ?1",
            params![start.0, energy.import.0, energy.export.0, base_mw],
        )?;
        Ok(rows == 1)
    }
}

/// The base loads of the latest `count` metered market slots starting before `to`, oldest
/// first.
pub(crate) fn market_bases(
    conn: &Connection,
    to: Timestamp,
    count: usize,
) -> Result<Vec<(Timestamp, i64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT start_ms, base_mw FROM market_slot
         WHERE start_ms < ?1 AND base_mw IS NOT NULL
         ORDER BY start_ms DESC LIMIT ?2",
    )?;
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let mut bases = statement
        .query_map(params![to.0, count], |r| {
            Ok((Timestamp(r.get(0)?), r.get(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    bases.reverse();
    Ok(bases)
}

/// The slot starting at `start`, if it settled.
pub(crate) fn market_slot(
    conn: &Connection,
    start: Timestamp,
) -> Result<Option<MarketSlot>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM market_slot WHERE start_ms = ?1"
        ))?
        .query_row([start.0], slot_of_row)
        .optional()?;
    Ok(row)
}

/// The agreed and metered slots not yet queued for settlement on the ledger, oldest first, at
/// most `limit`.
pub(crate) fn unsettled(conn: &Connection, limit: usize) -> Result<Vec<MarketSlot>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM market_slot m
         WHERE outcome = 'agreed' AND import_mwh IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM ledger_outbox o WHERE o.kind = 'settlement' AND o.at_ms = m.start_ms)
         ORDER BY start_ms LIMIT ?1"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let slots = statement
        .query_map([limit], slot_of_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(slots)
}

/// The columns [`slot_of_row`] reads, in its order.
const COLUMNS: &str =
    "start_ms, outcome, price_step, allocation_mw, bid_set, import_mwh, export_mwh, base_mw";

fn slot_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MarketSlot> {
    let import: Option<u64> = r.get(5)?;
    let export: Option<u64> = r.get(6)?;
    Ok(MarketSlot {
        start: Timestamp(r.get(0)?),
        outcome: r.get(1)?,
        price_step: r.get(2)?,
        allocation_mw: r.get(3)?,
        bid_set: r.get(4)?,
        metered: import.zip(export).map(|(i, e)| Energy {
            import: MilliWattHours(i),
            export: MilliWattHours(e),
        }),
        base_mw: r.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_settles_once_and_is_metered_later() {
        let dir = std::env::temp_dir().join(format!("daisee-market-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.sqlite");
        let log = MarketLog::open(&path).unwrap();
        let slot = MarketSlot {
            start: Timestamp(900_000),
            outcome: "agreed".into(),
            price_step: Some(12),
            allocation_mw: Some(-1_500_000),
            bid_set: "{}".into(),
            metered: None,
            base_mw: None,
        };
        let energy = Energy {
            import: MilliWattHours(10),
            export: MilliWattHours(400_000),
        };
        assert!(!log.metered(slot.start, energy, 1_200).unwrap());
        assert!(log.settled(&slot).unwrap());
        let other = MarketSlot {
            outcome: "no trade".into(),
            ..slot.clone()
        };
        assert!(!log.settled(&other).unwrap());
        assert!(log.metered(slot.start, energy, -1_599_960).unwrap());
        let read = crate::Reader::open(&path).unwrap();
        let stored = read.market_slot(slot.start).unwrap().unwrap();
        assert_eq!(
            stored,
            MarketSlot {
                metered: Some(energy),
                base_mw: Some(-1_599_960),
                ..slot.clone()
            }
        );
        assert_eq!(read.market_slot(Timestamp(0)).unwrap(), None);
        // Two more slots, one not metered: the bases are the metered ones', oldest first.
        for start in [1_800_000, 2_700_000] {
            let later = MarketSlot {
                start: Timestamp(start),
                ..slot.clone()
            };
            log.settled(&later).unwrap();
        }
        log.metered(Timestamp(2_700_000), energy, 7).unwrap();
        let all = vec![(Timestamp(900_000), -1_599_960), (Timestamp(2_700_000), 7)];
        assert_eq!(read.market_bases(Timestamp(3_600_000), 5).unwrap(), all);
        assert_eq!(
            read.market_bases(Timestamp(3_600_000), 1).unwrap(),
            all[1..]
        );
        assert_eq!(
            read.market_bases(Timestamp(2_700_000), 5).unwrap(),
            all[..1]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The market slots this gateway settled in its community's dialogue: the outcome, the price and
//! its own allocation as it executed them, the signed bid set for audits, and what its grid meter
//! counted. Written by the dialogue's adapter on a connection of its own, beside the history's.

use std::path::Path;
use std::time::Duration;

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
}

/// The market slots, written.
#[derive(Debug)]
pub struct MarketLog {
    conn: Connection,
}

impl MarketLog {
    /// Opens the history at `path` (creating it, bringing its schema up to date) for the slots.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        Ok(Self { conn })
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

    /// Records what the grid meter counted in a settled slot; false if it is not recorded.
    pub fn metered(&self, start: Timestamp, energy: Energy) -> Result<bool, StoreError> {
        let rows = self.conn.execute(
            "UPDATE market_slot SET import_mwh = ?2, export_mwh = ?3 WHERE start_ms = ?1",
            params![start.0, energy.import.0, energy.export.0],
        )?;
        Ok(rows == 1)
    }
}

/// The slot starting at `start`, if it settled.
pub(crate) fn market_slot(
    conn: &Connection,
    start: Timestamp,
) -> Result<Option<MarketSlot>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT outcome, price_step, allocation_mw, bid_set, import_mwh, export_mwh
             FROM market_slot WHERE start_ms = ?1",
        )?
        .query_row([start.0], |r| {
            let import: Option<u64> = r.get(4)?;
            let export: Option<u64> = r.get(5)?;
            Ok(MarketSlot {
                start,
                outcome: r.get(0)?,
                price_step: r.get(1)?,
                allocation_mw: r.get(2)?,
                bid_set: r.get(3)?,
                metered: import.zip(export).map(|(i, e)| Energy {
                    import: MilliWattHours(i),
                    export: MilliWattHours(e),
                }),
            })
        })
        .optional()?;
    Ok(row)
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
        };
        let energy = Energy {
            import: MilliWattHours(10),
            export: MilliWattHours(400_000),
        };
        assert!(!log.metered(slot.start, energy).unwrap());
        assert!(log.settled(&slot).unwrap());
        let other = MarketSlot {
            outcome: "no trade".into(),
            ..slot.clone()
        };
        assert!(!log.settled(&other).unwrap());
        assert!(log.metered(slot.start, energy).unwrap());
        let read = crate::Reader::open(&path).unwrap();
        let stored = read.market_slot(slot.start).unwrap().unwrap();
        assert_eq!(
            stored,
            MarketSlot {
                metered: Some(energy),
                ..slot
            }
        );
        assert_eq!(read.market_slot(Timestamp(0)).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

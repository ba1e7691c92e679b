//! A read-only view of the history for queries (D-Bus, the CLI): it never creates the file,
//! migrates its schema or takes the writer's lock, so anyone may ask while the agent writes.

use std::path::Path;
use std::time::Duration;

use daisee_hal::{MilliWatts, Timestamp};
use rusqlite::{Connection, OpenFlags};

use crate::market::{market_bases, market_slot};
use crate::{MarketSlot, RelayEvent, SlotEnergy, StoreError, query};

/// The history, opened read-only.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens the history at `path` read-only; it must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Self { conn })
    }

    /// The stored samples of `channel` from `from` (inclusive) to `to` (exclusive).
    pub fn samples(
        &self,
        channel: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, MilliWatts)>, StoreError> {
        query::samples(&self.conn, channel, from, to)
    }

    /// The energy slots of `channel` starting from `from` (inclusive) to `to` (exclusive).
    pub fn energy(
        &self,
        channel: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SlotEnergy>, StoreError> {
        query::energy(&self.conn, channel, from, to)
    }

    /// Relay events from `from` (inclusive) to `to` (exclusive), oldest first.
    pub fn relay_events(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RelayEvent>, StoreError> {
        query::relay_events(&self.conn, from, to)
    }

    /// The channels with history, by name.
    pub fn channels(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT name FROM channel ORDER BY name")?;
        let names = statement
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    /// The market slot starting at `start`, if the gateway settled it.
    pub fn market_slot(&self, start: Timestamp) -> Result<Option<MarketSlot>, StoreError> {
        market_slot(&self.conn, start)
    }

    /// The base loads of the latest `count` metered market slots starting before `to`, oldest
    /// first: what the dialogue forecasts the next slots from.
    pub fn market_bases(
        &self,
        to: Timestamp,
        count: usize,
    ) -> Result<Vec<(Timestamp, i64)>, StoreError> {
        market_bases(&self.conn, to, count)
    }
}

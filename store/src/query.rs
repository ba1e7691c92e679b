//! The history's read queries, shared by the writer and the read-only reader.

use daisee_hal::{Energy, MilliWattHours, MilliWatts, RelayState, Timestamp};
use rusqlite::{Connection, params};

use crate::{MAX_BLOCK_MS, block};
use crate::{RelayEvent, SlotEnergy, StoreError};

/// The stored samples of `channel` from `from` (inclusive) to `to` (exclusive).
pub(crate) fn samples(
    conn: &Connection,
    channel: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Timestamp, MilliWatts)>, StoreError> {
    // By name, not by this connection's cache: a reader sees channels a writer added since.
    // A block spans at most MAX_BLOCK_MS: one that holds `from` starts no earlier than that.
    let mut query = conn.prepare_cached(
        "SELECT s.start_ms, s.data FROM sample s JOIN channel c ON c.id = s.channel
         WHERE c.name = ?1 AND s.start_ms < ?3 AND s.start_ms > ?2 ORDER BY s.start_ms",
    )?;
    let mut rows = query.query(params![channel, from.0.saturating_sub(MAX_BLOCK_MS), to.0])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let data: Vec<u8> = row.get(1)?;
        let samples = block::decode(Timestamp(row.get(0)?), &data)?;
        out.extend(samples.into_iter().filter(|(t, _)| (from..to).contains(t)));
    }
    Ok(out)
}

/// The energy slots of `channel` starting from `from` (inclusive) to `to` (exclusive).
pub(crate) fn energy(
    conn: &Connection,
    channel: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<SlotEnergy>, StoreError> {
    let mut query = conn.prepare_cached(
        "SELECT e.start_ms, e.import_mwh, e.export_mwh FROM energy_slot e
         JOIN channel c ON c.id = e.channel
         WHERE c.name = ?1 AND e.start_ms >= ?2 AND e.start_ms < ?3 ORDER BY e.start_ms",
    )?;
    let rows = query.query_map(params![channel, from.0, to.0], |row| {
        Ok(SlotEnergy {
            start: Timestamp(row.get(0)?),
            energy: Energy {
                import: MilliWattHours(row.get::<_, i64>(1)? as u64),
                export: MilliWattHours(row.get::<_, i64>(2)? as u64),
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Relay events from `from` (inclusive) to `to` (exclusive), oldest first.
pub(crate) fn relay_events(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<RelayEvent>, StoreError> {
    let mut query = conn.prepare_cached(
        "SELECT at_ms, relay, state, cause FROM relay_event WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id",
    )?;
    let rows = query.query_map(params![from.0, to.0], |row| {
        let state: String = row.get(2)?;
        Ok(RelayEvent {
            at: Timestamp(row.get(0)?),
            relay: row.get(1)?,
            state: if state == "on" {
                RelayState::On
            } else {
                RelayState::Off
            },
            cause: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

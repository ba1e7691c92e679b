//! The schema and its migrations: `PRAGMA user_version` says which have run; each runs once, in
//! its own transaction, so a power cut mid-migration leaves the previous version intact.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::StoreError;

/// Migrations in order; the schema version is the number that have run.
const MIGRATIONS: &[&str] = &[
    // 1: channels, sample blocks, 15-minute energy slots, relay events.
    "CREATE TABLE channel (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
     );
     CREATE TABLE sample (
        channel INTEGER NOT NULL REFERENCES channel (id),
        start_ms INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (channel, start_ms)
     ) WITHOUT ROWID;
     CREATE TABLE energy_slot (
        channel INTEGER NOT NULL REFERENCES channel (id),
        start_ms INTEGER NOT NULL,
        import_mwh INTEGER NOT NULL,
        export_mwh INTEGER NOT NULL,
        PRIMARY KEY (channel, start_ms)
     ) WITHOUT ROWID;
     CREATE TABLE relay_event (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        relay TEXT NOT NULL,
        state TEXT NOT NULL,
        cause TEXT NOT NULL
     );
     CREATE INDEX relay_event_at ON relay_event (at_ms);",
    // 2: market slots of the machine dialogue.
    "CREATE TABLE market_slot (
        start_ms INTEGER PRIMARY KEY,
        outcome TEXT NOT NULL,
        price_step INTEGER,
        allocation_mw INTEGER,
        bid_set TEXT NOT NULL,
        import_mwh INTEGER,
        export_mwh INTEGER
     );",
    // 3: the base load of each metered market slot, which the next bids are forecast from.
    "ALTER TABLE market_slot ADD COLUMN base_mw INTEGER;",
    // 4: the ledger's outbox: each transaction from queued to confirmed, its signed bytes kept
    // from before it is first sent.
    "CREATE TABLE ledger_outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        call BLOB NOT NULL,
        state TEXT NOT NULL,
        nonce INTEGER,
        tx_hash BLOB,
        raw_tx BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_ms INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        queued_ms INTEGER NOT NULL,
        done_ms INTEGER,
        UNIQUE (kind, at_ms)
     );
     CREATE INDEX ledger_outbox_due ON ledger_outbox (state, next_try_ms);",
];

/// Opens the history at `path` for a writer of its own beside the store's (creating it, bringing
/// its schema up to date), in WAL mode with `synchronous` (`NORMAL` or `FULL`).
pub(crate) fn open_writer(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    migrate(&conn)?;
    Ok(conn)
}

/// Brings the schema of `conn` up to date. Each migration takes the write lock before it reads
/// the version, so that two connections opening the file at once run it once.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    loop {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_of_an_earlier_version_keeps_its_rows_when_brought_up_to_date() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO market_slot (start_ms, outcome, bid_set, import_mwh, export_mwh)
             VALUES (900000, 'agreed', '{}', 10, 20)",
            [],
        )
        .unwrap();
        migrate(&conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let row: (i64, Option<i64>) = conn
            .query_row("SELECT import_mwh, base_mw FROM market_slot", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(row, (10, None));
    }
}

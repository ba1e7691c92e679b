//! The schema and its migrations: `PRAGMA user_version` says which have run; each runs once, in
//! its own transaction, so a power cut mid-migration leaves the previous version intact.

use rusqlite::Connection;

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
];

/// Brings the schema of `conn` up to date.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

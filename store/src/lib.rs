//! The gateway's history in SQLite (WAL): power samples packed in blocks, energy rolled up per
//! 15-minute slot, relay events.
//!
//! Writes are batched: [`Store::record`] keeps samples in memory and [`Store::flush`] writes them
//! in one transaction, which is when they are acknowledged. A killed process loses only what was
//! not flushed; a full disk fails the flush, keeps the batch (up to a bound) and leaves the store
//! usable for the next try.

mod block;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use daisee_hal::{Energy, MilliWattHours, MilliWatts, RelayState, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

pub use block::Damaged;

/// Length of an energy slot: 15 minutes, aligned to the hour.
pub const SLOT_MS: i64 = 15 * 60 * 1000;

/// The longest time one sample block spans, so that a read finds the blocks it needs by start.
const MAX_BLOCK_MS: i64 = 3_600_000;

/// What the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the file system's quota) is full; the batch is kept for the next flush.
    #[error("the disk is full: {pending} samples wait in memory for the next flush")]
    Full {
        /// Samples still waiting.
        pending: usize,
    },
    /// The database file is damaged.
    #[error("the history is damaged: {0}")]
    Damaged(String),
    /// SQLite failed otherwise.
    #[error("history: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer agent.
    #[error("the history has schema version {found}; this agent knows up to {known}")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this code knows.
        known: i64,
    },
}

impl From<Damaged> for StoreError {
    fn from(e: Damaged) -> Self {
        StoreError::Damaged(e.to_string())
    }
}

/// How the store keeps and writes history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long raw samples are kept; energy roll-ups and relay events are kept for good.
    pub samples: Duration,
    /// The most samples kept in memory while the disk refuses them; the oldest go first.
    pub max_pending: usize,
}

/// Energy of one channel in one 15-minute slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotEnergy {
    /// Start of the slot.
    pub start: Timestamp,
    /// Energy imported and exported in it.
    pub energy: Energy,
}

/// A relay switching, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEvent {
    /// When.
    pub at: Timestamp,
    /// Which relay.
    pub relay: String,
    /// The state it went to.
    pub state: RelayState,
    /// Why (`import limit`, `schedule`, `override`, `safe state` …).
    pub cause: String,
}

/// What a flush made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flushed {
    /// Samples written.
    pub samples: usize,
    /// The newest sample written, if any.
    pub newest: Option<Timestamp>,
}

/// Per-channel energy bookkeeping between flushes.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    last: Option<Energy>,
}

/// The history.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    retention: Retention,
    channels: HashMap<String, i64>,
    counters: HashMap<i64, Counter>,
    pending: BTreeMap<i64, Vec<(Timestamp, MilliWatts)>>,
    pending_energy: BTreeMap<(i64, i64), Energy>,
    pending_events: Vec<RelayEvent>,
    dropped: u64,
}

impl Store {
    /// Opens (or creates) the history at `path`, bringing its schema up to date.
    pub fn open(path: &Path, retention: Retention) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // WAL: readers never block the writer, and a commit is one sequential append. NORMAL
        // syncs at checkpoints, not at every commit: a killed process loses nothing committed; a
        // power cut may lose the last commits but never corrupts the file.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Writes append and reads are rare: a small page cache (512 KiB, not 2 MiB) is enough.
        conn.pragma_update(None, "cache_size", -512)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        let mut channels = HashMap::new();
        {
            let mut rows = conn.prepare("SELECT name, id FROM channel")?;
            let mut it = rows.query([])?;
            while let Some(row) = it.next()? {
                channels.insert(row.get(0)?, row.get(1)?);
            }
        }
        Ok(Self {
            conn,
            retention,
            channels,
            counters: HashMap::new(),
            pending: BTreeMap::new(),
            pending_energy: BTreeMap::new(),
            pending_events: Vec::new(),
            dropped: 0,
        })
    }

    /// Keeps a sample of `channel` for the next flush: its power at `at` and its energy counters,
    /// whose increases are rolled up into 15-minute slots (a counter that went back, a device
    /// replaced or an agent restarted, starts a new baseline).
    pub fn record(
        &mut self,
        at: Timestamp,
        channel: &str,
        power: MilliWatts,
        energy: Energy,
    ) -> Result<(), StoreError> {
        let id = self.channel_id(channel)?;
        let samples = self.pending.entry(id).or_default();
        // Samples go in time order; an older one (a clock stepped back) would not decode.
        if samples.last().is_some_and(|(t, _)| at < *t) {
            return Ok(());
        }
        samples.push((at, power));
        let counter = self.counters.entry(id).or_default();
        if let Some(last) = counter.last {
            let slot = at.0.div_euclid(SLOT_MS) * SLOT_MS;
            let add = |now: MilliWattHours, before: MilliWattHours| now.0.saturating_sub(before.0);
            let e = self.pending_energy.entry((id, slot)).or_default();
            e.import.0 += add(energy.import, last.import);
            e.export.0 += add(energy.export, last.export);
        }
        counter.last = Some(energy);
        self.bound_pending();
        Ok(())
    }

    /// Keeps a relay event for the next flush.
    pub fn record_relay(&mut self, event: RelayEvent) {
        self.pending_events.push(event);
    }

    /// Samples waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Samples dropped so far because the disk refused them for too long.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes everything waiting in one transaction; on failure nothing is written and everything
    /// still waits.
    pub fn flush(&mut self) -> Result<Flushed, StoreError> {
        let mut flushed = Flushed::default();
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            {
                let mut block = tx.prepare_cached(
                    "INSERT OR REPLACE INTO sample (channel, start_ms, data) VALUES (?1, ?2, ?3)",
                )?;
                for (channel, samples) in &self.pending {
                    let mut rest = samples.as_slice();
                    while let Some(&(start, _)) = rest.first() {
                        let len = rest
                            .iter()
                            .position(|(t, _)| t.0 - start.0 >= MAX_BLOCK_MS)
                            .unwrap_or(rest.len());
                        let (this, next) = rest.split_at(len);
                        block.execute(params![channel, start.0, block::encode(this)])?;
                        rest = next;
                    }
                    flushed.samples += samples.len();
                    flushed.newest = flushed.newest.max(samples.last().map(|(t, _)| *t));
                }
                let mut slot = tx.prepare_cached(
                    "INSERT INTO energy_slot (channel, start_ms, import_mwh, export_mwh) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (channel, start_ms) DO UPDATE SET
                        import_mwh = import_mwh + excluded.import_mwh,
                        export_mwh = export_mwh + excluded.export_mwh",
                )?;
                for ((channel, start), e) in &self.pending_energy {
                    slot.execute(params![
                        channel,
                        start,
                        e.import.0 as i64,
                        e.export.0 as i64
                    ])?;
                }
                let mut event = tx.prepare_cached(
                    "INSERT INTO relay_event (at_ms, relay, state, cause) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for e in &self.pending_events {
                    event.execute(params![e.at.0, e.relay, e.state.as_str(), e.cause])?;
                }
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                self.pending.clear();
                self.pending_energy.clear();
                self.pending_events.clear();
                Ok(flushed)
            }
            Err(e) if is_full(&e) => Err(StoreError::Full {
                pending: self.pending(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes samples older than the retention period before `now`; returns the blocks deleted.
    pub fn prune(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let keep_from = now.0 - self.retention.samples.as_millis() as i64;
        Ok(self
            .conn
            .execute("DELETE FROM sample WHERE start_ms < ?1", [keep_from])?)
    }

    /// The stored samples of `channel` from `from` (inclusive) to `to` (exclusive).
    pub fn samples(
        &self,
        channel: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, MilliWatts)>, StoreError> {
        // By name, not by this connection's cache: a reader sees channels a writer added since.
        // A block spans at most MAX_BLOCK_MS: one that holds `from` starts no earlier than that.
        let mut query = self.conn.prepare_cached(
            "SELECT s.start_ms, s.data FROM sample s JOIN channel c ON c.id = s.channel
             WHERE c.name = ?1 AND s.start_ms < ?3 AND s.start_ms > ?2 ORDER BY s.start_ms",
        )?;
        let mut rows = query.query(params![channel, from.0 - MAX_BLOCK_MS, to.0])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let data: Vec<u8> = row.get(1)?;
            let samples = block::decode(Timestamp(row.get(0)?), &data)?;
            out.extend(samples.into_iter().filter(|(t, _)| (from..to).contains(t)));
        }
        Ok(out)
    }

    /// The energy slots of `channel` starting from `from` (inclusive) to `to` (exclusive).
    pub fn energy(
        &self,
        channel: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SlotEnergy>, StoreError> {
        let mut query = self.conn.prepare_cached(
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
    pub fn relay_events(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RelayEvent>, StoreError> {
        let mut query = self.conn.prepare_cached(
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

    /// The channels with history, by name.
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.channels.keys().cloned().collect();
        names.sort();
        names
    }

    fn channel_id(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.channels.get(name) {
            return Ok(*id);
        }
        // A new channel is written at once: it is tiny, and every later block refers to it.
        let existing = self
            .conn
            .query_row("SELECT id FROM channel WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                self.conn
                    .execute("INSERT INTO channel (name) VALUES (?1)", [name])
                    .map_err(|e| {
                        if is_full(&e) {
                            StoreError::Full {
                                pending: self.pending(),
                            }
                        } else {
                            e.into()
                        }
                    })?;
                self.conn.last_insert_rowid()
            }
        };
        self.channels.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Drops the oldest waiting samples beyond the bound.
    fn bound_pending(&mut self) {
        let mut excess = self.pending().saturating_sub(self.retention.max_pending);
        while excess > 0 {
            let oldest = self
                .pending
                .iter()
                .filter_map(|(id, s)| s.first().map(|(t, _)| (*t, *id)))
                .min();
            let Some((_, id)) = oldest else { break };
            if let Some(samples) = self.pending.get_mut(&id) {
                samples.remove(0);
                excess -= 1;
                self.dropped += 1;
            }
        }
    }
}

fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
        || matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE)
}

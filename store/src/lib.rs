//! The gateway's history in SQLite (WAL): power samples packed in blocks, energy rolled up per
//! 15-minute slot, relay events.
//!
//! Writes are batched: [`Store::record`] keeps samples in memory and [`Store::flush`] writes them
//! in one transaction, which is when they are acknowledged. A killed process loses only what was
//! not flushed; a full disk fails the flush, keeps the batch (up to a bound) and leaves the store
//! usable for the next try.

mod block;
mod market;
mod outbox;
mod query;
mod reader;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use daisee_hal::{Energy, MilliWattHours, MilliWatts, RelayState, Timestamp};
use rusqlite::{Connection, params};

pub use block::Damaged;
pub use market::{MarketLog, MarketSlot};
pub use outbox::{Outbox, OutboxState, Pending, Posting, Signed};
pub use reader::Reader;

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

/// Per-channel bookkeeping between samples.
#[derive(Debug, Clone, Copy, Default)]
struct Channel {
    /// The newest sample taken (flushed or waiting): a sample must be newer.
    newest: Option<Timestamp>,
    /// The counters and power of the last sample, to roll energy up.
    last: Option<(Timestamp, Energy, MilliWatts)>,
}

/// The history.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    retention: Retention,
    ids: HashMap<String, i64>,
    channels: HashMap<String, Channel>,
    pending: BTreeMap<String, Vec<(Timestamp, MilliWatts)>>,
    pending_energy: BTreeMap<(String, i64), Energy>,
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
        let mut ids = HashMap::new();
        let mut channels = HashMap::new();
        {
            // Each channel's newest stored sample: nothing older may follow it.
            let mut rows = conn.prepare(
                "SELECT c.name, c.id, s.start_ms, s.data FROM channel c LEFT JOIN sample s
                 ON s.channel = c.id AND s.start_ms = (SELECT MAX(start_ms) FROM sample WHERE channel = c.id)",
            )?;
            let mut it = rows.query([])?;
            while let Some(row) = it.next()? {
                let name: String = row.get(0)?;
                ids.insert(name.clone(), row.get(1)?);
                if let (Some(start), Some(data)) = (
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<Vec<u8>>>(3)?,
                ) {
                    let newest = block::decode(Timestamp(start), &data)?
                        .last()
                        .map(|(t, _)| *t);
                    channels.insert(name, Channel { newest, last: None });
                }
            }
        }
        Ok(Self {
            conn,
            retention,
            ids,
            channels,
            pending: BTreeMap::new(),
            pending_energy: BTreeMap::new(),
            pending_events: Vec::new(),
            dropped: 0,
        })
    }

    /// Keeps a sample of `channel` for the next flush: its power at `at` and its energy counters,
    /// whose increases are rolled up into 15-minute slots. A sample no newer than the channel's
    /// newest (a clock stepped back) is dropped and counted: history only moves forward. A counter
    /// that goes back (a device replaced, an agent restarted) or jumps by more than its power could
    /// have counted (a glitched read) starts a new baseline instead of adding energy.
    pub fn record(&mut self, at: Timestamp, channel: &str, power: MilliWatts, energy: Energy) {
        let state = self.channels.entry(channel.to_owned()).or_default();
        if state.newest.is_some_and(|newest| at <= newest) {
            self.dropped += 1;
            return;
        }
        state.newest = Some(at);
        self.pending
            .entry(channel.to_owned())
            .or_default()
            .push((at, power));
        if let Some((t0, before, p0)) = state.last {
            // Four times the energy the larger power would count in the interval, plus 10 Wh.
            let ms = u64::try_from(at.millis_since(t0)).unwrap_or(0);
            let most =
                p0.0.unsigned_abs()
                    .max(power.0.unsigned_abs())
                    .saturating_mul(ms)
                    / 900_000
                    + 10_000;
            let add = |now: MilliWattHours, before: MilliWattHours| {
                now.0
                    .checked_sub(before.0)
                    .filter(|inc| *inc <= most)
                    .unwrap_or(0)
            };
            let slot = at.0.div_euclid(SLOT_MS) * SLOT_MS;
            let e = self
                .pending_energy
                .entry((channel.to_owned(), slot))
                .or_default();
            e.import.0 += add(energy.import, before.import);
            e.export.0 += add(energy.export, before.export);
        }
        state.last = Some((at, energy, power));
        self.bound_pending();
    }

    /// Keeps a relay event for the next flush.
    pub fn record_relay(&mut self, event: RelayEvent) {
        self.pending_events.push(event);
    }

    /// Samples waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// Samples dropped so far: out of time order, or waiting too long on a full disk.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes everything waiting in one transaction; on failure nothing is written and everything
    /// still waits.
    pub fn flush(&mut self) -> Result<Flushed, StoreError> {
        let mut flushed = Flushed::default();
        let mut new_ids = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            {
                let mut add_channel =
                    tx.prepare_cached("INSERT INTO channel (name) VALUES (?1)")?;
                let mut id = |name: &str| -> rusqlite::Result<i64> {
                    if let Some(id) = self.ids.get(name) {
                        return Ok(*id);
                    }
                    if let Some((_, id)) = new_ids.iter().find(|(n, _): &&(String, i64)| n == name)
                    {
                        return Ok(*id);
                    }
                    add_channel.execute([name])?;
                    let id = tx.last_insert_rowid();
                    new_ids.push((name.to_owned(), id));
                    Ok(id)
                };
                let mut block = tx.prepare_cached(
                    "INSERT INTO sample (channel, start_ms, data) VALUES (?1, ?2, ?3)",
                )?;
                for (channel, samples) in &self.pending {
                    let channel = id(channel)?;
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
                        id(channel)?,
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
                self.ids.extend(new_ids);
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
        let keep = i64::try_from(self.retention.samples.as_millis()).unwrap_or(i64::MAX);
        let keep_from = now.0.saturating_sub(keep);
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
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ids.keys().cloned().collect();
        names.sort();
        names
    }

    /// Drops the oldest waiting samples beyond the bound.
    fn bound_pending(&mut self) {
        let mut excess = self.pending().saturating_sub(self.retention.max_pending);
        while excess > 0 {
            let oldest = self
                .pending
                .iter()
                .filter_map(|(name, s)| s.first().map(|(t, _)| (*t, name.clone())))
                .min();
            let Some((_, name)) = oldest else { break };
            if let Some(samples) = self.pending.get_mut(&name) {
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

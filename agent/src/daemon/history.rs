//! The history as the daemon keeps it: samples buffered and flushed, old ones pruned, a history
//! that could not be opened (a full disk at start, a missing mount) tried again every minute.

use std::time::{Duration, Instant};

use daisee_store::{RelayEvent, Retention, Store};

use crate::config::StoreConfig;
use crate::journal::{Journal, Priority};
use crate::snapshot::Snapshot;

/// The most samples kept in memory while the disk refuses them: an hour of 16 channels at 1 Hz.
const MAX_PENDING: usize = 16 * 3600;

/// How often old samples are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How often a history that could not be opened is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(60);

/// The history, or why it is not open yet: the agent runs on without it.
pub(super) struct History {
    config: StoreConfig,
    store: Option<Store>,
    // Monotonic: a clock stepped back must not stop flushing.
    last_flush: Instant,
    last_prune: Instant,
    last_open: Instant,
    acknowledged: usize,
    dropped: u64,
}

impl History {
    pub(super) fn new(config: &StoreConfig, journal: &Journal) -> Self {
        let now = Instant::now();
        let mut history = Self {
            config: config.clone(),
            store: None,
            last_flush: now,
            last_prune: now,
            last_open: now,
            acknowledged: 0,
            dropped: 0,
        };
        history.open(journal);
        history
    }

    fn open(&mut self, journal: &Journal) {
        self.last_open = Instant::now();
        let retention = Retention {
            samples: self.config.retention,
            max_pending: MAX_PENDING,
        };
        let dir = &self.config.dir;
        let opened = std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|()| {
                Store::open(&dir.join("history.sqlite"), retention).map_err(|e| e.to_string())
            });
        match opened {
            Ok(store) => self.store = Some(store),
            Err(e) => journal.log(
                Priority::Error,
                &format!(
                    "history: cannot open it ({e}); running without, trying again every minute"
                ),
                &[],
            ),
        }
    }

    /// Buffers a relay's change, if the history is open.
    pub(super) fn record_relay(&mut self, event: RelayEvent) {
        if let Some(store) = &mut self.store {
            store.record_relay(event);
        }
    }

    /// Buffers a snapshot's readings, and flushes and prunes when it is time.
    pub(super) fn record(&mut self, snapshot: &Snapshot, journal: &Journal) {
        let Some(store) = &mut self.store else {
            if self.last_open.elapsed() >= REOPEN_EVERY {
                self.open(journal);
            }
            return;
        };
        for c in &snapshot.channels {
            if let Ok(r) = &c.reading {
                store.record(snapshot.at, &c.name, r.power, c.energy);
            }
        }
        if self.last_prune.elapsed() >= PRUNE_EVERY {
            self.last_prune = Instant::now();
            if let Err(e) = store.prune(snapshot.at) {
                journal.log(Priority::Error, &format!("history: pruning: {e}"), &[]);
            }
        }
        if self.last_flush.elapsed() >= self.config.flush_interval {
            self.last_flush = Instant::now();
            self.flush(journal);
        }
    }

    /// Writes the buffered samples and says what is now safe on disk, and what was lost.
    pub(super) fn flush(&mut self, journal: &Journal) {
        let Some(store) = &mut self.store else { return };
        match store.flush() {
            Ok(f) => {
                self.acknowledged += f.samples;
                if let Some(newest) = f.newest {
                    let message = format!(
                        "history: stored {} samples ({} in all) up to {newest}",
                        f.samples, self.acknowledged
                    );
                    let all = self.acknowledged.to_string();
                    journal.log(Priority::Info, &message, &[("DAISEE_STORED", &all)]);
                }
            }
            Err(e) => {
                let pending = store.pending().to_string();
                journal.log(
                    Priority::Error,
                    &format!("history: {e}"),
                    &[("DAISEE_PENDING", &pending)],
                );
            }
        }
        if store.dropped() > self.dropped {
            let lost = store.dropped() - self.dropped;
            self.dropped = store.dropped();
            journal.log(
                Priority::Warning,
                &format!(
                    "history: {lost} samples dropped (out of time order, or the disk full too long)"
                ),
                &[("DAISEE_DROPPED", &self.dropped.to_string())],
            );
        }
    }
}

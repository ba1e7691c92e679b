//! One turn of the agent's main loop: read every device, let demand response decide, switch the
//! relays, keep the history, and tell systemd the loop is alive.

use std::sync::Arc;
use std::time::Duration;

use daisee_control::{Controller, Settings};
use daisee_hal::{Clock, Timestamp};
use daisee_store::{RelayEvent, Retention, Store, StoreError};

use crate::config::{Config, StoreConfig};
use crate::gateway::{Gateway, Snapshot};
use crate::notify::Notifier;

/// The most samples kept in memory while the disk refuses them: an hour of 16 channels at 1 Hz.
const MAX_PENDING: usize = 16 * 3600;

/// How often old samples are pruned.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The agent's devices, decisions and history.
pub struct Daemon {
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    control: Option<(Controller, String)>,
    history: Option<History>,
    notifier: Option<Notifier>,
    ready: bool,
}

struct History {
    store: Store,
    flush_interval: Duration,
    last_flush: Timestamp,
    last_prune: Timestamp,
    acknowledged: usize,
}

impl Daemon {
    /// The daemon of a built gateway: opens the history and sets up demand response.
    pub fn new(
        config: &Config,
        gateway: Gateway,
        clock: Arc<dyn Clock>,
        notifier: Option<Notifier>,
    ) -> Result<Self, StoreError> {
        let now = clock.now();
        let history = config
            .store
            .as_ref()
            .map(|s| History::open(s, now))
            .transpose()?;
        let control = config.control.as_ref().map(|c| {
            let loads = config
                .relays
                .iter()
                .filter_map(|r| r.flex.clone())
                .collect();
            let settings = Settings {
                import_limit: c.import_limit,
                stale_after: c.stale_after,
            };
            (Controller::new(settings, loads), c.grid.clone())
        });
        Ok(Self {
            gateway,
            clock,
            control,
            history,
            notifier,
            ready: false,
        })
    }

    /// The gateway's name.
    pub fn name(&self) -> &str {
        self.gateway.name()
    }

    /// One turn: poll, decide, switch, record, notify. Problems are reported on stderr (the
    /// journal) and never stop the loop.
    pub fn step(&mut self) -> Snapshot {
        let mut snapshot = self.gateway.poll();
        if let Some((controller, grid)) = &mut self.control {
            let reading = snapshot
                .channels
                .iter()
                .find(|c| &*c.name == grid.as_str())
                .and_then(|c| c.reading.as_ref().ok())
                .map(|r| (snapshot.at, r.power));
            let commands = controller.tick(snapshot.at, reading);
            for command in &commands {
                let cause = command.cause.as_str();
                match self.gateway.switch(&command.load, command.state) {
                    Ok(()) => eprintln!(
                        "daisee-agent: relay `{}` {} ({cause})",
                        command.load, command.state
                    ),
                    Err(e) => eprintln!(
                        "daisee-agent: relay `{}` did not switch {}: {e}",
                        command.load, command.state
                    ),
                }
                if let Some(h) = &mut self.history {
                    h.store.record_relay(RelayEvent {
                        at: snapshot.at,
                        relay: command.load.clone(),
                        state: command.state,
                        cause: cause.to_owned(),
                    });
                }
            }
            if !commands.is_empty() {
                // Show the relays as they are after the switching, read back.
                snapshot.relays = self.gateway.relays();
            }
        }
        if let Some(h) = &mut self.history {
            h.record(&snapshot, self.clock.now());
        }
        self.notify(&snapshot);
        snapshot
    }

    /// Writes what is buffered, for a clean stop.
    pub fn finish(&mut self) {
        if let Some(h) = &mut self.history {
            h.flush();
        }
        if let Some(n) = &self.notifier {
            let _ = n.send("STOPPING=1");
        }
    }

    fn notify(&mut self, snapshot: &Snapshot) {
        let Some(n) = &self.notifier else { return };
        if !self.ready {
            // Ready once every device has been asked: Modbus meters report "not read yet" until
            // their bus's first round.
            if snapshot.channels.iter().any(|c| {
                c.reading
                    .as_ref()
                    .is_err_and(|f| f.message == "not read yet")
            }) {
                return;
            }
            let failing: Vec<&str> = snapshot
                .channels
                .iter()
                .filter(|c| c.reading.is_err())
                .map(|c| &*c.name)
                .collect();
            let status = if failing.is_empty() {
                format!("{} channels read", snapshot.channels.len())
            } else {
                format!(
                    "{} channels read, not answering: {}",
                    snapshot.channels.len(),
                    failing.join(", ")
                )
            };
            if n.send(&format!("READY=1\nSTATUS={status}")).is_ok() {
                self.ready = true;
            }
        }
        if n.watchdog().is_some() {
            let _ = n.send("WATCHDOG=1");
        }
    }
}

impl History {
    fn open(config: &StoreConfig, now: Timestamp) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| StoreError::Damaged(format!("{}: {e}", config.dir.display())))?;
        let retention = Retention {
            samples: config.retention,
            max_pending: MAX_PENDING,
        };
        Ok(Self {
            store: Store::open(&config.dir.join("history.sqlite"), retention)?,
            flush_interval: config.flush_interval,
            last_flush: now,
            last_prune: now,
            acknowledged: 0,
        })
    }

    fn record(&mut self, snapshot: &Snapshot, now: Timestamp) {
        for c in &snapshot.channels {
            if let Ok(r) = &c.reading
                && let Err(e) = self.store.record(snapshot.at, &c.name, r.power, c.energy)
            {
                eprintln!("daisee-agent: history: {e}");
            }
        }
        if now.millis_since(self.last_flush) >= self.flush_interval.as_millis() as i64 {
            self.last_flush = now;
            self.flush();
        }
        if now.millis_since(self.last_prune) >= PRUNE_EVERY_MS {
            self.last_prune = now;
            if let Err(e) = self.store.prune(now) {
                eprintln!("daisee-agent: history: pruning: {e}");
            }
        }
    }

    /// Writes the buffered samples and says what is now safe on disk.
    fn flush(&mut self) {
        match self.store.flush() {
            Ok(f) => {
                self.acknowledged += f.samples;
                if let Some(newest) = f.newest {
                    eprintln!(
                        "daisee-agent: history: stored {} samples ({} in all) up to {newest}",
                        f.samples, self.acknowledged
                    );
                }
            }
            Err(e) => eprintln!("daisee-agent: history: {e}"),
        }
    }
}

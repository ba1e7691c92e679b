//! One turn of the agent's main loop: read every device, let demand response decide, switch the
//! relays, keep the history, and tell systemd the loop is alive.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use daisee_control::{Controller, Settings};
use daisee_hal::{Clock, MilliWatts, RelayState, Timestamp};
use daisee_store::{RelayEvent, Retention, Store};
use tokio::sync::watch;

use crate::config::{Config, ControlConfig, StoreConfig};
use crate::dbus::Request;
use crate::gateway::{ControlStatus, Gateway, RelayMode, Snapshot};
use crate::journal::{Journal, Priority};
use crate::notify::Notifier;

/// The controller's settings from the configuration.
fn settings(c: &ControlConfig) -> Settings {
    Settings {
        import_limit: c.import_limit,
        stale_after: c.stale_after,
    }
}

/// The most samples kept in memory while the disk refuses them: an hour of 16 channels at 1 Hz.
const MAX_PENDING: usize = 16 * 3600;

/// How often old samples are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How often a history that could not be opened is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(60);

/// The agent's devices, decisions and history.
pub struct Daemon {
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    control: Option<(Controller, String)>,
    /// The grid channel's latest good reading and when it was measured: a failed poll leaves it
    /// to age until it is stale, rather than make it stale at once.
    last_grid: Option<(Timestamp, MilliWatts)>,
    history: Option<History>,
    notifier: Option<Notifier>,
    journal: Journal,
    ready: bool,
    requests: Option<Receiver<Request>>,
    snapshots: Option<watch::Sender<Option<Arc<Snapshot>>>>,
    /// Relays without demand response held by hand.
    manual: HashMap<String, RelayState>,
}

/// The history, or why it is not open yet (a full disk at start, a missing mount): the agent
/// runs on without it and tries again every minute.
struct History {
    config: StoreConfig,
    store: Option<Store>,
    // Monotonic: a clock stepped back must not stop flushing.
    last_flush: Instant,
    last_prune: Instant,
    last_open: Instant,
    acknowledged: usize,
    dropped: u64,
}

impl Daemon {
    /// The daemon of a built gateway: opens the history and sets up demand response.
    pub fn new(
        config: &Config,
        gateway: Gateway,
        clock: Arc<dyn Clock>,
        notifier: Option<Notifier>,
    ) -> Self {
        let journal = Journal::from_env();
        let history = config.store.as_ref().map(|s| History::new(s, &journal));
        let control = config.control.as_ref().map(|c| {
            let loads = config
                .relays
                .iter()
                .filter_map(|r| r.flex.clone())
                .collect();
            (
                Controller::new(settings(c), loads, clock.now()),
                c.grid.clone(),
            )
        });
        Self {
            gateway,
            clock,
            control,
            history,
            notifier,
            journal,
            last_grid: None,
            ready: false,
            requests: None,
            snapshots: None,
            manual: HashMap::new(),
        }
    }

    /// Takes requests from D-Bus and publishes every snapshot to it.
    pub fn connect(
        &mut self,
        requests: Receiver<Request>,
        snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    ) {
        self.requests = Some(requests);
        self.snapshots = Some(snapshots);
    }

    /// The gateway's name.
    pub fn name(&self) -> &str {
        self.gateway.name()
    }

    /// One turn: poll, decide, switch, record, notify. Problems are reported on stderr (the
    /// journal) and never stop the loop.
    pub fn step(&mut self) -> Arc<Snapshot> {
        let requests: Vec<Request> = self.requests.iter().flat_map(|r| r.try_iter()).collect();
        for request in requests {
            self.handle(request);
        }
        let mut snapshot = self.gateway.poll();
        let mut commands = Vec::new();
        if let Some((controller, grid)) = &mut self.control {
            let fresh = snapshot
                .channels
                .iter()
                .find(|c| &*c.name == grid.as_str())
                .and_then(|c| Some((c.read_at?, c.reading.as_ref().ok()?.power)));
            if fresh.is_some() {
                self.last_grid = fresh;
            }
            let reading = self.last_grid;
            commands = controller.tick(snapshot.at, reading);
            snapshot.control = Some(ControlStatus {
                grid: reading.map(|(_, p)| p),
                stale: controller.is_stale(snapshot.at, reading),
                import_limit: controller.settings().import_limit.map(|l| l.limit),
            });
        }
        for command in &commands {
            if !self.switch(&command.load, command.state, command.cause.as_str())
                && let Some((controller, _)) = &mut self.control
            {
                controller.failed(&command.load);
            }
        }
        if !commands.is_empty() {
            // Show the relays as they are after the switching, read back.
            snapshot.relays = self.gateway.relays();
        }
        for r in &mut snapshot.relays {
            let controlled = self
                .control
                .as_ref()
                .map(|(c, _)| (c.has(&r.name), c.manual(&r.name)));
            r.mode = match controlled {
                Some((true, Some(_))) => RelayMode::Manual,
                Some((true, None)) => RelayMode::Auto,
                _ if self.manual.contains_key(&*r.name) => RelayMode::Manual,
                _ => RelayMode::Fixed,
            };
        }
        if let Some(h) = &mut self.history {
            h.record(&snapshot, &self.journal);
        }
        self.notify(&snapshot);
        let snapshot = Arc::new(snapshot);
        if let Some(tx) = &self.snapshots {
            tx.send_replace(Some(Arc::clone(&snapshot)));
        }
        snapshot
    }

    /// Carries out what a D-Bus caller asked.
    fn handle(&mut self, request: Request) {
        match request {
            Request::Override { relay, state } => {
                let controlled = self
                    .control
                    .as_mut()
                    .is_some_and(|(c, _)| c.set_override(&relay, state));
                if controlled {
                    // The controller switches it at this turn's tick.
                    return;
                }
                let target = match state {
                    Some(s) => {
                        self.manual.insert(relay.clone(), s);
                        s
                    }
                    None => {
                        self.manual.remove(&relay);
                        match self.gateway.relays().iter().find(|r| *r.name == *relay) {
                            Some(r) => r.safe,
                            None => return,
                        }
                    }
                };
                let cause = if state.is_some() {
                    "override"
                } else {
                    "released to its safe state"
                };
                self.switch(&relay, target, cause);
            }
            Request::Apply(config) => {
                if let (Some((controller, grid)), Some(c)) = (&mut self.control, &config.control) {
                    controller.set_settings(settings(c));
                    grid.clone_from(&c.grid);
                    self.journal
                        .log(Priority::Info, "demand response settings applied", &[]);
                }
            }
        }
    }

    /// Switches a relay, logs it, and records it in the history if it followed; says whether it
    /// did.
    fn switch(&mut self, relay: &str, state: RelayState, cause: &str) -> bool {
        let fields = [
            ("DAISEE_RELAY", relay),
            ("DAISEE_STATE", state.as_str()),
            ("DAISEE_CAUSE", cause),
        ];
        if let Err(e) = self.gateway.switch(relay, state) {
            let message = format!("relay `{relay}` did not switch {state}: {e}");
            self.journal.log(Priority::Error, &message, &fields);
            return false;
        }
        let message = format!("relay `{relay}` {state} ({cause})");
        self.journal.log(Priority::Info, &message, &fields);
        if let Some(store) = self.history.as_mut().and_then(|h| h.store.as_mut()) {
            store.record_relay(RelayEvent {
                at: self.clock.now(),
                relay: relay.to_owned(),
                state,
                cause: cause.to_owned(),
            });
        }
        true
    }

    /// Writes what is buffered, for a clean stop.
    pub fn finish(&mut self) {
        if let Some(h) = &mut self.history {
            h.flush(&self.journal);
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
    fn new(config: &StoreConfig, journal: &Journal) -> Self {
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

    fn record(&mut self, snapshot: &Snapshot, journal: &Journal) {
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
    fn flush(&mut self, journal: &Journal) {
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

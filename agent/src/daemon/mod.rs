//! The agent's main loop. It owns one input, [`Command`]s over one channel, and one output, a
//! [`Snapshot`] after every turn over one watch; D-Bus, the live view and every other adapter
//! hold the two [`Handles`], never the daemon. A turn reads every device, lets demand response
//! decide, switches, records the history and tells systemd the loop is alive.

mod decide;
mod history;
mod ready;

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use daisee_hal::{Clock, RelayState};
use daisee_store::RelayEvent;
use tokio::sync::watch;

use crate::config::Config;
use crate::devices::Devices;
use crate::journal::{Journal, Priority};
use crate::notify::Notifier;
use crate::snapshot::{InverterStatus, RelayStatus, Snapshot};
use decide::Decisions;
use history::History;
use ready::Readiness;

/// Commands waiting for the loop; a caller finding it full is told the agent is busy.
const INBOX: usize = 64;

/// What an adapter asks the daemon to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Hold a relay on or off by hand (`Some`), or give it back (`None`).
    HoldRelay {
        /// The relay.
        relay: String,
        /// The state to hold.
        state: Option<RelayState>,
    },
    /// Hold an inverter at a limit by hand for the limit's revert time (`Some`), or give it
    /// back (`None`).
    HoldInverter {
        /// The inverter.
        inverter: String,
        /// The limit to hold.
        limit: Option<daisee_control::Limit>,
    },
    /// A new configuration whose changes apply without a restart.
    Apply(Box<Config>),
    /// The dialogue's budget for the flexible loads in one slot.
    Allocate(daisee_control::Allocation),
    /// Finish the turn, write what is buffered and stop.
    Stop,
}

/// What adapters hold: the daemon's inbox and its snapshots.
#[derive(Debug, Clone)]
pub struct Handles {
    /// Where commands go.
    pub commands: SyncSender<Command>,
    /// The latest snapshot (`None` before the first turn); closed when the daemon stops.
    pub snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
}

/// The agent's devices, decisions and history.
pub struct Daemon {
    devices: Devices,
    clock: Arc<dyn Clock>,
    decisions: Decisions,
    history: Option<History>,
    readiness: Readiness,
    journal: Journal,
    inbox: Receiver<Command>,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
}

impl Daemon {
    /// The daemon of built devices: opens the history and sets up demand response.
    pub fn new(
        config: &Config,
        devices: Devices,
        clock: Arc<dyn Clock>,
        notifier: Option<Notifier>,
    ) -> (Self, Handles) {
        let journal = Journal::from_env();
        let (commands, inbox) = sync_channel(INBOX);
        let (snapshots, published) = watch::channel(None);
        let daemon = Self {
            decisions: Decisions::new(config, clock.now()),
            history: config.store.as_ref().map(|s| History::new(s, &journal)),
            readiness: Readiness::new(notifier),
            devices,
            clock,
            journal,
            inbox,
            snapshots,
        };
        let handles = Handles {
            commands,
            snapshots: published,
        };
        (daemon, handles)
    }

    /// Runs turns every `interval` (at most `turns` of them), carrying out commands as they
    /// come, until told to stop; then writes what is buffered. Device I/O blocks: run it on a
    /// thread of its own.
    pub fn run(mut self, interval: Duration, turns: Option<u64>) {
        let start = Instant::now();
        let mut done = 0u64;
        while turns.is_none_or(|max| done < max) {
            self.step();
            done += 1;
            let next = start + interval * u32::try_from(done).unwrap_or(u32::MAX);
            if !self.wait_until(next) {
                break;
            }
        }
        self.finish();
    }

    /// Carries out commands until `deadline`; false when told to stop.
    fn wait_until(&mut self, deadline: Instant) -> bool {
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(wait) {
                Ok(Command::Stop) => return false,
                Ok(command) => {
                    // A person waiting for a relay or an inverter gets a turn now, not at the
                    // next poll.
                    if self.handle(command) {
                        self.step();
                    }
                }
                Err(RecvTimeoutError::Timeout) => return true,
                // Nobody can send any more: only the clock drives the loop now.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    return true;
                }
            }
        }
    }

    /// One turn: read, decide, switch, record, notify, publish. Problems are logged and never
    /// stop the loop.
    pub fn step(&mut self) -> Arc<Snapshot> {
        let commands: Vec<Command> = self.inbox.try_iter().collect();
        for command in commands {
            self.handle(command);
        }
        let held = self.decisions.overrides(self.clock.now());
        self.carry_out(&held);
        let mut readings = self.devices.read();
        let switches = self.decisions.tick(&readings);
        self.carry_out(&switches);
        if !switches.is_empty() {
            // Show the relays as they are after the switching, read back.
            readings.relays = self.devices.relays();
        }
        let limits = self.decisions.limits(&readings);
        self.devices.limit_inverters(&limits);
        let inverters = self.inverters(readings.at);
        let relays = readings
            .relays
            .into_iter()
            .map(|r| RelayStatus {
                mode: self.decisions.mode(&r.name),
                name: r.name,
                state: r.state,
                safe: r.safe,
            })
            .collect();
        let snapshot = Arc::new(Snapshot {
            at: readings.at,
            control: self.decisions.status(readings.at),
            channels: readings.channels,
            relays,
            inverters,
        });
        if let Some(h) = &mut self.history {
            h.record(&snapshot, &self.journal);
        }
        self.readiness.turn(&snapshot);
        self.snapshots.send_replace(Some(Arc::clone(&snapshot)));
        snapshot
    }

    /// Sets the relays as decided; a relay that did not follow is decided again next turn.
    fn carry_out(&mut self, switches: &[daisee_control::Command]) {
        for s in switches {
            if !self.set_relay(&s.load, s.state, s.cause.as_str()) {
                self.decisions.failed(&s.load);
            }
        }
    }

    /// Carries out one command; says whether it calls for a turn to act on it.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::HoldRelay { relay, state } => self.decisions.hold(&relay, state),
            Command::HoldInverter { inverter, limit } => {
                let now = self.clock.now();
                self.decisions.hold_inverter(&inverter, limit, now)
            }
            Command::Apply(config) => {
                self.decisions.apply(config.control.as_ref());
                self.journal
                    .log(Priority::Info, "demand response settings applied", &[]);
                false
            }
            Command::Allocate(allocation) => {
                self.decisions.allocate(allocation);
                false
            }
            Command::Stop => false,
        }
    }

    /// Every curtailable inverter's limit as it confirmed it, and who decides it.
    fn inverters(&mut self, now: daisee_hal::Timestamp) -> Vec<InverterStatus> {
        self.devices
            .limits()
            .into_iter()
            .map(|(name, limit, fault)| InverterStatus {
                mode: self.decisions.inverter_mode(&name, now),
                name,
                limit,
                fault,
            })
            .collect()
    }

    /// Sets a relay, logs it, and records it in the history if it followed; says whether it did.
    fn set_relay(&mut self, relay: &str, state: RelayState, cause: &str) -> bool {
        let fields = [
            ("DAISEE_RELAY", relay),
            ("DAISEE_STATE", state.as_str()),
            ("DAISEE_CAUSE", cause),
        ];
        if let Err(e) = self.devices.set_relay(relay, state) {
            let message = format!("relay `{relay}` did not switch {state}: {e}");
            self.journal.log(Priority::Error, &message, &fields);
            return false;
        }
        let message = format!("relay `{relay}` {state} ({cause})");
        self.journal.log(Priority::Info, &message, &fields);
        if let Some(h) = &mut self.history {
            h.record_relay(RelayEvent {
                at: self.clock.now(),
                relay: relay.to_owned(),
                state,
                cause: cause.to_owned(),
            });
        }
        true
    }

    /// Writes what is buffered and tells systemd, for a clean stop.
    pub fn finish(&mut self) {
        if let Some(h) = &mut self.history {
            h.flush(&self.journal);
        }
        self.readiness.stopping();
    }
}

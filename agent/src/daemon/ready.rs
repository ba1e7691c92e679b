//! What systemd hears from the main loop: READY=1 once every device has been asked, with the
//! channels that did not answer, then WATCHDOG=1 at every turn, and STOPPING=1 at the end.

use crate::notify::Notifier;
use crate::snapshot::Snapshot;

/// The service manager's view of the loop, when one listens.
pub(super) struct Readiness {
    notifier: Option<Notifier>,
    ready: bool,
}

impl Readiness {
    pub(super) fn new(notifier: Option<Notifier>) -> Self {
        Self {
            notifier,
            ready: false,
        }
    }

    /// Reports a turn: ready once every channel's device was asked, alive at every turn.
    pub(super) fn turn(&mut self, snapshot: &Snapshot) {
        let Some(n) = &self.notifier else { return };
        if !self.ready {
            // A Modbus bus's first round may come after the first turn.
            if snapshot.channels.iter().any(|c| !c.polled) {
                return;
            }
            if n.send(&format!("READY=1\nSTATUS={}", status(snapshot)))
                .is_ok()
            {
                self.ready = true;
            }
        }
        if n.watchdog().is_some() {
            let _ = n.send("WATCHDOG=1");
        }
    }

    /// Says the loop is stopping.
    pub(super) fn stopping(&self) {
        if let Some(n) = &self.notifier {
            let _ = n.send("STOPPING=1");
        }
    }
}

fn status(snapshot: &Snapshot) -> String {
    let failing: Vec<&str> = snapshot
        .channels
        .iter()
        .filter(|c| c.reading.is_err())
        .map(|c| &*c.name)
        .collect();
    let read = snapshot.channels.len();
    if failing.is_empty() {
        format!("{read} channels read")
    } else {
        format!(
            "{read} channels read, not answering: {}",
            failing.join(", ")
        )
    }
}

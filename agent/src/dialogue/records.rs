//! The dialogue's records in the history, written on a thread of their own: SQLite may wait for
//! the history's writer (up to its busy timeout), and the node beside the adapter must not miss
//! its deadlines meanwhile.

use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};

use daisee_hal::{Energy, Timestamp};
use daisee_store::{MarketLog, MarketSlot};

use crate::journal::{Journal, Priority};

/// What to write.
enum Record {
    /// A slot that settled.
    Settled(MarketSlot),
    /// What the grid meter counted in a slot, and its base load in mW.
    Metered(Timestamp, Energy, i64),
}

/// The writer of the dialogue's records.
pub(super) struct Records(Sender<Record>);

impl Records {
    /// Opens the history at `path` on a thread that then writes every record sent to it; a
    /// history that cannot be opened is logged, and the records are dropped.
    pub(super) fn open(path: PathBuf) -> Self {
        let (records, inbox) = channel();
        std::thread::spawn(move || {
            let journal = Journal::from_env();
            let log = match MarketLog::open(&path) {
                Ok(log) => log,
                Err(e) => {
                    let message = format!("dialogue: slots are not recorded: {e}");
                    return journal.log(Priority::Error, &message, &[]);
                }
            };
            for record in inbox {
                let (start, written) = match record {
                    Record::Settled(slot) => (slot.start, log.settled(&slot).map(drop)),
                    Record::Metered(start, energy, base_mw) => {
                        (start, log.metered(start, energy, base_mw).map(drop))
                    }
                };
                if let Err(e) = written {
                    let message = format!("dialogue: slot {} not recorded: {e}", start.0);
                    journal.log(Priority::Error, &message, &[]);
                }
            }
        });
        Self(records)
    }

    /// Records a settled slot.
    pub(super) fn settled(&self, slot: MarketSlot) {
        // The thread ends only if the history could not be opened, which it logged.
        let _ = self.0.send(Record::Settled(slot));
    }

    /// Records what the grid meter counted in a settled slot, and its base load.
    pub(super) fn metered(&self, start: Timestamp, energy: Energy, base_mw: i64) {
        let _ = self.0.send(Record::Metered(start, energy, base_mw));
    }
}

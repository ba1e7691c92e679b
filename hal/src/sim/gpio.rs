use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin, PinState, StatefulOutputPin};

/// A simulated GPIO output line. Clones share the line, so the simulated load sees what the driver
/// drives; faults can make it refuse writes or stick at a level like a welded relay contact.
#[derive(Debug, Clone)]
pub struct SimLine(Arc<LineState>);

#[derive(Debug)]
struct LineState {
    level: AtomicU8,
    fault: AtomicU8,
}

const HEALTHY: u8 = 0;
const REFUSES: u8 = 1;
const STUCK: u8 = 2;

/// The error of a simulated line that refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("simulated GPIO line refused the write")]
pub struct SimLineError;

impl embedded_hal::digital::Error for SimLineError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl SimLine {
    /// A line at `initial`.
    pub fn new(initial: PinState) -> Self {
        Self(Arc::new(LineState {
            level: AtomicU8::new(u8::from(initial == PinState::High)),
            fault: AtomicU8::new(HEALTHY),
        }))
    }

    /// The level the line is at.
    pub fn level(&self) -> PinState {
        PinState::from(self.0.level.load(Ordering::SeqCst) == 1)
    }

    /// Makes writes fail (`true`) or succeed again (`false`).
    pub fn refuse_writes(&self, refuse: bool) {
        self.0
            .fault
            .store(if refuse { REFUSES } else { HEALTHY }, Ordering::SeqCst);
    }

    /// Keeps the line at its current level whatever is written, until `refuse_writes(false)`.
    pub fn stick(&self) {
        self.0.fault.store(STUCK, Ordering::SeqCst);
    }

    fn drive(&self, state: PinState) -> Result<(), SimLineError> {
        match self.0.fault.load(Ordering::SeqCst) {
            REFUSES => Err(SimLineError),
            STUCK => Ok(()),
            _ => {
                self.0
                    .level
                    .store(u8::from(state == PinState::High), Ordering::SeqCst);
                Ok(())
            }
        }
    }
}

impl ErrorType for SimLine {
    type Error = SimLineError;
}

impl OutputPin for SimLine {
    fn set_low(&mut self) -> Result<(), SimLineError> {
        self.drive(PinState::Low)
    }

    fn set_high(&mut self) -> Result<(), SimLineError> {
        self.drive(PinState::High)
    }
}

impl StatefulOutputPin for SimLine {
    fn is_set_high(&mut self) -> Result<bool, SimLineError> {
        Ok(self.level() == PinState::High)
    }

    fn is_set_low(&mut self) -> Result<bool, SimLineError> {
        Ok(self.level() == PinState::Low)
    }
}

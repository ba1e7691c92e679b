//! Device faults of any backend, carried as values.

use daisee_hal::ErrorKind;
use daisee_hal::error::OpenError;

/// A device fault, whatever the device: its class and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Fault {
    /// The class of the fault.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl Fault {
    /// The fault of a device error.
    pub fn of<E: daisee_hal::Error>(e: &E) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl daisee_hal::Error for Fault {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Why a device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Its device node could not be opened: a configuration or permission problem.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The node opened, but the device did not come up.
    #[error(transparent)]
    Device(Fault),
}

impl ConnectError {
    /// A device that did not come up.
    pub fn device<E: daisee_hal::Error>(e: E) -> Self {
        ConnectError::Device(Fault::of(&e))
    }
}

impl Fault {
    /// The fault of a device node that could not be opened.
    pub(crate) fn of_open(e: &OpenError) -> Self {
        Self {
            kind: match e.kind {
                daisee_hal::error::OpenErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::NotResponding,
            },
            message: e.to_string(),
        }
    }
}

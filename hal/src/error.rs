//! What went wrong with a device, in terms the agent can act on whatever the backend.

/// The class of a device error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing answered at the device's address (I2C NACK, Modbus timeout).
    NotResponding,
    /// The transport failed (bus error, lost arbitration, broken connection).
    Bus,
    /// The device answered with something that cannot be right (out of range, malformed).
    InvalidData,
    /// The device's own arithmetic or input overflowed; the values are not trustworthy.
    Overflow,
    /// The operation is not possible on this device or adapter.
    Unsupported,
    /// Access to the device node was refused by the operating system.
    PermissionDenied,
    /// Anything else.
    Other,
}

/// A device error that can tell its [`ErrorKind`].
pub trait Error: core::error::Error + Send + Sync + 'static {
    /// The class of this error.
    fn kind(&self) -> ErrorKind;
}

impl ErrorKind {
    /// The closest class for an `embedded-hal` I2C error.
    pub fn from_i2c(kind: embedded_hal::i2c::ErrorKind) -> Self {
        use embedded_hal::i2c::ErrorKind as I2c;
        match kind {
            I2c::NoAcknowledge(_) => ErrorKind::NotResponding,
            I2c::Bus | I2c::ArbitrationLoss | I2c::Overrun => ErrorKind::Bus,
            _ => ErrorKind::Other,
        }
    }
}

/// Why a device node (an I2C bus, a GPIO chip or line) could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{node}: {}{}", self.reason(), self.hint())]
pub struct OpenError {
    /// The device node, as configured.
    pub node: String,
    /// The class of the failure.
    pub kind: OpenErrorKind,
    /// What the operating system said.
    pub detail: String,
}

/// The class of an [`OpenError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenErrorKind {
    /// The node does not exist.
    NotFound,
    /// The process may not open it.
    PermissionDenied,
    /// Another process or driver holds it.
    Busy,
    /// Anything else.
    Other,
}

impl OpenError {
    /// An open error classified from the OS error number.
    pub fn from_errno(node: impl Into<String>, errno: i32, detail: impl Into<String>) -> Self {
        const ENOENT: i32 = 2;
        const ENXIO: i32 = 6;
        const EPERM: i32 = 1;
        const EACCES: i32 = 13;
        const EBUSY: i32 = 16;
        const ENODEV: i32 = 19;
        let kind = match errno {
            ENOENT | ENODEV | ENXIO => OpenErrorKind::NotFound,
            EPERM | EACCES => OpenErrorKind::PermissionDenied,
            EBUSY => OpenErrorKind::Busy,
            _ => OpenErrorKind::Other,
        };
        Self {
            node: node.into(),
            kind,
            detail: detail.into(),
        }
    }

    /// An open error classified from an I/O error.
    pub fn from_io(node: impl Into<String>, err: &std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(errno) => Self::from_errno(node, errno, err.to_string()),
            None => Self {
                node: node.into(),
                kind: OpenErrorKind::Other,
                detail: err.to_string(),
            },
        }
    }

    fn reason(&self) -> &str {
        match self.kind {
            OpenErrorKind::NotFound => "does not exist",
            OpenErrorKind::PermissionDenied => "permission denied",
            OpenErrorKind::Busy => "is in use by another process or driver",
            OpenErrorKind::Other => &self.detail,
        }
    }

    fn hint(&self) -> &'static str {
        let i2c = self.node.contains("i2c");
        match (self.kind, i2c) {
            (OpenErrorKind::NotFound, true) => {
                " (is the bus enabled, e.g. dtparam=i2c_arm=on on a Raspberry Pi, and i2c-dev loaded: modprobe i2c-dev?)"
            }
            (OpenErrorKind::NotFound, false) => {
                " (check the chip name with gpiodetect and the line number with gpioinfo)"
            }
            (OpenErrorKind::PermissionDenied, true) => {
                " (run as root or as a member of the group that owns the node, usually i2c: usermod -aG i2c USER)"
            }
            (OpenErrorKind::PermissionDenied, false) => {
                " (run as root or as a member of the group that owns the node, usually gpio: usermod -aG gpio USER)"
            }
            (OpenErrorKind::Busy, _) => " (see who holds it with gpioinfo or lsof)",
            (OpenErrorKind::Other, _) => "",
        }
    }
}

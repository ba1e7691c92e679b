//! Devices of any backend behind one interface: faults carried as values, sensors that reconnect.

use daisee_hal::error::OpenError;
use daisee_hal::{ErrorKind, PowerReading, PowerSensor, RelayState};

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

/// A power sensor of any backend.
pub trait Sensor: Send {
    /// Reads it.
    fn read(&mut self) -> Result<PowerReading, Fault>;
}

impl<S: PowerSensor + Send> Sensor for S {
    fn read(&mut self) -> Result<PowerReading, Fault> {
        PowerSensor::read(self).map_err(|e| Fault::of(&e))
    }
}

/// Sets a sensor up again.
pub type Connect = Box<dyn FnMut() -> Result<Box<dyn Sensor>, ConnectError> + Send>;

/// A sensor that is set up again after it failed: a chip that lost power comes back reset, with no
/// calibration, and must be configured anew before its readings mean anything.
pub struct Reconnecting {
    sensor: Option<Box<dyn Sensor>>,
    connect: Connect,
}

impl Reconnecting {
    /// Sets the sensor up now; a device that does not answer is left to the next read, but a node
    /// that cannot be opened is an error for the caller.
    pub fn start(mut connect: Connect) -> Result<(Self, Option<Fault>), OpenError> {
        let (sensor, fault) = match connect() {
            Ok(sensor) => (Some(sensor), None),
            Err(ConnectError::Device(fault)) => (None, Some(fault)),
            Err(ConnectError::Open(e)) => return Err(e),
        };
        Ok((Self { sensor, connect }, fault))
    }
}

impl PowerSensor for Reconnecting {
    type Error = Fault;

    fn read(&mut self) -> Result<PowerReading, Fault> {
        let sensor = match &mut self.sensor {
            Some(sensor) => sensor,
            None => self.sensor.insert((self.connect)().map_err(|e| match e {
                ConnectError::Device(fault) => fault,
                ConnectError::Open(e) => Fault::of_open(&e),
            })?),
        };
        let reading = sensor.read();
        if let Err(fault) = &reading
            && matches!(fault.kind, ErrorKind::NotResponding | ErrorKind::Bus)
        {
            self.sensor = None;
        }
        reading
    }
}

impl Fault {
    fn of_open(e: &OpenError) -> Self {
        Self {
            kind: match e.kind {
                daisee_hal::error::OpenErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::NotResponding,
            },
            message: e.to_string(),
        }
    }
}

/// A relay of any backend.
pub trait Switch: Send {
    /// Switches it, checking that it followed.
    fn set(&mut self, state: RelayState) -> Result<(), Fault>;
    /// Reads back the state it is in.
    fn state(&mut self) -> Result<RelayState, Fault>;
    /// Its safe state.
    fn safe_state(&self) -> RelayState;
}

impl<R: daisee_hal::Relay + Send> Switch for R {
    fn set(&mut self, state: RelayState) -> Result<(), Fault> {
        daisee_hal::Relay::set(self, state).map_err(|e| Fault::of(&e))
    }

    fn state(&mut self) -> Result<RelayState, Fault> {
        daisee_hal::Relay::state(self).map_err(|e| Fault::of(&e))
    }

    fn safe_state(&self) -> RelayState {
        daisee_hal::Relay::safe_state(self)
    }
}

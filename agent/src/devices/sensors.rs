//! Power sensors (an INA219 on a Linux, Raspberry Pi or simulated I2C bus, a simulated mains
//! sensor), set up again after they fail.

use daisee_hal::error::OpenError;
use daisee_hal::{ErrorKind, PowerReading, PowerSensor};
use daisee_ina219::Ina219;
use embedded_hal::i2c::I2c;

use crate::fault::ConnectError;
use crate::fault::Fault;

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

/// An INA219 set up on `i2c`.
pub(crate) fn ina219<I>(
    i2c: I,
    settings: daisee_ina219::Settings,
) -> Result<Box<dyn Sensor>, ConnectError>
where
    I: I2c + Send + 'static,
    I::Error: Send + Sync + 'static,
{
    Ina219::new(i2c, settings)
        .map(|s| Box::new(s) as Box<dyn Sensor>)
        .map_err(ConnectError::device)
}

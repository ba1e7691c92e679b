//! Raspberry Pi backend on rppal: the SoC's I2C controllers and GPIO pins by BCM number.

use embedded_hal::digital::PinState;

use crate::error::{OpenError, OpenErrorKind};

/// Opens I2C bus `bus` (1 is the one on the 40-pin header).
pub fn open_i2c(bus: u8) -> Result<rppal::i2c::I2c, OpenError> {
    rppal::i2c::I2c::with_bus(bus).map_err(|e| {
        let node = format!("/dev/i2c-{bus}");
        match &e {
            rppal::i2c::Error::Io(io) => OpenError::from_io(node, io),
            _ => OpenError {
                node,
                kind: OpenErrorKind::Other,
                detail: e.to_string(),
            },
        }
    })
}

/// Takes BCM pin `pin` as an output, driven to `initial` from the first instant.
pub fn open_output(pin: u8, initial: PinState) -> Result<rppal::gpio::OutputPin, OpenError> {
    let node = format!("BCM GPIO {pin}");
    let gpio = rppal::gpio::Gpio::new().map_err(|e| gpio_error(&node, e))?;
    let pin = gpio.get(pin).map_err(|e| gpio_error(&node, e))?;
    Ok(match initial {
        PinState::High => pin.into_output_high(),
        PinState::Low => pin.into_output_low(),
    })
}

fn gpio_error(node: &str, e: rppal::gpio::Error) -> OpenError {
    match &e {
        rppal::gpio::Error::Io(io) => OpenError::from_io(node, io),
        rppal::gpio::Error::PinUsed(_) => OpenError {
            node: node.to_owned(),
            kind: OpenErrorKind::Busy,
            detail: e.to_string(),
        },
        _ => OpenError {
            node: node.to_owned(),
            kind: OpenErrorKind::Other,
            detail: e.to_string(),
        },
    }
}

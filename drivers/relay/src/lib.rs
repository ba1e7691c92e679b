//! A relay driven by a GPIO output line.
//!
//! The relay takes its safe state when it is created and when it is dropped, and every switch is
//! checked by reading the line back, so that a driver fault or a line held elsewhere is reported
//! instead of being believed.

use daisee_hal::{ErrorKind, RelayState};
use embedded_hal::digital::{PinState, StatefulOutputPin};

/// Which line level energizes the relay coil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    /// A high level closes the contact.
    #[default]
    ActiveHigh,
    /// A low level closes the contact (most opto-isolated relay boards).
    ActiveLow,
}

impl Polarity {
    /// The line level that puts the load in `state`.
    pub fn level(self, state: RelayState) -> PinState {
        PinState::from((state == RelayState::On) == (self == Polarity::ActiveHigh))
    }

    /// The load state a line level means.
    pub fn state(self, level: PinState) -> RelayState {
        if (level == PinState::High) == (self == Polarity::ActiveHigh) {
            RelayState::On
        } else {
            RelayState::Off
        }
    }
}

/// What can go wrong with a relay.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: embedded_hal::digital::Error> {
    /// Driving or reading the line failed.
    #[error("GPIO: {} ({:?})", .0.kind(), .0)]
    Line(E),
    /// The line did not take the level written.
    #[error("relay did not follow: commanded {wanted}, line reads {actual}")]
    ReadBack {
        /// The state commanded.
        wanted: RelayState,
        /// The state the line reads.
        actual: RelayState,
    },
}

impl<E> daisee_hal::Error for Error<E>
where
    E: embedded_hal::digital::Error + Send + Sync + 'static,
{
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Line(_) => ErrorKind::Bus,
            Error::ReadBack { .. } => ErrorKind::InvalidData,
        }
    }
}

/// A relay on a GPIO output line.
#[derive(Debug)]
pub struct Relay<P: StatefulOutputPin> {
    line: P,
    polarity: Polarity,
    safe: RelayState,
}

impl<P> Relay<P>
where
    P: StatefulOutputPin,
    P::Error: Send + Sync + 'static,
{
    /// Takes `line` and puts the relay in its safe state.
    pub fn new(line: P, polarity: Polarity, safe: RelayState) -> Result<Self, Error<P::Error>> {
        let mut relay = Self {
            line,
            polarity,
            safe,
        };
        daisee_hal::Relay::set(&mut relay, safe)?;
        Ok(relay)
    }

    /// Puts the relay in its safe state and gives the line back.
    pub fn shutdown(mut self) -> Result<(), Error<P::Error>> {
        let safe = self.safe;
        daisee_hal::Relay::set(&mut self, safe)
    }
}

impl<P> daisee_hal::Relay for Relay<P>
where
    P: StatefulOutputPin,
    P::Error: Send + Sync + 'static,
{
    type Error = Error<P::Error>;

    fn set(&mut self, state: RelayState) -> Result<(), Self::Error> {
        self.line
            .set_state(self.polarity.level(state))
            .map_err(Error::Line)?;
        let actual = self.state()?;
        if actual != state {
            return Err(Error::ReadBack {
                wanted: state,
                actual,
            });
        }
        Ok(())
    }

    fn state(&mut self) -> Result<RelayState, Self::Error> {
        let high = self.line.is_set_high().map_err(Error::Line)?;
        Ok(self.polarity.state(PinState::from(high)))
    }

    fn safe_state(&self) -> RelayState {
        self.safe
    }
}

impl<P: StatefulOutputPin> Drop for Relay<P> {
    /// Leaves the load in its safe state, whatever path the program takes out.
    fn drop(&mut self) {
        // Nothing to report to at this point; a failure here was already visible on the last switch.
        let _ = self.line.set_state(self.polarity.level(self.safe));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daisee_hal::Relay as _;
    use daisee_hal::sim::SimLine;

    #[test]
    fn takes_the_safe_state_at_start_for_both_polarities() {
        let line = SimLine::new(PinState::High);
        let _relay = Relay::new(line.clone(), Polarity::ActiveHigh, RelayState::Off).unwrap();
        assert_eq!(line.level(), PinState::Low);

        let line = SimLine::new(PinState::High);
        let _relay = Relay::new(line.clone(), Polarity::ActiveLow, RelayState::Off).unwrap();
        assert_eq!(line.level(), PinState::High);
    }

    #[test]
    fn active_low_drives_low_for_on() {
        let line = SimLine::new(PinState::High);
        let mut relay = Relay::new(line.clone(), Polarity::ActiveLow, RelayState::Off).unwrap();
        relay.set(RelayState::On).unwrap();
        assert_eq!(line.level(), PinState::Low);
        assert_eq!(relay.state().unwrap(), RelayState::On);
    }

    #[test]
    fn returns_to_the_safe_state_on_shutdown_and_drop() {
        let line = SimLine::new(PinState::Low);
        let mut relay = Relay::new(line.clone(), Polarity::ActiveHigh, RelayState::On).unwrap();
        relay.set(RelayState::Off).unwrap();
        relay.shutdown().unwrap();
        assert_eq!(line.level(), PinState::High);

        let mut relay = Relay::new(line.clone(), Polarity::ActiveHigh, RelayState::Off).unwrap();
        relay.set(RelayState::On).unwrap();
        drop(relay);
        assert_eq!(line.level(), PinState::Low);
    }

    #[test]
    fn a_line_that_does_not_follow_is_reported() {
        let line = SimLine::new(PinState::Low);
        let mut relay = Relay::new(line.clone(), Polarity::ActiveHigh, RelayState::Off).unwrap();
        line.stick();
        let err = relay.set(RelayState::On).unwrap_err();
        assert!(matches!(
            err,
            Error::ReadBack {
                wanted: RelayState::On,
                actual: RelayState::Off
            }
        ));
        assert_eq!(daisee_hal::Error::kind(&err), ErrorKind::InvalidData);
    }

    #[test]
    fn a_refused_write_is_an_error() {
        let line = SimLine::new(PinState::Low);
        let mut relay = Relay::new(line.clone(), Polarity::ActiveHigh, RelayState::Off).unwrap();
        line.refuse_writes(true);
        assert!(matches!(relay.set(RelayState::On), Err(Error::Line(_))));
    }
}

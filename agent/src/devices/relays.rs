//! Relays on a Linux GPIO chip, a Raspberry Pi pin or a simulated line, read back after every
//! change and left in their safe state when dropped.

use std::sync::Arc;

use daisee_hal::linux::LinuxLine;
use daisee_hal::{RelayState, rpi};
use daisee_relay::Polarity;

use super::site::Sim;
use crate::config::{Relay, RelayOutput};
use crate::fault::Fault;

/// A relay of any backend.
pub trait AnyRelay: Send {
    /// Sets it, checking that the line followed.
    fn set(&mut self, state: RelayState) -> Result<(), Fault>;
    /// Reads back the state it is in.
    fn state(&mut self) -> Result<RelayState, Fault>;
    /// Its safe state.
    fn safe_state(&self) -> RelayState;
}

impl<R: daisee_hal::Relay + Send> AnyRelay for R {
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

/// A relay of the gateway, by name.
pub(crate) struct Output {
    pub(crate) name: Arc<str>,
    pub(crate) relay: Box<dyn AnyRelay>,
}

/// Opens relay `r` on its backend, in its safe state.
pub(crate) fn open(r: &Relay, sim: &mut Sim) -> Result<Output, String> {
    let polarity = if r.active_low {
        Polarity::ActiveLow
    } else {
        Polarity::ActiveHigh
    };
    let level = polarity.level(r.safe_state);
    let relay = match &r.output {
        RelayOutput::Linux { chip, line } => LinuxLine::open(chip, *line, level)
            .map_err(|e| e.to_string())
            .and_then(|l| on_line(l, polarity, r.safe_state)),
        RelayOutput::Rpi { pin } => rpi::open_output(*pin, level)
            .map_err(|e| e.to_string())
            .and_then(|l| on_line(l, polarity, r.safe_state)),
        RelayOutput::Sim => on_line(sim.line(&r.name, polarity, level), polarity, r.safe_state),
    }?;
    Ok(Output {
        name: r.name.as_str().into(),
        relay,
    })
}

fn on_line<P>(line: P, polarity: Polarity, safe: RelayState) -> Result<Box<dyn AnyRelay>, String>
where
    P: embedded_hal::digital::StatefulOutputPin + Send + 'static,
    P::Error: Send + Sync + 'static,
{
    daisee_relay::Relay::new(line, polarity, safe)
        .map(|r| Box::new(r) as Box<dyn AnyRelay>)
        .map_err(|e| e.to_string())
}

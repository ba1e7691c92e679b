//! One reading pipeline for every device: the latest reading of a channel and its energy, counted
//! by one rule: the device's own counters where it keeps them, its power integrated where not.

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::{Energy, EnergyIntegrator, ErrorKind, MeterReading, MilliWattHours, Timestamp};

use crate::fault::Fault;
use crate::snapshot::ChannelState;

/// Gaps between readings up to this many poll intervals are bridged when integrating power.
const MAX_GAP_POLLS: u32 = 10;

/// What a device measured, and the energy counters it keeps itself, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) reading: MeterReading,
    pub(crate) import: Option<MilliWattHours>,
    pub(crate) export: Option<MilliWattHours>,
}

/// A channel's latest reading and energy.
pub(crate) struct Channel {
    name: Arc<str>,
    device: &'static str,
    reading: Result<MeterReading, Fault>,
    polled: bool,
    read_at: Option<Timestamp>,
    energy: Energy,
    integrator: EnergyIntegrator,
}

impl Channel {
    /// A channel not read yet, of a device polled every `interval`.
    pub(crate) fn new(name: &str, device: &'static str, interval: Duration) -> Self {
        Self {
            name: name.into(),
            device,
            reading: Err(Fault {
                kind: ErrorKind::NotResponding,
                message: "not read yet".into(),
            }),
            polled: false,
            read_at: None,
            energy: Energy::default(),
            integrator: EnergyIntegrator::new(interval * MAX_GAP_POLLS),
        }
    }

    /// Files what the device answered at `at`.
    pub(crate) fn record(&mut self, at: Timestamp, result: Result<Measured, Fault>) {
        self.polled = true;
        match result {
            Ok(m) => {
                self.integrator.add(at, m.reading.power);
                let counted = self.integrator.energy();
                self.energy = Energy {
                    import: m.import.unwrap_or(counted.import),
                    export: m.export.unwrap_or(counted.export),
                };
                self.reading = Ok(MeterReading {
                    energy: self.energy,
                    ..m.reading
                });
                self.read_at = Some(at);
            }
            Err(fault) => self.reading = Err(fault),
        }
    }

    /// The channel as a snapshot shows it.
    pub(crate) fn state(&self) -> ChannelState {
        ChannelState {
            name: Arc::clone(&self.name),
            device: self.device,
            reading: self.reading.clone(),
            polled: self.polled,
            read_at: self.reading.is_ok().then_some(self.read_at).flatten(),
            energy: self.energy,
        }
    }
}

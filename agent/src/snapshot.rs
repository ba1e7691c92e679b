//! What the daemon publishes after each turn: every channel, relay and inverter, and what demand
//! response acted on. Adapters (D-Bus, the live view) read it; nothing writes it but the daemon.

use std::sync::Arc;

use daisee_control::{InverterMode, Mode, Status};
use daisee_hal::{Energy, MeterReading, RelayState, Timestamp};

use crate::fault::Fault;

/// The live state of the gateway at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the poll started.
    pub at: Timestamp,
    /// Every sensor, meter and inverter channel, in configuration order.
    pub channels: Vec<ChannelState>,
    /// Every relay, in configuration order.
    pub relays: Vec<RelayStatus>,
    /// Every inverter's power limit, in configuration order.
    pub inverters: Vec<InverterStatus>,
    /// What demand response acted on, if it runs.
    pub control: Option<ControlStatus>,
}

/// What demand response acted on in one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlStatus {
    /// The relays' controller.
    pub relays: Status,
    /// The export limit in force.
    pub export_limit: Option<daisee_hal::MilliWatts>,
}

/// One channel in a snapshot.
#[derive(Debug, Clone)]
pub struct ChannelState {
    /// The channel's name.
    pub name: Arc<str>,
    /// The device behind it, for display.
    pub device: &'static str,
    /// The latest reading, or why there is none.
    pub reading: Result<MeterReading, Fault>,
    /// Whether its device has been asked at least once (a Modbus bus's first round may be late).
    pub polled: bool,
    /// When the reading was measured: this poll for a sensor, its bus's last round for a Modbus
    /// device (which may be older when the bus is slow).
    pub read_at: Option<Timestamp>,
    /// Energy counted so far (kept while the device is offline).
    pub energy: Energy,
}

/// One relay in a snapshot.
#[derive(Debug, Clone)]
pub struct RelayStatus {
    /// The relay's name.
    pub name: Arc<str>,
    /// The state read back from its line.
    pub state: Result<RelayState, Fault>,
    /// Its safe state.
    pub safe: RelayState,
    /// Who decides its state.
    pub mode: Mode,
}

/// One inverter's power limit in a snapshot.
#[derive(Debug, Clone)]
pub struct InverterStatus {
    /// The inverter's name (also its channel's).
    pub name: Arc<str>,
    /// The limit in force as the inverter last confirmed it, in percent of rated power.
    pub limit: Option<u8>,
    /// Why the last limit could not be set, if it could not.
    pub fault: Option<Fault>,
    /// Who decides its limit.
    pub mode: InverterMode,
}

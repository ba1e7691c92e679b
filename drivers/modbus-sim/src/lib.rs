//! Simulated Modbus meters and SunSpec inverters for tests and demos: served over TCP, RTU over TCP
//! and RTU on a pseudo-terminal by tokio-modbus's server side, with values that follow the `sim`
//! physics and faults injected per device (silence, exceptions, garbage, CRC errors, dropping off).

pub mod device;
pub mod meter;
pub mod pty;
pub mod registers;
pub mod simulator;
pub mod sunspec;
pub mod wire;

pub use device::Behaviour;
pub use meter::ProfileMeter;
pub use pty::RtuPort;
pub use registers::RegisterMap;
pub use simulator::Simulator;
pub use sunspec::{Layout, SunSpecDevice};
pub use wire::Fault;

//! Modbus meters and inverters for the DAISEE gateway: device profiles as data, reads coalesced
//! into few requests, RTU and TCP buses on which one failing device never slows the others, and
//! SunSpec discovery and curtailment.

pub mod bus;
pub mod decode;
pub mod device;
pub mod plan;
pub mod profile;
pub mod serial;
pub mod sunspec;

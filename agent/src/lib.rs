//! The DAISEE gateway agent: reads its configuration, sets up the devices on their backends, polls
//! them and shows what they measure.

pub mod config;
pub mod daemon;
pub mod dbus;
pub mod device;
pub mod gateway;
pub mod journal;
pub mod modbus;
pub mod notify;
pub mod update;
pub mod view;

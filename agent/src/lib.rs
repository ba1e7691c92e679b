//! The DAISEE gateway agent: reads its configuration, sets up the devices on their backends,
//! runs the main loop and the adapters around it.

pub mod config;
pub mod daemon;
pub mod dbus;
pub mod devices;
pub mod dialogue;
pub mod fault;
pub mod identity;
pub mod journal;
pub mod ledger;
pub mod mqtt;
pub mod notify;
pub mod setup;
pub mod snapshot;
pub mod update;
pub mod view;
pub mod web;

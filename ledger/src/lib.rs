//! The gateway's readings and the market slots it settled, on an Ethereum ledger that anyone can
//! check: the contract's bindings, the Merkle tree of an interval's readings, signed slot results,
//! and the courier that sends what the outbox in the history holds, exactly once.

pub mod admin;
mod chain;
pub mod contract;
#[cfg(feature = "outbox")]
mod courier;
#[cfg(feature = "devnet")]
pub mod devnet;
#[cfg(feature = "outbox")]
mod interval;
mod merkle;

pub use alloy::primitives::{Address, B256, U256};
pub use chain::{Chain, Failure, SignedCall, node, settlement_hash, verify_reading};
#[cfg(feature = "outbox")]
pub use courier::{Courier, OutboxError, Pass};
#[cfg(feature = "outbox")]
pub use interval::{INTERVAL_MS, Interval, interval_of};
pub use merkle::{Reading, ReadingTree, verify};

//! One interval of a gateway's readings as it commits them: every sample of every channel in the
//! interval, by channel name then time, as leaves of one tree, and the grid channel's energy.

use alloy::primitives::B256;
use alloy::sol_types::SolCall;
use daisee_hal::{Energy, Timestamp};
use daisee_store::{Reader, SLOT_MS, StoreError};

use crate::contract::DaiseeLedger;
use crate::merkle::{Reading, ReadingTree};

/// Length of a commitment's interval: the history's energy slot, 15 minutes aligned to the hour.
pub const INTERVAL_MS: i64 = SLOT_MS;

/// The start of the interval containing `at`.
pub fn interval_of(at: Timestamp) -> Timestamp {
    Timestamp(at.0 - at.0.rem_euclid(INTERVAL_MS))
}

/// An interval's readings, their tree and the grid's energy in it.
#[derive(Debug, Clone)]
pub struct Interval {
    start: Timestamp,
    readings: Vec<Reading>,
    tree: ReadingTree,
    grid: Energy,
}

impl Interval {
    /// The interval containing `at`, as the history holds it; `grid` names the channel whose
    /// energy the commitment totals.
    pub fn read(reader: &Reader, at: Timestamp, grid: &str) -> Result<Self, StoreError> {
        let start = interval_of(at);
        let end = Timestamp(start.0 + INTERVAL_MS);
        let mut readings = Vec::new();
        for channel in reader.channels()? {
            for (at, power) in reader.samples(&channel, start, end)? {
                readings.push(Reading {
                    channel: channel.clone(),
                    at,
                    power,
                });
            }
        }
        let grid = reader
            .energy(grid, start, Timestamp(start.0 + 1))?
            .first()
            .map(|slot| slot.energy)
            .unwrap_or_default();
        let tree = ReadingTree::new(readings.iter().map(Reading::leaf).collect());
        Ok(Self {
            start,
            readings,
            tree,
            grid,
        })
    }

    /// Its start.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Its readings, in leaf order.
    pub fn readings(&self) -> &[Reading] {
        &self.readings
    }

    /// The root of its readings' tree.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The contract call that commits it (ABI-encoded), or `None` without readings.
    pub fn commit_call(&self) -> Option<Vec<u8>> {
        let readings = u32::try_from(self.readings.len()).ok().filter(|n| *n > 0)?;
        let call = DaiseeLedger::commitCall {
            interval: self.start.0,
            root: self.root(),
            readings,
            importMwh: self.grid.import.0,
            exportMwh: self.grid.export.0,
        };
        Some(call.abi_encode())
    }

    /// The reading of `channel` at `at` or the last one before it in the interval, with its proof.
    pub fn prove(&self, channel: &str, at: Timestamp) -> Option<(Reading, Vec<B256>)> {
        let index = self
            .readings
            .iter()
            .rposition(|r| r.channel == channel && r.at <= at)?;
        Some((self.readings[index].clone(), self.tree.proof(index)?))
    }
}

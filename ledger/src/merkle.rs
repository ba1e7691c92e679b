//! The Merkle tree of an interval's readings, as OpenZeppelin's `MerkleProof` checks it: a leaf
//! is the Keccak-256 of the Keccak-256 of the reading's ABI encoding (so that no inner node can
//! pass for a leaf), a node the Keccak-256 of its two children in sorted order, and an odd node
//! rises to the next level unpaired.

use alloy::primitives::{B256, keccak256};
use alloy::sol_types::SolValue;
use daisee_hal::{MilliWatts, Timestamp};

/// One reading a gateway commits: a channel's power at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The channel's name, as the history keeps it.
    pub channel: String,
    /// When it was read.
    pub at: Timestamp,
    /// Its power (positive: taken from the grid or consumed).
    pub power: MilliWatts,
}

impl Reading {
    /// The reading's leaf: `keccak256(keccak256(abi.encode(channel, timeMs, powerMw)))`.
    pub fn leaf(&self) -> B256 {
        let encoded = (self.channel.as_str(), self.at.0, self.power.0).abi_encode_params();
        keccak256(keccak256(encoded))
    }
}

/// A tree over the leaves of one interval, every level kept so that proofs are lookups.
#[derive(Debug, Clone)]
pub struct ReadingTree {
    levels: Vec<Vec<B256>>,
}

impl ReadingTree {
    /// The tree over `leaves`, in the order given.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => node(*a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root (zero for no leaves).
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_default()
    }

    /// How many leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether there are no leaves.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The proof of the leaf at `index`: its sibling at each level that has one.
    pub fn proof(&self, mut index: usize) -> Option<Vec<B256>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                proof.push(*sibling);
            }
            index /= 2;
        }
        Some(proof)
    }
}

/// Whether `leaf` with `proof` leads to `root`: what the contract's `verifyReading` computes.
pub fn verify(root: B256, leaf: B256, proof: &[B256]) -> bool {
    proof.iter().fold(leaf, |at, sibling| node(at, *sibling)) == root
}

/// A node over two children, in sorted order (OpenZeppelin's commutative Keccak-256).
fn node(a: B256, b: B256) -> B256 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(low.as_slice());
    both[32..].copy_from_slice(high.as_slice());
    keccak256(both)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(i: i64) -> Reading {
        Reading {
            channel: "grid".into(),
            at: Timestamp(1_000 * i),
            power: MilliWatts(-i * 7),
        }
    }

    #[test]
    fn every_leaf_of_every_size_proves_and_no_other_does() {
        for n in 1..=33 {
            let readings: Vec<Reading> = (0..n).map(reading).collect();
            let tree = ReadingTree::new(readings.iter().map(Reading::leaf).collect());
            for (i, r) in readings.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(
                    verify(tree.root(), r.leaf(), &proof),
                    "{n} leaves, leaf {i}"
                );
                let tampered = Reading {
                    power: MilliWatts(r.power.0 + 1),
                    ..r.clone()
                };
                assert!(!verify(tree.root(), tampered.leaf(), &proof));
            }
            assert_eq!(tree.proof(readings.len()), None);
        }
    }

    #[test]
    fn a_proof_grows_with_the_logarithm_of_the_readings() {
        let tree = ReadingTree::new((0..900).map(|i| reading(i).leaf()).collect());
        assert_eq!(tree.proof(0).unwrap().len(), 10);
        assert_eq!(ReadingTree::new(vec![]).root(), B256::ZERO);
    }
}

//! Bids: a curve of power over the price steps, for one slot, signed by the gateway that bids.

use crate::message::SlotMessage;
use crate::signed::{Body, Reader, Signed};
use crate::terms::{Member, Slot, Step, Terms};

/// Power in mW at each price step of the basis, from the cheapest: positive taken from the grid
/// (consumed), negative sent to it (produced). Never rising with the price.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BidCurve(Vec<i64>);

/// Why a curve is not a bid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurveError {
    /// Not one power per price step of the basis.
    #[error("{got} powers for {steps} price steps")]
    Length {
        /// Powers in the curve.
        got: usize,
        /// Steps of the basis.
        steps: u8,
    },
    /// The power rises from one step to the next.
    #[error("the power rises with the price at step {0}")]
    NotMonotone(u8),
    /// The power is outside what the member declared.
    #[error("{power} mW at step {step} is outside the declared ratings")]
    OutsideRatings {
        /// The step.
        step: u8,
        /// The power there.
        power: i64,
    },
}

impl BidCurve {
    /// A curve from its powers, checked against the basis's `steps` and the member's ratings.
    pub fn new(powers: Vec<i64>, steps: u8, member: &Member) -> Result<Self, CurveError> {
        if powers.len() != usize::from(steps) {
            return Err(CurveError::Length {
                got: powers.len(),
                steps,
            });
        }
        if let Some(i) = powers.windows(2).position(|w| w[1] > w[0]) {
            return Err(CurveError::NotMonotone(i as u8 + 1));
        }
        let allowed = -member.export_mw..=member.import_mw;
        if let Some(i) = powers.iter().position(|p| !allowed.contains(p)) {
            return Err(CurveError::OutsideRatings {
                step: i as u8,
                power: powers[i],
            });
        }
        Ok(Self(powers))
    }

    /// The power at `step`.
    pub fn at(&self, step: Step) -> i64 {
        self.0[usize::from(step.0)]
    }

    /// The powers, from the cheapest step.
    pub fn powers(&self) -> &[i64] {
        &self.0
    }
}

/// A bid of one gateway for one slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bid {
    /// The digest of the community's terms it bids under.
    pub terms: [u8; 32],
    /// The slot.
    pub slot: Slot,
    /// Power by price step, in mW. Checked against the terms when the bid is received.
    pub powers: Vec<i64>,
}

impl Body for Bid {
    const TAG: &'static [u8] = b"DAISEE dialogue bid v1";

    /// The terms digest, the slot start (i64), a count (u8) and each power (i64).
    fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.terms);
        out.extend_from_slice(&self.slot.0.to_be_bytes());
        out.push(self.powers.len() as u8);
        for p in &self.powers {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }

    fn read_fields(fields: &[u8]) -> Option<Self> {
        let mut r = Reader(fields);
        let terms = r.bytes::<32>()?;
        let slot = Slot(r.i64()?);
        let [count] = r.bytes::<1>()?;
        let powers = (0..count).map(|_| r.i64()).collect::<Option<Vec<_>>>()?;
        r.end(Self {
            terms,
            slot,
            powers,
        })
    }
}

impl SlotMessage for Bid {
    fn terms(&self) -> [u8; 32] {
        self.terms
    }

    fn slot(&self) -> Slot {
        self.slot
    }
}

/// A bid with its sender's signature, as it travels.
pub type SignedBid = Signed<Bid>;

impl SignedBid {
    /// Its curve, if it is one under `terms` for its sender.
    pub fn curve(&self, terms: &Terms, member: &Member) -> Result<BidCurve, CurveError> {
        BidCurve::new(self.body.powers.clone(), terms.basis.steps, member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::tests::terms;

    #[test]
    fn a_curve_must_fall_with_the_price_and_stay_within_the_ratings() {
        let t = terms(1);
        let m = t.members[0];
        let steps = t.basis.steps;
        let flat = vec![1_000; 100];
        assert!(BidCurve::new(flat.clone(), steps, &m).is_ok());
        assert_eq!(
            BidCurve::new(flat[..99].to_vec(), steps, &m),
            Err(CurveError::Length { got: 99, steps })
        );
        let mut rising = flat.clone();
        rising[40] = 1_001;
        assert_eq!(
            BidCurve::new(rising, steps, &m),
            Err(CurveError::NotMonotone(40))
        );
        let mut too_much = flat;
        too_much[0] = m.import_mw + 1;
        assert_eq!(
            BidCurve::new(too_much, steps, &m),
            Err(CurveError::OutsideRatings {
                step: 0,
                power: m.import_mw + 1
            })
        );
    }

    #[test]
    fn a_signed_bid_names_its_sender_and_any_change_breaks_it() {
        let key = crate::GatewayKey::from_secret(&[7; 32]).unwrap();
        let bid = Bid {
            terms: terms(1).digest(),
            slot: Slot(120_000),
            powers: vec![5; 100],
        };
        let signed = bid.sign(&key);
        assert_eq!(signed.sender(), Ok(key.address()));
        let mut changed = signed.clone();
        changed.body.powers[3] = 4;
        assert_ne!(changed.sender(), Ok(key.address()));
        // Its bytes read back as the same bid; cut or padded, they are no bid.
        let bytes = signed.to_bytes();
        assert_eq!(SignedBid::from_bytes(&bytes), Some(signed.clone()));
        assert_eq!(SignedBid::from_bytes(&bytes[..bytes.len() - 1]), None);
        let mut padded = bytes.clone();
        padded.insert(100, 0);
        assert_eq!(SignedBid::from_bytes(&padded), None);
    }
}

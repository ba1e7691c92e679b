//! The messages of a slot besides bids: the digest of the bid set a gateway holds, and its meter
//! report at the slot's end. Every message names the terms and the slot it is about.

use crate::signed::{Body, Reader};
use crate::terms::Slot;

/// A message about one slot of one community.
pub trait SlotMessage: Body {
    /// The digest of the terms it is under.
    fn terms(&self) -> [u8; 32];
    /// The slot it is about.
    fn slot(&self) -> Slot;
}

/// "I hold the bid set with this digest": published at gate closure, again with the next round
/// each time fetching changes it, and once as the member's vote (`last`), when the bid set is
/// frozen halfway through the grace period. Only votes count for agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Holding {
    /// The terms digest.
    pub terms: [u8; 32],
    /// The slot.
    pub slot: Slot,
    /// Which publication this is for the slot, from 0: the highest heard counts.
    pub round: u32,
    /// Whether this is the member's vote: its last holding for the slot.
    pub last: bool,
    /// The bid set digest.
    pub digest: [u8; 32],
}

impl Body for Holding {
    const TAG: &'static [u8] = b"DAISEE dialogue holding v1";

    /// The terms digest, the slot start (i64), the round (u32), 1 for a vote or 0 (u8) and the
    /// bid set digest.
    fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.terms);
        out.extend_from_slice(&self.slot.0.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        out.push(u8::from(self.last));
        out.extend_from_slice(&self.digest);
    }

    fn read_fields(fields: &[u8]) -> Option<Self> {
        let mut r = Reader(fields);
        let terms = r.bytes()?;
        let slot = Slot(r.i64()?);
        let round = u32::from_be_bytes(r.bytes()?);
        let last = match r.bytes::<1>()? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        let holding = Self {
            terms,
            slot,
            round,
            last,
            digest: r.bytes()?,
        };
        r.end(holding)
    }
}

impl SlotMessage for Holding {
    fn terms(&self) -> [u8; 32] {
        self.terms
    }

    fn slot(&self) -> Slot {
        self.slot
    }
}

/// What a gateway's grid meter counted in a slot, published when the slot ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeterReport {
    /// The terms digest.
    pub terms: [u8; 32],
    /// The slot.
    pub slot: Slot,
    /// Energy taken from the grid in the slot, in mWh.
    pub import_mwh: u64,
    /// Energy sent to the grid in the slot, in mWh.
    pub export_mwh: u64,
}

impl Body for MeterReport {
    const TAG: &'static [u8] = b"DAISEE dialogue report v1";

    /// The terms digest, the slot start (i64), import and export (u64).
    fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.terms);
        out.extend_from_slice(&self.slot.0.to_be_bytes());
        out.extend_from_slice(&self.import_mwh.to_be_bytes());
        out.extend_from_slice(&self.export_mwh.to_be_bytes());
    }

    fn read_fields(fields: &[u8]) -> Option<Self> {
        let mut r = Reader(fields);
        let report = Self {
            terms: r.bytes()?,
            slot: Slot(r.i64()?),
            import_mwh: r.u64()?,
            export_mwh: r.u64()?,
        };
        r.end(report)
    }
}

impl SlotMessage for MeterReport {
    fn terms(&self) -> [u8; 32] {
        self.terms
    }

    fn slot(&self) -> Slot {
        self.slot
    }
}

impl MeterReport {
    /// The net energy metered beyond the allocation of `allocation_mw` over a slot of `slot_ms`,
    /// in mWh (negative: less was taken, or more sent, than allocated). The allocated energy is
    /// `allocation_mw × slot_ms / 3 600 000`, rounded toward zero.
    pub fn deviation_mwh(&self, allocation_mw: i64, slot_ms: i64) -> i64 {
        let metered = i128::from(self.import_mwh) - i128::from(self.export_mwh);
        let allocated = i128::from(allocation_mw) * i128::from(slot_ms) / 3_600_000;
        i64::try_from(metered - allocated).unwrap_or(if metered > allocated {
            i64::MAX
        } else {
            i64::MIN
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GatewayKey, Signed};

    #[test]
    fn a_report_reads_back_and_measures_the_deviation() {
        let key = GatewayKey::from_secret(&[3; 32]).unwrap();
        let report = MeterReport {
            terms: [1; 32],
            slot: Slot(900_000),
            import_mwh: 600_000,
            export_mwh: 100_000,
        }
        .sign(&key);
        let bytes = report.to_bytes();
        assert_eq!(
            Signed::<MeterReport>::from_bytes(&bytes).as_ref(),
            Some(&report)
        );
        // Not a holding, though the lengths are close.
        assert_eq!(Signed::<Holding>::from_bytes(&bytes), None);
        // 1.6 kW allocated for 15 minutes is 400 Wh; 500 Wh net were taken.
        assert_eq!(report.body.deviation_mwh(1_600_000, 900_000), 100_000);
        assert_eq!(report.body.deviation_mwh(2_400_000, 900_000), -100_000);
    }
}

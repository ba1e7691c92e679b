//! What the grid meter counted in each slot, from the energy counters of the snapshots, and the
//! slot's base load, which the next bids are forecast from.

use daisee_dialogue::Slot;
use daisee_hal::{Energy, MilliWattHours, Timestamp};

/// What the grid meter counted in one whole slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Metered {
    /// The slot.
    pub(super) slot: Slot,
    /// Energy imported and exported in it.
    pub(super) energy: Energy,
    /// Its base load in mW: the grid's mean power without what was outside the base.
    pub(super) base_mw: i64,
}

/// The slot under way: its counters at its first snapshot, the energy outside the base so far.
#[derive(Debug, Clone, Copy)]
struct Open {
    slot: Slot,
    start: Energy,
    /// Whether the gateway saw the slot begin (not an agent started halfway through it, nor a
    /// gap of a slot or more) and every reading in it: only then are its counts signed.
    whole: bool,
    /// The energy outside the base so far, in mW·ms (divided once, when the slot ends).
    outside: i128,
    last: Timestamp,
    /// The power outside the base at `last`, which held until the next snapshot.
    outside_mw: i64,
}

/// The grid meter, slot by slot.
#[derive(Debug, Default)]
pub(super) struct SlotMeter {
    open: Option<Open>,
}

impl SlotMeter {
    /// Takes one snapshot's grid counters (`None` when the meter could not be read) and the
    /// power outside the base then (the flexible loads on, and the production a limit holds
    /// back, which the grid would otherwise show); says what the slot that just ended counted,
    /// if one ended and the gateway saw all of it.
    pub(super) fn observe(
        &mut self,
        slot: Slot,
        slot_ms: i64,
        at: Timestamp,
        energy: Option<Energy>,
        outside_mw: i64,
    ) -> Option<Metered> {
        let mut ended = None;
        if let Some(open) = &mut self.open {
            let ms = i128::from(at.millis_since(open.last).max(0));
            open.outside += i128::from(open.outside_mw) * ms;
            open.last = at;
            open.outside_mw = outside_mw;
            if open.slot != slot {
                // Ended at this snapshot only if this is the next slot: after a gap, the counters
                // hold more than the slot.
                open.whole &= open.slot.0 + slot_ms == slot.0;
                ended = Some(*open);
            } else if energy.is_none() {
                open.whole = false;
            }
        }
        if ended.is_some() || self.open.is_none() {
            let next = ended.is_some_and(|o| o.slot.0 + slot_ms == slot.0);
            self.open = energy.map(|start| Open {
                slot,
                start,
                whole: next,
                outside: 0,
                last: at,
                outside_mw,
            });
        }
        let ended = ended.filter(|o| o.whole)?;
        let energy = energy?;
        let energy = Energy {
            import: MilliWattHours(energy.import.0.saturating_sub(ended.start.import.0)),
            export: MilliWattHours(energy.export.0.saturating_sub(ended.start.export.0)),
        };
        // mWh × 3 600 000 is mW·ms: the net energy and the outside one in one unit.
        let net = (i128::from(energy.import.0) - i128::from(energy.export.0)) * 3_600_000;
        let base = (net - ended.outside) / i128::from(slot_ms.max(1));
        Some(Metered {
            slot: ended.slot,
            energy,
            base_mw: i64::try_from(base).unwrap_or(if base > 0 { i64::MAX } else { i64::MIN }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energy(import: u64, export: u64) -> Energy {
        Energy {
            import: MilliWattHours(import),
            export: MilliWattHours(export),
        }
    }

    #[test]
    fn only_whole_slots_are_metered_and_they_forecast_the_base() {
        let mut m = SlotMeter::default();
        let slot_ms = 3_600_000;
        let mut at = |slot: i64, ms: i64, e: Option<Energy>, flexible: i64| {
            m.observe(Slot(slot * slot_ms), slot_ms, Timestamp(ms), e, flexible)
        };
        let some = |i, e| Some(energy(i, e));
        // Started halfway through slot 0: not metered.
        assert_eq!(at(0, 1_800_000, some(0, 0), 0), None);
        assert_eq!(at(1, 3_600_000, some(700, 0), 1_000), None);
        // A whole hour: 2.5 Wh imported, 1 Wh exported, a 1 W load on for the whole hour.
        assert_eq!(at(1, 5_400_000, some(1_700, 500), 1_000), None);
        let metered = at(2, 7_200_000, some(3_200, 1_000), 0);
        // 1.5 Wh net in the hour, 1 Wh of it the flexible load's: a base of 0.5 W.
        assert_eq!(
            metered,
            Some(Metered {
                slot: Slot(3_600_000),
                energy: energy(2_500, 1_000),
                base_mw: 500,
            })
        );
        // A reading missed in a slot, or a slot skipped: nothing is signed for it.
        assert_eq!(at(2, 7_300_000, None, 0), None);
        assert_eq!(at(3, 10_800_000, some(4_000, 1_000), 0), None);
        assert_eq!(at(5, 18_000_000, some(5_000, 1_000), 0), None);
        assert_eq!(at(6, 21_600_000, some(5_100, 1_000), 0), None);
        assert!(at(7, 25_200_000, some(5_200, 1_000), 0).is_some());
    }

    #[test]
    fn production_held_back_counts_outside_the_base_like_a_flexible_load() {
        let mut m = SlotMeter::default();
        let slot_ms = 3_600_000;
        m.observe(
            Slot(-slot_ms),
            slot_ms,
            Timestamp(-1),
            Some(energy(0, 0)),
            0,
        );
        m.observe(Slot(0), slot_ms, Timestamp(0), Some(energy(0, 0)), 0);
        // Half an hour with 2 W held back by a limit, then free: 3 Wh exported in the hour.
        m.observe(Slot(0), slot_ms, Timestamp(1), Some(energy(0, 0)), 2_000);
        m.observe(
            Slot(0),
            slot_ms,
            Timestamp(1_800_001),
            Some(energy(0, 0)),
            0,
        );
        let metered = m.observe(
            Slot(slot_ms),
            slot_ms,
            Timestamp(slot_ms),
            Some(energy(0, 3_000)),
            0,
        );
        // Unlimited, the PV would have sent 4 Wh: a base of -4 W.
        assert_eq!(metered.map(|m| m.base_mw), Some(-4_000));
    }
}

//! What the grid meter counted in each slot, from the energy counters of the snapshots, and the
//! forecast of the base load that the next bids start from.

use daisee_dialogue::Slot;
use daisee_hal::{Energy, MilliWattHours, Timestamp};

/// What the grid meter counted in one whole slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Metered {
    /// The slot.
    pub(super) slot: Slot,
    /// Energy imported and exported in it.
    pub(super) energy: Energy,
    /// Energy the flexible loads drew in it, from their nominal powers while on.
    pub(super) flexible_mwh: u64,
}

/// The slot under way: its counters at its first snapshot, the flexible energy so far.
#[derive(Debug, Clone, Copy)]
struct Open {
    slot: Slot,
    start: Energy,
    /// Whether the gateway saw the slot begin (not an agent started halfway through it, nor a
    /// gap of a slot or more) and every reading in it: only then are its counts signed.
    whole: bool,
    /// The flexible loads' energy so far, in mW·ms (divided once, when the slot ends).
    flexible: u128,
    last: Timestamp,
    /// The flexible power on at `last`, which held until the next snapshot.
    flexible_mw: i64,
}

/// The grid meter, slot by slot.
#[derive(Debug, Default)]
pub(super) struct SlotMeter {
    open: Option<Open>,
    /// The base load of the last whole slot, in mW.
    base_mw: Option<i64>,
}

impl SlotMeter {
    /// Takes one snapshot's grid counters (`None` when the meter could not be read) and the
    /// flexible power on then; says what the slot that just ended counted, if one ended and the
    /// gateway saw all of it.
    pub(super) fn observe(
        &mut self,
        slot: Slot,
        slot_ms: i64,
        at: Timestamp,
        energy: Option<Energy>,
        flexible_mw: i64,
    ) -> Option<Metered> {
        let mut ended = None;
        if let Some(open) = &mut self.open {
            let ms = u128::try_from(at.millis_since(open.last)).unwrap_or(0);
            open.flexible += u128::try_from(open.flexible_mw).unwrap_or(0) * ms;
            open.last = at;
            open.flexible_mw = flexible_mw;
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
                flexible: 0,
                last: at,
                flexible_mw,
            });
        }
        let ended = ended.filter(|o| o.whole)?;
        let energy = energy?;
        let metered = Metered {
            slot: ended.slot,
            energy: Energy {
                import: MilliWattHours(energy.import.0.saturating_sub(ended.start.import.0)),
                export: MilliWattHours(energy.export.0.saturating_sub(ended.start.export.0)),
            },
            flexible_mwh: u64::try_from(ended.flexible / 3_600_000).unwrap_or(u64::MAX),
        };
        let net = i128::from(metered.energy.import.0)
            - i128::from(metered.energy.export.0)
            - i128::from(metered.flexible_mwh);
        self.base_mw = i64::try_from(net * 3_600_000 / i128::from(slot_ms.max(1))).ok();
        Some(metered)
    }

    /// The base load to bid on: the last whole slot's, else what the grid shows now without the
    /// flexible loads (a persistence forecast: the slot ahead is like the one before).
    pub(super) fn base_mw(&self, grid_now_mw: Option<i64>, flexible_mw: i64) -> Option<i64> {
        self.base_mw
            .or_else(|| grid_now_mw.map(|g| g.saturating_sub(flexible_mw)))
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
        assert_eq!(
            metered,
            Some(Metered {
                slot: Slot(3_600_000),
                energy: energy(2_500, 1_000),
                flexible_mwh: 1_000,
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
    fn the_base_is_the_last_whole_slot_else_the_grid_now() {
        let mut m = SlotMeter::default();
        assert_eq!(m.base_mw(Some(500_000), 200_000), Some(300_000));
        assert_eq!(m.base_mw(None, 0), None);
        let slot_ms = 3_600_000;
        m.observe(
            Slot(-slot_ms),
            slot_ms,
            Timestamp(-1),
            Some(energy(0, 0)),
            0,
        );
        m.observe(Slot(0), slot_ms, Timestamp(0), Some(energy(0, 0)), 1_000);
        m.observe(
            Slot(slot_ms),
            slot_ms,
            Timestamp(slot_ms),
            Some(energy(1_500, 0)),
            0,
        );
        // 1.5 Wh in the hour, 1 Wh of it the flexible load's: a base of 0.5 W.
        assert_eq!(m.base_mw(None, 0), Some(500));
        assert_eq!(m.base_mw(Some(9_000), 0), Some(500));
    }
}

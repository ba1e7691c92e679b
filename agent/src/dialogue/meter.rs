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
    /// Whether the gateway saw the slot begin (not an agent started halfway through it).
    whole: bool,
    flexible_mwh: u64,
    last: Timestamp,
}

/// The grid meter, slot by slot.
#[derive(Debug, Default)]
pub(super) struct SlotMeter {
    open: Option<Open>,
    /// The base load of the last whole slot, in mW.
    base_mw: Option<i64>,
}

impl SlotMeter {
    /// Takes one snapshot's grid counters and the flexible power on then; says what the slot
    /// that just ended counted, if one ended and the gateway saw all of it.
    pub(super) fn observe(
        &mut self,
        slot: Slot,
        slot_ms: i64,
        at: Timestamp,
        energy: Energy,
        flexible_mw: i64,
    ) -> Option<Metered> {
        let mut ended = None;
        if let Some(open) = &mut self.open {
            let ms = u64::try_from(at.millis_since(open.last)).unwrap_or(0);
            open.flexible_mwh += u64::try_from(flexible_mw).unwrap_or(0) * ms / 3_600_000;
            open.last = at;
            if open.slot != slot {
                ended = Some(*open);
            }
        }
        if ended.is_some() || self.open.is_none() {
            self.open = Some(Open {
                slot,
                start: energy,
                whole: ended.is_some(),
                flexible_mwh: 0,
                last: at,
            });
        }
        let ended = ended.filter(|o| o.whole)?;
        let metered = Metered {
            slot: ended.slot,
            energy: Energy {
                import: MilliWattHours(energy.import.0.saturating_sub(ended.start.import.0)),
                export: MilliWattHours(energy.export.0.saturating_sub(ended.start.export.0)),
            },
            flexible_mwh: ended.flexible_mwh,
        };
        let net = i128::from(metered.energy.import.0)
            - i128::from(metered.energy.export.0)
            - i128::from(metered.flexible_mwh);
        self.base_mw = i64::try_from(net * 3_600_000 / i128::from(slot_ms.max(1))).ok();
        Some(metered)
    }

    /// The base load to bid on: the last whole slot's, else what the grid shows now without the
    /// flexible loads (a persistence forecast: the slot ahead is like the one before).
    pub(super) fn base_mw(&self, grid_now_mw: i64, flexible_mw: i64) -> i64 {
        self.base_mw
            .unwrap_or_else(|| grid_now_mw.saturating_sub(flexible_mw))
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
        // Started halfway through slot 0: not metered.
        assert_eq!(
            m.observe(Slot(0), slot_ms, Timestamp(1_800_000), energy(0, 0), 0),
            None
        );
        assert_eq!(m.base_mw(500_000, 200_000), 300_000);
        assert_eq!(
            m.observe(
                Slot(3_600_000),
                slot_ms,
                Timestamp(3_600_000),
                energy(700, 0),
                0
            ),
            None
        );
        // A whole hour: 2.5 Wh imported, 1 Wh exported, a 1 W load on for the whole hour.
        m.observe(
            Slot(3_600_000),
            slot_ms,
            Timestamp(5_400_000),
            energy(1_700, 500),
            1_000,
        );
        let metered = m.observe(
            Slot(7_200_000),
            slot_ms,
            Timestamp(7_200_000),
            energy(3_200, 1_000),
            1_000,
        );
        assert_eq!(
            metered,
            Some(Metered {
                slot: Slot(3_600_000),
                energy: energy(2_500, 1_000),
                flexible_mwh: 1_000,
            })
        );
        assert_eq!(m.base_mw(0, 0), 500);
    }
}

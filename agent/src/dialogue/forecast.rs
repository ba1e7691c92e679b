//! The base load ahead, from the gateway's own history: a recent slot's base (today's weather
//! and occupancy), moved by how the base changed between the same two times of day on each of
//! the previous days held (the day's shape: the sun rising and setting, the evening's cooking).
//! The base nets the PV, so its shape is the PV's too.

use std::collections::BTreeMap;

use daisee_dialogue::Slot;

/// A day, in ms.
const DAY_MS: i64 = 86_400_000;
/// The days whose shape counts.
const DAYS: i64 = 7;
/// Slots kept: a week of 15-minute slots. Shorter slots keep less than a week, and forecast by
/// persistence alone when no earlier day is held.
pub(super) const KEPT: usize = 7 * 96;

/// The base load of the slots this gateway metered, latest [`KEPT`].
#[derive(Debug, Default)]
pub(super) struct Profile {
    bases: BTreeMap<Slot, i64>,
}

impl Profile {
    /// A profile of the slots' bases in mW (from the history).
    pub(super) fn new(bases: impl IntoIterator<Item = (Slot, i64)>) -> Self {
        let mut profile = Self::default();
        for (slot, base) in bases {
            profile.note(slot, base);
        }
        profile
    }

    /// Keeps the base of a slot metered.
    pub(super) fn note(&mut self, slot: Slot, base_mw: i64) {
        self.bases.insert(slot, base_mw);
        while self.bases.len() > KEPT {
            self.bases.pop_first();
        }
    }

    /// The latest slot metered and its base.
    pub(super) fn latest(&self) -> Option<(Slot, i64)> {
        self.bases.last_key_value().map(|(s, b)| (*s, *b))
    }

    /// The base of `next`, from `known`'s base (a slot at most a few slots before): `known`'s,
    /// plus the mean change from `known`'s time of day to `next`'s over the days held (integer
    /// mean, rounded toward zero).
    pub(super) fn forecast(&self, known: (Slot, i64), next: Slot) -> i64 {
        let (from, base) = known;
        let changes: Vec<i64> = (1..=DAYS)
            .filter_map(|d| {
                let then = self.bases.get(&Slot(next.0 - d * DAY_MS))?;
                let before = self.bases.get(&Slot(from.0 - d * DAY_MS))?;
                Some(then - before)
            })
            .collect();
        if changes.is_empty() {
            return base;
        }
        let sum: i128 = changes.iter().map(|c| i128::from(*c)).sum();
        let change = sum / changes.len() as i128;
        i64::try_from(i128::from(base) + change).unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOT: i64 = 900_000;
    /// 07:00 on some day.
    const MORNING: i64 = 20_000 * DAY_MS + 7 * 3_600_000;

    #[test]
    fn without_earlier_days_the_base_persists() {
        let profile = Profile::new([(Slot(MORNING - SLOT), 400_000)]);
        let known = profile.latest().unwrap();
        assert_eq!(profile.forecast(known, Slot(MORNING + SLOT)), 400_000);
    }

    #[test]
    fn the_sunrise_of_earlier_days_moves_the_base_of_today() {
        // Yesterday the base fell by 2 kW from 06:45 to 07:15 (the PV coming up), the day
        // before by 1 kW; today's 06:45 was 300 W.
        let days = [(1, 500_000, -1_500_000), (2, 600_000, -400_000)];
        let mut profile = Profile::default();
        for (d, before, then) in days {
            profile.note(Slot(MORNING - SLOT - d * DAY_MS), before);
            profile.note(Slot(MORNING + SLOT - d * DAY_MS), then);
        }
        profile.note(Slot(MORNING - SLOT), 300_000);
        let known = profile.latest().unwrap();
        assert_eq!(known, (Slot(MORNING - SLOT), 300_000));
        assert_eq!(profile.forecast(known, Slot(MORNING + SLOT)), -1_200_000);
        // A day with only one of the two slots does not count.
        profile.note(Slot(MORNING - SLOT - 3 * DAY_MS), 9_000_000);
        assert_eq!(profile.forecast(known, Slot(MORNING + SLOT)), -1_200_000);
    }

    #[test]
    fn a_week_of_slots_is_kept_the_oldest_going_first() {
        let mut profile = Profile::default();
        for i in 0..=KEPT as i64 {
            profile.note(Slot(i * SLOT), i);
        }
        assert_eq!(profile.bases.len(), KEPT);
        assert!(!profile.bases.contains_key(&Slot(0)));
        assert_eq!(
            profile.latest(),
            Some((Slot(KEPT as i64 * SLOT), KEPT as i64))
        );
    }
}

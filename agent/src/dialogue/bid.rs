//! The gateway's bid: what it will draw at each price step of its community, from a forecast of
//! its base load (what it draws with no flexible load on, its PV subtracted) and the flexible
//! loads on its relays; and, once the slot cleared, the budget its allocation leaves those loads.
//!
//! Each flexible load is worth running up to a reservation step between the feed-in and the
//! import tariff: the more important the load (its `priority`), the nearer the import tariff, so
//! that at a high local price the least important loads wait for a cheaper slot first.
//!
//! What the curtailable inverters produce is offered back at the lowest step only: the
//! community's price falls that low only when its export is over the feeder's cap and every
//! flexible load already runs, and then the clearing shares the curtailment pro rata.

use daisee_control::FlexLoad;
use daisee_dialogue::{Member, Terms};
use daisee_hal::MilliWatts;

/// The price step up to which `load` runs: the loads' distinct priorities, lowest first, share
/// the steps strictly between the two tariffs evenly.
fn reservation(terms: &Terms, loads: &[FlexLoad], load: &FlexLoad) -> u8 {
    let mut priorities: Vec<u8> = loads.iter().map(|l| l.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let rank = priorities
        .iter()
        .take_while(|p| **p < load.priority)
        .count() as u32
        + 1;
    let (low, high) = (
        u32::from(terms.feed_in_tariff.0),
        u32::from(terms.import_tariff.0),
    );
    let step = low + (high - low) * rank / (priorities.len() as u32 + 1);
    u8::try_from(step).unwrap_or(u8::MAX)
}

/// The curve: at each step the base load and every flexible load whose reservation is that
/// step or dearer, and at step 0 the curtailable production given up, within the member's
/// declared ratings.
pub(super) fn curve(
    terms: &Terms,
    member: &Member,
    base_mw: i64,
    loads: &[FlexLoad],
    curtailable_mw: i64,
) -> Vec<i64> {
    (0..terms.basis.steps)
        .map(|step| {
            let flexible: i64 = loads
                .iter()
                .filter(|l| reservation(terms, loads, l) >= step)
                .map(|l| l.nominal.0)
                .sum();
            let curtailed = if step == 0 { curtailable_mw } else { 0 };
            base_mw
                .saturating_add(flexible)
                .saturating_add(curtailed)
                .clamp(-member.export_mw, member.import_mw)
        })
        .collect()
}

/// What the flexible loads may draw together under an allocation of `allocation_mw`: what is
/// left of it above the base load, at most all of them.
pub(super) fn budget(allocation_mw: i64, base_mw: i64, loads: &[FlexLoad]) -> MilliWatts {
    let all: i64 = loads.iter().map(|l| l.nominal.0).sum();
    MilliWatts(allocation_mw.saturating_sub(base_mw).clamp(0, all))
}

/// The export limit an allocation of `allocation_mw` sets, if the flexible loads cannot take up
/// all of what is left of it above the base load: the inverters then give up the rest.
pub(super) fn export_limit(
    allocation_mw: i64,
    base_mw: i64,
    loads: &[FlexLoad],
) -> Option<MilliWatts> {
    let curtailed = allocation_mw - base_mw - budget(allocation_mw, base_mw, loads).0;
    (curtailed > 0).then(|| MilliWatts((-allocation_mw).max(0)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use daisee_dialogue::{Address, PriceBasis, Step};
    use daisee_hal::RelayState;

    use super::*;

    fn load(name: &str, priority: u8, watts: i64) -> FlexLoad {
        FlexLoad {
            name: name.into(),
            priority,
            nominal: MilliWatts(watts * 1000),
            min_on: Duration::ZERO,
            min_off: Duration::ZERO,
            max_switches_per_hour: 60,
            safe: RelayState::Off,
            schedule: Vec::new(),
        }
    }

    fn terms() -> Terms {
        let member = Member {
            address: Address([1; 20]),
            import_mw: 9_000_000,
            export_mw: 6_000_000,
        };
        Terms {
            community: "c".into(),
            basis: PriceBasis {
                first: 0,
                increment: 10_000,
                steps: 40,
            },
            import_tariff: Step(30),
            feed_in_tariff: Step(9),
            import_cap_mw: 1 << 40,
            export_cap_mw: 1 << 40,
            slot_ms: 900_000,
            gate_ms: 60_000,
            grace_ms: 20_000,
            quorum: 1,
            members: vec![member],
        }
    }

    #[test]
    fn important_loads_run_at_dearer_prices_and_the_curve_stays_in_the_ratings() {
        let terms = terms();
        let member = terms.members[0];
        let loads = [load("ev", 1, 3700), load("boiler", 2, 2000)];
        // Priorities 1 and 2 share steps 9..30: reservations 16 and 23.
        assert_eq!(reservation(&terms, &loads, &loads[0]), 16);
        assert_eq!(reservation(&terms, &loads, &loads[1]), 23);
        let c = curve(&terms, &member, 4_000_000, &loads, 0);
        assert_eq!(c.len(), 40);
        assert_eq!(
            c[0], 9_000_000,
            "5.7 kW flexible on 4 kW base, capped at the 9 kW rating"
        );
        assert_eq!(c[16], 9_000_000);
        assert_eq!(c[17], 6_000_000);
        assert_eq!(c[23], 6_000_000);
        assert_eq!(c[24], 4_000_000);
        assert!(c.windows(2).all(|w| w[1] <= w[0]));
        let exporting = curve(&terms, &member, -8_000_000, &loads, 0);
        assert_eq!(exporting[39], -6_000_000);
        assert_eq!(exporting[0], -2_300_000);
    }

    #[test]
    fn production_is_given_up_at_the_lowest_step_only_after_every_load() {
        let terms = terms();
        let member = terms.members[0];
        let loads = [load("ev", 1, 3700)];
        // 5 kW exported with the charger off; the inverters produce 6 kW.
        let c = curve(&terms, &member, -5_000_000, &loads, 6_000_000);
        assert_eq!(c[0], 4_700_000, "all curtailed, the charger on");
        assert_eq!(c[1], -1_300_000, "the charger on");
        assert_eq!(c[39], -5_000_000);
        assert!(c.windows(2).all(|w| w[1] <= w[0]));
        // Cleared at step 1 with 2 kW of the curtailment taken: export at most 0.3 kW.
        assert_eq!(
            export_limit(-300_000, -5_000_000, &loads),
            Some(MilliWatts(300_000))
        );
        // Cleared where the charger alone takes the rest: no curtailment.
        assert_eq!(export_limit(-1_300_000, -5_000_000, &loads), None);
        assert_eq!(export_limit(-2_000_000, -5_000_000, &loads), None);
        // Curtailed past zero: no export at all.
        assert_eq!(
            export_limit(1_000_000, -5_000_000, &loads),
            Some(MilliWatts(0))
        );
    }

    #[test]
    fn the_budget_is_the_allocation_above_the_base_load() {
        let loads = [load("ev", 1, 3700), load("boiler", 2, 2000)];
        assert_eq!(budget(6_000_000, 4_000_000, &loads), MilliWatts(2_000_000));
        assert_eq!(budget(3_000_000, 4_000_000, &loads), MilliWatts(0));
        assert_eq!(budget(20_000_000, 4_000_000, &loads), MilliWatts(5_700_000));
    }
}

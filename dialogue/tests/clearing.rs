//! Properties of the clearing over many random communities and bid sets (a seeded generator, so
//! that a failure names the case that shows it): it is deterministic and independent of the
//! order of the bids, balances the community with the grid, respects the feeder limit, never
//! gives a gateway a power its curve does not offer, and refuses only what cannot clear.

use daisee_dialogue::{
    Address, BidCurve, Clearing, Infeasible, Member, PriceBasis, Step, Terms, clear,
};

/// SplitMix64: small, seeded, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

const RATING: i64 = 10_000_000;

fn community(rng: &mut Rng, n: usize) -> Terms {
    let steps = rng.range(3, 100) as u8;
    let feed_in = rng.range(1, i64::from(steps) - 2) as u8;
    let import = rng.range(i64::from(feed_in) + 1, i64::from(steps) - 1) as u8;
    let members = (0..n)
        .map(|i| Member {
            address: Address([i as u8 + 1; 20]),
            import_mw: RATING,
            export_mw: RATING,
        })
        .collect();
    Terms {
        community: "prop".into(),
        basis: PriceBasis {
            first: rng.range(-100_000, 100_000),
            increment: rng.range(1, 10_000),
            steps,
        },
        import_tariff: Step(import),
        feed_in_tariff: Step(feed_in),
        import_cap_mw: rng.range(0, RATING * n as i64 / 2),
        export_cap_mw: rng.range(0, RATING * n as i64 / 2),
        slot_ms: 60_000,
        gate_ms: 10_000,
        grace_ms: 5_000,
        quorum: Terms::default_quorum(n),
        members,
    }
}

/// A curve falling in a few random drops, sometimes flat, sometimes all consumption or all
/// production.
fn curve(rng: &mut Rng, terms: &Terms, member: &Member) -> BidCurve {
    let steps = usize::from(terms.basis.steps);
    let mut power = rng.range(-RATING, RATING);
    let mut powers = Vec::with_capacity(steps);
    for _ in 0..steps {
        if rng.range(0, 9) == 0 {
            power = rng.range(-RATING, power);
        }
        powers.push(power);
    }
    BidCurve::new(powers, terms.basis.steps, member).expect("a generated curve is valid")
}

fn check(
    case: u64,
    terms: &Terms,
    bids: &[(Address, BidCurve)],
    result: &Result<Clearing, Infeasible>,
) {
    let top = terms.basis.steps - 1;
    let sum_at = |k: u8| bids.iter().map(|(_, c)| c.at(Step(k))).sum::<i64>();
    let c = match result {
        Err(Infeasible::ImportCap) => {
            assert!(
                sum_at(top) > terms.import_cap_mw,
                "case {case}: needless ImportCap"
            );
            return;
        }
        Err(Infeasible::ExportCap) => {
            assert!(
                sum_at(0) < -terms.export_cap_mw,
                "case {case}: needless ExportCap"
            );
            return;
        }
        Ok(c) => c,
    };
    let k = c.price.0;
    let below = k.saturating_sub(1);
    // Balance with the grid, within the feeder limit.
    let total: i64 = c.allocations.iter().map(|(_, p)| p).sum();
    assert_eq!(
        total, c.grid_mw,
        "case {case}: the community does not balance"
    );
    assert!(
        (-terms.export_cap_mw..=terms.import_cap_mw).contains(&c.grid_mw),
        "case {case}: {} mW breaks the feeder limit",
        c.grid_mw
    );
    // The grid's share lies on its own implicit curve.
    assert!(
        (terms.grid_bid(k)..=terms.grid_bid(below)).contains(&-c.grid_mw),
        "case {case}: the grid is off its curve"
    );
    // Each gateway gets a power its curve offers between the clearing step and the one below.
    assert_eq!(c.allocations.len(), bids.len(), "case {case}");
    for (address, power) in &c.allocations {
        let (_, curve) = bids.iter().find(|(a, _)| a == address).expect("a bidder");
        assert!(
            (curve.at(Step(k))..=curve.at(Step(below))).contains(power),
            "case {case}: {address} gets {power} mW, off its curve at step {k}"
        );
    }
    // The clearing step is the cheapest at which supply meets demand.
    let with_grid = |s: u8| sum_at(s) + terms.grid_bid(s);
    assert!(with_grid(k) <= 0, "case {case}");
    assert!(
        k == 0 || with_grid(k - 1) > 0,
        "case {case}: a cheaper step clears"
    );
}

#[test]
fn clearing_holds_its_properties_over_random_bid_sets() {
    let mut rng = Rng(2026);
    let (mut cleared, mut refused) = (0, 0);
    for case in 0..3_000 {
        let n = rng.range(1, 40) as usize;
        let terms = community(&mut rng, n);
        assert_eq!(terms.check(), Ok(()), "case {case}");
        let bids: Vec<(Address, BidCurve)> = terms
            .members
            .iter()
            .map(|m| (m.address, curve(&mut rng, &terms, m)))
            .collect();
        let result = clear(&terms, &bids);
        check(case, &terms, &bids, &result);
        // The same bids in another order clear the same.
        let mut shuffled = bids.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.range(0, i as i64) as usize);
        }
        assert_eq!(
            clear(&terms, &shuffled),
            result,
            "case {case}: order matters"
        );
        if result.is_ok() {
            cleared += 1;
        } else {
            refused += 1;
        }
    }
    // Both kinds of outcome were exercised.
    assert!(
        cleared > 1_000 && refused > 100,
        "{cleared} cleared, {refused} refused"
    );
}

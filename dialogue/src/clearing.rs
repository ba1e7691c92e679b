//! Clearing: a pure integer function of the bid set, so that every gateway holding the same bids
//! computes the same price and allocations, bit for bit.
//!
//! The grid bids too, implicitly: it takes the community's export up to the export cap at prices
//! below the feed-in tariff, sells up to the import cap at the import tariff and above, and does
//! nothing in between. The clearing step is the cheapest at which the bids and the grid together
//! consume nothing or less; those whose power falls between the step below and that one (the
//! marginal bids, the grid among them) share what is left pro rata of their fall, integer
//! remainders one mW each in address order, the grid last.

use crate::bid::BidCurve;
use crate::key::Address;
use crate::terms::{Step, Terms};

/// The outcome of a slot's clearing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Clearing {
    /// The clearing price step.
    pub price: Step,
    /// What the community takes from the grid together, in mW (negative: sends to it).
    pub grid_mw: i64,
    /// Each bidder's power in the slot, in mW, by address.
    pub allocations: Vec<(Address, i64)>,
}

/// Why a bid set cannot clear: the feeder limit cannot hold at any price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Infeasible {
    /// Even at the highest price the community would take more than the import cap.
    #[error("the community's demand exceeds the import cap at every price")]
    ImportCap,
    /// Even at the lowest price the community would send more than the export cap.
    #[error("the community's production exceeds the export cap at every price")]
    ExportCap,
}

/// Clears `bids` (one curve per address, each under `terms`).
pub fn clear(terms: &Terms, bids: &[(Address, BidCurve)]) -> Result<Clearing, Infeasible> {
    let mut bids: Vec<&(Address, BidCurve)> = bids.iter().collect();
    bids.sort_unstable_by_key(|(a, _)| *a);
    let total = |step: u8| -> i128 {
        let s = Step(step);
        bids.iter().map(|(_, c)| i128::from(c.at(s))).sum::<i128>()
            + i128::from(terms.grid_bid(step))
    };
    let top = terms.basis.steps - 1;
    let Some(k) = (0..=top).find(|&k| total(k) <= 0) else {
        return Err(Infeasible::ImportCap);
    };
    if k == 0 && total(0) < 0 {
        return Err(Infeasible::ExportCap);
    }
    // The marginal bids' fall from step k-1 to k, the grid's last; `excess` is what must be
    // taken back of the fall so that the community balances with the grid.
    let below = k.saturating_sub(1);
    let mut falls: Vec<i128> = bids
        .iter()
        .map(|(_, c)| i128::from(c.at(Step(below)) - c.at(Step(k))))
        .collect();
    falls.push(i128::from(terms.grid_bid(below) - terms.grid_bid(k)));
    let excess = -total(k);
    let shares = share(&falls, excess);
    let allocations: Vec<(Address, i64)> = bids
        .iter()
        .zip(&shares)
        .map(|((a, c), s)| (*a, c.at(Step(k)) + to_mw(*s)))
        .collect();
    let grid = terms.grid_bid(k) + to_mw(shares[bids.len()]);
    Ok(Clearing {
        price: Step(k),
        grid_mw: -grid,
        allocations,
    })
}

/// `excess` shared in proportion to `falls` (each share at most its fall, since
/// `excess` ≤ their sum), remainders one each in order.
fn share(falls: &[i128], excess: i128) -> Vec<i128> {
    let sum: i128 = falls.iter().sum();
    if excess == 0 || sum == 0 {
        return vec![0; falls.len()];
    }
    let mut shares: Vec<i128> = falls.iter().map(|f| f * excess / sum).collect();
    let mut left = excess - shares.iter().sum::<i128>();
    for (share, fall) in shares.iter_mut().zip(falls) {
        if left == 0 {
            break;
        }
        if fall * excess % sum != 0 {
            *share += 1;
            left -= 1;
        }
    }
    shares
}

/// A share back in mW: it lies between two powers of one curve, so it fits.
fn to_mw(share: i128) -> i64 {
    i64::try_from(share).expect("a share never exceeds a curve's fall")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::tests::terms;

    fn curve(t: &Terms, f: impl Fn(u8) -> i64) -> BidCurve {
        let powers = (0..t.basis.steps).map(f).collect();
        BidCurve::new(powers, t.basis.steps, &t.members[0]).unwrap()
    }

    #[test]
    fn a_lone_consumer_buys_from_the_grid_at_the_import_tariff() {
        let t = terms(1);
        let c = clear(&t, &[(Address([1; 20]), curve(&t, |_| 2_000_000))]).unwrap();
        assert_eq!(c.price, t.import_tariff);
        assert_eq!(c.grid_mw, 2_000_000);
        assert_eq!(c.allocations, [(Address([1; 20]), 2_000_000)]);
    }

    #[test]
    fn a_lone_producer_sells_to_the_grid_at_the_feed_in_tariff() {
        let t = terms(1);
        let c = clear(&t, &[(Address([1; 20]), curve(&t, |_| -3_000_000))]).unwrap();
        assert_eq!(c.price, t.feed_in_tariff);
        assert_eq!(c.grid_mw, -3_000_000);
    }

    #[test]
    fn a_flexible_load_takes_local_production_between_the_tariffs() {
        let t = terms(2);
        // PV sends 3 kW at any price; a boiler takes 2 kW below step 20, nothing above.
        let pv = curve(&t, |_| -3_000_000);
        let boiler = curve(&t, |k| if k < 20 { 2_000_000 } else { 0 });
        let bids = [(Address([1; 20]), pv), (Address([2; 20]), boiler)];
        let c = clear(&t, &bids).unwrap();
        assert_eq!(c.price, t.feed_in_tariff);
        assert_eq!(
            c.allocations,
            [
                (Address([1; 20]), -3_000_000),
                (Address([2; 20]), 2_000_000)
            ]
        );
        assert_eq!(c.grid_mw, -1_000_000);
    }

    #[test]
    fn a_fall_is_shared_pro_rata_with_remainders_in_address_order() {
        let t = terms(3);
        // PV 2 kW; two loads of 1 kW and 2 kW that both give up at step 15; 1 kW to cut.
        let pv = curve(&t, |_| -2_000_000);
        let a = curve(&t, |k| if k < 15 { 1_000_000 } else { 0 });
        let b = curve(&t, |k| if k < 15 { 2_000_000 } else { 0 });
        let bids = [
            (Address([3; 20]), b),
            (Address([1; 20]), pv),
            (Address([2; 20]), a),
        ];
        let c = clear(&t, &bids).unwrap();
        assert_eq!(c.price, Step(15));
        assert_eq!(c.grid_mw, 0);
        // 2 000 000 of the loads' 3 000 000 fall stays: 666 666.7 and 1 333 333.3, the one mW
        // left over to the lower address.
        assert_eq!(
            c.allocations,
            [
                (Address([1; 20]), -2_000_000),
                (Address([2; 20]), 666_667),
                (Address([3; 20]), 1_333_333)
            ]
        );
    }

    #[test]
    fn beyond_the_feeder_caps_there_is_no_clearing() {
        let t = terms(2);
        let big = |p: i64| curve(&t, move |_| p);
        let hungry = [
            (Address([1; 20]), big(10_000_000)),
            (Address([2; 20]), big(9_000_000)),
            (Address([3; 20]), big(1_000_001)),
        ];
        assert_eq!(clear(&t, &hungry), Err(Infeasible::ImportCap));
        let sunny = [
            (Address([1; 20]), big(-10_000_000)),
            (Address([2; 20]), big(-5_000_001)),
        ];
        assert_eq!(clear(&t, &sunny), Err(Infeasible::ExportCap));
    }
}

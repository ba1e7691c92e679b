//! Anyone can clear a slot's bid set again from its JSON form: every signature is checked, and
//! what does not count is named with its reason.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod common;

use daisee_dialogue::audit::{BidSetJson, reclear};
use daisee_dialogue::{Bid, Body, Rejection, Slot, SlotBook};

#[test]
fn a_bid_set_clears_again_from_its_json_with_every_bad_bid_named() {
    let keys = common::keys(5);
    let terms = common::terms(&keys, 60_000, 10_000, 5_000);
    let slot = Slot(600_000);
    let bid = |i: usize, powers: Vec<i64>| {
        Bid {
            terms: terms.digest(),
            slot,
            powers,
        }
        .sign(&keys[i])
    };
    let mut bids: Vec<_> = (0..5).map(|i| bid(i, common::powers(i))).collect();
    // Gateway 4 signs a second, different bid: it is excluded.
    let mut other = common::powers(4);
    other[0] = 4_000_000;
    bids.push(bid(4, other));
    let mut json = BidSetJson::new(&terms, slot, &bids);
    // One bid altered on the way, one that is no bid at all.
    let altered = json.bids[1].replace("0x44", "0x45");
    json.bids.push(altered);
    json.bids.push("0x00".into());
    let audit = reclear(&serde_json::to_string_pretty(&json).unwrap()).unwrap();

    let mut book = SlotBook::new(terms.clone(), slot, keys[0].address());
    for b in &bids[..4] {
        book.offer_fetched(b.clone()).unwrap();
    }
    assert_eq!(audit.outcome, book.clearing());
    assert!(audit.outcome.is_ok());
    assert_eq!(audit.excluded.len(), 1);
    assert_eq!(audit.excluded[0].first.sender(), Ok(keys[4].address()));
    assert_eq!(
        audit.rejected,
        [
            (5, Rejection::Equivocation(keys[4].address())),
            (6, Rejection::Malformed),
            (7, Rejection::Malformed)
        ]
    );
}

#[test]
fn a_file_that_is_not_a_bid_set_says_so() {
    assert!(
        reclear("{}")
            .unwrap_err()
            .to_string()
            .contains("not a bid set")
    );
    let keys = common::keys(3);
    let mut terms = (*common::terms(&keys, 60_000, 10_000, 5_000)).clone();
    terms.quorum = 1;
    let json = BidSetJson::new(&terms, Slot(0), &[]);
    let err = reclear(&serde_json::to_string(&json).unwrap()).unwrap_err();
    assert!(err.to_string().contains("quorum"), "{err}");
}

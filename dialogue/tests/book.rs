//! One slot as five gateways keep it: every rejection, equivocation, agreement, a silent member
//! and a partition, with real signatures.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod common;

use daisee_dialogue::{
    Bid, Body, CurveError, GatewayKey, Holding, MeterReport, NoTrade, Phase, Rejection, Signed,
    SignedBid, Slot, SlotBook, Step, Taken, Terms,
};

const SLOT: Slot = Slot(600_000);
/// Before gate closure (590 000).
const EARLY: i64 = 580_000;

/// Gateway `i`'s bid for [`SLOT`].
fn bid(terms: &Terms, key: &GatewayKey, i: usize) -> SignedBid {
    Bid {
        terms: terms.digest(),
        slot: SLOT,
        powers: common::powers(i),
    }
    .sign(key)
}

/// Five gateways: their keys, their bids, and each one's empty book.
struct Five {
    keys: Vec<GatewayKey>,
    bids: Vec<SignedBid>,
    books: Vec<SlotBook>,
}

fn five() -> Five {
    let keys = common::keys(5);
    let terms = common::terms(&keys, 60_000, 10_000, 5_000);
    let bids = keys
        .iter()
        .enumerate()
        .map(|(i, k)| bid(&terms, k, i))
        .collect();
    let books = keys
        .iter()
        .map(|k| SlotBook::new(terms.clone(), SLOT, k.address()))
        .collect();
    Five { keys, bids, books }
}

#[test]
fn every_bad_bid_is_rejected_with_its_reason() {
    let keys = common::keys(5);
    let terms = common::terms(&keys, 60_000, 10_000, 5_000);
    let mut book = SlotBook::new(terms.clone(), SLOT, keys[0].address());
    let good = bid(&terms, &keys[1], 1);
    let resign = |mut b: Bid| {
        b.powers.truncate(usize::from(terms.basis.steps));
        b.sign(&keys[1])
    };

    let mut forged = good.clone();
    forged.body.powers[0] -= 1;
    assert!(matches!(
        book.offer(forged, EARLY),
        Err(Rejection::BadSignature | Rejection::NotMember(_))
    ));
    let stranger = GatewayKey::from_secret(&[99; 32]).unwrap();
    let theirs = bid(&terms, &stranger, 1);
    assert_eq!(
        book.offer(theirs, EARLY),
        Err(Rejection::NotMember(stranger.address()))
    );
    let other_terms = resign(Bid {
        terms: [0; 32],
        ..good.body.clone()
    });
    assert_eq!(book.offer(other_terms, EARLY), Err(Rejection::WrongTerms));
    let next_slot = resign(Bid {
        slot: Slot(SLOT.0 + 60_000),
        ..good.body.clone()
    });
    assert_eq!(book.offer(next_slot, EARLY), Err(Rejection::WrongSlot));
    let replay = resign(Bid {
        slot: Slot(SLOT.0 - 60_000),
        ..good.body.clone()
    });
    assert_eq!(book.offer(replay, EARLY), Err(Rejection::Replay));
    let mut rising = good.body.clone();
    rising.powers[5] = rising.powers[4] + 1;
    assert_eq!(
        book.offer(resign(rising), EARLY),
        Err(Rejection::Curve(CurveError::NotMonotone(5)))
    );
    let mut too_big = good.body.clone();
    too_big.powers[0] = 5_000_001;
    assert!(matches!(
        book.offer(resign(too_big), EARLY),
        Err(Rejection::Curve(CurveError::OutsideRatings { step: 0, .. }))
    ));
    assert_eq!(
        book.offer(good.clone(), 590_001),
        Err(Rejection::Late),
        "after gate closure"
    );
    // The good bid is taken once, and known when it comes again.
    let sender = keys[1].address();
    assert_eq!(book.offer(good.clone(), EARLY), Ok(Taken::New(sender)));
    assert_eq!(book.offer(good, EARLY), Ok(Taken::Known(sender)));
}

#[test]
fn an_equivocating_gateway_is_excluded_and_its_two_bids_kept() {
    let keys = common::keys(5);
    let terms = common::terms(&keys, 60_000, 10_000, 5_000);
    let mut book = SlotBook::new(terms.clone(), SLOT, keys[0].address());
    for (i, k) in keys.iter().enumerate() {
        book.offer(bid(&terms, k, i), EARLY).unwrap();
    }
    let liar = keys[2].address();
    let mut second = bid(&terms, &keys[2], 2).body;
    second.powers[0] = 4_000_000;
    let second = second.sign(&keys[2]);
    assert_eq!(
        book.offer(second.clone(), EARLY),
        Err(Rejection::Equivocation(liar))
    );
    let evidence = book.evidence();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].second, second);
    assert_eq!(evidence[0].first.sender(), Ok(liar));
    // Both bids go to a peer that fetches, which excludes the liar too: same digest.
    let mut peer = SlotBook::new(terms.clone(), SLOT, keys[1].address());
    for b in book.missing_from(&peer.inventory()) {
        let _ = peer.offer_fetched(b);
    }
    assert_eq!(peer.digest(), book.digest());
    // The clearing leaves the liar out.
    book.close_gate();
    for k in &keys[1..] {
        book.hear(&peer.vote(0).sign(k)).unwrap();
    }
    let Phase::Agreed(clearing) = book.settle().clone() else {
        panic!("{:?}", book.phase())
    };
    assert_eq!(clearing.allocations.len(), 4);
    assert!(clearing.allocations.iter().all(|(a, _)| *a != liar));
}

/// Every book takes every bid, in its own order, closes the gate, and hears the holding
/// messages of the gateways `heard` says it hears.
fn run_slot(five: &mut Five, heard: impl Fn(usize, usize) -> bool) {
    let Five { keys, bids, books } = five;
    for (b, book) in books.iter_mut().enumerate() {
        for j in 0..bids.len() {
            book.offer(bids[(j + b) % bids.len()].clone(), EARLY)
                .unwrap();
        }
    }
    let holdings: Vec<Signed<Holding>> = books
        .iter_mut()
        .zip(keys.iter())
        .map(|(book, key)| {
            book.close_gate();
            book.vote(0).sign(key)
        })
        .collect();
    for (b, book) in books.iter_mut().enumerate() {
        for (p, holding) in holdings.iter().enumerate() {
            if heard(b, p) {
                book.hear(holding).unwrap();
            }
        }
    }
}

#[test]
fn five_gateways_agree_on_one_clearing() {
    let mut five = five();
    run_slot(&mut five, |_, _| true);
    let outcomes: Vec<Phase> = five.books.iter_mut().map(|b| b.settle().clone()).collect();
    let Phase::Agreed(c) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert!(outcomes.iter().all(|o| o == &outcomes[0]));
    // 4 kW of PV (two producers in five) against 9 kW of demand below step 20, where the grid
    // neither buys nor sells: the loads give up at step 20 and share the 4 kW.
    assert_eq!(c.price, Step(20));
    assert_eq!(c.grid_mw, 0);
    let loads: Vec<i64> = c
        .allocations
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| *p > 0)
        .collect();
    assert_eq!(loads.iter().sum::<i64>(), 4_000_000);
    assert!(
        loads.iter().all(|p| (1_333_333..=1_333_334).contains(p)),
        "{loads:?}"
    );
}

#[test]
fn a_silent_member_leaves_a_quorum_and_the_rest_agree() {
    let mut five = five();
    // Gateway 4 bid, then stopped: nobody hears its digest.
    run_slot(&mut five, |_, p| p != 4);
    let outcomes: Vec<Phase> = five.books[..4]
        .iter_mut()
        .map(|b| b.settle().clone())
        .collect();
    assert!(matches!(outcomes[0], Phase::Agreed(_)), "{:?}", outcomes[0]);
    assert!(outcomes.iter().all(|o| o == &outcomes[0]));
}

#[test]
fn a_partition_gives_no_trade_on_both_sides() {
    let mut five = five();
    // {0, 1, 2} and {3, 4} hear only their own side's digests.
    let side = |g: usize| g < 3;
    run_slot(&mut five, |b, p| side(b) == side(p));
    for (g, book) in five.books.iter_mut().enumerate() {
        let agreeing = if side(g) { 3 } else { 2 };
        assert_eq!(
            book.settle(),
            &Phase::NoTrade(NoTrade::NoQuorum {
                agreeing,
                quorum: 4
            }),
            "gateway {g}"
        );
    }
}

#[test]
fn different_bid_sets_are_reconciled_by_fetching_before_the_grace_ends() {
    let Five {
        bids, mut books, ..
    } = five();
    // Gateway 0 missed gateway 3's bid by gossip.
    for (b, book) in books.iter_mut().enumerate() {
        for (j, bid) in bids.iter().enumerate() {
            if !(b == 0 && j == 3) {
                book.offer(bid.clone(), EARLY).unwrap();
            }
        }
    }
    let before: Vec<[u8; 32]> = books.iter_mut().map(SlotBook::close_gate).collect();
    assert_ne!(before[0], before[1]);
    // It fetches what it lacks from peer 1, and holds the same set.
    let missing = books[1].missing_from(&books[0].inventory());
    assert_eq!(missing, vec![bids[3].clone()]);
    for b in missing {
        let _ = books[0].offer_fetched(b);
    }
    assert_eq!(books[0].digest(), books[1].digest());
}

#[test]
fn holdings_and_reports_are_checked_like_bids() {
    let Five {
        keys,
        bids,
        mut books,
    } = five();
    let book = &mut books[0];
    book.offer(bids[1].clone(), EARLY).unwrap();
    let holding = book.holding(1);
    let stranger = GatewayKey::from_secret(&[99; 32]).unwrap();
    assert_eq!(
        book.hear(&holding.sign(&stranger)),
        Err(Rejection::NotMember(stranger.address()))
    );
    let mut forged = holding.sign(&keys[1]);
    forged.body.digest[0] ^= 1;
    assert!(matches!(
        book.hear(&forged),
        Err(Rejection::BadSignature | Rejection::NotMember(_))
    ));
    let old = Holding {
        slot: Slot(SLOT.0 - 60_000),
        ..holding
    };
    assert_eq!(book.hear(&old.sign(&keys[1])), Err(Rejection::Replay));
    // A replayed earlier round does not take back a later one.
    let mine = holding.digest;
    book.hear(&holding.sign(&keys[1])).unwrap();
    let earlier = Holding {
        round: 0,
        digest: [7; 32],
        ..holding
    };
    book.hear(&earlier.sign(&keys[1])).unwrap();
    assert_eq!(
        book.digests().collect::<Vec<_>>(),
        [(keys[1].address(), mine)]
    );
    // Only votes count: members 1 to 3 vote for this book's set, which with its own vote is the
    // quorum of 4; then member 1 votes for another set too and counts for neither.
    let vote = Holding {
        last: true,
        ..holding
    };
    for k in &keys[1..4] {
        book.hear(&vote.sign(k)).unwrap();
    }
    let other_vote = Holding {
        digest: [7; 32],
        ..vote
    };
    assert_eq!(
        book.hear(&other_vote.sign(&keys[1])),
        Err(Rejection::Equivocation(keys[1].address()))
    );
    book.close_gate();
    assert_eq!(
        book.settle(),
        &Phase::NoTrade(NoTrade::NoQuorum {
            agreeing: 3,
            quorum: 4
        })
    );
    // Meter reports: a member's first one is kept.
    let report = MeterReport {
        terms: holding.terms,
        slot: SLOT,
        import_mwh: 500_000,
        export_mwh: 0,
    };
    let sender = keys[1].address();
    assert_eq!(book.report(report.sign(&keys[1])), Ok(sender));
    let second = MeterReport {
        import_mwh: 1,
        ..report
    };
    assert_eq!(book.report(second.sign(&keys[1])), Ok(sender));
    assert_eq!(book.reports()[&sender].body, report);
    let wrong = MeterReport {
        slot: Slot(SLOT.0 + 60_000),
        ..report
    };
    assert_eq!(book.report(wrong.sign(&keys[2])), Err(Rejection::WrongSlot));
}

#[test]
fn a_bid_fetched_again_is_known_and_a_body_under_a_held_signature_is_not() {
    let mut five = five();
    let book = &mut five.books[0];
    let held = five.bids[1].clone();
    assert_eq!(
        book.offer(held.clone(), EARLY),
        Ok(Taken::New(five.keys[1].address()))
    );
    book.close_gate();
    assert_eq!(
        book.offer_fetched(held.clone()),
        Ok(Taken::Known(five.keys[1].address()))
    );
    // The signature of the held bid over other powers: checked in full, and refused.
    let mut other = held.clone();
    other.body.powers[0] -= 1;
    assert!(matches!(
        book.offer_fetched(other),
        Err(Rejection::BadSignature | Rejection::NotMember(_))
    ));
    assert_eq!(book.bids(), vec![held]);
}

#[test]
fn a_fetch_gets_the_bids_missing_from_the_inventory_and_the_evidence_of_every_equivocation() {
    let Five {
        keys,
        bids,
        mut books,
    } = five();
    let other = |i: usize| {
        let mut body = bids[i].body.clone();
        body.powers[0] = 4_000_000;
        body.sign(&keys[i])
    };
    // Gateway 1 holds every bid, and saw gateway 2 sign two; gateway 0 holds the bids of 0 and
    // 1, and another bid of gateway 3 than the one gateway 1 holds (3 equivocated unseen).
    for bid in &bids {
        books[1].offer(bid.clone(), EARLY).unwrap();
    }
    let _ = books[1].offer(other(2), EARLY);
    for bid in [bids[0].clone(), bids[1].clone(), other(3)] {
        books[0].offer(bid, EARLY).unwrap();
    }
    assert_eq!(books[0].inventory().len(), 5);

    let mut missing = books[1].missing_from(&books[0].inventory());
    let mut expected = vec![bids[2].clone(), other(2), bids[3].clone(), bids[4].clone()];
    missing.sort_by_key(Signed::to_bytes);
    expected.sort_by_key(Signed::to_bytes);
    assert_eq!(missing, expected, "all but the bids of 0 and 1, held alike");
    for bid in missing {
        let _ = books[0].offer_fetched(bid);
    }
    // Gateway 0 now excludes 2 and 3; gateway 1 gets the evidence against 3 in turn.
    let back = books[0].missing_from(&books[1].inventory());
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|b| b.sender() == Ok(keys[3].address())));
    for bid in back {
        let _ = books[1].offer_fetched(bid);
    }
    assert_eq!(books[0].digest(), books[1].digest());
    assert!(books[1].missing_from(&books[0].inventory()).is_empty());
    assert!(books[0].missing_from(&books[1].inventory()).is_empty());

    // An inventory of another community's size names no member: nothing is sent.
    let mut short = books[0].inventory();
    short.pop();
    assert!(books[1].missing_from(&short).is_empty());
}

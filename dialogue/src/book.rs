//! One slot's book: the bids received and checked one by one, the bid set's digest at gate
//! closure, agreement with the peers' digests, and the outcome. No I/O: the transport hands it
//! messages and the time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::bid::{BidCurve, CurveError, SignedBid};
use crate::clearing::{Clearing, Infeasible, clear};
use crate::key::{Address, Signature, keccak256};
use crate::message::{Holding, MeterReport, SlotMessage};
use crate::signed::{Body, Signed};
use crate::terms::{Member, Slot, Terms};

/// Why a message was not taken; each is logged with its sender where one is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The signer is not a member of the community.
    #[error("{0} is not a member")]
    NotMember(Address),
    /// The message names other terms (another community, price basis or limits).
    #[error("the message is under other terms")]
    WrongTerms,
    /// The message is for a slot this book is not for, and not a past one.
    #[error("the message is for another slot")]
    WrongSlot,
    /// The message is for a slot that has passed: a replay.
    #[error("the message is for a past slot (a replay)")]
    Replay,
    /// The bid came after gate closure.
    #[error("the bid came after gate closure")]
    Late,
    /// The curve is not a bid under the terms.
    #[error("{0}")]
    Curve(#[from] CurveError),
    /// Not a message of the protocol.
    #[error("not a message of the protocol")]
    Malformed,
    /// A second, different bid of one sender for one slot: the sender is out of this slot.
    #[error("{0} signed two different bids for this slot; it is excluded from it")]
    Equivocation(Address),
}

/// What became of a bid that was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// A new bid.
    New(Address),
    /// One already held.
    Known(Address),
}

/// Two different bids one sender signed for one slot, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The bid held first.
    pub first: SignedBid,
    /// The one that contradicts it.
    pub second: SignedBid,
}

/// Why a slot has no local trade: every gateway keeps to its own import limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoTrade {
    /// Too few members hold this gateway's bid set.
    #[error("{agreeing} members hold this bid set; {quorum} must")]
    NoQuorum {
        /// Members, this gateway included, whose digest is this gateway's.
        agreeing: usize,
        /// The terms' quorum.
        quorum: usize,
    },
    /// The bids cannot clear within the feeder limit.
    #[error("{0}")]
    Infeasible(#[from] Infeasible),
}

/// Where a slot stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Bids are taken.
    Open,
    /// Bids are closed; digests are compared and missing bids fetched.
    GateClosed,
    /// The bid set is frozen and this gateway voted for it; votes are counted at the end.
    Voting,
    /// The peers agreed and the bids cleared.
    Agreed(Clearing),
    /// No local trade in this slot.
    NoTrade(NoTrade),
}

/// A bid held (with its curve, and its hash: the digest and every inventory name it, several
/// times a second while peers reconcile), or its sender excluded for equivocating.
#[derive(Debug, Clone)]
enum Held {
    Bid(SignedBid, BidCurve, [u8; 32]),
    Excluded(Box<Equivocation>),
}

/// The book of one slot, as one gateway keeps it.
#[derive(Debug, Clone)]
pub struct SlotBook {
    terms: Arc<Terms>,
    terms_digest: [u8; 32],
    slot: Slot,
    me: Address,
    /// The members' addresses in ascending order: the order of an inventory.
    members: Vec<Address>,
    held: BTreeMap<Address, Held>,
    /// The digest of `held`, kept with it: it is asked for at every tick.
    digest: [u8; 32],
    /// The signer of each bid held, by its signature: a bid fetched again is known without
    /// recovering its signer, the costly check (a fetched set repeats the most of what is held).
    signers: HashMap<Signature, Address>,
    digests: BTreeMap<Address, (u32, [u8; 32])>,
    votes: BTreeMap<Address, [u8; 32]>,
    double_voters: BTreeSet<Address>,
    reports: BTreeMap<Address, Signed<MeterReport>>,
    phase: Phase,
}

/// The domain of a bid set's digest.
const SET_TAG: &[u8] = b"DAISEE dialogue bid set v1";
/// A member's entry in a digest and an inventory when its sender is excluded.
const EXCLUDED: [u8; 32] = [0xff; 32];
/// A member's entry in an inventory when no bid of it is held.
const NOT_HELD: [u8; 32] = [0; 32];

impl SlotBook {
    /// The empty book of `slot`, kept by the gateway `me`.
    pub fn new(terms: Arc<Terms>, slot: Slot, me: Address) -> Self {
        let mut members: Vec<Address> = terms.members.iter().map(|m| m.address).collect();
        members.sort_unstable();
        let mut book = Self {
            terms_digest: terms.digest(),
            terms,
            slot,
            me,
            members,
            held: BTreeMap::new(),
            digest: [0; 32],
            signers: HashMap::new(),
            digests: BTreeMap::new(),
            votes: BTreeMap::new(),
            double_voters: BTreeSet::new(),
            reports: BTreeMap::new(),
            phase: Phase::Open,
        };
        book.digest = book.digest_of_held();
        book
    }

    /// The slot.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Where the slot stands.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Takes a bid received by gossip at `now_ms`, or says why not.
    pub fn offer(&mut self, bid: SignedBid, now_ms: i64) -> Result<Taken, Rejection> {
        let member = self.check_envelope(&bid)?;
        if self.phase != Phase::Open || now_ms > self.terms.gate_closure(self.slot) {
            return Err(Rejection::Late);
        }
        self.take(bid, member)
    }

    /// Takes a bid fetched from a peer while digests are compared: it may have reached that
    /// peer, and not this gateway, before gate closure.
    pub fn offer_fetched(&mut self, bid: SignedBid) -> Result<Taken, Rejection> {
        if let Some(sender) = self.signers.get(&bid.signature)
            && matches!(self.held.get(sender), Some(Held::Bid(held, ..)) if *held == bid)
        {
            return Ok(Taken::Known(*sender));
        }
        let member = self.check_envelope(&bid)?;
        if !matches!(self.phase, Phase::Open | Phase::GateClosed) {
            return Err(Rejection::Late);
        }
        self.take(bid, member)
    }

    /// The checks of a message that do not depend on what the book holds: its terms, its
    /// slot, and that a member signed it.
    fn check_envelope<T: SlotMessage>(&self, m: &Signed<T>) -> Result<Member, Rejection> {
        if m.body.terms() != self.terms_digest {
            return Err(Rejection::WrongTerms);
        }
        if m.body.slot() < self.slot {
            return Err(Rejection::Replay);
        }
        if m.body.slot() != self.slot {
            return Err(Rejection::WrongSlot);
        }
        let sender = m.sender().map_err(|_| Rejection::BadSignature)?;
        self.terms
            .member(&sender)
            .copied()
            .ok_or(Rejection::NotMember(sender))
    }

    fn take(&mut self, bid: SignedBid, member: Member) -> Result<Taken, Rejection> {
        let sender = member.address;
        let curve = bid.curve(&self.terms, &member)?;
        match self.held.get(&sender) {
            None => {
                self.signers.insert(bid.signature, sender);
                let hash = bid.body.hash();
                self.held.insert(sender, Held::Bid(bid, curve, hash));
                self.digest = self.digest_of_held();
                Ok(Taken::New(sender))
            }
            Some(Held::Bid(first, ..)) if first.body == bid.body => Ok(Taken::Known(sender)),
            Some(Held::Bid(first, ..)) => {
                let evidence = Equivocation {
                    first: first.clone(),
                    second: bid,
                };
                self.held.insert(sender, Held::Excluded(Box::new(evidence)));
                self.digest = self.digest_of_held();
                Err(Rejection::Equivocation(sender))
            }
            Some(Held::Excluded(_)) => Err(Rejection::Equivocation(sender)),
        }
    }

    /// Closes the gate: no more gossiped bids. Returns the digest to publish.
    pub fn close_gate(&mut self) -> [u8; 32] {
        if self.phase == Phase::Open {
            self.phase = Phase::GateClosed;
        }
        self.digest()
    }

    /// The digest of the bid set held: Keccak-256 of the tag, the terms digest, the slot, and
    /// per sender in address order its address and its bid's hash (32 bytes of 0xff for an
    /// excluded sender).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    fn digest_of_held(&self) -> [u8; 32] {
        let mut bytes = SET_TAG.to_vec();
        bytes.extend_from_slice(&self.terms_digest);
        bytes.extend_from_slice(&self.slot.0.to_be_bytes());
        for (address, held) in &self.held {
            bytes.extend_from_slice(&address.0);
            bytes.extend_from_slice(&entry(held));
        }
        keccak256(&bytes)
    }

    /// What this book holds of each member, in ascending order of address: its bid's hash, 32
    /// bytes of 0xff if it is excluded, 32 zero bytes if nothing of it is held. A fetch names
    /// it so that the peer sends only what this book lacks.
    pub fn inventory(&self) -> Vec<[u8; 32]> {
        self.members
            .iter()
            .map(|m| self.held.get(m).map_or(NOT_HELD, entry))
            .collect()
    }

    /// The bids a peer whose book holds `inventory` lacks: each bid held whose hash is not the
    /// peer's entry (a different bid exposes an equivocation there), and both bids of a sender
    /// excluded here and not there. Nothing for an inventory of another length.
    pub fn missing_from(&self, inventory: &[[u8; 32]]) -> Vec<SignedBid> {
        if inventory.len() != self.members.len() {
            return Vec::new();
        }
        let mut missing = Vec::new();
        for (member, theirs) in self.members.iter().zip(inventory) {
            match self.held.get(member) {
                Some(Held::Bid(bid, _, hash)) if *theirs != EXCLUDED && theirs != hash => {
                    missing.push(bid.clone());
                }
                Some(Held::Excluded(e)) if *theirs != EXCLUDED => {
                    missing.extend([e.first.clone(), e.second.clone()]);
                }
                _ => {}
            }
        }
        missing
    }

    /// Notes the digest a member says it holds: its highest round counts (a replayed older one
    /// changes nothing); a vote counts for agreement, and a member that votes for two different
    /// digests counts for none. Returns the member.
    pub fn hear(&mut self, holding: &Signed<Holding>) -> Result<Address, Rejection> {
        let member = self.check_envelope(holding)?.address;
        let h = holding.body;
        match self.digests.get(&member) {
            Some((round, _)) if *round >= h.round => {}
            _ => {
                self.digests.insert(member, (h.round, h.digest));
            }
        }
        if h.last {
            match self.votes.get(&member) {
                Some(vote) if *vote != h.digest => {
                    self.double_voters.insert(member);
                    return Err(Rejection::Equivocation(member));
                }
                _ => {
                    self.votes.insert(member, h.digest);
                }
            }
        }
        Ok(member)
    }

    /// The latest digest each other member said it holds.
    pub fn digests(&self) -> impl Iterator<Item = (Address, [u8; 32])> + '_ {
        self.digests
            .iter()
            .filter(|(a, _)| **a != self.me)
            .map(|(a, (_, d))| (*a, *d))
    }

    /// This gateway's holding message for the current bid set, as round `round`.
    pub fn holding(&self, round: u32) -> Holding {
        Holding {
            terms: self.terms_digest,
            slot: self.slot,
            round,
            last: false,
            digest: self.digest(),
        }
    }

    /// Freezes the bid set (no more fetched bids) and returns this gateway's vote for it, as
    /// round `round`; a gateway votes once.
    pub fn vote(&mut self, round: u32) -> Holding {
        if matches!(self.phase, Phase::Open | Phase::GateClosed) {
            self.phase = Phase::Voting;
            if self.terms.member(&self.me).is_some() {
                self.votes.insert(self.me, self.digest());
            }
        }
        Holding {
            last: true,
            ..self.holding(round)
        }
    }

    /// Keeps a member's meter report (its first: a report is final). Returns the member.
    pub fn report(&mut self, report: Signed<MeterReport>) -> Result<Address, Rejection> {
        let member = self.check_envelope(&report)?.address;
        self.reports.entry(member).or_insert(report);
        Ok(member)
    }

    /// The meter reports received, by member.
    pub fn reports(&self) -> &BTreeMap<Address, Signed<MeterReport>> {
        &self.reports
    }

    /// Ends the grace period: clears if a quorum of members voted for this book's bid set,
    /// else there is no local trade. Votes first if it has not. Once settled, a slot stays as
    /// it is.
    pub fn settle(&mut self) -> &Phase {
        if matches!(self.phase, Phase::Open | Phase::GateClosed) {
            self.vote(0);
        }
        if self.phase == Phase::Voting {
            self.phase = self.outcome();
        }
        &self.phase
    }

    /// Members (this gateway included) whose vote so far is for this book's bid set, double
    /// voters left out: the slot clears at the end of the grace period if they are a quorum.
    pub fn agreeing(&self) -> usize {
        let mine = self.digest();
        self.votes
            .iter()
            .filter(|(a, d)| **d == mine && !self.double_voters.contains(*a))
            .count()
    }

    fn outcome(&self) -> Phase {
        let agreeing = self.agreeing();
        if agreeing < self.terms.quorum {
            return Phase::NoTrade(NoTrade::NoQuorum {
                agreeing,
                quorum: self.terms.quorum,
            });
        }
        match self.clearing() {
            Ok(clearing) => Phase::Agreed(clearing),
            Err(e) => Phase::NoTrade(e.into()),
        }
    }

    /// The clearing of the bids held (the excluded senders' left out), agreed or not: what an
    /// auditor recomputes.
    pub fn clearing(&self) -> Result<Clearing, Infeasible> {
        let bids: Vec<(Address, BidCurve)> = self
            .held
            .iter()
            .filter_map(|(a, h)| match h {
                Held::Bid(_, curve, _) => Some((*a, curve.clone())),
                Held::Excluded(_) => None,
            })
            .collect();
        clear(&self.terms, &bids)
    }

    /// Every signed bid held, the excluded senders' two included: what an auditor recomputes the
    /// slot from.
    pub fn bids(&self) -> Vec<SignedBid> {
        self.held
            .values()
            .flat_map(|h| match h {
                Held::Bid(bid, ..) => vec![bid.clone()],
                Held::Excluded(e) => vec![e.first.clone(), e.second.clone()],
            })
            .collect()
    }

    /// The bid held from `sender`, if one is (and it is not excluded).
    pub fn bid_of(&self, sender: &Address) -> Option<&SignedBid> {
        match self.held.get(sender)? {
            Held::Bid(bid, ..) => Some(bid),
            Held::Excluded(_) => None,
        }
    }

    /// The evidence against each sender excluded for equivocating.
    pub fn evidence(&self) -> Vec<&Equivocation> {
        self.held
            .values()
            .filter_map(|h| match h {
                Held::Excluded(e) => Some(&**e),
                Held::Bid(..) => None,
            })
            .collect()
    }
}

/// A sender's entry in a digest and an inventory.
fn entry(held: &Held) -> [u8; 32] {
    match held {
        Held::Bid(.., hash) => *hash,
        Held::Excluded(_) => EXCLUDED,
    }
}

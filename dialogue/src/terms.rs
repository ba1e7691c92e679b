//! The community's market terms: its price basis, the grid's tariffs, the feeder limit, the slot
//! timing, the quorum and its members with their declared ratings. Every gateway of a community
//! holds the same terms; a bid names their digest.

use crate::key::{Address, keccak256};

/// A price on the community's basis: the index of one of its price steps (0 is the cheapest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step(pub u8);

/// The most price steps a basis has.
pub const MAX_STEPS: u8 = 100;

/// The most members a community has (a fetched bid set then fits its bounds).
pub const MAX_MEMBERS: usize = 500;

/// The largest rating or feeder cap, in mW (281 GW): with [`MAX_MEMBERS`] of them, every sum and
/// product of the clearing fits its integers.
pub const MAX_POWER_MW: i64 = 1 << 48;

/// The community's prices: `steps` of them from `first`, `increment` apart, in micro-units of
/// currency per kWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceBasis {
    /// The price of step 0.
    pub first: i64,
    /// Between two neighbouring steps.
    pub increment: i64,
    /// How many steps (2 to [`MAX_STEPS`]).
    pub steps: u8,
}

impl PriceBasis {
    /// The price of `step`, in micro-units per kWh.
    pub fn price(&self, step: Step) -> i64 {
        self.first + self.increment * i64::from(step.0)
    }
}

/// A member gateway and the ratings it declared: its bids stay within them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its account.
    pub address: Address,
    /// The most it can take from the grid, in mW (≥ 0).
    pub import_mw: i64,
    /// The most it can send to the grid, in mW (≥ 0).
    pub export_mw: i64,
}

/// Everything the gateways of one community agree on before they bid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The community's name (ASCII letters, digits, `-`, `_` and `.`, at most 64).
    pub community: String,
    /// The price steps.
    pub basis: PriceBasis,
    /// The step at which the grid sells (the import tariff).
    pub import_tariff: Step,
    /// The step at which the grid buys (the feed-in tariff), below the import tariff.
    pub feed_in_tariff: Step,
    /// The most the community may take from the grid together, in mW.
    pub import_cap_mw: i64,
    /// The most the community may send to the grid together, in mW.
    pub export_cap_mw: i64,
    /// Length of a slot in ms (15 minutes; seconds for tests and demos). Slots start at
    /// multiples of it since 1970.
    pub slot_ms: i64,
    /// Bids close this long before their slot starts, in ms.
    pub gate_ms: i64,
    /// After gate closure, how long peers have to agree on the bid set, in ms.
    pub grace_ms: i64,
    /// How many members must hold the same bid set for the slot to clear: more than half of
    /// them, so that no two groups can both clear.
    pub quorum: usize,
    /// The members, whose bids count.
    pub members: Vec<Member>,
}

/// What is wrong with a community's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// A rule of the terms is broken; the text says which.
    #[error("community terms: {0}")]
    Invalid(&'static str),
}

impl Terms {
    /// The default quorum for `members` gateways: more than two thirds, so that one silent
    /// member in five still leaves a quorum and an even split leaves none.
    pub fn default_quorum(members: usize) -> usize {
        members * 2 / 3 + 1
    }

    /// Checks every rule of the terms.
    pub fn check(&self) -> Result<(), TermsError> {
        let rule = |ok: bool, why: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(TermsError::Invalid(why))
            }
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        rule(
            !self.community.is_empty()
                && self.community.len() <= 64
                && self.community.chars().all(name_ok),
            "the community's name is 1 to 64 letters, digits, '-', '_' or '.'",
        )?;
        let b = &self.basis;
        rule(
            (2..=MAX_STEPS).contains(&b.steps),
            "the basis has 2 to 100 steps",
        )?;
        rule(b.increment > 0, "the price increment is positive")?;
        rule(
            b.increment
                .checked_mul(i64::from(b.steps))
                .and_then(|span| b.first.checked_add(span))
                .is_some(),
            "the basis's prices fit in 64 bits",
        )?;
        rule(
            0 < self.feed_in_tariff.0
                && self.feed_in_tariff < self.import_tariff
                && self.import_tariff.0 < b.steps,
            "0 < feed-in tariff step < import tariff step < steps",
        )?;
        rule(
            (0..=MAX_POWER_MW).contains(&self.import_cap_mw)
                && (0..=MAX_POWER_MW).contains(&self.export_cap_mw),
            "the feeder caps are 0 to 2^48 mW",
        )?;
        rule(
            self.slot_ms > 0 && self.gate_ms >= 0 && self.grace_ms > 0,
            "the slot and grace are positive, gate closure not negative",
        )?;
        rule(
            self.gate_ms
                .checked_add(self.grace_ms)
                .is_some_and(|t| t < self.slot_ms),
            "gate closure and grace fit in one slot",
        )?;
        self.check_members()
    }

    fn check_members(&self) -> Result<(), TermsError> {
        let mut addresses: Vec<Address> = self.members.iter().map(|m| m.address).collect();
        addresses.sort_unstable();
        addresses.dedup();
        if addresses.len() != self.members.len() {
            return Err(TermsError::Invalid("each member is listed once"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(TermsError::Invalid("a community has at most 500 members"));
        }
        let rating = 0..=MAX_POWER_MW;
        if self
            .members
            .iter()
            .any(|m| !rating.contains(&m.import_mw) || !rating.contains(&m.export_mw))
        {
            return Err(TermsError::Invalid("ratings are 0 to 2^48 mW"));
        }
        let n = self.members.len();
        if self.quorum * 2 <= n || self.quorum > n {
            return Err(TermsError::Invalid(
                "the quorum is more than half of the members, and at most all of them",
            ));
        }
        Ok(())
    }

    /// The member with `address`.
    pub fn member(&self, address: &Address) -> Option<&Member> {
        self.members.iter().find(|m| m.address == *address)
    }

    /// The slot that contains `now_ms`.
    pub fn slot_at(&self, now_ms: i64) -> Slot {
        Slot(now_ms.div_euclid(self.slot_ms) * self.slot_ms)
    }

    /// When bids for `slot` close.
    pub fn gate_closure(&self, slot: Slot) -> i64 {
        slot.0 - self.gate_ms
    }

    /// The grid's implicit bid at `step`, in mW: it takes the community's export up to the
    /// export cap below the feed-in tariff, sells up to the import cap from the import tariff
    /// on, and does nothing in between.
    pub fn grid_bid(&self, step: u8) -> i64 {
        if step < self.feed_in_tariff.0 {
            self.export_cap_mw
        } else if step < self.import_tariff.0 {
            0
        } else {
            -self.import_cap_mw
        }
    }

    /// The terms as bytes, in the order of the protocol's "terms" record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(self.community.len() as u8);
        out.extend_from_slice(self.community.as_bytes());
        out.extend_from_slice(&self.basis.first.to_be_bytes());
        out.extend_from_slice(&self.basis.increment.to_be_bytes());
        out.extend_from_slice(&[
            self.basis.steps,
            self.import_tariff.0,
            self.feed_in_tariff.0,
        ]);
        for v in [
            self.import_cap_mw,
            self.export_cap_mw,
            self.slot_ms,
            self.gate_ms,
            self.grace_ms,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(self.quorum as u32).to_be_bytes());
        let mut members = self.members.clone();
        members.sort_unstable_by_key(|m| m.address);
        out.extend_from_slice(&(members.len() as u32).to_be_bytes());
        for m in members {
            out.extend_from_slice(&m.address.0);
            out.extend_from_slice(&m.import_mw.to_be_bytes());
            out.extend_from_slice(&m.export_mw.to_be_bytes());
        }
        out
    }

    /// The digest a bid names: Keccak-256 of [`Terms::encode`].
    pub fn digest(&self) -> [u8; 32] {
        keccak256(&self.encode())
    }
}

/// A market slot, by its start in ms since 1970 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub i64);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Terms of `n` members with addresses 1, 2, …: prices 0 to 0.99 per kWh in 100 steps, the
    /// grid buying at step 10 and selling at step 30, slots of 60 s.
    pub(crate) fn terms(n: u8) -> Terms {
        let members = (1..=n)
            .map(|i| Member {
                address: Address([i; 20]),
                import_mw: 10_000_000,
                export_mw: 10_000_000,
            })
            .collect();
        Terms {
            community: "test".into(),
            basis: PriceBasis {
                first: 0,
                increment: 10_000,
                steps: 100,
            },
            import_tariff: Step(30),
            feed_in_tariff: Step(10),
            import_cap_mw: 20_000_000,
            export_cap_mw: 15_000_000,
            slot_ms: 60_000,
            gate_ms: 10_000,
            grace_ms: 5_000,
            quorum: Terms::default_quorum(usize::from(n)),
            members,
        }
    }

    #[test]
    fn good_terms_pass_and_each_broken_rule_is_named() {
        assert_eq!(terms(5).check(), Ok(()));
        assert_eq!(terms(5).quorum, 4);
        type Break = fn(&mut Terms);
        let broken: [(Break, &str); 8] = [
            (|t| t.community = String::new(), "name"),
            (|t| t.basis.steps = 101, "steps"),
            (|t| t.feed_in_tariff = Step(0), "feed-in"),
            (|t| t.import_tariff = Step(5), "feed-in"),
            (|t| t.quorum = 2, "quorum"),
            (|t| t.members.push(t.members[0]), "once"),
            (|t| t.members[0].import_mw = MAX_POWER_MW + 1, "ratings"),
            (|t| t.gate_ms = i64::MAX, "fit in one slot"),
        ];
        for (breaks, word) in broken {
            let mut t = terms(5);
            breaks(&mut t);
            let err = t.check().unwrap_err().to_string();
            assert!(err.contains(word), "{err}");
        }
    }

    #[test]
    fn slots_are_aligned_and_the_digest_ignores_member_order() {
        let t = terms(3);
        assert_eq!(t.slot_at(125_000), Slot(120_000));
        assert_eq!(t.slot_at(-1), Slot(-60_000));
        assert_eq!(t.gate_closure(Slot(120_000)), 110_000);
        let mut reordered = t.clone();
        reordered.members.reverse();
        assert_eq!(t.digest(), reordered.digest());
        let mut other = t.clone();
        other.import_cap_mw += 1;
        assert_ne!(t.digest(), other.digest());
    }
}

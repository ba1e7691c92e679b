//! A slot's bid set as JSON, for audits: the community's terms, the slot, and every signed bid as
//! it travelled (`0x` and the hexadecimal of its bytes). Anyone can clear it again with
//! [`reclear`], checking every signature, and compare with what was executed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bid::SignedBid;
use crate::book::{Equivocation, Rejection, SlotBook};
use crate::clearing::{Clearing, Infeasible};
use crate::key::{Address, decode_hex, encode_hex};
use crate::terms::{Member, PriceBasis, Slot, Step, Terms, TermsError};

/// The JSON form of a slot's bid set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidSetJson {
    /// The terms the bids were made under.
    pub terms: TermsJson,
    /// The slot's start, in ms since 1970.
    pub slot: i64,
    /// Each signed bid: `0x` and the hexadecimal of its bytes as sent.
    pub bids: Vec<String>,
}

/// The JSON form of [`Terms`]; the fields are the protocol's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TermsJson {
    pub community: String,
    pub first: i64,
    pub increment: i64,
    pub steps: u8,
    pub import_tariff: u8,
    pub feed_in_tariff: u8,
    pub import_cap_mw: i64,
    pub export_cap_mw: i64,
    pub slot_ms: i64,
    pub gate_ms: i64,
    pub grace_ms: i64,
    pub quorum: usize,
    pub members: Vec<MemberJson>,
}

/// The JSON form of a [`Member`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MemberJson {
    pub address: String,
    pub import_mw: i64,
    pub export_mw: i64,
}

/// What a bid set clears to, and what in it did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The clearing of the valid bids.
    pub outcome: Result<Clearing, Infeasible>,
    /// Bids that do not count, by their place in the file, with the reason.
    pub rejected: Vec<(usize, Rejection)>,
    /// Senders excluded for equivocating, with their two bids.
    pub excluded: Vec<Equivocation>,
    /// The terms the bids were made under.
    pub terms: Arc<Terms>,
    /// The digest of the bid set that counts, as the members voted on it.
    pub digest: [u8; 32],
}

/// Why a file could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Not the JSON form.
    #[error("not a bid set: {0}")]
    Json(#[from] serde_json::Error),
    /// The terms break a rule.
    #[error(transparent)]
    Terms(#[from] TermsError),
    /// A member's address is not one.
    #[error("member {0}: not an address")]
    Address(String),
}

impl BidSetJson {
    /// The JSON form of a settled slot's bids.
    pub fn new(terms: &Terms, slot: Slot, bids: &[SignedBid]) -> Self {
        Self {
            terms: TermsJson {
                community: terms.community.clone(),
                first: terms.basis.first,
                increment: terms.basis.increment,
                steps: terms.basis.steps,
                import_tariff: terms.import_tariff.0,
                feed_in_tariff: terms.feed_in_tariff.0,
                import_cap_mw: terms.import_cap_mw,
                export_cap_mw: terms.export_cap_mw,
                slot_ms: terms.slot_ms,
                gate_ms: terms.gate_ms,
                grace_ms: terms.grace_ms,
                quorum: terms.quorum,
                members: terms
                    .members
                    .iter()
                    .map(|m| MemberJson {
                        address: m.address.to_string(),
                        import_mw: m.import_mw,
                        export_mw: m.export_mw,
                    })
                    .collect(),
            },
            slot: slot.0,
            bids: bids
                .iter()
                .map(|b| format!("0x{}", encode_hex(&b.to_bytes())))
                .collect(),
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Strings and integers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The terms, checked.
    pub fn terms(&self) -> Result<Terms, AuditError> {
        let t = &self.terms;
        let members = t
            .members
            .iter()
            .map(|m| {
                Ok(Member {
                    address: m
                        .address
                        .parse::<Address>()
                        .map_err(|_| AuditError::Address(m.address.clone()))?,
                    import_mw: m.import_mw,
                    export_mw: m.export_mw,
                })
            })
            .collect::<Result<Vec<_>, AuditError>>()?;
        let terms = Terms {
            community: t.community.clone(),
            basis: PriceBasis {
                first: t.first,
                increment: t.increment,
                steps: t.steps,
            },
            import_tariff: Step(t.import_tariff),
            feed_in_tariff: Step(t.feed_in_tariff),
            import_cap_mw: t.import_cap_mw,
            export_cap_mw: t.export_cap_mw,
            slot_ms: t.slot_ms,
            gate_ms: t.gate_ms,
            grace_ms: t.grace_ms,
            quorum: t.quorum,
            members,
        };
        terms.check()?;
        Ok(terms)
    }
}

/// Clears the bid set of `json` again, checking every bid as a gateway does.
pub fn reclear(json: &str) -> Result<Audit, AuditError> {
    let file: BidSetJson = serde_json::from_str(json)?;
    let terms = Arc::new(file.terms()?);
    // An auditor is no member; its book takes bids as fetched ones, lateness aside.
    let mut book = SlotBook::new(Arc::clone(&terms), Slot(file.slot), Address([0; 20]));
    let mut rejected = Vec::new();
    for (i, text) in file.bids.iter().enumerate() {
        let bid = text
            .strip_prefix("0x")
            .and_then(decode_hex)
            .and_then(|bytes| SignedBid::from_bytes(&bytes));
        let Some(bid) = bid else {
            rejected.push((i, Rejection::Malformed));
            continue;
        };
        if let Err(reason) = book.offer_fetched(bid) {
            rejected.push((i, reason));
        }
    }
    Ok(Audit {
        outcome: book.clearing(),
        rejected,
        excluded: book.evidence().into_iter().cloned().collect(),
        digest: book.digest(),
        terms,
    })
}

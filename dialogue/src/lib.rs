//! The machine dialogue of DAISEE gateways (see `docs/dialogue.md`): each gateway of a community
//! signs a bid curve for the next slot; at gate closure the peers compare digests of the bid sets
//! they hold; a quorum holding one set clears it locally with one deterministic integer function,
//! so that there is no auctioneer and no two different clearings. No I/O here: the transport
//! hands a [`SlotBook`] messages and the time.

pub mod audit;
mod bid;
mod book;
mod clearing;
mod key;
mod message;
#[cfg(feature = "net")]
pub mod net;
mod signed;
mod terms;

pub use bid::{Bid, BidCurve, CurveError, SignedBid};
pub use book::{Equivocation, NoTrade, Phase, Rejection, SlotBook, Taken};
pub use clearing::{Clearing, Infeasible, clear};
pub use key::{Address, GatewayKey, KeyError, Signature, address_of_public, keccak256, recover};
pub use message::{Holding, MeterReport, SlotMessage};
pub use signed::{Body, Signed};
pub use terms::{
    MAX_MEMBERS, MAX_POWER_MW, MAX_STEPS, Member, PriceBasis, Slot, Step, Terms, TermsError,
};

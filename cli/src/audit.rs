//! `daiseectl dialogue clear FILE`: a slot's bid set (its JSON form) cleared again here, every
//! signature checked; no agent or bus needed.

use std::path::Path;

use anyhow::Context;
use daisee_dialogue::audit::{Audit, BidSetJson, reclear};

/// Reads, clears and prints the bid set in `file`.
pub(crate) fn clear(file: &Path) -> anyhow::Result<()> {
    let json = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let audit = reclear(&json).with_context(|| file.display().to_string())?;
    let set: BidSetJson = serde_json::from_str(&json)?;
    print!("{}", report(&set, &audit));
    Ok(())
}

/// The audit as text: the outcome, each allocation, and what did not count.
fn report(set: &BidSetJson, audit: &Audit) -> String {
    let mut out = String::new();
    match &audit.outcome {
        Ok(c) => {
            let price = set.terms.first + set.terms.increment * i64::from(c.price.0);
            out += &format!(
                "slot {}: price step {} ({price} µ/kWh); the community takes {} mW from the grid\n",
                set.slot, c.price.0, c.grid_mw
            );
            for (address, power) in &c.allocations {
                out += &format!("{address} {power:>12} mW\n");
            }
        }
        Err(e) => out += &format!("slot {}: no clearing: {e}\n", set.slot),
    }
    for e in &audit.excluded {
        if let Ok(sender) = e.first.sender() {
            out += &format!("excluded: {sender} signed two different bids\n");
        }
    }
    for (i, reason) in &audit.rejected {
        out += &format!("bid {i} does not count: {reason}\n");
    }
    out
}

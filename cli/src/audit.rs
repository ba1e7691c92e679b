//! Audits of the dialogue: `daiseectl dialogue clear FILE` clears a slot's bid set (its JSON
//! form) again here, every signature checked, with no agent or bus; `daiseectl dialogue audit
//! SLOT` does the same with the bid set the gateway kept, and compares with what it executed.

use std::path::Path;

use anyhow::Context;
use daisee_api::{DialogueProxy, GatewayProxy};
use daisee_dialogue::audit::{Audit, BidSetJson, reclear};
use zbus::Connection;

/// Reads, clears and prints the bid set in `file`.
pub(crate) fn clear(file: &Path) -> anyhow::Result<()> {
    let json = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let audit = reclear(&json).with_context(|| file.display().to_string())?;
    let set: BidSetJson = serde_json::from_str(&json)?;
    print!("{}", report(&set, &audit));
    Ok(())
}

/// Clears the slot the gateway kept again and compares with what it executed: its outcome, the
/// price step and its own allocation. A mismatch is an error.
pub(crate) async fn audit(conn: &Connection, slot: i64) -> zbus::Result<()> {
    let (outcome, step, allocation, json) = DialogueProxy::new(conn).await?.slot(slot).await?;
    let me = GatewayProxy::new(conn).await?.address().await?;
    let failed = |e: &dyn std::fmt::Display| zbus::Error::Failure(format!("slot {slot}: {e}"));
    let audit = reclear(&json).map_err(|e| failed(&e))?;
    let set: BidSetJson = serde_json::from_str(&json).map_err(|e| failed(&e))?;
    print!("{}", report(&set, &audit));
    let recomputed = audit.outcome.as_ref().ok().map(|c| {
        let mine = c
            .allocations
            .iter()
            .find(|(a, _)| a.to_string() == me)
            .map_or(0, |(_, p)| *p);
        (i32::from(c.price.0), mine)
    });
    let matches = match (outcome.as_str(), recomputed) {
        ("agreed", Some(r)) => r == (step, allocation),
        ("agreed", None) => false,
        // No trade was executed: nothing to contradict, whatever the bids clear to.
        _ => true,
    };
    println!("executed: {outcome}");
    if step >= 0 {
        println!("executed: price step {step}, this gateway {allocation} mW");
    }
    if matches {
        println!("the signed bids clear to what this gateway executed");
        Ok(())
    } else {
        Err(failed(
            &"the signed bids do NOT clear to what this gateway executed",
        ))
    }
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

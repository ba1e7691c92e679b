//! A settled market slot as the ledger settles it: the gateway's own result, from the history's
//! record of the slot (its signed bid set cleared again, its allocation as executed, what its
//! grid meter counted).

use daisee_dialogue::audit::reclear;
use daisee_ledger::B256;
use daisee_ledger::admin::community_id;
use daisee_ledger::contract::DaiseeLedger::SlotResult;
use daisee_store::MarketSlot;

/// The result of an agreed, metered slot; why not, if the record does not make one.
pub(super) fn of(slot: &MarketSlot) -> Result<SlotResult, String> {
    let audit = reclear(&slot.bid_set).map_err(|e| e.to_string())?;
    let clearing = audit
        .outcome
        .map_err(|e| format!("its bid set does not clear: {e}"))?;
    if slot.price_step != Some(clearing.price.0) {
        return Err(format!(
            "its bid set clears at step {}, it executed {:?}",
            clearing.price.0, slot.price_step
        ));
    }
    let allocation = slot.allocation_mw.ok_or("no allocation recorded")?;
    let metered = slot.metered.ok_or("not metered yet")?;
    let price = audit.terms.basis.price(clearing.price);
    Ok(SlotResult {
        community: community_id(&audit.terms.community),
        slot: slot.start.0,
        digest: B256::from(audit.digest),
        price: u64::try_from(price).map_err(|_| format!("a negative price ({price} µ/kWh)"))?,
        gridMw: clearing.grid_mw,
        allocationMw: allocation,
        importMwh: metered.import.0,
        exportMwh: metered.export.0,
    })
}

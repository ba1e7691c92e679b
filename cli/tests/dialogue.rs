//! `daiseectl dialogue clear`: a bid set cleared again offline from its JSON form.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::process::Command;

use daisee_dialogue::audit::BidSetJson;
use daisee_dialogue::{Bid, Body, GatewayKey, Slot};

#[test]
fn a_bid_set_file_is_cleared_and_its_bad_bids_named() {
    let keys: Vec<GatewayKey> = (1..=3u8)
        .map(|i| GatewayKey::from_secret(&[i; 32]).unwrap())
        .collect();
    // The terms in their JSON form, as docs/dialogue.md writes them.
    let members: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                r#"{{"address": "{}", "import_mw": 5000000, "export_mw": 5000000}}"#,
                k.address()
            )
        })
        .collect();
    let text = format!(
        r#"{{"terms": {{"community": "cli", "first": 0, "increment": 10000, "steps": 40,
            "import_tariff": 30, "feed_in_tariff": 10, "import_cap_mw": 8000000,
            "export_cap_mw": 8000000, "slot_ms": 60000, "gate_ms": 10000, "grace_ms": 5000,
            "quorum": 3, "members": [{}]}}, "slot": 600000, "bids": []}}"#,
        members.join(", ")
    );
    let mut json: BidSetJson = serde_json::from_str(&text).unwrap();
    let terms = json.terms().unwrap();
    let slot = Slot(600_000);
    // A producer of 2 kW, a load of 1 kW below step 20, a load of 3 kW below step 15.
    let curves = [
        vec![-2_000_000; 40],
        (0..40)
            .map(|k| if k < 20 { 1_000_000 } else { 0 })
            .collect(),
        (0..40)
            .map(|k| if k < 15 { 3_000_000 } else { 0 })
            .collect(),
    ];
    let bids: Vec<_> = curves
        .into_iter()
        .zip(&keys)
        .map(|(powers, key)| {
            Bid {
                terms: terms.digest(),
                slot,
                powers,
            }
            .sign(key)
        })
        .collect();
    json.bids = BidSetJson::new(&terms, slot, &bids).bids;
    json.bids.push("0xdead".into());
    let file = std::env::temp_dir().join(format!("daisee-bidset-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daiseectl"))
        .args(["dialogue", "clear"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    // The 3 kW load gives up at step 15, where the grid neither buys nor sells: it is marginal
    // and gets the 1 kW the PV leaves after the 1 kW load.
    assert!(
        text.starts_with("slot 600000: price step 15 (150000 µ/kWh); the community takes 0 mW"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}     -2000000 mW", keys[0].address())),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}      1000000 mW", keys[1].address())),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}      1000000 mW", keys[2].address())),
        "{text}"
    );
    assert!(
        text.contains("bid 3 does not count: not a message of the protocol"),
        "{text}"
    );
}

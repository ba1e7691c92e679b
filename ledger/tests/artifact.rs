//! The committed contract artifact (ABI and bytecode, which the bindings and deployments use) is
//! what the pinned compiler makes of the committed source: rebuilt here with Node, compared.

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_artifact_is_what_the_source_compiles_to() {
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
    let out = std::env::temp_dir().join(format!(
        "daisee-ledger-artifact-{}.json",
        std::process::id()
    ));
    let status = Command::new("node")
        .arg("build.js")
        .arg(&out)
        .current_dir(&contracts)
        .status()
        .expect("node (scripts/test installs it, and `npm ci` in ledger/contracts)");
    assert!(status.success(), "the contract does not compile cleanly");
    let built = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let committed = std::fs::read_to_string(contracts.join("DaiseeLedger.json")).unwrap();
    assert!(
        built == committed,
        "ledger/contracts/DaiseeLedger.json is stale: run `npm run build` in ledger/contracts and commit it"
    );
}

//! The systemd unit: confined as far as the devices allow, and a notify service with a watchdog.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::path::Path;
use std::process::Command;

fn unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/daisee-agent.service")
}

/// systemd's own rating of the unit stays at 1.5 or below (0 is fully confined, 10 not at all):
/// what remains is the devices, the network (any address) and the system bus it needs.
#[test]
fn the_unit_is_confined() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=15"])
        .arg(unit())
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("Overall exposure level for daisee-agent.service: 1.5"),
        "{report}"
    );
}

#[test]
fn the_unit_waits_for_ready_and_watches_the_loop() {
    let text = std::fs::read_to_string(unit()).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Restart=always",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}");
    }
}

//! A bundle whose agent never gets ready, offered by the feed the gateway follows: it installs
//! and boots, is never marked good, the gateway reboots itself until the slot's GRUB tries run
//! out, and is then back on the old slot, which is marked good again, with the agent ready,
//! marks the failed slot bad, reports the version it fell back from (D-Bus, journal) and does
//! not install it again.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use common::{
    BOOT, Feed, boot, following, marked_good, network_up, on_each_arch, sh, slot_b_shows,
    update_shows,
};
use daisee_image::{Arch, tries};

on_each_arch!(a_bundle_whose_agent_never_gets_ready_is_rolled_back_by_the_gateway_itself);

fn a_bundle_whose_agent_never_gets_ready_is_rolled_back_by_the_gateway_itself(arch: Arch) {
    let feed = Feed::start(arch, "rollback");
    let broken = feed.version("broken.raucb");
    feed.offer(&["broken.raucb"]);
    let mut m = following(&feed, "rollback", arch);
    let (out, _) = sh(&mut m, "daiseectl update check");
    assert_eq!(
        out.first(),
        Some(&format!("update available: {broken}")),
        "{out:?}"
    );

    // Nobody touches the console from here: the gateway installs, reboots by itself, and again.
    let tries = tries();
    for attempt in 1..=tries {
        let line = m
            .wait_for("Booting slot ", BOOT)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            line.contains(&format!("Booting slot B, try {attempt} of {tries}")),
            "{line}"
        );
        m.wait_for("the agent is not healthy", BOOT)
            .unwrap_or_else(|e| panic!("try {attempt}: {e}"));
    }
    assert_eq!(boot(&mut m), 'A');
    // A, healthy, marks B bad: GRUB, RAUC and the agent's D-Bus API agree that it failed.
    let env = marked_good(&mut m, 'A');
    assert_eq!(env["B_OK"], "0", "B marked bad: {env:?}");
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    slot_b_shows(&mut m, 'A', "inactive", "bad");
    update_shows(&mut m, "rolled back", &broken);
    let (logged, _) = sh(
        &mut m,
        &format!("journalctl -b -o cat -u daisee-agent DAISEE_ROLLED_BACK={broken}"),
    );
    assert!(
        logged
            .iter()
            .any(|l| l.contains(&format!("version {broken} in slot B never got ready"))),
        "{logged:?}"
    );
    network_up(&mut m);
    let (out, _) = sh(&mut m, "daiseectl update check");
    assert!(
        out.iter()
            .any(|l| l.starts_with("no newer bundle in the feed")),
        "{out:?}"
    );
}

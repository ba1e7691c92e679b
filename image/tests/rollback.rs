//! A bundle whose agent never gets ready: it installs and boots, is never marked good, the
//! gateway reboots itself until the slot's GRUB tries run out, and is then back on the old slot,
//! which is marked good again, with the agent ready, and marks the failed slot bad.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use common::{BOOT, boot, install, marked_good, on_each_arch, sh, slot_b_shows};
use daisee_image::{Arch, Machine, test_disk, tries};

on_each_arch!(a_bundle_whose_agent_never_gets_ready_is_rolled_back_by_the_gateway_itself);

fn a_bundle_whose_agent_never_gets_ready_is_rolled_back_by_the_gateway_itself(arch: Arch) {
    let mut m = Machine::new("rollback", arch).unwrap();
    m.start(&[&test_disk(arch)]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    marked_good(&mut m, 'A');
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    let (out, status) = install(&mut m, "broken.raucb");
    assert_eq!(status, 0, "{out:?}");
    let _ = m.run("systemctl reboot", std::time::Duration::from_secs(5));

    // Nobody touches the console from here: the gateway reboots by itself.
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
}

//! The power is cut while RAUC writes the other slot: the gateway boots the old slot, the half
//! written one is not bootable, and the same bundle installs again.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use common::{BOOT, boot, install, marked_good, sh};
use daisee_image::{Machine, test_disk};

#[test]
fn a_power_cut_during_an_install_leaves_the_old_slot_booting_and_the_install_can_be_redone() {
    let mut m = Machine::new("power-cut").unwrap();
    // Writes slow enough that the cut lands inside the slot's copy, not after it.
    m.throttle_writes(8 << 20);
    let disk = test_disk();
    m.start(&[&disk]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    marked_good(&mut m, 'A');
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    // B bootable, as after an earlier update, so that only RAUC's install can make it not.
    assert_eq!(sh(&mut m, "rauc status mark-good other").1, 0);
    assert_eq!(m.grubenv().unwrap()["B_OK"], "1");
    m.type_line("rauc install /mnt/update.raucb");
    m.wait_for("Copying image to rootfs.1", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    m.power_cut();

    m.start(&[&disk]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    let env = m.grubenv().unwrap();
    assert_eq!(
        (env["ORDER"].as_str(), env["B_OK"].as_str()),
        ("A B", "0"),
        "RAUC marked B unbootable before writing it: {env:?}"
    );
    marked_good(&mut m, 'A');
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    let (out, status) = install(&mut m, "update.raucb");
    assert_eq!(status, 0, "{out:?}");
    let _ = m.run("systemctl reboot", std::time::Duration::from_secs(5));
    assert_eq!(boot(&mut m), 'B');
    marked_good(&mut m, 'B');
}

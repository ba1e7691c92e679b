//! Updates with RAUC: bundles signed by a CA the image does not trust, without a signature, for
//! the other architecture, or changed after signing are refused and leave the slots as they were; a signed one installs into
//! the other slot, the gateway boots it and marks it good once the agent is ready.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use std::time::Instant;

use common::{boot, first_line, install, marked_good, on_each_arch, sh, slot_b_shows};
use daisee_image::{Arch, Machine, test_disk};

on_each_arch!(a_signed_bundle_installs_boots_and_is_marked_good_and_others_are_refused);

fn a_signed_bundle_installs_boots_and_is_marked_good_and_others_are_refused(arch: Arch) {
    let mut m = Machine::new("update", arch).unwrap();
    m.start(&[&test_disk(arch)]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    marked_good(&mut m, 'A');
    let id = first_line(&mut m, "cat /etc/machine-id");
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    // B bootable, as after an earlier update, so that a refusal that touched it would show.
    assert_eq!(sh(&mut m, "rauc status mark-good other").1, 0);
    let before = m.grubenv().unwrap();
    assert_eq!(before["B_OK"], "1");

    for (bundle, reason) in [
        ("untrusted.raucb", "signature verification failed"),
        ("unsigned.raucb", "signature size"),
        // The other architecture's: an x86-64 bundle on the Pi, a Pi's on a PC.
        ("foreign.raucb", "compatible mismatch"),
    ] {
        let (out, status) = install(&mut m, bundle);
        assert_ne!(status, 0, "{bundle} refused: {out:?}");
        assert!(
            out.iter().any(|l| l.to_lowercase().contains(reason)),
            "{bundle}: {reason:?} in {out:?}"
        );
        assert_eq!(
            m.grubenv().unwrap(),
            before,
            "{bundle} refused before any slot was touched"
        );
    }
    // Verity bundles are checked as they are read: the write into B stops at the changed block,
    // and B, made unbootable before the write, stays so.
    let (out, status) = install(&mut m, "tampered.raucb");
    assert_ne!(status, 0, "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.contains("Failed updating slot rootfs.1")),
        "{out:?}"
    );
    let env = m.grubenv().unwrap();
    assert_eq!(
        (env["ORDER"].as_str(), env["B_OK"].as_str()),
        ("A B", "0"),
        "{env:?}"
    );

    // Only root drives RAUC; anyone may read the slots (the agent does, as the daisee user).
    let nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups busctl call de.pengutronix.rauc / de.pengutronix.rauc.Installer";
    let (out, status) = sh(
        &mut m,
        &format!("{nobody} InstallBundle 'sa{{sv}}' /mnt/update.raucb 0 2>&1"),
    );
    assert_ne!(status, 0, "{out:?}");
    assert!(out.iter().any(|l| l.contains("Access denied")), "{out:?}");
    assert_eq!(sh(&mut m, &format!("{nobody} GetSlotStatus")).1, 0);

    let start = Instant::now();
    let (out, status) = install(&mut m, "update.raucb");
    assert_eq!(status, 0, "{out:?}");
    eprintln!("bundle install: {:.0} s", start.elapsed().as_secs_f64());
    assert_eq!(m.grubenv().unwrap()["ORDER"], "B A");

    let _ = m.run("systemctl reboot", std::time::Duration::from_secs(5));
    assert_eq!(boot(&mut m), 'B');
    marked_good(&mut m, 'B');
    assert!(first_line(&mut m, "cat /proc/cmdline").contains("rauc.slot=B"));
    slot_b_shows(&mut m, 'B', "booted", "good");
    assert_eq!(
        first_line(&mut m, "cat /etc/machine-id"),
        id,
        "the same gateway"
    );
}

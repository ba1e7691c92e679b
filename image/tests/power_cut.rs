//! Power cuts at the three moments of an update that change what boots: while RAUC copies the
//! bundle into the other slot, as RAUC rewrites GRUB's environment to boot it, and during the new
//! slot's first boot, as it is marked good. After each the gateway boots a slot whose agent gets
//! ready, and the update can be done (again).

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use common::{BOOT, boot, install, marked_good, on_each_arch, sh};
use daisee_image::{Arch, Machine, test_disk};

/// What the console shows when the stand-in for grub-editenv has torn grubenv; split in the
/// command that writes it so that its echo never matches.
const TORN: &str = "__DAISEE_GRUBENV_TORN__";

/// Puts a stand-in over grub-editenv until the next boot (from /tmp: /run is mounted noexec):
/// when RAUC sets the slot order (the last write of an install), it does what grub-editenv does
/// first, truncating the file, makes that reach the disk, says so on the console and waits for
/// the cut; other calls go through.
fn tear_grubenv_when_the_order_is_set(m: &mut Machine) {
    let (head, tail) = TORN.split_at(8);
    let script = [
        "#!/bin/sh",
        "case \"$*\" in",
        "*ORDER=*)",
        "  : > \"$1\"",
        "  sync",
        &format!("  echo {head}\"\"{tail} > /dev/console"),
        "  exec sleep 600 ;;",
        "esac",
        "exec /tmp/grub-editenv.real \"$@\"",
    ];
    let quoted: Vec<String> = script.iter().map(|l| format!("'{l}'")).collect();
    let command = format!(
        "cp /usr/bin/grub-editenv /tmp/grub-editenv.real && printf '%s\\n' {} > /tmp/grub-editenv.cut \
         && chmod +x /tmp/grub-editenv.cut && mount --bind /tmp/grub-editenv.cut /usr/bin/grub-editenv",
        quoted.join(" ")
    );
    assert_eq!(sh(m, &command).1, 0, "{command}");
}

on_each_arch!(power_cuts_during_an_update_leave_a_gateway_that_boots_and_updates);

fn power_cuts_during_an_update_leave_a_gateway_that_boots_and_updates(arch: Arch) {
    let mut m = Machine::new("power-cut", arch).unwrap();
    // Writes slow enough that the first cut lands inside the slot's copy, not after it.
    m.throttle_writes(8 << 20);
    let disk = test_disk(arch);
    m.start(&[&disk]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    marked_good(&mut m, 'A');
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    // B bootable, as after an earlier update, so that only RAUC's install can make it not.
    assert_eq!(sh(&mut m, "rauc status mark-good other").1, 0);
    assert_eq!(m.grubenv().unwrap()["B_OK"], "1");

    // 1. During the copy into B.
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

    // 2. As RAUC rewrites grubenv to boot B, once B is written: the file is torn. GRUB tries
    // both slots, A boots, writes the counters anew and distrusts B.
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    tear_grubenv_when_the_order_is_set(&mut m);
    m.type_line("rauc install /mnt/update.raucb");
    m.wait_for(TORN, BOOT).unwrap_or_else(|e| panic!("{e}"));
    m.power_cut();
    m.start(&[&disk]).unwrap();
    m.wait_for("GRUB's environment is unreadable", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(boot(&mut m), 'A');
    let env = marked_good(&mut m, 'A');
    assert_eq!(
        (env["ORDER"].as_str(), env["B_OK"].as_str()),
        ("A B", "0"),
        "{env:?}"
    );

    // 3. The install again, and a cut in B's first boot as soon as its agent is ready, when
    // boot-health marks B good: B boots again (a try counted, or none) and is marked good.
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    let (out, status) = install(&mut m, "update.raucb");
    assert_eq!(status, 0, "{out:?}");
    let _ = m.run("systemctl reboot", std::time::Duration::from_secs(5));
    assert_eq!(boot(&mut m), 'B');
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    m.power_cut();
    m.start(&[&disk]).unwrap();
    assert_eq!(boot(&mut m), 'B');
    let env = marked_good(&mut m, 'B');
    assert_eq!(env["A_OK"], "1", "A stays there to fall back to: {env:?}");
}

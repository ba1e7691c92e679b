//! Updates with RAUC: a bundle signed by a CA the image does not trust is refused; a signed one
//! installs into the other slot, the gateway boots it, and marks it good once the agent is ready.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::time::{Duration, Instant};

use daisee_image::{Machine, image_dir};

const BOOT: Duration = Duration::from_secs(300);

fn run(m: &mut Machine, command: &str, timeout: Duration) -> (Vec<String>, i32) {
    m.run(command, timeout)
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// Waits until the booted slot is marked good (the agent became ready), and returns grubenv.
fn marked_good(m: &mut Machine) -> Vec<String> {
    for _ in 0..90 {
        let (out, _) = run(
            m,
            "systemctl is-active daisee-mark-good",
            Duration::from_secs(30),
        );
        if out.iter().any(|l| l.trim() == "active") {
            return run(
                m,
                "grub-editenv /boot/efi/EFI/BOOT/grubenv list",
                Duration::from_secs(30),
            )
            .0;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let (journal, _) = run(
        m,
        "journalctl -b -u daisee-agent -u daisee-mark-good --no-pager | tail -20",
        Duration::from_secs(30),
    );
    panic!("never marked good: {journal:#?}");
}

#[test]
fn a_signed_bundle_installs_boots_and_is_marked_good_and_an_untrusted_one_is_refused() {
    let bundles = image_dir().join("bundles.img");
    let mut m = Machine::new("update").unwrap();
    m.start(&[&bundles]).unwrap();
    m.wait_for("Booting slot A", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    m.wait_for_shell(BOOT).unwrap_or_else(|e| panic!("{e}"));
    marked_good(&mut m);
    let (_, status) = run(
        &mut m,
        "mount -o ro LABEL=bundles /mnt",
        Duration::from_secs(30),
    );
    assert_eq!(status, 0);

    // The status of `rauc install`, not of `tail`.
    let install = |bundle: &str| {
        format!("rauc install /mnt/{bundle} 2>&1 | tail -3; (exit ${{PIPESTATUS[0]}})")
    };
    let (out, status) = run(
        &mut m,
        &install("untrusted.raucb"),
        Duration::from_secs(300),
    );
    assert_ne!(status, 0, "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.contains("signature verification failed")),
        "{out:?}"
    );

    let start = Instant::now();
    let (out, status) = run(&mut m, &install("update.raucb"), Duration::from_secs(600));
    assert_eq!(status, 0, "{out:?}");
    eprintln!("bundle install: {:.0} s", start.elapsed().as_secs_f64());
    let (env, _) = run(
        &mut m,
        "grub-editenv /boot/efi/EFI/BOOT/grubenv list",
        Duration::from_secs(30),
    );
    assert!(
        env.iter().any(|l| l.trim() == "ORDER=B A"),
        "B first now: {env:?}"
    );

    let _ = m.run("systemctl reboot", Duration::from_secs(5));
    m.wait_for("Booting slot B", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    m.wait_for_shell(BOOT).unwrap_or_else(|e| panic!("{e}"));
    let env = marked_good(&mut m);
    assert!(
        env.iter().any(|l| l.trim() == "B_OK=1") && env.iter().any(|l| l.trim() == "B_TRY=0"),
        "{env:?}"
    );
    let (cmdline, _) = run(&mut m, "cat /proc/cmdline", Duration::from_secs(30));
    assert!(
        cmdline.iter().any(|l| l.contains("rauc.slot=B")),
        "{cmdline:?}"
    );
}

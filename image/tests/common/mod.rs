//! What every image test does: boot-length waits and shell commands whose failure to answer is
//! the test's failure.

use std::collections::BTreeMap;
use std::time::Duration;

use daisee_image::Machine;

/// Makes the test function `$test(Arch)` two tests, `$test::amd64` and `$test::arm64`, one per
/// image.
macro_rules! on_each_arch {
    ($test:ident) => {
        mod $test {
            #[test]
            fn amd64() {
                super::$test(daisee_image::Arch::Amd64)
            }

            #[test]
            fn arm64() {
                super::$test(daisee_image::Arch::Arm64)
            }
        }
    };
}
pub(crate) use on_each_arch;

/// Enough for a boot under TCG on a busy machine (about 30 s on an idle one).
pub(crate) const BOOT: Duration = Duration::from_secs(300);

/// Runs `command` on the console; returns its output lines and exit status.
pub(crate) fn sh(m: &mut Machine, command: &str) -> (Vec<String>, i32) {
    m.run(command, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// The first output line of `command`, trimmed.
pub(crate) fn first_line(m: &mut Machine, command: &str) -> String {
    let (out, _) = sh(m, command);
    out.first().map(|l| l.trim().to_owned()).unwrap_or_default()
}

/// Boots (or waits for the reboot under way) and returns the slot GRUB picked.
pub(crate) fn boot(m: &mut Machine) -> char {
    m.wait_for_boot(BOOT).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for the booted slot to be marked good, which follows the agent's READY=1; checks that
/// GRUB's counters say so for `slot` and returns them all.
pub(crate) fn marked_good(m: &mut Machine, slot: char) -> BTreeMap<String, String> {
    m.wait_until_active("daisee-boot-health", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let env = m.grubenv().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            &env[&format!("{slot}_OK")][..],
            &env[&format!("{slot}_TRY")][..]
        ),
        ("1", "0"),
        "slot {slot} good, its tries reset: {env:?}"
    );
    env
}

/// Checks that `daiseectl update` (the agent relaying RAUC) shows slot rootfs.1 (B) as `state`
/// and `status`, and that `booted` is the booted slot.
pub(crate) fn slot_b_shows(m: &mut Machine, booted: char, state: &str, status: &str) {
    let (table, _) = sh(m, "daiseectl update");
    assert_eq!(
        table.first().map(String::as_str),
        Some(&format!("booted slot {booted}, RAUC idle")[..]),
        "{table:?}"
    );
    assert!(
        table.iter().any(|l| l
            .split_whitespace()
            .take(4)
            .eq(["rootfs.1", "B", state, status])),
        "rootfs.1 B {state} {status} in {table:?}"
    );
}

/// `rauc install` of a bundle on the bundle disk (mounted on /mnt): its last lines and its status.
pub(crate) fn install(m: &mut Machine, bundle: &str) -> (Vec<String>, i32) {
    sh(
        m,
        &format!("rauc install /mnt/{bundle} 2>&1 | tail -3; (exit ${{PIPESTATUS[0]}})"),
    )
}

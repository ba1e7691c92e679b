//! The image boots under QEMU to a ready agent that answers on D-Bus, its root is read-only, and
//! /data survives a reboot.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::time::{Duration, Instant};

use daisee_image::Machine;

const BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);

fn run(m: &mut Machine, command: &str) -> (Vec<String>, i32) {
    m.run(command, COMMAND)
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// Waits for the agent to be active (systemd says so once it sent READY=1).
fn agent_ready(m: &mut Machine) {
    for _ in 0..60 {
        let (out, _) = run(m, "systemctl is-active daisee-agent");
        if out.iter().any(|l| l.trim() == "active") {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let (status, _) = run(m, "systemctl status daisee-agent --no-pager -l | tail -20");
    panic!("the agent never became ready: {status:#?}");
}

#[test]
fn boots_to_a_ready_agent_on_a_read_only_root_and_keeps_data() {
    let mut m = Machine::new("boot").unwrap();
    let start = Instant::now();
    m.start(&[]).unwrap();
    m.wait_for_shell(BOOT).unwrap_or_else(|e| panic!("{e}"));
    agent_ready(&mut m);
    eprintln!(
        "power-on to agent ready: {:.0} s",
        start.elapsed().as_secs_f64()
    );

    let (name, status) = run(
        &mut m,
        "busctl get-property org.daisee.Gateway1 /org/daisee/Gateway1/Gateway org.daisee.Gateway1 Name",
    );
    assert_eq!(
        (name.last().map(|l| l.trim().to_owned()), status),
        (Some("s \"qemu\"".into()), 0),
        "{name:?}"
    );
    let (fs, _) = run(&mut m, "findmnt -no FSTYPE,OPTIONS /");
    assert!(
        fs.iter()
            .any(|l| l.starts_with("squashfs") && l.contains("ro")),
        "{fs:?}"
    );
    let (out, status) = run(&mut m, "touch /probe");
    assert_ne!(status, 0);
    assert!(
        out.iter().any(|l| l.contains("Read-only file system")),
        "{out:?}"
    );
    let (_, status) = run(&mut m, "echo kept-across-boots > /data/probe && sync");
    assert_eq!(status, 0);
    // The agent is ready, so the slot is marked good: the next boot takes it again.
    let (out, status) = run(&mut m, "systemctl is-active daisee-mark-good");
    if status != 0 {
        let (journal, _) = run(
            &mut m,
            "journalctl -b -u daisee-mark-good -u rauc --no-pager | tail -20",
        );
        panic!("mark-good: {out:?}\n{journal:#?}");
    }
    let (env, _) = run(
        &mut m,
        "grub-editenv /boot/efi/EFI/BOOT/grubenv list 2>/dev/null || cat /boot/efi/EFI/BOOT/grubenv",
    );
    assert!(
        env.iter().any(|l| l.trim() == "A_TRY=0") && env.iter().any(|l| l.trim() == "A_OK=1"),
        "{env:?}"
    );

    let _ = m.run("systemctl poweroff", Duration::from_secs(5));
    assert!(m.wait_for_exit(Duration::from_secs(120)), "it powers off");
    m.start(&[]).unwrap();
    m.wait_for("Booting slot A", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    m.wait_for_shell(BOOT).unwrap_or_else(|e| panic!("{e}"));
    let (out, _) = run(&mut m, "cat /data/probe");
    assert!(
        out.iter().any(|l| l.trim() == "kept-across-boots"),
        "{out:?}"
    );
    agent_ready(&mut m);
}

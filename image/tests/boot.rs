//! The image boots under QEMU to a ready agent that answers on D-Bus; its root is read-only; what
//! makes the gateway itself (machine id, hostname, network, configuration, history) lives on /data,
//! which grows to fill the disk on the first boot and survives a power-off.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use std::time::Instant;

use common::{BOOT, boot, first_line, marked_good, on_each_arch, sh};
use daisee_image::{Arch, Machine};

on_each_arch!(boots_to_a_ready_agent_on_a_read_only_root_and_keeps_data);

fn boots_to_a_ready_agent_on_a_read_only_root_and_keeps_data(arch: Arch) {
    let mut m = Machine::new("boot", arch).unwrap();
    // Flashed onto a card 256 MiB larger than the image.
    m.grow_disk(256).unwrap();
    let start = Instant::now();
    m.start(&[]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "power-on to agent ready: {:.0} s",
        start.elapsed().as_secs_f64()
    );

    let (name, status) = sh(
        &mut m,
        "busctl get-property org.daisee.Gateway1 /org/daisee/Gateway1/Gateway org.daisee.Gateway1 Name",
    );
    assert_eq!(
        (name.last().map(|l| l.trim().to_owned()), status),
        (Some("s \"qemu\"".into()), 0),
        "{name:?}"
    );
    assert_eq!(
        first_line(
            &mut m,
            "stat -c %U /proc/$(systemctl show -P MainPID daisee-agent)"
        ),
        "daisee"
    );
    let fs = first_line(&mut m, "findmnt -no FSTYPE,OPTIONS /");
    assert!(
        fs.starts_with("squashfs ") && fs[9..].trim().split(',').any(|o| o == "ro"),
        "{fs}"
    );
    let (out, status) = sh(&mut m, "touch /probe");
    assert_ne!(status, 0);
    assert!(
        out.iter().any(|l| l.contains("Read-only file system")),
        "{out:?}"
    );

    // The data partition took the card's free space: 64 MiB in the image, 320 MiB now.
    let size: u64 = first_line(&mut m, "findmnt -bno SIZE /data")
        .parse()
        .unwrap();
    assert!(size > 256 << 20, "/data is {size} bytes");
    // The gateway's identity was made on the first boot, on /data.
    let id = first_line(&mut m, "cat /etc/machine-id");
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(first_line(&mut m, "cat /data/etc/machine-id"), id);
    let hostname = first_line(&mut m, "hostname");
    assert_eq!(hostname, format!("daisee-{}", &id[..6]));
    let (_, status) = sh(
        &mut m,
        "printf '[Match]\\nName=none0\\n' > /etc/systemd/network/10-kept.network && echo kept-across-boots > /data/probe && sync",
    );
    assert_eq!(status, 0, "/etc/systemd/network is writable, on /data");

    // The agent is ready, so the slot is marked good: the next boot takes it again.
    marked_good(&mut m, 'A');

    let _ = m.run("systemctl poweroff", std::time::Duration::from_secs(5));
    assert!(m.wait_for_exit(BOOT), "it powers off");
    m.start(&[]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    assert_eq!(first_line(&mut m, "cat /data/probe"), "kept-across-boots");
    assert_eq!(first_line(&mut m, "cat /etc/machine-id"), id);
    assert_eq!(first_line(&mut m, "hostname"), hostname);
    assert_eq!(
        first_line(&mut m, "ls /etc/systemd/network"),
        "10-kept.network"
    );
    marked_good(&mut m, 'A');
}

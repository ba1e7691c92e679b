//! `cargo bench -p daisee-image`: for each architecture's image, its sizes, and under QEMU TCG the
//! time from power-on to a ready agent (three boots) and to install a bundle. Needs `image/build`
//! and `image/make-test-fixtures` for both first; `-- amd64` or `-- arm64` benches one.

#![allow(clippy::unwrap_used)] // A bench binary: a panic is the failure report.

use std::path::Path;
use std::time::{Duration, Instant};

use daisee_image::{Arch, Machine, test_disk};

const BOOT: Duration = Duration::from_secs(300);

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).unwrap().len() as f64 / f64::from(1 << 20)
}

/// Seconds from power-on to GRUB's choice, to the agent's READY=1, and to the console's shell.
fn boot_once(m: &mut Machine) -> (f64, f64, f64) {
    let start = Instant::now();
    m.start(&[]).unwrap();
    m.wait_for("Booting slot ", BOOT).unwrap();
    let grub = start.elapsed().as_secs_f64();
    m.wait_for_shell(BOOT).unwrap();
    let shell = start.elapsed().as_secs_f64();
    m.wait_until_active("daisee-agent", BOOT).unwrap();
    // When the agent sent READY=1, on the guest's clock, and that clock now: the host's time of
    // the answer, less the difference, is the agent's ready time counted from power-on.
    let (out, _) = m
        .run(
            "echo $(cut -d' ' -f1 /proc/uptime) $(systemctl show -P ActiveEnterTimestampMonotonic daisee-agent)",
            BOOT,
        )
        .unwrap();
    let answered = start.elapsed().as_secs_f64();
    let clocks: Vec<f64> = out
        .first()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (uptime_s, ready_us) = (clocks[0], clocks[1]);
    let _ = m.run("systemctl poweroff", Duration::from_secs(5));
    assert!(m.wait_for_exit(BOOT), "powers off");
    (grub, answered - (uptime_s - ready_us / 1e6), shell)
}

fn bench(arch: Arch) {
    let dir = arch.dir();
    println!("{} image at {}", arch.name(), dir.display());
    println!("{:<34} {:>10}", "size", "MiB");
    for (what, file) in [
        ("raw disk image", "daisee.img"),
        ("compressed (zstd -10)", "daisee.img.zst"),
        ("root slot (squashfs, xz)", "rootfs.squashfs"),
        ("update bundle", "update.raucb"),
    ] {
        println!("{what:<34} {:>10.1}", mib(&dir.join(file)));
    }

    let mut m = Machine::new("bench", arch).unwrap();
    println!();
    println!(
        "{:<8} {:>12} {:>14} {:>12}",
        "boot", "GRUB (s)", "agent ready", "shell (s)"
    );
    let mut ready = Vec::new();
    for n in 1..=3 {
        let (grub, agent, shell) = boot_once(&mut m);
        println!("{n:<8} {grub:>12.1} {agent:>14.1} {shell:>12.1}");
        ready.push(agent);
    }
    ready.sort_by(f64::total_cmp);
    println!("power-on to agent ready, median of 3: {:.1} s", ready[1]);

    m.start(&[&test_disk(arch)]).unwrap();
    m.wait_for_boot(BOOT).unwrap();
    m.wait_until_active("daisee-boot-health", BOOT).unwrap();
    m.run("mount -o ro LABEL=test /mnt", BOOT).unwrap();
    let start = Instant::now();
    let (out, status) = m.run("rauc install /mnt/update.raucb", BOOT).unwrap();
    assert_eq!(status, 0, "{out:?}");
    println!(
        "install of a {:.1} MiB bundle into the other slot: {:.1} s",
        mib(&dir.join("update.raucb")),
        start.elapsed().as_secs_f64()
    );
}

fn main() {
    // cargo passes `--bench`; any other argument names the architectures to bench.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for arch in Arch::ALL {
        if chosen.is_empty() || chosen.iter().any(|c| c == arch.name()) {
            bench(arch);
            println!();
        }
    }
}

//! What the firmware finds on each image's EFI partition, read from the disk image with mtools,
//! without QEMU: GRUB for the machine's CPU and a new disk's A/B counters; on the Pi image, the
//! firmware, `config.txt`, the device trees and U-Boot, the steps before GRUB that QEMU cannot run.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::process::Command;

use daisee_image::{Arch, layout};

/// The bytes of `path` on the EFI partition (the disk's first partition) of `arch`'s image.
fn efi_file(arch: Arch, path: &str) -> Vec<u8> {
    let image = arch.dir().join("daisee.img");
    let table = Command::new("sfdisk")
        .arg("--json")
        .arg(&image)
        .output()
        .unwrap();
    assert!(table.status.success(), "sfdisk {}", image.display());
    let table = String::from_utf8(table.stdout).unwrap();
    // The first "start" of sfdisk's JSON is partition 1's, in 512-byte sectors.
    let start: u64 = table
        .split("\"start\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no partition start in {table}"));
    let out = Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@{}", image.display(), start * 512))
        .arg(format!("::{path}"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path} on {}'s EFI partition: {}",
        arch.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The machine a PE file (a UEFI application) is built for.
fn pe_machine(file: &[u8]) -> u16 {
    let pe = u32::from_le_bytes(file[0x3c..0x40].try_into().unwrap()) as usize;
    assert_eq!(&file[pe..pe + 4], b"PE\0\0", "a PE file");
    u16::from_le_bytes(file[pe + 4..pe + 6].try_into().unwrap())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn grub_for_the_machine_and_new_counters(arch: Arch, efi: &str, machine: u16) {
    assert_eq!(pe_machine(&efi_file(arch, efi)), machine, "{efi}");
    let grubenv = efi_file(arch, layout("GRUBENV"));
    assert_eq!(grubenv.len(), 1024, "GRUB's environment block");
    for counter in ["ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=0", "B_TRY=0"] {
        assert!(contains(&grubenv, counter.as_bytes()), "{counter}");
    }
}

#[test]
fn amd64_grub() {
    grub_for_the_machine_and_new_counters(Arch::Amd64, "EFI/BOOT/BOOTX64.EFI", 0x8664);
}

#[test]
fn arm64_grub() {
    grub_for_the_machine_and_new_counters(Arch::Arm64, "EFI/BOOT/BOOTAA64.EFI", 0xaa64);
}

#[test]
fn rpi4_firmware_starts_u_boot_with_the_uart_on() {
    let arch = Arch::Arm64;
    let config = String::from_utf8(efi_file(arch, "config.txt")).unwrap();
    let settings: Vec<&str> = config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for setting in [
        "arm_64bit=1",
        "kernel=u-boot.bin",
        "enable_uart=1",
        "gpio=17=op,dl",
    ] {
        assert!(settings.contains(&setting), "{setting} in {settings:?}");
    }
    // The Pi 4's firmware: its own start file and the memory split file that matches it.
    let start = efi_file(arch, "start4.elf");
    assert_eq!(&start[..4], b"\x7fELF", "start4.elf");
    assert!(!efi_file(arch, "fixup4.dat").is_empty());
    // U-Boot for arm64, built for the Pi 4: it starts with an AArch64 branch (`b reset`), which
    // the firmware jumps to in 64-bit mode, and knows the Pi 4's device tree by name.
    let u_boot = efi_file(arch, "u-boot.bin");
    let first = u32::from_le_bytes(u_boot[..4].try_into().unwrap());
    assert_eq!(
        first >> 26,
        0b000101,
        "u-boot.bin starts with an AArch64 branch"
    );
    assert!(contains(&u_boot, b"U-Boot 20"), "u-boot.bin is U-Boot");
    assert!(
        contains(&u_boot, b"broadcom/bcm2711-rpi-4-b.dtb"),
        "U-Boot for the Raspberry Pi 4"
    );
    // The device trees the firmware loads (the name it looks for by default), for the Pi 4.
    for board in ["bcm2711-rpi-4-b", "bcm2711-rpi-400"] {
        let dtb = efi_file(arch, &format!("{board}.dtb"));
        assert_eq!(
            &dtb[..4],
            b"\xd0\x0d\xfe\xed",
            "{board}.dtb is a device tree"
        );
        assert!(contains(&dtb, b"brcm,bcm2711"), "{board}.dtb");
    }
}

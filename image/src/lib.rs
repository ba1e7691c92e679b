//! Drives the gateway image under QEMU (TCG, OVMF or AAVMF; no network, or one restricted to a
//! feed server on the host) through its serial console, for the end-to-end tests and the image
//! bench. The image itself is built by `image/build`.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Where `image/build` leaves the images (one directory per architecture) unless `DAISEE_IMAGE`
/// names another directory.
pub fn image_dir() -> PathBuf {
    std::env::var_os("DAISEE_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/daisee/image")
        })
}

/// A machine of `image/layout/machines`: the image built for it, and the QEMU that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 PCs: QEMU's q35 with OVMF.
    Amd64,
    /// The Raspberry Pi 4's image, on QEMU's virt machine (Cortex-A72) with AAVMF.
    Arm64,
}

impl Arch {
    /// Every architecture an image is built for.
    pub const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// Debian's name, as `image/build --arch` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The directory of this architecture's image.
    pub fn dir(self) -> PathBuf {
        image_dir().join(self.name())
    }

    /// The QEMU system emulator, its machine, and the UEFI firmware's code and variables.
    fn qemu(
        self,
    ) -> (
        &'static str,
        &'static [&'static str],
        &'static str,
        &'static str,
    ) {
        match self {
            Arch::Amd64 => (
                "qemu-system-x86_64",
                &["-machine", "q35"],
                "/usr/share/OVMF/OVMF_CODE_4M.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.fd",
            ),
            Arch::Arm64 => (
                "qemu-system-aarch64",
                &["-machine", "virt", "-cpu", "cortex-a72"],
                "/usr/share/AAVMF/AAVMF_CODE.fd",
                "/usr/share/AAVMF/AAVMF_VARS.fd",
            ),
        }
    }
}

/// The test disk `image/make-test-fixtures` makes for `arch`: the bundles the update tests
/// install (`update.raucb`, and `untrusted`, `unsigned`, `tampered`, `foreign` and `broken`
/// ones) and the test GPIO chip's module.
pub fn test_disk(arch: Arch) -> PathBuf {
    arch.dir().join("test.img")
}

/// The update feed's files `image/make-test-fixtures` makes for `arch`: `newer.raucb`,
/// `older.raucb`, `foreign.raucb`, `broken.raucb` and `catalog.json`, a feed of all four.
pub fn feed_dir(arch: Arch) -> PathBuf {
    arch.dir().join("feed")
}

/// The address at which a machine given a network (`Machine::network_to`) reaches the host's
/// server, on port 80.
pub const FEED_HOST: &str = "10.0.2.100";

/// `image/layout/layout.env`, the facts the image is built on (`KEY=value` lines), which the
/// gateway carries as `/usr/lib/daisee/layout.env`.
const LAYOUT: &str = include_str!("../layout/layout.env");

/// The value of `key` in `image/layout/layout.env` (`TRIES`, `GRUBENV`, ...).
///
/// # Panics
///
/// If the file has no such key: the harness and the layout disagree.
pub fn layout(key: &str) -> &'static str {
    LAYOUT
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("image/layout/layout.env has no {key}"))
}

/// The boots GRUB gives a slot that is not marked good before it boots the other one.
///
/// # Panics
///
/// If `TRIES` in `image/layout/layout.env` is not a number.
pub fn tries() -> u32 {
    layout("TRIES")
        .parse()
        .expect("TRIES in image/layout/layout.env is a number")
}

/// A gateway under QEMU, its disk a copy of the image owned by this test.
#[derive(Debug)]
pub struct Machine {
    arch: Arch,
    dir: PathBuf,
    qemu: Option<Child>,
    console: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    write_limit: Option<u64>,
    feed_port: Option<u16>,
    extra: Vec<PathBuf>,
    /// Everything the console printed, for failure reports.
    pub log: Vec<String>,
}

/// Something the console did not say in time.
#[derive(Debug)]
pub struct Timeout {
    /// What was awaited.
    pub awaited: String,
    /// The console's last lines.
    pub tail: Vec<String>,
}

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "the console did not show {:?}; its last lines:",
            self.awaited
        )?;
        for l in &self.tail {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Timeout {}

impl Machine {
    /// A fresh `arch` machine in its own directory `name`: a copy of the image and of the UEFI
    /// firmware's variables.
    pub fn new(name: &str, arch: Arch) -> std::io::Result<Self> {
        let image = arch.dir().join("daisee.img");
        if !image.exists() {
            return Err(std::io::Error::other(format!(
                "{} is missing: run image/build --arch {} first (scripts/test does)",
                image.display(),
                arch.name()
            )));
        }
        let dir = std::env::temp_dir().join(format!(
            "daisee-qemu-{name}-{}-{}",
            arch.name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&image, dir.join("disk.img"))?;
        std::fs::copy(arch.qemu().3, dir.join("vars.fd"))?;
        Ok(Self {
            arch,
            dir,
            qemu: None,
            console: None,
            lines: None,
            write_limit: None,
            feed_port: None,
            extra: Vec::new(),
            log: Vec::new(),
        })
    }

    /// The machine's disk.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.img")
    }

    /// Powers the machine on: no network unless `network_to` gave one, the serial console on our
    /// pipes, `extra` disks after the system disk.
    pub fn start(&mut self, extra: &[&Path]) -> std::io::Result<()> {
        if let Some(missing) = extra.iter().find(|p| !p.exists()) {
            return Err(std::io::Error::other(format!(
                "{} is missing: run image/make-test-fixtures first (scripts/test does)",
                missing.display()
            )));
        }
        self.extra = extra.iter().map(|p| p.to_path_buf()).collect();
        self.power_on()
    }

    /// Starts QEMU on the disks `start` was given. One CPU: with two, TCG now and then left both
    /// spinning (guest soft lockups for minutes, or no output after a warm reset). A guest reboot
    /// ends QEMU (`-no-reboot`) and `wait_for` powers it on again, as a cold start.
    fn power_on(&mut self) -> std::io::Result<()> {
        let (qemu, machine, code, _) = self.arch.qemu();
        let mut cmd = Command::new(qemu);
        cmd.args(machine)
            .args(["-accel", "tcg", "-m", "1024", "-smp", "1"])
            .arg("-nic")
            .arg(self.nic())
            .args([
                "-display",
                "none",
                "-serial",
                "stdio",
                "-monitor",
                "none",
                "-no-reboot",
            ])
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,readonly=on,file={code}"))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,file={}",
                self.dir.join("vars.fd").display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio{}",
                self.disk().display(),
                self.write_limit
                    .map(|b| format!(",throttling.bps-write={b}"))
                    .unwrap_or_default()
            ));
        for disk in &self.extra {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                disk.display()
            ));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let (mut buf, mut byte) = (Vec::new(), [0u8; 1]);
            while let Ok(1) = std::io::Read::read(&mut reader, &mut byte) {
                buf.push(byte[0]);
                // A line, or a shell prompt, which ends without one.
                if byte[0] == b'\n' || buf.ends_with(b"# ") {
                    let line = plain(&String::from_utf8_lossy(&buf));
                    buf.clear();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        self.console = child.stdin.take();
        self.qemu = Some(child);
        self.lines = Some(rx);
        Ok(())
    }

    /// Waits up to `timeout` for a console line containing `text`; returns that line.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<String, Timeout> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.as_ref().map(|l| l.recv_timeout(left)) {
                Some(Ok(line)) => line,
                Some(Err(RecvTimeoutError::Disconnected)) if self.rebooted() => {
                    self.power_cut();
                    self.power_on().map_err(|e| Timeout {
                        awaited: format!("QEMU to start again after a reboot: {e}"),
                        tail: Vec::new(),
                    })?;
                    continue;
                }
                Some(Err(RecvTimeoutError::Timeout))
                | Some(Err(RecvTimeoutError::Disconnected))
                | None => {
                    return Err(Timeout {
                        awaited: text.to_owned(),
                        tail: self.log.iter().rev().take(30).rev().cloned().collect(),
                    });
                }
            };
            self.log.push(line.clone());
            if line.contains(text) {
                return Ok(line);
            }
        }
    }

    /// Whether the guest's last words were the kernel's before a reboot.
    fn rebooted(&self) -> bool {
        self.log
            .iter()
            .rev()
            .take(3)
            .any(|l| l.contains("reboot: Restarting system"))
    }

    /// Waits for the serial console's automatic root login and its prompt.
    pub fn wait_for_shell(&mut self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_for("(automatic login)", timeout)?;
        self.wait_for("root@daisee", Duration::from_secs(60))
            .map(drop)
    }

    /// Types `line` and Enter on the console, without waiting for anything.
    pub fn type_line(&mut self, line: &str) {
        if let Some(console) = &mut self.console {
            let _ = console.write_all(format!("{line}\n").as_bytes());
            let _ = console.flush();
        }
    }

    /// Runs `command` in the console's shell; returns its output lines and exit status. Lines the
    /// kernel prints to the console meanwhile are among them.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<(Vec<String>, i32), Timeout> {
        // Markers before and after the output, split in the command as typed so that its echo
        // never matches.
        self.type_line(&format!(
            "echo \"__DAISEE_\"\"OUT__\"; {command}; echo \"__DAISEE_\"\"END__ $?\""
        ));
        self.wait_for("__DAISEE_OUT__", timeout)?;
        let start = self.log.len();
        let end = self.wait_for("__DAISEE_END__ ", timeout)?;
        let status = end
            .rsplit(' ')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        Ok((self.log[start..self.log.len() - 1].to_vec(), status))
    }

    /// Waits for GRUB to pick a slot and the console's root shell; returns the slot (`A` or `B`).
    pub fn wait_for_boot(&mut self, timeout: Duration) -> Result<char, Timeout> {
        let line = self.wait_for("Booting slot ", timeout)?;
        let slot = line
            .split("Booting slot ")
            .nth(1)
            .and_then(|rest| rest.chars().next())
            .unwrap_or('?');
        self.wait_for_shell(timeout)?;
        Ok(slot)
    }

    /// Waits until systemd reports `unit` active (for a Type=notify service: it sent READY=1).
    pub fn wait_until_active(&mut self, unit: &str, timeout: Duration) -> Result<(), Timeout> {
        let deadline = Instant::now() + timeout;
        let command = format!("systemctl is-active {unit}");
        while Instant::now() < deadline {
            let (out, _) = self.run(&command, Duration::from_secs(60))?;
            if out.iter().any(|l| l.trim() == "active") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let (status, _) = self.run(
            &format!("systemctl status {unit} --no-pager -l | tail -15"),
            Duration::from_secs(60),
        )?;
        Err(Timeout {
            awaited: format!("{unit} active"),
            tail: status,
        })
    }

    /// GRUB's environment as the booted system reads it: `ORDER`, `A_OK`, `A_TRY`, ...
    pub fn grubenv(&mut self) -> Result<BTreeMap<String, String>, Timeout> {
        let command = format!(
            "grub-editenv {}/{} list",
            layout("EFI_MOUNT"),
            layout("GRUBENV")
        );
        let (lines, _) = self.run(&command, Duration::from_secs(60))?;
        Ok(lines
            .iter()
            .filter_map(|l| l.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// Gives the machine a network from its next start on: QEMU's user-mode network, restricted
    /// so that the guest reaches nothing but [`FEED_HOST`] port 80, which QEMU forwards (a socat
    /// per connection) to 127.0.0.1:`port` on the host. It gets its address by DHCP.
    pub fn network_to(&mut self, port: u16) {
        self.feed_port = Some(port);
    }

    /// QEMU's `-nic`: none, or the restricted user-mode network to the feed server.
    fn nic(&self) -> String {
        match self.feed_port {
            None => "none".into(),
            Some(port) => format!(
                "user,model=virtio-net-pci,restrict=on,guestfwd=tcp:{FEED_HOST}:80-cmd:socat STDIO TCP:127.0.0.1:{port}"
            ),
        }
    }

    /// Limits writes to the machine's disk to `bytes_per_second` from the next start on.
    pub fn throttle_writes(&mut self, bytes_per_second: u64) {
        self.write_limit = Some(bytes_per_second);
    }

    /// Makes the machine's disk `mib` MiB larger, as flashing onto a larger card would.
    pub fn grow_disk(&self, mib: u64) -> std::io::Result<()> {
        let disk = std::fs::OpenOptions::new().write(true).open(self.disk())?;
        disk.set_len(disk.metadata()?.len() + mib * 1024 * 1024)
    }

    /// Pulls the plug: QEMU is killed, as a power cut would.
    pub fn power_cut(&mut self) {
        if let Some(mut q) = self.qemu.take() {
            let _ = q.kill();
            let _ = q.wait();
        }
        self.console = None;
        self.lines = None;
    }

    /// Waits for the machine to power itself off (after `poweroff`).
    pub fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(q) = &mut self.qemu
                && let Ok(Some(_)) = q.try_wait()
            {
                self.qemu = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

/// A console line without carriage returns, newlines and terminal escape sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters, then a final letter (or ~).
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for p in chars.by_ref() {
                        if p.is_ascii_alphabetic() || p == '~' {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.power_cut();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without QEMU: a layout the harness cannot read fails here, not minutes into a boot.
    #[test]
    fn the_layout_has_what_the_harness_reads() {
        assert!(tries() > 0);
        assert!(layout("EFI_MOUNT").starts_with('/'));
        assert!(
            !layout("GRUBENV").starts_with('/'),
            "GRUBENV is a path on the EFI partition"
        );
    }
}

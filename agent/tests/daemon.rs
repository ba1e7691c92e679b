//! The agent as a daemon: its history survives SIGKILL, a full disk does not stop it, and it tells
//! systemd when it is ready and that its loop is alive.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daisee_hal::Timestamp;
use daisee_store::{Retention, Store};

/// A directory of this test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("daisee-daemon-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A gateway of `channels` simulated channels polled every 100 ms, its history in `store`.
fn config(dir: &Path, channels: usize, store: &Path, flush_ms: u64) -> PathBuf {
    let mut text = format!(
        "[gateway]\npoll_interval_ms = 100\n\n[store]\ndir = \"{}\"\nflush_interval_ms = {flush_ms}\n\n\
         [sim]\nseed = 5\n\n[[sim.load]]\nname = \"house\"\nprofile = \"household\"\npeak_w = 4000\n",
        store.display()
    );
    for i in 0..channels {
        text +=
            &format!("\n[[sensor]]\nname = \"ch{i}\"\nbackend = \"sim\"\nloads = [\"house\"]\n");
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The agent on `config`, its stderr read line by line.
fn start(config: &Path) -> (Child, impl Iterator<Item = String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .arg("--config")
        .arg(config)
        .args(["--dbus", "none"])
        // Inherited from a journald-logged parent but not its stderr: the lines stay on stderr.
        .env("JOURNAL_STREAM", "1:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(Result::unwrap);
    (child, lines)
}

/// `(samples in all, up to)` from "history: stored 160 samples (480 in all) up to 2026-…Z".
fn acknowledged(line: &str) -> Option<(usize, String)> {
    let rest = line.strip_prefix("daisee-agent: history: stored ")?;
    let (_, rest) = rest.split_once(" samples (")?;
    let (all, rest) = rest.split_once(" in all) up to ")?;
    Some((all.parse().ok()?, rest.to_owned()))
}

/// The timestamp the agent printed, back to milliseconds.
fn parse_rfc3339(s: &str) -> Timestamp {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from 1970-01-01 to the date (civil calendar, proleptic Gregorian).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Timestamp(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms.parse::<i64>().unwrap())
}

#[test]
fn sigkill_mid_write_loses_nothing_acknowledged() {
    let dir = Dir::new("kill");
    let store = dir.0.join("data");
    let config = config(&dir.0, 16, &store, 200);
    let (mut child, lines) = start(&config);
    let mut last = None;
    for line in lines {
        if let Some(ack) = acknowledged(&line) {
            last = Some(ack);
            // Several flushes in, while the next batches are being written: kill it.
            if last.as_ref().is_some_and(|(n, _)| *n >= 16 * 40) {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (all, up_to) = last.expect("the agent acknowledged samples");
    let up_to = parse_rfc3339(&up_to);

    let retention = Retention {
        samples: Duration::from_secs(86_400),
        max_pending: 1,
    };
    let history = Store::open(&store.join("history.sqlite"), retention).unwrap();
    let stored: usize = (0..16)
        .map(|i| {
            let samples = history
                .samples(&format!("ch{i}"), Timestamp(0), Timestamp(up_to.0 + 1))
                .unwrap();
            samples.len()
        })
        .sum();
    assert_eq!(
        stored, all,
        "every acknowledged sample up to {up_to} is there"
    );
}

#[test]
fn a_full_disk_is_reported_and_the_agent_goes_on() {
    let dir = Dir::new("full");
    let store = dir.0.join("data");
    std::fs::create_dir_all(&store).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&store)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    std::fs::write(store.join("filler"), vec![0u8; 400 * 1024]).unwrap();
    let config = config(&dir.0, 16, &store, 200);
    let (mut child, mut lines) = start(&config);
    let full = lines
        .by_ref()
        .find(|l| l.contains("history: the disk is full"));
    assert!(full.is_some(), "the agent says the disk is full");
    // Still polling and still trying: more reports follow, and it is alive.
    assert!(lines.any(|l| l.contains("history:")));
    assert!(child.try_wait().unwrap().is_none(), "the agent runs on");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let _ = Command::new("umount").arg(&store).status();
}

#[test]
fn systemd_hears_ready_then_the_watchdog_then_stopping() {
    let dir = Dir::new("notify");
    let socket_path = dir.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let demo = dir.0.join("demo.toml");
    std::fs::write(&demo, daisee_agent::config::DEMO).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--polls", "3", "--dbus", "none", "--config"])
        .arg(&demo)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "30000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    socket.set_nonblocking(true).unwrap();
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // The demo's Modbus meters are read in the first round: ready at the first poll.
    assert!(
        messages[0].starts_with("READY=1\nSTATUS=5 channels read"),
        "{messages:?}"
    );
    let watchdogs = messages.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert_eq!(watchdogs, 3, "one per turn of the loop: {messages:?}");
    assert_eq!(messages.last().unwrap(), "STOPPING=1");
}

#[test]
fn journald_gets_entries_with_fields() {
    let dir = Dir::new("journal");
    let socket_path = dir.0.join("journal.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // A boiler with room under the limit and no minimum off time: on at the first poll.
    let config = dir.0.join("agent.toml");
    std::fs::write(
        &config,
        "[sim]\n[[sim.load]]\nname = \"house\"\nprofile = \"constant\"\npower_w = 500\n\n\
         [[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"house\"]\n\n\
         [control]\ngrid = \"grid\"\nimport_limit_w = 6000\n\n\
         [[relay]]\nname = \"boiler\"\nbackend = \"sim\"\nsafe_state = \"off\"\nnominal_w = 2000\nmin_off_s = 0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--polls", "2", "--dbus", "none", "--config"])
        .arg(&config)
        .env("DAISEE_JOURNAL_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut entries = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        entries.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let switched = entries
        .iter()
        .find(|e| e.contains("DAISEE_RELAY=boiler\n"))
        .unwrap_or_else(|| panic!("{entries:?}"));
    for field in [
        "MESSAGE=relay `boiler` on (automatic)\n",
        "PRIORITY=6\n",
        "SYSLOG_IDENTIFIER=daisee-agent\n",
        "DAISEE_STATE=on\n",
        "DAISEE_CAUSE=automatic\n",
    ] {
        assert!(switched.contains(field), "{field:?} in {switched:?}");
    }
    // And not on stderr as well.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("relay `boiler` on"));
}

#[test]
fn a_history_that_cannot_open_leaves_the_agent_running() {
    let dir = Dir::new("no-store");
    // A data directory under a regular file cannot be created.
    std::fs::write(dir.0.join("file"), b"").unwrap();
    let config = config(&dir.0, 2, &dir.0.join("file/data"), 200);
    let out = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--polls", "3", "--dbus", "none", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("history: cannot open it") && err.contains("running without"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3 * 2);
}

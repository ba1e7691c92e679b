//! The `daisee-agent` binary as a user runs it: the demo, and the errors a wrong setup gets.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
}

/// A file of this test run, removed again when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("daisee-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run_with_config(config: &str) -> Output {
    let file = TempFile::new(&format!("{:x}.toml", fxhash(config)), config);
    agent()
        .args(["--polls", "1", "--config"])
        .arg(&file.0)
        .output()
        .unwrap()
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const INA219_ON: &str = r#"[[sensor]]
name = "battery"
backend = "linux"
chip = "ina219"
bus = "BUS"
address = 0x40
shunt_ohms = 0.1
max_current_a = 3.2
"#;

#[test]
fn the_demo_prints_timestamped_lines_when_not_on_a_terminal() {
    let out = agent().args(["--polls", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Two polls of 5 channels and 2 relays, no screen control codes.
    assert_eq!(lines.len(), 14, "{text}");
    assert!(!text.contains('\x1b'));
    for line in &lines {
        let (stamp, _) = line.split_once(' ').unwrap();
        assert_eq!(stamp.len(), "2026-11-25T10:30:00.200Z".len(), "{line}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{line}"
        );
    }
    assert!(
        lines[0].contains("channel=grid device=sim power_w="),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("channel=shed_panel device=ina219 power_w=-")),
        "the shed panel produces at 10:30: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("relay=water_heater state=on safe=on"))
    );
    // The Modbus devices, read over TCP from the agent's own simulator by the time of the first
    // poll: the SDM630 on the switched loads sees at least the 2 kW water heater; the SunSpec
    // inverter produces.
    let flex: Vec<f64> = lines
        .iter()
        .filter_map(|l| {
            l.split_once("channel=flex_loads device=modbus power_w=")?
                .1
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(flex.len(), 2, "{text}");
    assert!(
        flex.iter().all(|w| (1_900.0..6_000.0).contains(w)),
        "{flex:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("channel=pv_inverter device=sunspec power_w=-")),
        "{text}"
    );
    // Demand response: the charger's 10 minutes off count from the start, when the agent put it
    // in its safe state, so it waits though the PV leaves room for it.
    assert!(
        lines.iter().all(|l| !l.contains("relay=ev_charger")
            || l.ends_with("relay=ev_charger state=off safe=off")),
        "{text}"
    );
}

#[test]
fn the_demo_configuration_is_printed_and_runs_as_a_file() {
    let out = agent().arg("--print-demo-config").output().unwrap();
    let demo = String::from_utf8(out.stdout).unwrap();
    assert!(demo.contains("[[sensor]]"));
    let out = run_with_config(&demo);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 7);
}

#[test]
fn an_unknown_key_names_the_file_and_line() {
    let out = run_with_config(
        &INA219_ON
            .replace("address", "adress")
            .replace("BUS", "/dev/i2c-1"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(".toml: line 6: sensor[0].adress: unknown field `adress`"),
        "{err}"
    );
}

#[test]
fn a_missing_bus_is_named_with_a_hint() {
    let out = run_with_config(&INA219_ON.replace("BUS", "/dev/i2c-97"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("sensor `battery` (line 1): /dev/i2c-97: does not exist (is the bus enabled"),
        "{err}"
    );
}

#[test]
fn a_missing_gpio_chip_is_named() {
    let out = run_with_config(
        "[[relay]]\nname = \"boiler\"\nbackend = \"linux\"\ngpio_chip = \"/dev/gpiochip97\"\nline = 3\nsafe_state = \"off\"\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("relay `boiler` (line 1): /dev/gpiochip97:3: does not exist"),
        "{err}"
    );
}

#[test]
fn a_bus_node_without_permission_says_so() {
    if !is_root() {
        eprintln!("skipped: needs root to run the agent as another user");
        return;
    }
    // A node only root may open, and the agent run as nobody.
    let node = TempFile::new("i2c-node", "");
    std::fs::set_permissions(&node.0, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = TempFile::new(
        "perm.toml",
        &INA219_ON.replace("BUS", node.0.to_str().unwrap()),
    );
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--polls", "1", "--config"])
        .arg(&config.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("permission denied (run as root or as a member of the group"),
        "{err}"
    );
    assert!(err.contains("usermod -aG i2c"), "{err}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn sigterm_stops_it_cleanly() {
    let mut child = agent()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first poll's output, then ask it to stop as systemd would.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 24];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the agent ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_completions_and_manual_page_come_from_one_definition() {
    let help = agent().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--config",
        "--dbus",
        "--polls",
        "--print-demo-config",
        "--completions",
        "--man",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    let bash = agent().args(["--completions", "bash"]).output().unwrap();
    assert!(
        String::from_utf8(bash.stdout)
            .unwrap()
            .contains("complete -F")
    );
    let man = agent().arg("--man").output().unwrap();
    assert!(
        String::from_utf8(man.stdout)
            .unwrap()
            .contains(".TH daisee-agent")
    );
    let wrong = agent().arg("--pols").output().unwrap();
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("--polls"), "a near miss is named");
}

#[test]
fn a_configuration_that_is_no_regular_file_or_too_big_is_refused_without_reading_it_all() {
    let zero = agent()
        .args(["--polls", "1", "--config", "/dev/zero"])
        .output()
        .unwrap();
    assert!(!zero.status.success());
    assert!(
        stderr(&zero).contains("not a regular file"),
        "{}",
        stderr(&zero)
    );
    let big = TempFile::new("big.toml", &format!("# {}\n", "x".repeat(70_000)));
    let out = agent()
        .args(["--polls", "1", "--config"])
        .arg(&big.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("65536") && err.len() < 300, "{err}");
}

/// The child the agent fetches its updates with (`--fetch`, not in the help): the feed's bytes
/// on stdout, a bundle downloaded with its progress on stdout, and a server's refusal on stderr.
#[test]
fn the_update_fetcher_prints_the_feed_a_download_s_progress_and_a_refusal() {
    let server = daisee_update::server::Server::start().unwrap();
    let feed = TempFile::new("fetch-feed.json", r#"{"bundles": []}"#);
    server.put("/feed.json", &feed.0);
    let bundle = TempFile::new("fetch-bundle.raucb", &"x".repeat(300_000));
    server.put("/b.raucb", &bundle.0);
    let base = format!("http://127.0.0.1:{}", server.port());
    let fetch = |request: String| agent().arg("--fetch").arg(request).output().unwrap();

    let out = fetch(format!(
        r#"{{"what": {{"feed": {{"url": "{base}/feed.json"}}}}, "proxy": null}}"#
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, br#"{"bundles": []}"#);

    let out = fetch(format!(
        r#"{{"what": {{"feed": {{"url": "{base}/none.json"}}}}, "proxy": null}}"#
    ));
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("{base}/none.json: the server answered 404 Not Found")
    );
    assert!(out.stdout.is_empty());

    let dir = bundle.0.with_file_name("fetch-downloads");
    let _ = std::fs::remove_dir_all(&dir);
    let out = fetch(format!(
        r#"{{"what": {{"bundle": {{"url": "{base}/b.raucb", "size": 300000, "version": "2.0", "dir": "{}"}}}}, "proxy": null}}"#,
        dir.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let held: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(held.windows(2).all(|w| w[0] < w[1]), "{held:?}");
    assert_eq!(held.last(), Some(&300_000));
    let got = std::fs::read(dir.join("daisee-2.0.raucb")).unwrap();
    assert_eq!(got, std::fs::read(&bundle.0).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    let out = fetch("{}".into());
    assert!(
        stderr(&out).starts_with("--fetch: missing field"),
        "{}",
        stderr(&out)
    );
    let help = agent().arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("--fetch"));
}

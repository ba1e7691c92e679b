//! The `daisee-modbus-sim` binary, as a user runs it: its default devices read over the TCP port
//! and the pseudo-terminal it prints.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::device::{Backoff, Device, Map};
use daisee_modbus::profile::Profile;
use daisee_modbus::serial::{LineSettings, Parity};
use daisee_modbus::sunspec::Role;

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with the lines it printed up to the last "on …" address.
fn start(args: &[&str], announcements: usize) -> (Sim, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_daisee-modbus-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = stdout
        .lines()
        .take(announcements)
        .map(Result::unwrap)
        .collect();
    (Sim(child), lines)
}

fn after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {lines:?}"))
}

fn device(unit: u8, map: Map) -> Device {
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    Device::new("sim", unit, map, Duration::from_secs(2), backoff)
}

#[tokio::test]
async fn default_devices_over_tcp_and_a_pty() {
    let (_sim, lines) = start(&["--tcp", "127.0.0.1:0", "--pty"], 4);
    assert_eq!(lines[0], "unit 1: Eastron SDM630-Modbus V2");
    let tcp = after(&lines, "Modbus TCP on ").parse().unwrap();
    let pty = after(&lines, "Modbus RTU on ");

    let sdm630 = Map::Profile(std::sync::Arc::new(
        Profile::shipped("eastron-sdm630").unwrap().unwrap(),
    ));
    let mut bus = Bus::new(Endpoint::Tcp(tcp), Duration::ZERO);
    let meter = device(1, sdm630.clone()).poll(&mut bus).await.unwrap();
    assert!(
        meter.phases.iter().all(|p| p.voltage.is_some()),
        "{meter:?}"
    );
    let mut inverter = device(2, Map::SunSpec(Role::Inverter));
    inverter.poll(&mut bus).await.unwrap();
    assert_eq!(inverter.sunspec().unwrap().identity.manufacturer, "DAISEE");

    let line = LineSettings {
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
    };
    let mut rtu = Bus::new(
        Endpoint::Rtu {
            path: pty.into(),
            line,
        },
        Duration::ZERO,
    );
    let meter = device(1, sdm630).poll(&mut rtu).await.unwrap();
    assert!(meter.frequency_mhz.is_some(), "{meter:?}");
}

#[test]
fn bad_arguments_say_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_daisee-modbus-sim"))
        .args(["--meter", "1=no-such-meter"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no-such-meter"), "{err}");
}

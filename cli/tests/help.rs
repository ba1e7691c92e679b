//! `daiseectl`'s own help, completions and manual page: every subcommand described, none needing a
//! bus to answer.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::process::Command;

fn daiseectl(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_daiseectl"))
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

const SUBCOMMANDS: [&str; 13] = [
    "status",
    "meters",
    "relays",
    "relay",
    "inverter",
    "config",
    "history",
    "energy",
    "update",
    "dialogue",
    "completions",
    "man",
    "help",
];

#[test]
fn every_subcommand_is_described_and_has_its_own_help() {
    let (ok, help) = daiseectl(&["--help"]);
    assert!(ok);
    for sub in SUBCOMMANDS {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{sub} ")))
            .unwrap_or_else(|| panic!("`{sub}` missing from --help:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "`{sub}` undescribed: {line}"
        );
    }
    for sub in &SUBCOMMANDS[..SUBCOMMANDS.len() - 1] {
        let (ok, help) = daiseectl(&[sub, "--help"]);
        assert!(
            ok && help.contains("Usage: daiseectl"),
            "{sub} --help:\n{help}"
        );
    }
    let (ok, help) = daiseectl(&["config", "set", "--help"]);
    assert!(
        ok && help.contains("<KEY>") && help.contains("<VALUE>"),
        "{help}"
    );
}

#[test]
fn bash_completion_and_manual_page_come_from_the_same_definition() {
    let (ok, bash) = daiseectl(&["completions", "bash"]);
    assert!(ok);
    assert!(
        bash.contains("complete -F") && bash.contains("inverter"),
        "{bash}"
    );
    let (ok, man) = daiseectl(&["man"]);
    assert!(ok);
    assert!(
        man.contains(".TH daiseectl") && man.contains("inverter"),
        "{man}"
    );
}

#[test]
fn a_bad_argument_is_refused_before_any_bus_is_asked() {
    let out = Command::new(env!("CARGO_BIN_EXE_daiseectl"))
        .args(["relay", "boiler", "maybe"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("possible values: on, off, auto"), "{err}");
}

//! What every image test does: boot-length waits and shell commands whose failure to answer is
//! the test's failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use daisee_image::{Arch, FEED_HOST, Machine, feed_dir};
use daisee_update::server::Server;
use serde_json::Value;

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

/// The update feed of `image/make-test-fixtures` served on the host's loopback, for machines
/// given a network to it.
pub(crate) struct Feed {
    /// The server.
    pub(crate) server: Server,
    dir: PathBuf,
    catalog: Vec<Value>,
}

impl Feed {
    /// Serves `arch`'s bundles, with an empty feed.
    pub(crate) fn start(arch: Arch, name: &str) -> Feed {
        let text = std::fs::read_to_string(feed_dir(arch).join("catalog.json"))
            .unwrap_or_else(|e| panic!("{e}: run image/make-test-fixtures --arch {}", arch.name()));
        let catalog: Value = serde_json::from_str(&text).unwrap();
        let server = Server::start().unwrap();
        let dir = std::env::temp_dir().join(format!(
            "daisee-feed-{name}-{}-{}",
            arch.name(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["newer", "older", "foreign", "broken"].map(|b| format!("{b}.raucb")) {
            server.put(&format!("/{file}"), feed_dir(arch).join(&file));
        }
        server.put("/feed.json", dir.join("feed.json"));
        let feed = Feed {
            server,
            dir,
            catalog: catalog["bundles"].as_array().unwrap().clone(),
        };
        feed.offer(&[]);
        feed
    }

    fn entry(&self, file: &str) -> &Value {
        self.catalog
            .iter()
            .find(|b| b["url"] == file)
            .unwrap_or_else(|| panic!("{file} in the catalog"))
    }

    /// The version of bundle `file` (`newer.raucb`).
    pub(crate) fn version(&self, file: &str) -> String {
        self.entry(file)["version"].as_str().unwrap().to_owned()
    }

    /// The size of bundle `file` in bytes.
    pub(crate) fn size(&self, file: &str) -> u64 {
        self.entry(file)["size"].as_u64().unwrap()
    }

    /// Publishes a feed of the bundles `files`, each under this machine's compatible string
    /// (the foreign bundle too: the feed may lie, RAUC reads the truth).
    pub(crate) fn offer(&self, files: &[&str]) {
        let ours = self.entry("newer.raucb")["compatible"].clone();
        let bundles: Vec<Value> = files
            .iter()
            .map(|f| {
                let mut entry = self.entry(f).clone();
                entry["compatible"] = ours.clone();
                entry
            })
            .collect();
        let feed = serde_json::json!({ "bundles": bundles });
        std::fs::write(self.dir.join("feed.json"), feed.to_string()).unwrap();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for the machine's address from QEMU's DHCP.
pub(crate) fn network_up(m: &mut Machine) {
    let (out, status) = sh(
        m,
        "(for i in $(seq 120); do networkctl status -n0 --no-pager | grep -q 'Address: 10\\.0\\.2\\.15' && exit 0; sleep 1; done; networkctl status -n0 --no-pager; exit 1)",
    );
    assert_eq!(status, 0, "no address from QEMU's DHCP: {out:?}");
}

/// A machine of `arch` given a network to `feed`: booted from A, marked good, with its address,
/// its agent following the feed and installing at any time of day.
pub(crate) fn following(feed: &Feed, name: &str, arch: Arch) -> Machine {
    let mut m = Machine::new(name, arch).unwrap();
    m.network_to(feed.server.port());
    m.start(&[]).unwrap();
    assert_eq!(boot(&mut m), 'A');
    marked_good(&mut m, 'A');
    network_up(&mut m);
    let table = format!(
        "\\n[update]\\nfeed = \"http://{FEED_HOST}/feed.json\"\\nwindow = \"00:00-24:00\"\\n"
    );
    let (out, status) = sh(
        &mut m,
        &format!("printf '{table}' >> /data/daisee/agent.toml && systemctl restart daisee-agent"),
    );
    assert_eq!(status, 0, "{out:?}");
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    m
}

/// Polls `daiseectl update` until a line starts with `label` and contains `text`; that line.
/// Up to ten minutes: RAUC retries each block of a server that vanished five times (minutes).
pub(crate) fn update_shows(m: &mut Machine, label: &str, text: &str) -> String {
    for _ in 0..300 {
        let (out, _) = sh(m, "daiseectl update");
        if let Some(line) = out
            .iter()
            .find(|l| l.starts_with(label) && l.contains(text))
        {
            return line.clone();
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let (out, _) = sh(
        m,
        "daiseectl update; journalctl -u daisee-agent --no-pager | tail -20",
    );
    panic!("daiseectl update never showed {label} … {text}: {out:?}");
}

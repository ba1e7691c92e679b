//! Gateways as separate `daisee-agent` processes, each on its own `dbus-daemon` with its own key
//! and history, bidding over real libp2p on loopback in slots of four seconds: they agree slot
//! after slot, the signed bid sets they kept audit to what each executed, one that is killed is
//! left out while the rest agree, and a relay held on beyond the allocation shows in the report.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daisee_api::DialogueProxy;
use daisee_dialogue::GatewayKey;

const SLOT_MS: i64 = 4000;

/// A process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One gateway: its bus, its agent and its directory.
struct Gateway {
    address: String,
    bus_address: String,
    agent: Option<Running>,
    _bus: Running,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.agent.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on loopback (the listener is closed again at once: the agent binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration of gateway `i` in a community of `members` (account, port).
fn config(i: usize, dir: &Path, port: u16, members: &[(String, u16)]) -> String {
    let house = 1000 + 300 * i;
    let bootstrap: Vec<String> = members
        .iter()
        .filter(|(_, p)| *p != port)
        .map(|(_, p)| format!("\"/ip4/127.0.0.1/tcp/{p}\""))
        .collect();
    let mut text = format!(
        r#"[gateway]
name = "home{i}"
poll_interval_ms = 200

[sim]
seed = {i}

[[sim.load]]
name = "house"
profile = "constant"
power_w = {house}

[[sim.load]]
name = "ev"
profile = "constant"
power_w = 3000
relay = "ev"

[[sensor]]
name = "grid"
backend = "sim"
loads = ["house", "ev"]

[control]
grid = "grid"

[[relay]]
name = "ev"
backend = "sim"
safe_state = "off"
nominal_w = 3000
priority = 1
min_on_s = 0
min_off_s = 0
max_switches_per_hour = 3600

[store]
dir = "{}"
flush_interval_ms = 200

[dialogue]
community = "test-street"
grid = "grid"
listen = ["/ip4/127.0.0.1/tcp/{port}"]
bootstrap = [{}]
slot_ms = {SLOT_MS}
gate_ms = 1500
grace_ms = 1000
price_first = 0
price_increment = 10000
price_steps = 40
import_tariff_step = 30
feed_in_tariff_step = 8
import_cap_w = 100000
export_cap_w = 100000
"#,
        dir.join("data").display(),
        bootstrap.join(", ")
    );
    for (address, _) in members {
        text += &format!(
            "\n[[dialogue.member]]\naddress = \"{address}\"\nimport_w = 12000\nexport_w = 6000\n"
        );
    }
    text
}

/// A bus that lets anyone own and call anything: each gateway is alone on its own.
fn bus(dir: &Path) -> (Running, String) {
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let bus = Running(
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus)"),
    );
    for _ in 0..250 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (bus, format!("unix:path={}", socket.display()))
}

/// `n` gateways with keys 1, 2, …, started together.
fn community(name: &str, n: usize) -> Vec<Gateway> {
    let keys: Vec<GatewayKey> = (1..=n)
        .map(|i| GatewayKey::from_secret(&[u8::try_from(i).unwrap(); 32]).unwrap())
        .collect();
    let members: Vec<(String, u16)> = keys
        .iter()
        .map(|k| (k.address().to_string(), free_port()))
        .collect();
    let mut gateways = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("daisee-dialogue-{name}-{i}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let key_file = dir.join("data/gateway.key");
        std::fs::write(&key_file, key.to_hex()).unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let config_file = dir.join("agent.toml");
        std::fs::write(&config_file, config(i, &dir, members[i].1, &members)).unwrap();
        let (bus, bus_address) = bus(&dir);
        let agent = Running(
            Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
                .arg("--config")
                .arg(&config_file)
                .args(["--dbus", &bus_address])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
                .spawn()
                .unwrap(),
        );
        gateways.push(Gateway {
            address: members[i].0.clone(),
            bus_address,
            agent: Some(agent),
            _bus: bus,
            dir,
        });
    }
    gateways
}

impl Gateway {
    async fn dialogue(&self) -> DialogueProxy<'static> {
        for _ in 0..250 {
            if let Ok(builder) = zbus::connection::Builder::address(self.bus_address.as_str())
                && let Ok(conn) = builder.build().await
                && let Ok(proxy) = DialogueProxy::new(&conn).await
                && proxy.community().await.is_ok()
            {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        panic!("no Dialogue object on {}", self.bus_address);
    }

    fn daiseectl(&self, args: &[&str]) -> (bool, String) {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap();
        let out = Command::new(dir.join("daiseectl"))
            .args(["--bus", &self.bus_address])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

/// The slot a gateway bids for now, once it bids.
async fn bidding(proxy: &DialogueProxy<'static>) -> i64 {
    for _ in 0..300 {
        let slot = proxy.bid_slot().await.unwrap();
        if slot != 0 {
            return slot;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no bid");
}

/// Waits (at most a minute) until every proxy has settled `slot`.
async fn settled(proxies: &[DialogueProxy<'static>], slot: i64) {
    for _ in 0..600 {
        let mut done = true;
        for p in proxies {
            done &= p.last_slot().await.unwrap() >= slot;
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("slot {slot} did not settle everywhere");
}

/// Each gateway's record of `slot`: all agreed on one bid set and price, and each one's audit
/// finds that the signed bids clear to what it executed. Returns the number of bids.
async fn agreed_everywhere(
    gateways: &[Gateway],
    proxies: &[DialogueProxy<'static>],
    slot: i64,
) -> usize {
    let mut records = Vec::new();
    for (g, p) in gateways.iter().zip(proxies) {
        let record = p.slot(slot).await.unwrap();
        assert_eq!(record.0, "agreed", "{}: {}", g.address, g.log());
        let (ok, audit) = g.daiseectl(&["dialogue", "audit", &slot.to_string()]);
        assert!(ok, "{audit}");
        assert!(
            audit.contains("clear to what this gateway executed"),
            "{audit}"
        );
        records.push(record);
    }
    for r in &records[1..] {
        assert_eq!(
            (r.1, &r.3),
            (records[0].1, &records[0].3),
            "one bid set, one price"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&records[0].3).unwrap();
    json["bids"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_agree_slot_after_slot_and_a_killed_one_is_left_out() {
    let mut gateways = community("agree", 5);
    let mut proxies = Vec::new();
    for g in &gateways {
        proxies.push(g.dialogue().await);
    }
    // The first slot each bid for may have missed peers not yet up: take the next two.
    let first = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, first + SLOT_MS).await;
    for slot in [first, first + SLOT_MS] {
        assert_eq!(agreed_everywhere(&gateways, &proxies, slot).await, 5);
    }
    let (ok, status) = gateways[0].daiseectl(&["dialogue", "status"]);
    assert!(
        ok && status.contains("community `test-street`, 4 peers"),
        "{status}"
    );

    // Killed mid-slot: its bid for the next slot may be out; the one after has four bids.
    gateways[4].agent.take();
    proxies.pop();
    let after = bidding(&proxies[0]).await + SLOT_MS;
    settled(&proxies, after).await;
    assert_eq!(agreed_everywhere(&gateways[..4], &proxies, after).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_held_on_beyond_the_allocation_shows_in_the_signed_report() {
    let gateways = community("deviation", 3);
    let mut proxies = Vec::new();
    for g in &gateways {
        proxies.push(g.dialogue().await);
    }
    // Everyone imports: the clearing is at the import tariff, where no charger is worth running,
    // so each allocation is the base load alone. Gateway 0 holds its charger on anyway.
    let (ok, out) = gateways[0].daiseectl(&["relay", "ev", "on"]);
    assert!(ok, "{out}");
    let from = bidding(&proxies[0]).await + 2 * SLOT_MS;
    settled(&proxies, from).await;
    let mut reports = Vec::new();
    for p in &proxies {
        for _ in 0..300 {
            if p.report_slot().await.unwrap() >= from {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(p.outcome().await.unwrap(), "agreed");
        assert_eq!(p.price_step().await.unwrap(), 30);
        reports.push(p.deviation().await.unwrap());
    }
    // 3 kW for four seconds: 3.3 Wh beyond the allocation; the others within metering error.
    let held = 3_000_000 * SLOT_MS / 3_600_000;
    assert!(
        (reports[0] - held).abs() < held / 4,
        "{reports:?}, {}",
        gateways[0].log()
    );
    for r in &reports[1..] {
        assert!(r.abs() < held / 8, "{reports:?}");
    }
}

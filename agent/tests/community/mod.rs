//! The harness of the tests that run gateways as separate `daisee-agent` processes, each on its
//! own `dbus-daemon` with its own key and history, in one community over real libp2p on
//! loopback: their configuration, the links between them (cut or slowed on demand), and waits
//! on what their D-Bus objects show. Shared by the dialogue's and the ledger's tests.

// Each test file uses its own part of the harness.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use daisee_api::DialogueProxy;
use daisee_dialogue::GatewayKey;

/// The slot length the dialogue's tests run.
pub const SLOT_MS: i64 = 4000;

/// A process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One gateway: its bus, its agent and its directory.
pub struct Gateway {
    pub address: String,
    pub bus_address: String,
    pub agent: Option<Running>,
    pub _bus: Running,
    pub dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.agent.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The connections between gateways of a test that partitions or slows them: each goes through
/// a relay of the harness, which closes those across the partition while it is cut and refuses
/// new ones, and holds every byte back by the delay of the moment (this kernel has no netem and
/// no packet filter).
pub struct Wires {
    pub cut: Arc<AtomicBool>,
    /// Which side of the partition each gateway is on.
    pub side: fn(usize) -> bool,
    /// What each link adds to every byte's way, each way, in ms.
    pub delay_ms: Arc<AtomicU64>,
}

impl Wires {
    /// Links whose partition puts each gateway on `side`, whole and without delay.
    pub fn new(side: fn(usize) -> bool) -> Self {
        Self {
            cut: Arc::new(AtomicBool::new(false)),
            side,
            delay_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A port on loopback that relays to `port`, for gateway `from` dialling gateway `to`.
    pub fn relay(&self, from: usize, to: usize, port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = listener.local_addr().unwrap().port();
        let across = (self.side)(from) != (self.side)(to);
        let cut = Arc::clone(&self.cut);
        let delay = Arc::clone(&self.delay_ms);
        std::thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                if across && cut.load(Ordering::SeqCst) {
                    continue;
                }
                if let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)) {
                    let cut = across.then(|| Arc::clone(&cut));
                    pump(inbound, outbound, cut, &delay);
                }
            }
        });
        relay
    }
}

/// Copies bytes both ways between `a` and `b`, each `delay` late, until either closes, or `cut`
/// is set.
pub fn pump(a: TcpStream, b: TcpStream, cut: Option<Arc<AtomicBool>>, delay: &Arc<AtomicU64>) {
    let done = Arc::new(AtomicBool::new(false));
    for (from, to) in [
        (a.try_clone().unwrap(), b.try_clone().unwrap()),
        (b.try_clone().unwrap(), a.try_clone().unwrap()),
    ] {
        let done = Arc::clone(&done);
        let delay = Arc::clone(delay);
        std::thread::spawn(move || {
            carry(from, to, &delay);
            done.store(true, Ordering::SeqCst);
        });
    }
    if let Some(cut) = cut {
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if cut.load(Ordering::SeqCst) {
                    let _ = a.shutdown(Shutdown::Both);
                    let _ = b.shutdown(Shutdown::Both);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
}

/// Copies `from` to `to` until either closes, each chunk written `delay` ms after it was read
/// (in order: a slower link, not a lossy one), then shuts `to` down.
pub fn carry(mut from: TcpStream, mut to: TcpStream, delay: &AtomicU64) {
    let (queue, due) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (at, bytes) in due {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
    let mut chunk = [0; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut chunk) {
        let at = Instant::now() + Duration::from_millis(delay.load(Ordering::SeqCst));
        if queue.send((at, chunk[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(queue);
    let _ = writer.join();
}

/// The street's weather: cloudy, each home imports; sunny, each home has PV behind a curtailable
/// SunSpec inverter (4 to 12 kW at noon, as the simulated clouds go), a 1 kW charger, and the
/// feeder takes at most 2 kW of export.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Weather {
    Cloudy,
    Sunny,
}

/// The configuration of gateway `i` listening on `port`, dialling `bootstrap`, in a community
/// of `members`.
pub fn config(
    i: usize,
    dir: &Path,
    port: u16,
    bootstrap: &[u16],
    members: &[String],
    weather: Weather,
) -> String {
    let house = 1000 + 300 * i;
    let (start, grid_loads, ev_w, export_cap_w) = match weather {
        Weather::Cloudy => ("", r#""house", "ev""#, 3000, 100_000),
        Weather::Sunny => ("start = \"12:00\"", r#""house", "ev", "pv""#, 1000, 2_000),
    };
    let bootstrap: Vec<String> = bootstrap
        .iter()
        .map(|p| format!("\"/ip4/127.0.0.1/tcp/{p}\""))
        .collect();
    let mut text = format!(
        r#"[gateway]
name = "home{i}"
poll_interval_ms = 200

[sim]
seed = {i}
{start}

[[sim.load]]
name = "house"
profile = "constant"
power_w = {house}

[[sim.load]]
name = "ev"
profile = "constant"
power_w = {ev_w}
relay = "ev"

[[sensor]]
name = "grid"
backend = "sim"
loads = [{grid_loads}]

[control]
grid = "grid"

[[relay]]
name = "ev"
backend = "sim"
safe_state = "off"
nominal_w = {ev_w}
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
export_cap_w = {export_cap_w}
"#,
        dir.join("data").display(),
        bootstrap.join(", ")
    );
    for address in members {
        text += &format!(
            "\n[[dialogue.member]]\naddress = \"{address}\"\nimport_w = 12000\nexport_w = 15000\n"
        );
    }
    if weather == Weather::Sunny {
        text += SUNNY;
    }
    text
}

/// The PV of a sunny home and its inverter, served on loopback by the agent's simulated site.
pub const SUNNY: &str = r#"
[[sim.load]]
name = "pv"
profile = "solar"
peak_w = 12000

[[modbus]]
name = "lan"
backend = "sim"

[[inverter]]
name = "pv_inverter"
modbus = "lan"
unit = 2
sunspec = true
rated_w = 12000
loads = ["pv"]
"#;

/// A bus that lets anyone own and call anything: each gateway is alone on its own.
pub fn bus(dir: &Path) -> (Running, String) {
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

/// `n` gateways with keys 1, 2, …, started together, each dialling every other directly or
/// through `wires`.
pub fn community(name: &str, n: usize, wires: Option<&Wires>, weather: Weather) -> Vec<Gateway> {
    community_with(name, n, wires, weather, |_| {})
}

/// [`community`], each gateway's history prepared by `history` (given its file) before its
/// agent starts.
pub fn community_with(
    name: &str,
    n: usize,
    wires: Option<&Wires>,
    weather: Weather,
    history: impl Fn(&Path),
) -> Vec<Gateway> {
    community_edited(name, n, wires, weather, history, |_, text| text)
}

/// [`community_with`], each gateway's configuration text changed by `edit` (given its index).
pub fn community_edited(
    name: &str,
    n: usize,
    wires: Option<&Wires>,
    weather: Weather,
    history: impl Fn(&Path),
    edit: impl Fn(usize, String) -> String,
) -> Vec<Gateway> {
    let keys: Vec<GatewayKey> = (1..=n)
        .map(|i| GatewayKey::from_secret(&[u8::try_from(i).unwrap(); 32]).unwrap())
        .collect();
    let members: Vec<String> = keys.iter().map(|k| k.address().to_string()).collect();
    // Free ports for the agents, held until every relay has its own, then given to the agents.
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let bootstraps: Vec<Vec<u16>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|j| *j != i)
                .map(|j| wires.map_or(ports[j], |w| w.relay(i, j, ports[j])))
                .collect()
        })
        .collect();
    drop(held);
    let mut gateways = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("daisee-dialogue-{name}-{i}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        history(&dir.join("data/history.sqlite"));
        let key_file = dir.join("data/gateway.key");
        std::fs::write(&key_file, key.to_hex()).unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let config_file = dir.join("agent.toml");
        let text = edit(
            i,
            config(i, &dir, ports[i], &bootstraps[i], &members, weather),
        );
        std::fs::write(&config_file, text).unwrap();
        let (bus, bus_address) = bus(&dir);
        let agent = start_agent(&dir, &bus_address);
        gateways.push(Gateway {
            address: members[i].clone(),
            bus_address,
            agent: Some(agent),
            _bus: bus,
            dir,
        });
    }
    gateways
}

/// The agent of the gateway in `dir` on the bus at `bus_address`, its log appended to
/// `agent.log`.
fn start_agent(dir: &Path, bus_address: &str) -> Running {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    Running(
        Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
            .arg("--config")
            .arg(dir.join("agent.toml"))
            .args(["--dbus", bus_address])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

impl Gateway {
    /// Starts its agent again (after it was killed).
    pub fn restart(&mut self) {
        self.agent = Some(start_agent(&self.dir, &self.bus_address));
    }

    /// A connection to its bus.
    pub async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.bus_address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    pub async fn dialogue(&self) -> DialogueProxy<'static> {
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
        panic!("no Dialogue object on {}: {}", self.bus_address, self.log());
    }

    pub fn daiseectl(&self, args: &[&str]) -> (bool, String) {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

/// The Dialogue object of each gateway, once it serves it.
pub async fn dialogues(gateways: &[Gateway]) -> Vec<DialogueProxy<'static>> {
    let mut proxies = Vec::new();
    for g in gateways {
        proxies.push(g.dialogue().await);
    }
    proxies
}

/// Waits (at most half a minute) until a gateway has reported `slot` or a later one.
pub async fn reported(proxy: &DialogueProxy<'static>, slot: i64) {
    for _ in 0..300 {
        if proxy.report_slot().await.unwrap() >= slot {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no report for slot {slot}");
}

/// The slot a gateway bids for now, once it bids.
pub async fn bidding(proxy: &DialogueProxy<'static>) -> i64 {
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
pub async fn settled(proxies: &[DialogueProxy<'static>], slot: i64) {
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
pub async fn agreed_everywhere(
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

/// Each gateway's record of `slot` says no trade.
pub async fn no_trade_everywhere(
    gateways: &[Gateway],
    proxies: &[DialogueProxy<'static>],
    slot: i64,
) {
    for (g, p) in gateways.iter().zip(proxies) {
        let (outcome, step, ..) = p.slot(slot).await.unwrap();
        assert!(
            outcome.starts_with("no trade") && step == -1,
            "{}: {outcome}",
            g.address
        );
    }
}

//! The agent as it runs on a gateway: resident memory and CPU time with 16 channels polled at
//! 1 Hz, the history and D-Bus on; and how fast it reacts to a breach of the import limit.
//!
//! `cargo bench -p daisee-agent --bench daemon` (needs `dbus-daemon`; `valgrind` for the
//! instruction counts). It runs the release agent for 30 s on a private bus and reads its /proc
//! figures, counts the instructions a poll costs it, measures it again in a community of three
//! gateways bidding in the machine dialogue, with the ledger, the update check and MQTT on, then
//! drives one in-process loop to time a breach.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daisee_agent::config::Config;
use daisee_agent::daemon::{Command as Order, Daemon};
use daisee_agent::devices::Devices;
use daisee_dialogue::GatewayKey;
use daisee_hal::sim::SimClock;
use daisee_hal::{Clock, RelayState, Timestamp};

const CHANNELS: usize = 16;
const MEASURE: Duration = Duration::from_secs(30);
/// Feed checks before the agent with the update check on is measured: its memory after many
/// checks, not after one.
const CHECKS: usize = 10;
/// The two run lengths whose instruction counts are subtracted.
const FEW_POLLS: u64 = 5;
const MANY_POLLS: u64 = 25;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gateway of 16 simulated channels, two loads under an import limit, history in `data`.
fn config(data: &Path, poll_ms: u64) -> String {
    let mut text = format!(
        "[gateway]\npoll_interval_ms = {poll_ms}\n\n[store]\ndir = \"{}\"\n\n[sim]\nseed = 9\n\n\
         [[sim.load]]\nname = \"house\"\nprofile = \"constant\"\npower_w = 1000\n\n\
         [[sim.load]]\nname = \"boiler\"\nprofile = \"constant\"\npower_w = 2000\nrelay = \"boiler\"\n\n\
         [[sim.load]]\nname = \"kettle\"\nprofile = \"constant\"\npower_w = 5000\nrelay = \"kettle\"\n\n\
         [control]\ngrid = \"ch0\"\nimport_limit_w = 6000\n\n\
         [[relay]]\nname = \"boiler\"\nbackend = \"sim\"\nsafe_state = \"off\"\nnominal_w = 2000\nmin_on_s = 0\nmin_off_s = 0\nmax_switches_per_hour = 60\n\n\
         [[relay]]\nname = \"kettle\"\nbackend = \"sim\"\nsafe_state = \"off\"\n",
        data.display()
    );
    for i in 0..CHANNELS {
        text += &format!(
            "\n[[sensor]]\nname = \"ch{i}\"\nbackend = \"sim\"\nloads = [\"house\", \"boiler\", \"kettle\"]\n"
        );
    }
    text
}

/// Slots of the dialogue in the bench: 90 times as many as the real 15 minutes, so that three
/// pass in a measurement and its cost shows.
const BENCH_SLOT_MS: i64 = 10_000;

/// The `[dialogue]` of gateway `me` in a community of `keys` listening on `ports` on loopback,
/// its key written into `data`.
fn dialogue(data: &Path, me: usize, keys: &[GatewayKey], ports: &[u16]) -> String {
    std::fs::create_dir_all(data).expect("data directory");
    let key_file = data.join("gateway.key");
    std::fs::write(&key_file, keys[me].to_hex()).expect("key");
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("key mode");
    let bootstrap: Vec<String> = (0..ports.len())
        .filter(|i| *i != me)
        .map(|i| format!("\"/ip4/127.0.0.1/tcp/{}\"", ports[i]))
        .collect();
    let mut text = format!(
        "\n[dialogue]\ncommunity = \"bench\"\ngrid = \"ch0\"\nlisten = [\"/ip4/127.0.0.1/tcp/{}\"]\n\
         bootstrap = [{}]\nslot_ms = {BENCH_SLOT_MS}\ngate_ms = 3000\ngrace_ms = 2000\nprice_first = 0\n\
         price_increment = 10000\nprice_steps = 40\nimport_tariff_step = 30\nfeed_in_tariff_step = 8\n\
         import_cap_w = 100000\nexport_cap_w = 100000\n",
        ports[me],
        bootstrap.join(", ")
    );
    for key in keys {
        text += &format!(
            "\n[[dialogue.member]]\naddress = \"{}\"\nimport_w = 20000\nexport_w = 10000\n",
            key.address()
        );
    }
    text
}

/// Measures `binary` as [`measure`] does, in a community of three: two more agents (without
/// D-Bus) bid with it.
fn measure_in_community(binary: &Path, dir: &Path, bus: &str) -> (f64, u64, u64) {
    let keys: Vec<GatewayKey> = (1..=3u8)
        .map(|i| GatewayKey::from_secret(&[i; 32]).expect("key"))
        .collect();
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        })
        .collect();
    let mut peers = Vec::new();
    for me in 1..3 {
        let data = dir.join(format!("data-peer-{me}"));
        let config = dir.join(format!("peer-{me}.toml"));
        let text = self::config(&data, 1000) + &dialogue(&data, me, &keys, &ports);
        std::fs::write(&config, text).expect("peer config");
        peers.push(Running(
            Command::new(binary)
                .arg("--config")
                .arg(&config)
                .args(["--dbus", "none"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("peer agent"),
        ));
    }
    let data = dir.join("data-dialogue");
    let config = dir.join("dialogue.toml");
    let text = self::config(&data, 1000) + &dialogue(&data, 0, &keys, &ports);
    std::fs::write(&config, text).expect("agent config");
    measure(binary, &config, bus)
}

/// Measures `binary` as [`measure`] does, with a `[ledger]` on a local anvil and two hours of
/// 16 channels at 1 Hz in its history before it starts: it commits those eight intervals (and
/// the day's earlier, empty ones) while it is measured. Also returns how many transactions it
/// sent by the end.
fn measure_with_ledger(binary: &Path, dir: &Path, bus: &str) -> (f64, u64, u64, u64) {
    use daisee_ledger::admin::Admin;
    use daisee_ledger::devnet::{CHAIN_ID, Devnet, OPERATOR_SECRET, terms};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node = Devnet::start(0, None, true).expect("anvil (npm ci in ledger/contracts)");
    let key = GatewayKey::from_secret(&[7; 32]).expect("key");
    let data = dir.join("data-ledger");
    std::fs::create_dir_all(&data).expect("data directory");
    let key_file = data.join("gateway.key");
    std::fs::write(&key_file, key.to_hex()).expect("key");
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("key mode");
    let chain = daisee_ledger::Chain::new(&node.url(), CHAIN_ID, Default::default(), &key.secret())
        .expect("chain");
    let contract = runtime.block_on(async {
        let operator = Admin::new(&node.url(), &OPERATOR_SECRET).expect("operator");
        let contract = operator.deploy().await.expect("deploy");
        let terms = terms("bench", operator.address(), 900_000);
        operator
            .create_community(contract, &terms)
            .await
            .expect("community");
        let eth = daisee_ledger::U256::from(10u64).pow(daisee_ledger::U256::from(19u64));
        let ratings = (20_000_000, 10_000_000);
        let (address, gas) = (chain.address(), (eth, daisee_ledger::U256::ZERO));
        operator
            .enroll(contract, address, "bench", ratings, gas)
            .await
            .expect("enroll");
        contract
    });
    let retention = daisee_store::Retention {
        samples: Duration::from_secs(86_400 * 30),
        max_pending: 200_000,
    };
    let mut store =
        daisee_store::Store::open(&data.join("history.sqlite"), retention).expect("history");
    let now = daisee_hal::SystemClock.now().0;
    for s in 0..7_200 {
        let at = Timestamp(now - 7_200_000 + s * 1_000);
        for c in 0..CHANNELS {
            let power = daisee_hal::MilliWatts(1_000_000 + s + c as i64);
            store.record(at, &format!("ch{c}"), power, daisee_hal::Energy::default());
        }
    }
    store.flush().expect("flush");
    drop(store);
    let config = dir.join("ledger.toml");
    let text = self::config(&data, 1000)
        + &format!(
            "\n[ledger]\nrpc_url = \"{}\"\nchain_id = {CHAIN_ID}\ncontract = \"{contract}\"\ngrid = \"ch0\"\n",
            node.url()
        );
    std::fs::write(&config, text).expect("agent config");
    let (share, rss, anon) = measure(binary, &config, bus);
    let sent = runtime.block_on(chain.nonce(false)).expect("nonce");
    (share, rss, anon, sent)
}

/// Measures `binary` as [`measure`] does, following a feed on a loopback server, which it was
/// asked to check [`CHECKS`] times (over D-Bus) before the measure. Also returns its resident
/// memory 5 s after the first check (KiB) and the feed requests the server saw.
fn measure_with_updates(binary: &Path, dir: &Path, bus: &str) -> (f64, u64, u64, u64, usize) {
    let server = daisee_update::server::Server::start().expect("feed server");
    let feed = dir.join("feed.json");
    std::fs::write(&feed, r#"{"bundles": []}"#).expect("feed");
    server.put("/feed.json", &feed);
    let os_release = dir.join("os-release");
    std::fs::write(&os_release, "IMAGE_VERSION=1.0\n").expect("os-release");
    let config = dir.join("update.toml");
    let text = self::config(&dir.join("data-update"), 1000)
        + &format!(
            "\n[update]\nfeed = \"http://127.0.0.1:{}/feed.json\"\n",
            server.port()
        );
    std::fs::write(&config, text).expect("agent config");
    let mut after_first = 0;
    let check = |pid| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let conn = zbus::connection::Builder::address(bus)
                .expect("bus")
                .build()
                .await
                .expect("bus");
            let update = daisee_api::UpdateProxy::new(&conn).await.expect("proxy");
            // No RAUC on the bench's bus: each check reads the feed, then fails to match it.
            for n in 0..CHECKS {
                let _ = update.check().await;
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    after_first = proc_figures(pid).1;
                }
            }
        });
    };
    let env = [("DAISEE_OS_RELEASE", os_release.as_path())];
    let (share, rss, anon) = measure_after(binary, &config, bus, &env, check);
    (share, rss, anon, after_first, server.requests().len())
}

/// Measures `binary` as [`measure`] does with its web page open: the page and an hour's history
/// loaded once, and the live values followed (server-sent events, one a poll) through the measure.
fn measure_with_web(binary: &Path, dir: &Path, bus: &str) -> (f64, u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = dir.join("web.toml");
    let text = self::config(&dir.join("data-web"), 1000)
        + &format!("\n[web]\nbind = \"127.0.0.1\"\nport = {port}\n");
    std::fs::write(&config, text).expect("agent config");
    let open = |_| {
        let get = |path: &str| {
            let mut page = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the page");
            write!(page, "GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n").expect("a request");
            page
        };
        for path in [
            "/",
            "/app.js",
            "/uPlot.iife.min.js",
            "/api/history?channel=ch0&span=hour",
        ] {
            let mut answer = [0; 4096];
            let _ = get(path).read(&mut answer);
        }
        let mut events = get("/api/events");
        // Read until the agent stops: the page follows every poll.
        std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while events.read(&mut chunk).is_ok_and(|n| n > 0) {}
        });
    };
    measure_after(binary, &config, bus, &[], open)
}

/// Measures `binary` as [`measure`] does, publishing to a mosquitto on loopback (Debian's, as
/// the MQTT tests run it) with Home Assistant's discovery and relay commands on.
fn measure_with_mqtt(binary: &Path, dir: &Path, bus: &str) -> (f64, u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let program = ["/usr/sbin/mosquitto", "mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mosquitto");
    let _broker = Running(
        Command::new(program)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto)"),
    );
    let config = dir.join("mqtt.toml");
    let text = self::config(&dir.join("data-mqtt"), 1000)
        + &format!("\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ncommands = true\n");
    std::fs::write(&config, text).expect("agent config");
    measure(binary, &config, bus)
}

/// CPU time of all threads of `pid` (scheduler statistics, in ns), its resident memory and the
/// anonymous part of it (heap and stacks) in KiB.
fn proc_figures(pid: u32) -> (Duration, u64, u64) {
    let mut cpu_ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        cpu_ns += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (Duration::from_nanos(cpu_ns), kib("VmRSS:"), kib("RssAnon:"))
}

/// A row of the table below the agent's own: CPU share, resident memory and heap (KiB).
fn row(label: &str, share: f64, rss: u64, anon: u64) {
    println!(
        "{label:<48} {:>10} {share:>13.3} {:>10.1} {:>10.1}",
        "",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
    );
}

/// Runs `binary` on `config` and `bus` and reads its CPU share, resident memory and the part of
/// it that is heap and stacks (KiB) from /proc over [`MEASURE`], after 5 s to settle.
fn measure(binary: &Path, config: &Path, bus: &str) -> (f64, u64, u64) {
    measure_after(binary, config, bus, &[], |_| {})
}

/// [`measure`], the agent given `env`, and `settle` run once it is up (given its pid), before
/// the 5 s.
fn measure_after(
    binary: &Path,
    config: &Path,
    bus: &str,
    env: &[(&str, &Path)],
    settle: impl FnOnce(u32),
) -> (f64, u64, u64) {
    let agent = Running(
        Command::new(binary)
            .arg("--config")
            .arg(config)
            .args(["--dbus", bus])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent"),
    );
    let pid = agent.0.id();
    std::thread::sleep(Duration::from_secs(2));
    settle(pid);
    std::thread::sleep(Duration::from_secs(5));
    let (cpu0, _, _) = proc_figures(pid);
    let t0 = Instant::now();
    std::thread::sleep(MEASURE);
    let (cpu1, rss, anon) = proc_figures(pid);
    let share = (cpu1 - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    (share, rss, anon)
}

/// Instructions one poll costs `binary`, counted by valgrind's callgrind: the difference between
/// a run of [`FEW_POLLS`] and one of [`MANY_POLLS`], so that starting and stopping cancel out.
/// `None` without valgrind. Unlike the CPU share, the count does not move with the machine's load.
fn instructions_per_poll(binary: &Path, dir: &Path, bus: &str) -> Option<u64> {
    let [few, many] = [FEW_POLLS, MANY_POLLS].map(|polls| {
        let data = dir.join(format!("data-count-{polls}"));
        let config = dir.join(format!("count-{polls}.toml"));
        std::fs::write(&config, self::config(&data, 1000)).expect("agent config");
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(binary)
            .arg("--config")
            .arg(&config)
            .args(["--dbus", bus, "--polls", &polls.to_string()])
            .stdout(Stdio::null())
            .output()
            .ok()?;
        let _ = std::fs::remove_dir_all(&data);
        let log = String::from_utf8_lossy(&out.stderr);
        let collected = log.lines().find_map(|l| l.split("Collected : ").nth(1))?;
        collected.trim().parse::<u64>().ok()
    });
    Some(many?.saturating_sub(few?) / (MANY_POLLS - FEW_POLLS))
}

fn main() {
    let dir = std::env::temp_dir().join(format!("daisee-bench-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("directory");

    // A private bus that lets everyone do everything: the cost measured is the agent's.
    let socket = dir.join("bus");
    let bus_config = dir.join("bus.conf");
    std::fs::write(
        &bus_config,
        format!(
            "<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
             <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>",
            socket.display()
        ),
    )
    .expect("bus config");
    let _bus = Running(
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", bus_config.display()))
            .args(["--nofork", "--nopidfile"])
            .spawn()
            .expect("dbus-daemon"),
    );
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent_config = dir.join("agent.toml");
    std::fs::write(&agent_config, config(&dir.join("data"), 1000)).expect("agent config");
    let bus = format!("unix:path={}", socket.display());
    // DAISEE_AGENT names another build to measure (a copy of the release binary: benches build
    // into the same directory with thin LTO, which makes a larger binary); DAISEE_AGENT_BASELINE
    // an older build to measure in the same run, one after the other, twice.
    let binary = std::env::var_os("DAISEE_AGENT")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_daisee-agent").into());
    let baseline = std::env::var_os("DAISEE_AGENT_BASELINE");
    let mut runs = vec![Path::new(&binary)];
    if let Some(b) = &baseline {
        runs = vec![
            Path::new(b),
            Path::new(&binary),
            Path::new(b),
            Path::new(&binary),
        ];
    }
    println!(
        "16 simulated channels at 1 Hz, history and D-Bus on, {} s each:",
        MEASURE.as_secs()
    );
    println!(
        "{:<48} {:>10} {:>13} {:>10} {:>10} {:>14}",
        "binary", "size KiB", "CPU % core", "RSS MiB", "anon MiB", "instr./poll"
    );
    let mut counted = std::collections::HashMap::new();
    for run in runs {
        let (share, rss, anon) = measure(run, &agent_config, &bus);
        let size = std::fs::metadata(run).map_or(0, |m| m.len()) / 1024;
        let instructions = *counted
            .entry(run)
            .or_insert_with(|| instructions_per_poll(run, &dir, &bus));
        println!(
            "{:<48} {size:>10} {share:>13.3} {:>10.1} {:>10.1} {:>14}",
            run.display(),
            rss as f64 / 1024.0,
            anon as f64 / 1024.0,
            instructions.map_or("no valgrind".into(), |n| n.to_string())
        );
    }
    let (share, rss, anon) = measure_in_community(Path::new(&binary), &dir, &bus);
    row(
        &format!("  in a dialogue of 3, {} s slots", BENCH_SLOT_MS / 1000),
        share,
        rss,
        anon,
    );
    let (share, rss, anon, sent) = measure_with_ledger(Path::new(&binary), &dir, &bus);
    row(
        &format!("  with the ledger on, {sent} intervals committed"),
        share,
        rss,
        anon,
    );
    let (share, rss, anon, after_first, checks) =
        measure_with_updates(Path::new(&binary), &dir, &bus);
    row(
        &format!(
            "  update check on: {checks} feeds, {:.1} MiB after 1st",
            after_first as f64 / 1024.0
        ),
        share,
        rss,
        anon,
    );
    let (share, rss, anon) = measure_with_mqtt(Path::new(&binary), &dir, &bus);
    row(
        &format!("  with MQTT on, {} states a second", CHANNELS + 2),
        share,
        rss,
        anon,
    );
    let (share, rss, anon) = measure_with_web(Path::new(&binary), &dir, &bus);
    row("  with the web page open, following", share, rss, anon);
    // The command line beside the agent, if it was built there.
    let ctl = Path::new(&binary).with_file_name("daiseectl");
    if let Ok(m) = std::fs::metadata(&ctl) {
        println!("{:<48} {:>10}", ctl.display(), m.len() / 1024);
    }

    // Reaction: the kettle goes on and the import jumps past the limit; the poll that sees it
    // sheds the boiler. Time the whole turn of the loop that does it.
    let text = config(&dir.join("data-reaction"), 1000);
    let config = Config::parse(&text).expect("config");
    let clock = SimClock::manual(Timestamp(1_795_608_000_000));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let entered = runtime.enter();
    let devices = Devices::build(&config, Arc::new(clock.clone())).expect("devices");
    drop(entered);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let (mut daemon, handles) = Daemon::new(&config, devices, shared, None);
    let requests = handles.commands;
    let boiler_on = |s: &daisee_agent::snapshot::Snapshot| {
        s.relays
            .iter()
            .any(|r| &*r.name == "boiler" && r.state.as_ref().is_ok_and(|st| *st == RelayState::On))
    };
    let mut reactions = Vec::new();
    for _ in 0..200 {
        // Two switches of the boiler a turn, 60 allowed an hour: two minutes between turns.
        clock.advance(Duration::from_secs(120));
        // Kettle off: the boiler has room and goes on.
        requests
            .send(Order::HoldRelay {
                relay: "kettle".into(),
                state: None,
            })
            .expect("request");
        assert!(boiler_on(&daemon.step()));
        requests
            .send(Order::HoldRelay {
                relay: "kettle".into(),
                state: Some(RelayState::On),
            })
            .expect("request");
        // The kettle switches as this turn starts; its poll sees 8 kW and sheds the boiler.
        let t = Instant::now();
        let snapshot = daemon.step();
        reactions.push(t.elapsed());
        assert!(!boiler_on(&snapshot), "the boiler is shed in the same turn");
    }
    reactions.sort();
    println!(
        "\nimport limit breach to relay command: in the poll that sees it (within one poll interval,"
    );
    println!(
        "1000 ms here), plus the turn of the loop: median {} µs, worst {} µs over {} breaches",
        reactions[reactions.len() / 2].as_micros(),
        reactions[reactions.len() - 1].as_micros(),
        reactions.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

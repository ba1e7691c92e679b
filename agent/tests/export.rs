//! The export limit end to end: the real agent reads a simulated grid meter (SDM630) and curtails
//! a simulated SunSpec inverter, both served over Modbus TCP on loopback by this test, on one
//! simulated site whose production follows the inverter's limit. Counted in the agent's own polls.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daisee_hal::sim::{Load, Profile, SimClock, Site};
use daisee_hal::{Clock, MilliWatts, SystemClock};
use daisee_modbus::sunspec::Role;
use daisee_modbus_sim::{Layout, ProfileMeter, Simulator, SunSpecDevice};

const GRID: u8 = 1;
const INVERTER: u8 = 2;
const LIMIT_W: f64 = 1000.0;
/// The inverter's own revert timer, as configured.
const REVERT_S: u64 = 10;

/// A house taking 500 W under 5 kW of PV: 4.5 kW exported without a limit.
fn serve_site() -> (Simulator, std::net::SocketAddr) {
    let mut site = Site::new(7);
    site.add(Load::new(
        "house",
        Profile::Constant {
            power: MilliWatts(500_000),
        },
    ));
    site.add(Load::new(
        "pv",
        Profile::Constant {
            power: MilliWatts(-5_000_000),
        },
    ));
    let site = Arc::new(site);
    let clock: Arc<dyn Clock> = Arc::new(SimClock::scaled(SystemClock.now(), 1));
    let sim = Simulator::new(clock);
    let sdm630 = daisee_modbus::profile::Profile::shipped("eastron-sdm630")
        .unwrap()
        .unwrap();
    let both = vec!["house".to_owned(), "pv".to_owned()];
    sim.add(
        GRID,
        ProfileMeter::new(Arc::new(sdm630), Arc::clone(&site), both),
    );
    let layout = Layout::inverter();
    let pv = vec!["pv".to_owned()];
    sim.add(
        INVERTER,
        SunSpecDevice::new(Role::Inverter, layout, site, pv),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let served = sim.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ticker = served.spawn_ticker(Duration::from_millis(100));
            let _ = served.serve_tcp(listener).await;
        });
    });
    (sim, addr)
}

fn config(addr: std::net::SocketAddr) -> String {
    format!(
        r#"[gateway]
name = "export"
poll_interval_ms = 500

[[modbus]]
name = "lan"
backend = "tcp"
address = "{addr}"

[[meter]]
name = "grid"
modbus = "lan"
unit = {GRID}
profile = "eastron-sdm630"

[[inverter]]
name = "pv"
modbus = "lan"
unit = {INVERTER}
sunspec = true
rated_w = 6000
revert_s = {REVERT_S}

[control]
grid = "grid"
export_limit_w = {LIMIT_W}
"#
    )
}

/// One poll as the agent printed it: the grid's power and whether the inverter was read.
struct Poll {
    grid_w: Option<f64>,
    inverter_read: bool,
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The agent's polls, one per turn (its lines share the turn's timestamp).
fn polls(agent: &mut Child) -> impl Iterator<Item = Poll> + use<> {
    let lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let mut current: Option<(String, Poll)> = None;
    lines.map_while(Result::ok).filter_map(move |line| {
        let at = line.split_whitespace().next()?.to_owned();
        let done = match &current {
            Some((t, _)) if *t != at => current.take().map(|(_, p)| p),
            _ => None,
        };
        let (_, poll) = current.get_or_insert_with(|| {
            let empty = Poll {
                grid_w: None,
                inverter_read: false,
            };
            (at, empty)
        });
        if line.contains("channel=grid ") {
            poll.grid_w = field(&line, "power_w");
        }
        if line.contains("channel=pv ") {
            poll.inverter_read = field(&line, "power_w").is_some();
        }
        done
    })
}

fn start(config: &str, dir: &std::path::Path) -> Child {
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--dbus", "none", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The inverter's output as the simulator last computed it, in W (positive: produced).
fn produced_w(sim: &Simulator) -> f64 {
    -(sim.values(INVERTER).unwrap().power.unwrap().0 as f64) / 1000.0
}

#[test]
fn export_stays_under_the_limit_within_two_polls_and_the_inverter_reverts_when_the_agent_dies() {
    let dir = std::env::temp_dir().join(format!("daisee-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sim, addr) = serve_site();
    let mut agent = start(&config(addr), &dir);
    let mut polls = polls(&mut agent);

    // The first poll that sees the breach with the inverter read (found by SunSpec discovery).
    let mut seen = 0;
    let breach = loop {
        let p = polls.next().expect("the agent stopped");
        seen += 1;
        assert!(seen < 40, "no breach with the inverter read in 40 polls");
        if p.inverter_read && p.grid_w.is_some_and(|w| w < -LIMIT_W) {
            break p.grid_w.unwrap();
        }
    };
    assert!(
        breach < -4000.0,
        "4.5 kW exported before the limit: {breach}"
    );
    let next: Vec<f64> = (0..2)
        .map(|_| polls.next().unwrap().grid_w.unwrap())
        .collect();
    assert!(
        next[1] >= -LIMIT_W,
        "two polls after the breach the export is still over {LIMIT_W} W: {next:?}"
    );

    // Held for longer than the inverter's revert time: the agent renews the limit.
    let until = Instant::now() + Duration::from_secs(REVERT_S + 5);
    let mut held = 0;
    while Instant::now() < until {
        let w = polls.next().unwrap().grid_w.unwrap();
        assert!(w >= -LIMIT_W, "export over the limit while held: {w} W");
        // Not curtailed to nothing either: the aim is just under the limit.
        assert!(
            w < 0.0,
            "the house imports though it could export {LIMIT_W} W: {w} W"
        );
        held += 1;
    }
    assert!(held >= 10, "{held} polls in {} s", REVERT_S + 5);
    let curtailed = produced_w(&sim);
    assert!(curtailed < 2000.0, "the inverter produces {curtailed} W");

    // Killed: nobody renews the limit, and the inverter lifts it by itself.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3 * REVERT_S);
    while produced_w(&sim) < 4500.0 {
        assert!(
            Instant::now() < deadline,
            "the inverter did not revert within {} s of the agent's death",
            3 * REVERT_S
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

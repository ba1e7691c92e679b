//! What one poll of a Modbus device costs, coalesced against one request per value (the way most
//! tools read): requests, bytes on the wire, the time those bytes take on RS-485 at 9600 8N1, and
//! the client's CPU time per poll over TCP on loopback.
//!
//! `cargo bench -p daisee-modbus --bench poll` prints a table. Requests and bytes are counts and do
//! not drift; the CPU time is the polling thread's own (the simulator runs on another thread), the
//! median of several batches.

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::Timestamp;
use daisee_hal::sim::{Load, Profile as LoadProfile, SimClock, Site};
use daisee_modbus::bus::{Bus, Endpoint};
use daisee_modbus::decode::Values;
use daisee_modbus::plan::{ReadPlan, Registers};
use daisee_modbus::profile::Profile;
use daisee_modbus::serial::{LineSettings, Parity};
use daisee_modbus::sunspec::{Role, SunSpec};
use daisee_modbus_sim::{Layout, ProfileMeter, RtuPort, Simulator, SunSpecDevice};
use nix::time::{ClockId, clock_gettime};

const TIMEOUT: Duration = Duration::from_secs(2);
const METER: u8 = 1;
const INVERTER: u8 = 2;

/// 9600 baud, 8 data bits, no parity, 1 stop bit: 10 bits a byte.
const LINE: LineSettings = LineSettings {
    baud: 9600,
    parity: Parity::None,
    stop_bits: 1,
};

/// One poll through `plan`: every request, then decoding.
async fn poll(
    bus: &mut Bus,
    unit: u8,
    profile: &Profile,
    plan: &ReadPlan,
    sunspec: bool,
) -> Values {
    let mut registers = Registers::default();
    for read in &plan.reads {
        let words = bus.read(unit, *read, TIMEOUT).await.expect("read");
        registers.insert(*read, words);
    }
    Values::decode(profile, &registers, sunspec).expect("decode")
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Median CPU time of one poll over TCP, from batches of 50 polls.
async fn cpu_per_poll(
    bus: &mut Bus,
    unit: u8,
    profile: &Profile,
    plan: &ReadPlan,
    sunspec: bool,
) -> Duration {
    const BATCH: u32 = 50;
    let mut samples = Vec::new();
    for _ in 0..9 {
        let start = thread_cpu();
        for _ in 0..BATCH {
            std::hint::black_box(poll(bus, unit, profile, plan, sunspec).await);
        }
        samples.push((thread_cpu() - start) / BATCH);
    }
    samples.sort();
    samples[samples.len() / 2]
}

struct Row {
    requests: u64,
    tcp_bytes: u64,
    rtu_bytes: u64,
    cpu: Duration,
}

impl Row {
    /// Milliseconds the RTU bytes take on the line.
    fn rtu_ms(&self) -> f64 {
        (self.rtu_bytes * u64::from(LINE.bits_per_byte())) as f64 * 1e3 / f64::from(LINE.baud)
    }

    /// The same with the 3.5 characters of silence that end every frame, request and answer.
    fn rtu_gaps_ms(&self) -> f64 {
        let silence = 2.0 * 3.5 * f64::from(LINE.bits_per_byte()) * 1e3 / f64::from(LINE.baud);
        self.rtu_ms() + self.requests as f64 * silence
    }
}

async fn measure(
    tcp: &mut Bus,
    rtu: &mut Bus,
    unit: u8,
    profile: &Profile,
    plan: &ReadPlan,
    sunspec: bool,
) -> Row {
    let (t0, r0) = (tcp.stats(), rtu.stats());
    poll(tcp, unit, profile, plan, sunspec).await;
    poll(rtu, unit, profile, plan, sunspec).await;
    let (t1, r1) = (tcp.stats(), rtu.stats());
    Row {
        requests: t1.requests - t0.requests,
        tcp_bytes: t1.bytes - t0.bytes,
        rtu_bytes: r1.bytes - r0.bytes,
        cpu: cpu_per_poll(tcp, unit, profile, plan, sunspec).await,
    }
}

fn print(device: &str, coalesced: &Row, each: &Row) {
    let line = |plan: &str, r: &Row| {
        println!(
            "{device:<16} {plan:<15} {:>8} {:>9} {:>9} {:>11.1} {:>11.1} {:>12.1}",
            r.requests,
            r.tcp_bytes,
            r.rtu_bytes,
            r.rtu_ms(),
            r.rtu_gaps_ms(),
            r.cpu.as_secs_f64() * 1e6
        );
    };
    line("coalesced", coalesced);
    line("one per value", each);
    let ratio = |a: f64, b: f64| format!("{:.1}×", a / b);
    println!(
        "{device:<16} {:<15} {:>8} {:>9} {:>9} {:>11} {:>11} {:>12}",
        "ratio",
        ratio(each.requests as f64, coalesced.requests as f64),
        ratio(each.tcp_bytes as f64, coalesced.tcp_bytes as f64),
        ratio(each.rtu_bytes as f64, coalesced.rtu_bytes as f64),
        ratio(each.rtu_ms(), coalesced.rtu_ms()),
        ratio(each.rtu_gaps_ms(), coalesced.rtu_gaps_ms()),
        ratio(each.cpu.as_secs_f64(), coalesced.cpu.as_secs_f64()),
    );
}

fn main() {
    let mut site = Site::new(7);
    site.add(Load::new(
        "house",
        LoadProfile::Household {
            peak: daisee_hal::MilliWatts(4_000_000),
        },
    ));
    site.add(Load::new(
        "pv",
        LoadProfile::Solar {
            peak: daisee_hal::MilliWatts(6_000_000),
        },
    ));
    let site = Arc::new(site);
    let clock = SimClock::manual(Timestamp(1_718_965_800_000));
    let sim = Simulator::new(Arc::new(clock));
    let sdm630 = Arc::new(
        Profile::shipped("eastron-sdm630")
            .expect("shipped")
            .expect("parses"),
    );
    let everything = vec!["house".to_owned(), "pv".to_owned()];
    sim.add(
        METER,
        ProfileMeter::new(Arc::clone(&sdm630), Arc::clone(&site), everything),
    );
    sim.add(
        INVERTER,
        SunSpecDevice::new(Role::Inverter, Layout::inverter(), site, vec!["pv".into()]),
    );

    // The simulator on a thread and runtime of its own, so that the polling thread's CPU time is
    // the client's alone.
    let (ready, addresses) = std::sync::mpsc::channel();
    let serving = sim.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = RtuPort::open(&serving).await.expect("pty");
            ready
                .send((listener.local_addr().expect("addr"), port.path().to_owned()))
                .expect("send");
            serving.serve_tcp(listener).await.expect("serve");
        });
    });
    let (addr, pty) = addresses.recv().expect("simulator up");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut tcp = Bus::new(Endpoint::Tcp(addr), Duration::ZERO);
        let mut rtu = Bus::new(
            Endpoint::Rtu {
                path: pty,
                line: LINE,
            },
            Duration::ZERO,
        );

        println!(
            "{:<16} {:<15} {:>8} {:>9} {:>9} {:>11} {:>11} {:>12}",
            "device",
            "plan",
            "requests",
            "TCP bytes",
            "RTU bytes",
            "RTU ms",
            "+ silences",
            "CPU µs (TCP)"
        );
        let coalesced = ReadPlan::for_profile(&sdm630);
        let each = ReadPlan::one_per_value(&sdm630);
        let a = measure(&mut tcp, &mut rtu, METER, &sdm630, &coalesced, false).await;
        let b = measure(&mut tcp, &mut rtu, METER, &sdm630, &each, false).await;
        print("SDM630", &a, &b);

        let found = SunSpec::discover(&mut tcp, INVERTER, TIMEOUT)
            .await
            .expect("discovery");
        let inverter = found.profile(Role::Inverter).expect("inverter model");
        let coalesced = ReadPlan::for_profile(&inverter);
        let each = ReadPlan::one_per_value(&inverter);
        let a = measure(&mut tcp, &mut rtu, INVERTER, &inverter, &coalesced, true).await;
        let b = measure(&mut tcp, &mut rtu, INVERTER, &inverter, &each, true).await;
        print("SunSpec 103", &a, &b);
    });
    println!(
        "\nBytes are whole frames (RTU: address, PDU, CRC; TCP: MBAP header and PDU), requests and\n\
         answers. RTU ms is bytes × 10 bits / 9600 baud (8N1); \"+ silences\" adds the 3.5 characters\n\
         that end each frame. Device turnaround time comes on top of both."
    );
}

//! CPU cost of reading the devices: one full INA219 read through the driver, and one poll of the
//! whole demo gateway, each against a baseline measured in the same run (one bare register read).
//!
//! `cargo bench -p daisee-agent --bench poll` prints a table. The simulated bus costs next to
//! nothing, so these are the driver's and the agent's own CPU costs; the bytes on the wire give the
//! time a real bus would add.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daisee_agent::config::{Config, DEMO};
use daisee_agent::devices::Devices;
use daisee_hal::sim::{Analog, Ina219Chip, SimClock, SimI2cBus};
use daisee_hal::{PowerSensor, Timestamp};
use daisee_ina219::{Ina219, Settings};
use embedded_hal::i2c::I2c;

/// Median time per call of `f`, over batches sized to take about 50 ms each.
fn per_call(mut f: impl FnMut()) -> Duration {
    let mut batch = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() > Duration::from_millis(50) {
            break;
        }
        batch *= 2;
    }
    let mut samples: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed() / batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// Time on a real bus for `bytes` in `transfers`: 9 clocks a byte (8 bits and ACK) plus START and
/// STOP, about one clock each.
fn bus_time_us(bytes: u64, transfers: u64, hz: u64) -> f64 {
    (bytes * 9 + transfers * 2) as f64 * 1e6 / hz as f64
}

fn main() {
    let clock = SimClock::manual(Timestamp(1_795_608_000_000));
    let bus = SimI2cBus::new();
    bus.attach(
        0x40,
        Ina219Chip::new(clock.clone(), |_| Analog {
            shunt_uv: 42_000,
            bus_mv: 12_800,
        }),
    );
    let settings = Settings {
        address: 0x40,
        shunt_uohm: 10_000,
        max_current_ua: 10_000_000,
        reverse: false,
    };
    let mut ina = Ina219::new(bus.clone(), settings).expect("INA219 on the simulated bus");
    clock.advance(Duration::from_millis(137));

    let mut raw = bus.clone();
    let register = per_call(|| {
        let mut buf = [0u8; 2];
        raw.write_read(0x40, &[0x02], &mut buf)
            .expect("register read");
        black_box(buf);
    });

    let before = bus.stats();
    ina.read().expect("INA219 read");
    let after = bus.stats();
    let (bytes, transfers) = (
        after.bytes - before.bytes,
        after.transfers - before.transfers,
    );
    let full_read = per_call(|| {
        black_box(ina.read().expect("INA219 read"));
    });

    let config = Config::parse(DEMO).expect("demo configuration");
    let demo_clock = SimClock::manual(Timestamp(1_795_608_000_000));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let entered = runtime.enter();
    let mut gateway = Devices::build(&config, Arc::new(demo_clock.clone())).expect("demo gateway");
    drop(entered);
    let poll = per_call(|| {
        demo_clock.advance(Duration::from_secs(1));
        black_box(gateway.read());
    });

    let ns = |d: Duration| d.as_nanos();
    let ratio = |d: Duration| d.as_secs_f64() / register.as_secs_f64();
    println!("{:<42} {:>10} {:>12}", "operation", "ns/call", "× register");
    println!(
        "{:<42} {:>10} {:>12.1}",
        "bare register read (baseline)",
        ns(register),
        1.0
    );
    println!(
        "{:<42} {:>10} {:>12.1}",
        "INA219 full read (driver)",
        ns(full_read),
        ratio(full_read)
    );
    println!(
        "{:<42} {:>10} {:>12.1}",
        format!(
            "demo gateway poll ({} sensors, {} Modbus devices, {} relays)",
            config.sensors.len(),
            config.modbus_devices().count(),
            config.relays.len()
        ),
        ns(poll),
        ratio(poll)
    );
    println!();
    println!("INA219 full read on the wire: {transfers} transfers, {bytes} bytes");
    println!(
        "  bus time at 100 kHz: {:.0} µs, at 400 kHz: {:.0} µs",
        bus_time_us(bytes, transfers, 100_000),
        bus_time_us(bytes, transfers, 400_000)
    );
}

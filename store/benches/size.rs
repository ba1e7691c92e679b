//! How much room and wear a year of history costs: 16 channels sampled at 1 Hz, flushed every 1,
//! 10 or 60 seconds. Prints the database bytes per sample (after a checkpoint), the size of a
//! year at that rate, the bytes the process wrote per hour of samples (what the SD card sees,
//! before the file system), and commits per hour.
//!
//! `cargo bench -p daisee-store --bench size`. Sizes and byte counts are counts, not timings.

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::sim::{Load, Profile, Site};
use daisee_hal::{Energy, MilliWattHours, MilliWatts, Timestamp};
use daisee_store::{Retention, Store};

const CHANNELS: usize = 16;
/// 2026-06-21T00:00:00Z: a long day of sun.
const START: Timestamp = Timestamp(1_781_913_600_000);

/// Bytes this process has passed to write(2) so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("wchar")
}

fn site() -> (Arc<Site>, Vec<Vec<String>>) {
    let mut site = Site::new(3);
    let mut channels = Vec::new();
    for i in 0..CHANNELS {
        let name = format!("ch{i}");
        let profile = match i % 3 {
            0 => Profile::Household {
                peak: MilliWatts(3_000_000 + i as i64 * 100_000),
            },
            1 => Profile::Solar {
                peak: MilliWatts(4_000_000),
            },
            _ => Profile::Constant {
                power: MilliWatts(500_000 + i as i64 * 10_000),
            },
        };
        site.add(Load::new(&name, profile));
        channels.push(vec![name]);
    }
    (Arc::new(site), channels)
}

struct Figures {
    bytes_per_sample: f64,
    written_per_hour: f64,
    commits_per_hour: f64,
}

fn run(hours: i64, flush_every_s: i64) -> Figures {
    let dir = std::env::temp_dir().join(format!(
        "daisee-store-bench-{}-{flush_every_s}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("directory");
    let db = dir.join("history.sqlite");
    let retention = Retention {
        samples: Duration::from_secs(400 * 86_400),
        max_pending: 1_000_000,
    };
    let mut store = Store::open(&db, retention).expect("store");
    let (site, channels) = site();
    let mut counters = vec![Energy::default(); CHANNELS];
    let before = written();
    let mut commits = 0;
    for s in 0..hours * 3600 {
        let at = Timestamp(START.0 + s * 1000);
        for (i, loads) in channels.iter().enumerate() {
            let p = site.power(loads, at);
            let e = &mut counters[i];
            // One second of p: p / 3600 mWh.
            let mwh = p.0.unsigned_abs() / 3600;
            if p.0 >= 0 {
                e.import = MilliWattHours(e.import.0 + mwh)
            } else {
                e.export = MilliWattHours(e.export.0 + mwh)
            }
            store.record(at, &loads[0], p, *e);
        }
        if s % flush_every_s == flush_every_s - 1 {
            store.flush().expect("flush");
            commits += 1;
        }
    }
    let wrote = written() - before;
    drop(store);
    // Fold the WAL into the database, as SQLite does on its own every 1000 pages.
    let conn = rusqlite::Connection::open(&db).expect("reopen");
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .expect("checkpoint");
    drop(conn);
    let size = std::fs::metadata(&db).expect("size").len();
    let _ = std::fs::remove_dir_all(&dir);
    let samples = (hours * 3600) as f64 * CHANNELS as f64;
    Figures {
        bytes_per_sample: size as f64 / samples,
        written_per_hour: wrote as f64 / hours as f64,
        commits_per_hour: commits as f64 / hours as f64,
    }
}

fn main() {
    println!(
        "{:<14} {:>14} {:>22} {:>20} {:>14}",
        "flush every", "bytes/sample", "year, 16 ch @ 1 Hz", "written per hour", "commits/hour"
    );
    for (hours, every) in [(1, 1), (6, 10), (24, 60)] {
        let f = run(hours, every);
        let year = f.bytes_per_sample * CHANNELS as f64 * 86_400.0 * 365.0;
        println!(
            "{:<14} {:>14.2} {:>19.2} GB {:>17.1} MB {:>14.0}",
            format!("{every} s"),
            f.bytes_per_sample,
            year / 1e9,
            f.written_per_hour / 1e6,
            f.commits_per_hour
        );
    }
    println!("\nRaw samples are kept for a retention period; 15-minute energy roll-ups for good");
    println!(
        "(16 channels: about {} KB a year).",
        16 * 35_040 * 24 / 1000
    );
}

//! The history on a real SQLite file: round trips, roll-ups, restarts, retention and a full disk.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use daisee_hal::{Energy, MilliWattHours, MilliWatts, RelayState, Timestamp};
use daisee_store::{RelayEvent, Retention, SLOT_MS, Store, StoreError};

/// 2026-11-25T00:00:00Z.
const MIDNIGHT: Timestamp = Timestamp(1_795_564_800_000);

const RETENTION: Retention = Retention {
    samples: Duration::from_secs(7 * 86_400),
    max_pending: 100_000,
};

/// A directory of its own under the system's temporary directory, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("daisee-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn db(&self) -> PathBuf {
        self.0.join("history.sqlite")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A noisy household load in mW at second `i`, and its import counter.
fn load(i: i64) -> MilliWatts {
    MilliWatts(800_000 + (i * 7919 % 400_000) - if i % 600 < 60 { 0 } else { 200_000 })
}

#[test]
fn samples_energy_and_events_round_trip_and_survive_a_reopen() {
    let dir = Dir::new("round-trip");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let mut expected = Vec::new();
    let mut import = 0u64;
    for i in 0..3600 {
        let at = Timestamp(MIDNIGHT.0 + i * 1000 + i % 3);
        let p = load(i);
        // 1 s at p mW is p / 3600 mWh.
        import += p.0 as u64 / 3600;
        let energy = Energy {
            import: MilliWattHours(import),
            export: MilliWattHours(0),
        };
        store.record(at, "house", p, energy);
        store.record(at, "pv", MilliWatts(-i * 1000), Energy::default());
        expected.push((at, p));
        if i % 60 == 59 {
            let flushed = store.flush().unwrap();
            assert_eq!(flushed.samples, 120);
            assert_eq!(flushed.newest, Some(at));
        }
    }
    store.record_relay(RelayEvent {
        at: MIDNIGHT,
        relay: "boiler".into(),
        state: RelayState::Off,
        cause: "import limit".into(),
    });
    store.flush().unwrap();
    drop(store);

    let store = Store::open(&dir.db(), RETENTION).unwrap();
    let end = Timestamp(MIDNIGHT.0 + 3_600_000);
    assert_eq!(store.samples("house", MIDNIGHT, end).unwrap(), expected);
    // A window inside the hour, not on block boundaries.
    let from = Timestamp(MIDNIGHT.0 + 90_500);
    let to = Timestamp(MIDNIGHT.0 + 200_000);
    let window: Vec<_> = expected
        .iter()
        .copied()
        .filter(|(t, _)| (from..to).contains(t))
        .collect();
    assert_eq!(store.samples("house", from, to).unwrap(), window);

    // Four slots; their imports add up to the counter's increase after the first sample.
    let slots = store.energy("house", MIDNIGHT, end).unwrap();
    assert_eq!(slots.len(), 4);
    assert_eq!(slots[1].start.0 - slots[0].start.0, SLOT_MS);
    let total: u64 = slots.iter().map(|s| s.energy.import.0).sum();
    assert_eq!(total, import - load(0).0 as u64 / 3600);
    assert!(slots.iter().all(|s| s.energy.export.0 == 0));

    let events = store.relay_events(MIDNIGHT, end).unwrap();
    assert_eq!(events[0].relay, "boiler");
    assert_eq!(events[0].state, RelayState::Off);
    assert_eq!(store.channels(), ["house", "pv"]);
}

#[test]
fn a_counter_that_goes_back_starts_a_new_baseline() {
    let dir = Dir::new("counter");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let e = |wh: u64| Energy {
        import: MilliWattHours(wh * 1000),
        export: MilliWattHours(0),
    };
    for (i, wh) in [100, 110, 5, 12].into_iter().enumerate() {
        let at = Timestamp(MIDNIGHT.0 + i as i64 * 1000);
        store.record(at, "meter", MilliWatts(1), e(wh));
    }
    store.flush().unwrap();
    let slots = store
        .energy("meter", MIDNIGHT, Timestamp(MIDNIGHT.0 + SLOT_MS))
        .unwrap();
    // +10 Wh, then a reset (nothing), then +7 Wh.
    assert_eq!(slots[0].energy.import, MilliWattHours(17_000));
}

#[test]
fn history_only_moves_forward_even_across_a_reopen() {
    let dir = Dir::new("forward");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let at = |s: i64| Timestamp(MIDNIGHT.0 + s * 1000);
    store.record(at(10), "house", MilliWatts(1), Energy::default());
    store.flush().unwrap();
    // A clock stepped back: the older sample is dropped, the stored one stays.
    store.record(at(5), "house", MilliWatts(2), Energy::default());
    store.record(at(10), "house", MilliWatts(3), Energy::default());
    assert_eq!(store.dropped(), 2);
    store.flush().unwrap();
    drop(store);
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    store.record(at(10), "house", MilliWatts(4), Energy::default());
    store.record(at(11), "house", MilliWatts(5), Energy::default());
    assert_eq!(store.dropped(), 1);
    store.flush().unwrap();
    let samples = store.samples("house", MIDNIGHT, at(100)).unwrap();
    assert_eq!(samples, [(at(10), MilliWatts(1)), (at(11), MilliWatts(5))]);
}

#[test]
fn a_glitched_counter_adds_no_energy() {
    let dir = Dir::new("glitch");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let e = |wh: u64| Energy {
        import: MilliWattHours(wh * 1000),
        export: MilliWattHours(0),
    };
    // 3.6 kW for a second is 1 Wh; the meter once reads 0, then its lifetime count again.
    for (i, wh) in [50_000, 50_001, 0, 50_002, 50_003].into_iter().enumerate() {
        let at = Timestamp(MIDNIGHT.0 + i as i64 * 1000);
        store.record(at, "meter", MilliWatts(3_600_000), e(wh));
    }
    store.flush().unwrap();
    let slots = store
        .energy("meter", MIDNIGHT, Timestamp(MIDNIGHT.0 + SLOT_MS))
        .unwrap();
    assert_eq!(
        slots[0].energy.import,
        MilliWattHours(2_000),
        "1 Wh, the glitch, then 1 Wh"
    );
}

#[test]
fn old_samples_are_pruned_and_roll_ups_kept() {
    let dir = Dir::new("prune");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let day = 86_400_000;
    for d in 0..10 {
        let at = Timestamp(MIDNIGHT.0 + d * day);
        let energy = Energy {
            import: MilliWattHours(d as u64 * 1000),
            export: MilliWattHours(0),
        };
        store.record(at, "house", MilliWatts(5), energy);
        store.flush().unwrap();
    }
    // Seven days before day 9 is day 2: days 0 and 1 go.
    let now = Timestamp(MIDNIGHT.0 + 9 * day);
    assert_eq!(store.prune(now).unwrap(), 2);
    let later = Timestamp(now.0 + day);
    let all = store.samples("house", MIDNIGHT, later).unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(all.first().unwrap().0, Timestamp(MIDNIGHT.0 + 2 * day));
    // One slot per day after the first sample, all kept.
    let slots = store.energy("house", MIDNIGHT, later).unwrap();
    assert_eq!(slots.len(), 9, "roll-ups are kept: {slots:?}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = Dir::new("schema");
    drop(Store::open(&dir.db(), RETENTION).unwrap());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&dir.db(), RETENTION).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

/// A small tmpfs: a real file system that runs out of space (needs root, as CI runs).
struct Tmpfs(Dir);

impl Tmpfs {
    fn new(name: &str, size: &str) -> Self {
        let dir = Dir::new(name);
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir.0)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing_once_space_returns() {
    let fs = Tmpfs::new("full", "1m");
    let db = fs.path().join("history.sqlite");
    let mut store = Store::open(&db, RETENTION).unwrap();
    // Take most of the space with another file, as a log gone wild would.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; (1024 - 160) * 1024]).unwrap();

    let mut recorded = Vec::new();
    let mut full = None;
    for i in 0..200_000i64 {
        let at = Timestamp(MIDNIGHT.0 + i * 1000);
        store.record(at, "house", load(i), Energy::default());
        recorded.push((at, load(i)));
        if i % 60 == 59 {
            match store.flush() {
                Ok(_) => {}
                Err(e) => {
                    full = Some(e);
                    break;
                }
            }
        }
    }
    let err = full.expect("the disk filled up");
    assert!(
        matches!(err, StoreError::Full { pending } if pending > 0),
        "{err}"
    );
    assert!(err.to_string().contains("disk is full"), "{err}");
    // Still usable: what was flushed reads back, and new samples are taken.
    let end = Timestamp(MIDNIGHT.0 + 300_000_000);
    let stored = store.samples("house", MIDNIGHT, end).unwrap();
    assert_eq!(stored[..], recorded[..stored.len()]);
    store.record(
        Timestamp(end.0 - 1),
        "house",
        MilliWatts(1),
        Energy::default(),
    );
    recorded.push((Timestamp(end.0 - 1), MilliWatts(1)));

    std::fs::remove_file(&filler).unwrap();
    store.flush().unwrap();
    assert_eq!(store.samples("house", MIDNIGHT, end).unwrap(), recorded);
}

#[test]
fn a_reader_sees_what_the_writer_flushed_and_never_creates_or_writes() {
    let dir = Dir::new("reader");
    assert!(daisee_store::Reader::open(&dir.db()).is_err());
    assert!(!dir.db().exists(), "a reader must not create the history");
    let mut store = Store::open(&dir.db(), RETENTION).unwrap();
    let energy = Energy {
        import: MilliWattHours(0),
        export: MilliWattHours(0),
    };
    for i in 0..10 {
        store.record(
            MIDNIGHT.plus(Duration::from_secs(i)),
            "grid",
            load(i as i64),
            energy,
        );
    }
    store.flush().unwrap();
    let reader = daisee_store::Reader::open(&dir.db()).unwrap();
    let until = MIDNIGHT.plus(Duration::from_secs(60));
    assert_eq!(reader.samples("grid", MIDNIGHT, until).unwrap().len(), 10);
    // The writer goes on while the reader is open.
    store.record(
        MIDNIGHT.plus(Duration::from_secs(10)),
        "grid",
        load(10),
        energy,
    );
    store.flush().unwrap();
    assert_eq!(reader.samples("grid", MIDNIGHT, until).unwrap().len(), 11);
    assert!(
        reader
            .samples("nowhere", MIDNIGHT, until)
            .unwrap()
            .is_empty()
    );
}

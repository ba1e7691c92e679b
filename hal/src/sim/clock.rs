use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::time::{Clock, Timestamp};

/// A clock for simulations: stepped by hand in tests, or running `speed` times faster than the wall
/// clock for a demo. Clones share one time.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<Source>);

#[derive(Debug)]
enum Source {
    Manual(AtomicI64),
    Scaled {
        start: Timestamp,
        wall: Instant,
        speed: u32,
    },
}

impl SimClock {
    /// A clock standing at `start` until advanced.
    pub fn manual(start: Timestamp) -> Self {
        Self(Arc::new(Source::Manual(AtomicI64::new(start.0))))
    }

    /// A clock starting at `start` and running `speed` times as fast as the wall clock.
    pub fn scaled(start: Timestamp, speed: u32) -> Self {
        Self(Arc::new(Source::Scaled {
            start,
            wall: Instant::now(),
            speed: speed.max(1),
        }))
    }

    /// Moves a manual clock forward; a scaled clock ignores this.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(ms) = &*self.0 {
            ms.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        match &*self.0 {
            Source::Manual(ms) => Timestamp(ms.load(Ordering::SeqCst)),
            Source::Scaled { start, wall, speed } => {
                start.plus(wall.elapsed().saturating_mul(*speed))
            }
        }
    }
}

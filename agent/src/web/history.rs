//! The history of one channel over an hour, a day or a week, for the page's plot: averages of
//! the stored samples (10 s over an hour, 2 min over a day) or, over a week, the store's
//! 15-minute energy roll-up as average power. A step without data is null: a gap in the plot.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daisee_hal::{MilliWatts, Timestamp};
use daisee_store::{Reader, SlotEnergy};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::{Site, refused};

/// The store's energy roll-up: 15 minutes.
const ENERGY_SLOT_MS: i64 = 900_000;

/// Where the history is and what it holds.
pub(super) struct History {
    path: Option<PathBuf>,
    channels: Vec<String>,
    /// One query at a time: each reads the SD card.
    one_at_a_time: Semaphore,
}

impl History {
    pub(super) fn new<'c>(path: Option<PathBuf>, channels: impl Iterator<Item = &'c str>) -> Self {
        History {
            path,
            channels: channels.map(str::to_owned).collect(),
            one_at_a_time: Semaphore::new(1),
        }
    }
}

/// How far back the plot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Span {
    Hour,
    Day,
    Week,
}

impl Span {
    fn length_ms(self) -> i64 {
        match self {
            Span::Hour => 3_600_000,
            Span::Day => 86_400_000,
            Span::Week => 7 * 86_400_000,
        }
    }

    /// One point of the plot.
    fn step_ms(self) -> i64 {
        match self {
            Span::Hour => 10_000,
            Span::Day => 120_000,
            Span::Week => ENERGY_SLOT_MS,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Ask {
    channel: String,
    span: Span,
}

/// A plot's points: the start of each step and the average power in it (null: no data).
#[derive(Serialize)]
struct Plot {
    channel: String,
    step_ms: i64,
    at_ms: Vec<i64>,
    power_mw: Vec<Option<i64>>,
}

/// `/api/history?channel=<name>&span=hour|day|week`, up to the gateway's latest poll.
pub(super) async fn history(State(site): State<Arc<Site>>, Query(ask): Query<Ask>) -> Response {
    let history = &site.history;
    if !history.channels.contains(&ask.channel) {
        return refused(StatusCode::NOT_FOUND, "no such channel");
    }
    let Some(path) = history.path.clone() else {
        return refused(
            StatusCode::NOT_FOUND,
            "no history: the configuration has no [store]",
        );
    };
    // The gateway's clock, which a simulation may run apart from the wall's.
    let now = site.snapshots.borrow().as_ref().map(|s| s.at);
    let Some(now) = now else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "no poll yet");
    };
    let Ok(_turn) = history.one_at_a_time.acquire().await else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    };
    let span = ask.span;
    let step = span.step_ms();
    // Whole steps, the last one holding `now`.
    let to = (now.0 / step + 1) * step;
    let from = to - span.length_ms();
    let channel = ask.channel;
    let read = tokio::task::spawn_blocking(move || {
        let reader = Reader::open(&path)?;
        let (from, to) = (Timestamp(from), Timestamp(to));
        let power = match span {
            Span::Week => slots_power(&reader.energy(&channel, from, to)?, from, to),
            Span::Hour | Span::Day => {
                averages(&reader.samples(&channel, from, to)?, from, to, step)
            }
        };
        Ok::<_, daisee_store::StoreError>(Plot {
            at_ms: (from.0..to.0).step_by(step as usize).collect(),
            power_mw: power,
            step_ms: step,
            channel,
        })
    })
    .await;
    match read {
        Ok(Ok(plot)) => Json(plot).into_response(),
        Ok(Err(e)) => refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The average of `samples` in each `step` from `from` to `to`.
fn averages(
    samples: &[(Timestamp, MilliWatts)],
    from: Timestamp,
    to: Timestamp,
    step: i64,
) -> Vec<Option<i64>> {
    let steps = usize::try_from((to.0 - from.0) / step).unwrap_or(0);
    let mut sums = vec![(0_i128, 0_i128); steps];
    for (t, p) in samples {
        let i = usize::try_from((t.0 - from.0) / step).ok();
        if let Some((sum, n)) = i.and_then(|i| sums.get_mut(i)) {
            *sum += i128::from(p.0);
            *n += 1;
        }
    }
    sums.into_iter()
        .map(|(sum, n)| (n > 0).then(|| i64::try_from(sum / n).unwrap_or(0)))
        .collect()
}

/// The average power of each 15-minute energy slot from `from` to `to`: its net energy
/// (imported minus exported) over the slot.
fn slots_power(slots: &[SlotEnergy], from: Timestamp, to: Timestamp) -> Vec<Option<i64>> {
    let steps = usize::try_from((to.0 - from.0) / ENERGY_SLOT_MS).unwrap_or(0);
    let mut power = vec![None; steps];
    for slot in slots {
        let i = usize::try_from((slot.start.0 - from.0) / ENERGY_SLOT_MS).ok();
        if let Some(p) = i.and_then(|i| power.get_mut(i)) {
            let net = i128::from(slot.energy.import.0) - i128::from(slot.energy.export.0);
            // mWh over a quarter of an hour: four times as many mW.
            *p = i64::try_from(net * 4).ok();
        }
    }
    power
}

#[cfg(test)]
mod tests {
    use daisee_hal::{Energy, MilliWattHours};

    use super::*;

    #[test]
    fn samples_average_per_step_and_an_empty_step_is_a_gap() {
        let samples = [(1_000, 100), (5_000, 300), (25_000, -50), (29_999, -150)]
            .map(|(t, p)| (Timestamp(t), MilliWatts(p)));
        let got = averages(&samples, Timestamp(0), Timestamp(30_000), 10_000);
        assert_eq!(got, [Some(200), None, Some(-100)]);
    }

    #[test]
    fn a_slot_s_net_energy_is_its_average_power() {
        let slot = |start, import, export| SlotEnergy {
            start: Timestamp(start),
            energy: Energy {
                import: MilliWattHours(import),
                export: MilliWattHours(export),
            },
        };
        let slots = [slot(0, 500, 0), slot(1_800_000, 0, 250)];
        let got = slots_power(&slots, Timestamp(0), Timestamp(2_700_000));
        assert_eq!(got, [Some(2_000), None, Some(-1_000)]);
    }
}

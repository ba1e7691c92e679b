//! The live values: the latest snapshot as JSON, once (`/api/live`) or at every poll as
//! server-sent events (`/api/events`). Powers and energies are integers (mW, mWh), the
//! gateway's fixed point; the page divides.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use daisee_hal::RelayState;
use serde::Serialize;
use tokio::sync::watch;

use super::{Site, refused};
use crate::config::Config;
use crate::dialogue::DialogueStatus;
use crate::ledger::LedgerStatus;
use crate::snapshot::Snapshot;

/// What the page shows beside the snapshot.
pub(super) struct About {
    gateway: String,
    /// The channel of the grid connection, if demand response names one.
    grid: Option<String>,
}

impl About {
    pub(super) fn of(config: &Config) -> Self {
        About {
            gateway: config.name.clone(),
            grid: config.control.as_ref().map(|c| c.grid.clone()),
        }
    }
}

#[derive(Serialize)]
struct Live<'s> {
    gateway: &'s str,
    grid: Option<&'s str>,
    /// Whether a person may log in and switch relays.
    writes: bool,
    at_ms: i64,
    channels: Vec<Channel<'s>>,
    relays: Vec<Relay<'s>>,
    inverters: Vec<Inverter<'s>>,
    control: Option<Control>,
    dialogue: Option<Dialogue>,
    ledger: Option<Ledger>,
}

#[derive(Serialize)]
struct Channel<'s> {
    name: &'s str,
    device: &'s str,
    /// Null while its device fails.
    power_mw: Option<i64>,
    fault: Option<&'s str>,
    import_mwh: u64,
    export_mwh: u64,
}

#[derive(Serialize)]
struct Relay<'s> {
    name: &'s str,
    /// `on`, `off`, or null while its line fails.
    state: Option<&'s str>,
    fault: Option<&'s str>,
    mode: &'s str,
}

#[derive(Serialize)]
struct Inverter<'s> {
    name: &'s str,
    limit_percent: Option<u8>,
    fault: Option<&'s str>,
    mode: &'s str,
}

#[derive(Serialize)]
struct Control {
    grid_mw: Option<i64>,
    stale: bool,
    import_limit_mw: Option<i64>,
    export_limit_mw: Option<i64>,
}

/// The machine dialogue: the community, and how its latest settled slot ended.
#[derive(Serialize)]
struct Dialogue {
    community: String,
    peers: u32,
    slot_ms: Option<i64>,
    /// Why the slot did not clear; null when it did.
    no_trade: Option<String>,
    /// The clearing price, in micro-units per kWh.
    price: Option<i64>,
    allocation_mw: Option<i64>,
    kept_local_mw: Option<i64>,
}

impl Dialogue {
    fn of(status: &DialogueStatus) -> Self {
        let last = status.last.as_ref();
        let cleared = last.and_then(|o| o.cleared.as_ref().ok());
        Dialogue {
            community: status.community.clone(),
            peers: status.peers,
            slot_ms: last.map(|o| o.slot),
            no_trade: last.and_then(|o| o.cleared.as_ref().err().cloned()),
            price: cleared.map(|(c, _)| c.price),
            allocation_mw: cleared.map(|(_, mw)| *mw),
            kept_local_mw: cleared.map(|(c, _)| c.kept_mw),
        }
    }
}

/// The ledger: its latest commitment and what waits for the chain.
#[derive(Serialize)]
struct Ledger {
    /// 0 before the first.
    last_interval_ms: i64,
    last_slot_ms: i64,
    queued: u64,
    credits: String,
    /// Why the chain is not reached; empty when it is.
    error: String,
}

impl Ledger {
    fn of(status: &LedgerStatus) -> Self {
        Ledger {
            last_interval_ms: status.last_interval,
            last_slot_ms: status.last_slot,
            queued: status.queued,
            credits: status.credits.clone(),
            error: status.error.clone(),
        }
    }
}

fn state(state: RelayState) -> &'static str {
    match state {
        RelayState::On => "on",
        RelayState::Off => "off",
    }
}

/// `snapshot` as the page of `site` reads it.
fn json(site: &Site, snapshot: &Snapshot) -> String {
    let about = &site.about;
    let live = Live {
        gateway: &about.gateway,
        grid: about.grid.as_deref(),
        writes: site.access.writes(),
        at_ms: snapshot.at.0,
        channels: snapshot
            .channels
            .iter()
            .map(|c| Channel {
                name: &c.name,
                device: c.device,
                power_mw: c.reading.as_ref().ok().map(|r| r.power.0),
                fault: c.reading.as_ref().err().map(|f| f.message.as_str()),
                import_mwh: c.energy.import.0,
                export_mwh: c.energy.export.0,
            })
            .collect(),
        relays: snapshot
            .relays
            .iter()
            .map(|r| Relay {
                name: &r.name,
                state: r.state.as_ref().ok().map(|s| state(*s)),
                fault: r.state.as_ref().err().map(|f| f.message.as_str()),
                mode: r.mode.as_str(),
            })
            .collect(),
        inverters: snapshot
            .inverters
            .iter()
            .map(|i| Inverter {
                name: &i.name,
                limit_percent: i.limit,
                fault: i.fault.as_ref().map(|f| f.message.as_str()),
                mode: i.mode.as_str(),
            })
            .collect(),
        control: snapshot.control.map(|c| Control {
            grid_mw: c.relays.grid.map(|p| p.0),
            stale: c.relays.stale,
            import_limit_mw: c.relays.import_limit.map(|p| p.0),
            export_limit_mw: c.export_limit.map(|p| p.0),
        }),
        dialogue: site
            .community
            .dialogue
            .as_ref()
            .map(|d| Dialogue::of(&d.borrow())),
        ledger: site
            .community
            .ledger
            .as_ref()
            .map(|l| Ledger::of(&l.borrow())),
    };
    serde_json::to_string(&live).expect("the live values serialize")
}

/// The latest snapshot; 503 before the first poll.
pub(super) async fn now(State(site): State<Arc<Site>>) -> Response {
    let latest = site.snapshots.borrow().clone();
    match latest {
        Some(snapshot) => (
            [(header::CONTENT_TYPE, "application/json")],
            json(&site, &snapshot),
        )
            .into_response(),
        None => refused(StatusCode::SERVICE_UNAVAILABLE, "no poll yet"),
    }
}

/// Every snapshot from now on as an event; 503 when [`super::MAX_VIEWERS`] pages follow already.
pub(super) async fn events(State(site): State<Arc<Site>>) -> Response {
    let Ok(viewer) = Arc::clone(&site.viewers).try_acquire_owned() else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "too many pages open");
    };
    let mut snapshots = site.snapshots.clone();
    // The current snapshot first, then each new one.
    snapshots.mark_changed();
    let stream = futures_util::stream::unfold(
        (snapshots, site, viewer),
        |(mut snapshots, site, viewer)| async move {
            let snapshot = next(&mut snapshots).await?;
            let event = Event::default()
                .event("snapshot")
                .data(json(&site, &snapshot));
            Some((Ok::<_, Infallible>(event), (snapshots, site, viewer)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The next snapshot published; `None` once the daemon stopped. A page that reads slowly gets the
/// latest, never a backlog.
async fn next(snapshots: &mut watch::Receiver<Option<Arc<Snapshot>>>) -> Option<Arc<Snapshot>> {
    loop {
        snapshots.changed().await.ok()?;
        if let Some(snapshot) = snapshots.borrow_and_update().clone() {
            return Some(snapshot);
        }
    }
}

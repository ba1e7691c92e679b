//! The gateway in its community's machine dialogue: an adapter task beside the daemon. It runs
//! the libp2p node, bids for each slot from the snapshots, hands the cleared allocation to the
//! daemon as a [`Command`], reports what the grid meter counted at each slot's end, records each
//! settled slot (its signed bid set included) in the history, and publishes a [`DialogueStatus`]
//! for D-Bus.

mod bid;
mod forecast;
mod meter;
mod records;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use daisee_control::{Allocation, FlexLoad, InverterMode};
use daisee_dialogue::audit::BidSetJson;
use daisee_dialogue::net::{NetError, Node, NodeCommand, NodeEvent, PeerId};
use daisee_dialogue::{
    Address, Bid, Clearing, GatewayKey, Member, MeterReport, Phase, SignedBid, Slot, Terms,
};
use daisee_hal::{Clock, RelayState, Timestamp};
use daisee_store::{MarketSlot, Reader};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, DialogueConfig};
use crate::daemon::{Command, Handles};
use crate::journal::{Journal, Priority};
use crate::snapshot::Snapshot;
use forecast::Profile;
use meter::{Metered, SlotMeter};
use records::Records;

/// Messages waiting between the adapter and its node.
const QUEUE: usize = 64;

/// Refusals logged one by one per slot; any peer can send bad messages, and the journal is on
/// the SD card. The rest are counted, and summed up when the slot settles.
const LOGGED_REFUSALS: u32 = 10;

/// How one slot ended, as this gateway executed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The slot's start, ms since 1970.
    pub slot: i64,
    /// The price and this gateway's allocation in mW, if the slot cleared; else why not.
    pub cleared: Result<(Cleared, i64), String>,
}

/// The community's side of a cleared slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    /// The clearing price step.
    pub step: u8,
    /// Its price, in micro-units per kWh.
    pub price: i64,
    /// What the community takes from the grid together, in mW (negative: sends).
    pub grid_mw: i64,
    /// Power that moves between members rather than to or from the grid, in mW.
    pub kept_mw: i64,
}

/// What the dialogue shows: published at every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialogueStatus {
    /// The community's name.
    pub community: String,
    /// This gateway's libp2p identity.
    pub peer_id: String,
    /// Peers connected now.
    pub peers: u32,
    /// The latest slot this gateway bid for.
    pub bid_slot: i64,
    /// The latest slot that settled.
    pub last: Option<Outcome>,
    /// The latest meter report: its slot and its deviation from the allocation in mWh (0 for a
    /// slot without trade).
    pub report: Option<(i64, i64)>,
    /// Messages refused since start.
    pub rejected: u64,
}

/// Why the dialogue did not start.
#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    /// This gateway's account is not among the community's members.
    #[error("this gateway ({0}) is not a member of community `{1}`; add it to [[dialogue.member]]")]
    NotMember(Address, String),
    /// The node did not start.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Starts the dialogue of `config` on the current runtime: its node and the adapter around it.
pub fn spawn(
    config: &Config,
    dialogue: &DialogueConfig,
    key: GatewayKey,
    clock: Arc<dyn Clock>,
    handles: Handles,
) -> Result<watch::Receiver<DialogueStatus>, DialogueError> {
    let terms = Arc::clone(&dialogue.terms);
    let me = key.address();
    let member = *terms
        .member(&me)
        .ok_or_else(|| DialogueError::NotMember(me, terms.community.clone()))?;
    let peer_id = daisee_dialogue::net::peer_key(&key)?.public().to_peer_id();
    let node_clock = Arc::clone(&clock);
    let node = Node::new(
        key,
        Arc::clone(&terms),
        &dialogue.net,
        Arc::new(move || node_clock.now().0),
    )?;
    let (to_node, node_commands) = mpsc::channel(QUEUE);
    let (node_events, from_node) = mpsc::channel(QUEUE);
    tokio::spawn(node.run(node_commands, node_events));
    let (status, shown) = watch::channel(DialogueStatus {
        community: terms.community.clone(),
        peer_id: peer_id.to_string(),
        ..DialogueStatus::default()
    });
    let history = config.store.as_ref().map(|s| s.dir.join("history.sqlite"));
    let records = history.clone().map(Records::open);
    let adapter = Adapter {
        terms,
        me,
        member,
        grid: dialogue.grid.clone(),
        loads: config
            .relays
            .iter()
            .filter_map(|r| r.flex.clone())
            .collect(),
        // The export limiter carries out a curtailment, and it runs with demand response.
        inverters: config
            .inverters
            .iter()
            .filter(|i| i.curtailable() && config.control.is_some())
            .map(|i| i.meter.name.clone())
            .collect(),
        free_production: 0,
        commands: handles.commands,
        node: to_node,
        history,
        records,
        journal: Journal::from_env(),
        status,
        meter: SlotMeter::default(),
        profile: Profile::default(),
        bid_for: None,
        refusals: 0,
        bases: BTreeMap::new(),
        allocations: BTreeMap::new(),
        peers: HashSet::new(),
    };
    tokio::spawn(adapter.run(handles.snapshots, from_node));
    Ok(shown)
}

/// The adapter's state.
struct Adapter {
    terms: Arc<Terms>,
    me: Address,
    member: Member,
    grid: String,
    loads: Vec<FlexLoad>,
    /// The curtailable inverters' channels.
    inverters: Vec<String>,
    /// What they produced when last under no limit, in mW.
    free_production: i64,
    commands: std::sync::mpsc::SyncSender<Command>,
    node: mpsc::Sender<NodeCommand>,
    /// The history's file, which the profile is read from at start.
    history: Option<PathBuf>,
    records: Option<Records>,
    journal: Journal,
    status: watch::Sender<DialogueStatus>,
    meter: SlotMeter,
    /// The base load of the slots metered, which bids are forecast from.
    profile: Profile,
    bid_for: Option<Slot>,
    /// Refusals since the latest slot settled.
    refusals: u32,
    /// The base load each recent bid assumed, for the budget its allocation leaves.
    bases: BTreeMap<Slot, i64>,
    /// This gateway's allocation of each recent slot that cleared, for its report.
    allocations: BTreeMap<Slot, i64>,
    peers: HashSet<PeerId>,
}

impl Adapter {
    async fn run(
        mut self,
        mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        mut events: mpsc::Receiver<NodeEvent>,
    ) {
        self.profile = self.past_bases().await;
        loop {
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(s) = snapshot {
                        self.on_snapshot(&s).await;
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => return,
                },
            }
        }
    }

    /// The base loads the history holds, for the forecast: none at a first start (the history
    /// does not exist yet), or if it cannot be read (logged).
    async fn past_bases(&self) -> Profile {
        let Some(path) = self.history.clone() else {
            return Profile::default();
        };
        if !path.exists() {
            return Profile::default();
        }
        let read = tokio::task::spawn_blocking(move || {
            Reader::open(&path)?.market_bases(Timestamp(i64::MAX), forecast::KEPT)
        })
        .await;
        match read {
            Ok(Ok(bases)) => Profile::new(bases.into_iter().map(|(t, b)| (Slot(t.0), b))),
            Ok(Err(e)) => {
                let message = format!("dialogue: no forecast from the history: {e}");
                self.journal.log(Priority::Warning, &message, &[]);
                Profile::default()
            }
            Err(_) => Profile::default(),
        }
    }

    /// The flexible loads' nominal power that is on in `s`.
    fn flexible_on(&self, s: &Snapshot) -> i64 {
        s.relays
            .iter()
            .filter(|r| matches!(r.state, Ok(RelayState::On)))
            .filter_map(|r| self.loads.iter().find(|l| *l.name == *r.name))
            .map(|l| l.nominal.0)
            .sum()
    }

    /// What the curtailable inverters not held by hand produce in `s`, in mW (positive), and
    /// whether any of them is under a limit.
    fn production(&self, s: &Snapshot) -> (i64, bool) {
        let ours = s
            .inverters
            .iter()
            .filter(|i| i.mode != InverterMode::Manual)
            .filter(|i| self.inverters.iter().any(|name| **name == *i.name));
        let (mut produced, mut limited) = (0, false);
        for i in ours {
            limited |= i.limit.is_some_and(|p| p < 100);
            let reading = s.channels.iter().find(|c| c.name == i.name);
            if let Some(Ok(r)) = reading.map(|c| &c.reading) {
                produced += (-r.power.0).max(0);
            }
        }
        (produced, limited)
    }

    /// What the curtailable inverters could produce now, in mW, and how much of it a limit
    /// holds back: what they produced when last free (a persistence forecast, as the base's).
    fn potential(&mut self, s: &Snapshot) -> (i64, i64) {
        let (produced, limited) = self.production(s);
        if !limited {
            self.free_production = produced;
            return (produced, 0);
        }
        let potential = self.free_production.max(produced);
        (potential, potential - produced)
    }

    /// Meters the slot that ended, if one did, and bids for the next slot while its gate is open.
    async fn on_snapshot(&mut self, s: &Snapshot) {
        let Some(grid) = s.channels.iter().find(|c| *c.name == *self.grid) else {
            return;
        };
        let slot = self.terms.slot_at(s.at.0);
        // What a limit holds back counts outside the base: a curtailed slot would make the next
        // look darker than it is.
        let (potential, held_back) = self.potential(s);
        let outside = self.flexible_on(s) + held_back;
        let reading = grid.reading.as_ref().ok();
        let energy = reading.map(|_| grid.energy);
        if let Some(metered) = self
            .meter
            .observe(slot, self.terms.slot_ms, s.at, energy, outside)
        {
            self.report(metered).await;
        }
        let next = Slot(slot.0 + self.terms.slot_ms);
        if self.bid_for < Some(next) && s.at.0 < self.terms.gate_closure(next) {
            let now = reading.map(|r| (slot, r.power.0.saturating_sub(outside)));
            let Some(base) = self.base(now, next) else {
                return;
            };
            let bid = Bid {
                terms: self.terms.digest(),
                slot: next,
                powers: bid::curve(&self.terms, &self.member, base, &self.loads, potential),
            };
            self.bid_for = Some(next);
            self.bases.insert(next, base);
            if self.node.send(NodeCommand::Bid(bid)).await.is_ok() {
                self.status.send_modify(|st| st.bid_slot = next.0);
            }
        }
    }

    /// The base load of `next`, forecast from the last slot metered if it is the one before the
    /// current, else from `now` (the current slot and the grid's power now without what is
    /// outside the base, if the grid was read).
    fn base(&self, now: Option<(Slot, i64)>, next: Slot) -> Option<i64> {
        let recent = self
            .profile
            .latest()
            .filter(|(s, _)| s.0 + 2 * self.terms.slot_ms >= next.0);
        Some(self.profile.forecast(recent.or(now)?, next))
    }

    /// Publishes the signed report of a slot that ended and records it.
    async fn report(&mut self, m: Metered) {
        let report = MeterReport {
            terms: self.terms.digest(),
            slot: m.slot,
            import_mwh: m.energy.import.0,
            export_mwh: m.energy.export.0,
        };
        let deviation = self
            .allocations
            .get(&m.slot)
            .map_or(0, |a| report.deviation_mwh(*a, self.terms.slot_ms));
        let _ = self.node.send(NodeCommand::Report(report)).await;
        self.profile.note(m.slot, m.base_mw);
        if let Some(records) = &self.records {
            records.metered(Timestamp(m.slot.0), m.energy, m.base_mw);
        }
        self.status
            .send_modify(|st| st.report = Some((m.slot.0, deviation)));
        self.allocations.retain(|s, _| *s > m.slot);
        self.bases.retain(|s, _| *s > m.slot);
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::Listening(address) => {
                let message = format!("dialogue: listening on {address}");
                self.journal.log(Priority::Info, &message, &[]);
            }
            NodeEvent::NotListening(address, why) => {
                let message = format!(
                    "dialogue: cannot listen on {address}: {why}; trying again, dialling out meanwhile"
                );
                self.journal.log(Priority::Warning, &message, &[]);
            }
            NodeEvent::PeerJoined(peer) => {
                self.peers.insert(peer);
                let peers = self.peers.len() as u32;
                self.status.send_modify(|st| st.peers = peers);
            }
            NodeEvent::PeerLeft(peer) => {
                self.peers.remove(&peer);
                let peers = self.peers.len() as u32;
                self.status.send_modify(|st| st.peers = peers);
            }
            NodeEvent::Rejected { slot, reason } => {
                self.refusals += 1;
                self.status.send_modify(|st| st.rejected += 1);
                if self.refusals > LOGGED_REFUSALS {
                    return;
                }
                let slot = slot.map_or_else(String::new, |s| s.0.to_string());
                let message = format!("dialogue: refused a message for slot {slot}: {reason}");
                let why = reason.to_string();
                let fields = [
                    ("DAISEE_SLOT", slot.as_str()),
                    ("DAISEE_REASON", why.as_str()),
                ];
                self.journal.log(Priority::Warning, &message, &fields);
            }
            NodeEvent::Settled {
                slot, phase, bids, ..
            } => self.settled(slot, &phase, &bids),
        }
    }

    /// Executes a settled slot: the allocation to the daemon, the slot to the history and the
    /// journal.
    fn settled(&mut self, slot: Slot, phase: &Phase, bids: &[SignedBid]) {
        if self.refusals > LOGGED_REFUSALS {
            let message = format!(
                "dialogue: {} more messages refused (each is counted in Rejected on D-Bus)",
                self.refusals - LOGGED_REFUSALS
            );
            self.journal.log(Priority::Warning, &message, &[]);
        }
        self.refusals = 0;
        let cleared = match phase {
            Phase::Agreed(clearing) => Ok(self.execute(slot, clearing)),
            Phase::NoTrade(why) => Err(format!("no trade: {why}")),
            // Only agreed and no-trade slots are settled.
            Phase::Open | Phase::GateClosed | Phase::Voting => return,
        };
        let outcome = Outcome {
            slot: slot.0,
            cleared,
        };
        self.journal.log(
            Priority::Info,
            &format!("dialogue: {}", describe(&outcome)),
            &[("DAISEE_SLOT", &slot.0.to_string())],
        );
        self.record(slot, &outcome, bids);
        self.status.send_modify(|st| st.last = Some(outcome));
    }

    /// Hands this gateway's allocation to the daemon, if it bid in the slot; the community's
    /// figures.
    fn execute(&mut self, slot: Slot, clearing: &Clearing) -> (Cleared, i64) {
        let mine = clearing
            .allocations
            .iter()
            .find(|(a, _)| *a == self.me)
            .map(|(_, p)| *p);
        if let (Some(mine), Some(base)) = (mine, self.bases.get(&slot)) {
            self.allocations.insert(slot, mine);
            let allocation = Allocation {
                slot: Timestamp(slot.0),
                length: Duration::from_millis(u64::try_from(self.terms.slot_ms).unwrap_or(0)),
                budget: bid::budget(mine, *base, &self.loads),
                export_limit: bid::export_limit(mine, *base, &self.loads),
            };
            if self
                .commands
                .try_send(Command::Allocate(allocation))
                .is_err()
            {
                let message = format!(
                    "dialogue: slot {}: the daemon did not take the allocation",
                    slot.0
                );
                self.journal.log(Priority::Error, &message, &[]);
            }
        }
        let taken: i64 = clearing.allocations.iter().map(|(_, p)| (*p).max(0)).sum();
        let sent: i64 = clearing.allocations.iter().map(|(_, p)| (-*p).max(0)).sum();
        let cleared = Cleared {
            step: clearing.price.0,
            price: self.terms.basis.price(clearing.price),
            grid_mw: clearing.grid_mw,
            kept_mw: taken.min(sent),
        };
        (cleared, mine.unwrap_or(0))
    }

    /// Records a settled slot and its bid set in the history.
    fn record(&self, slot: Slot, outcome: &Outcome, bids: &[SignedBid]) {
        let Some(records) = &self.records else { return };
        let json = BidSetJson::new(&self.terms, slot, bids);
        let (text, price_step, allocation_mw) = match &outcome.cleared {
            Ok((c, mine)) => ("agreed".to_owned(), Some(c.step), Some(*mine)),
            Err(why) => (why.clone(), None, None),
        };
        let record = MarketSlot {
            start: Timestamp(slot.0),
            outcome: text,
            price_step,
            allocation_mw,
            bid_set: json.to_json(),
            metered: None,
            base_mw: None,
        };
        records.settled(record);
    }
}

/// One line for a settled slot.
fn describe(outcome: &Outcome) -> String {
    match &outcome.cleared {
        Ok((c, mine)) => format!(
            "slot {} agreed: price {} µ/kWh (step {}), this gateway {} W, the community {} W from the grid, {} W kept local",
            outcome.slot,
            c.price,
            c.step,
            mine / 1000,
            c.grid_mw / 1000,
            c.kept_mw / 1000
        ),
        Err(why) => format!("slot {}: {why}", outcome.slot),
    }
}

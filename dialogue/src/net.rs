//! The dialogue over libp2p: TCP with noise and yamux, gossipsub (every message signed by its
//! gateway, strictly validated) on one topic per community for bids, holdings and reports,
//! request-response to fetch the bids a peer holds and this node lacks when digests differ,
//! identify, and mDNS on the LAN beside the configured bootstrap peers.
//! A [`Node`] keeps one [`SlotBook`] per slot and drives each through gate closure, agreement and
//! settlement on its clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Swarm, identify, identity, mdns, noise, tcp, yamux};
use tokio::sync::mpsc;

pub use libp2p::{Multiaddr, PeerId};

mod fetch;

use fetch::{BidRequest, FETCH, FetchCodec};

use crate::bid::{Bid, SignedBid};
use crate::book::{Phase, Rejection, SlotBook};
use crate::key::{Address, GatewayKey, address_of_public, keccak256};
use crate::message::{Holding, MeterReport};
use crate::signed::{Body, Signed};
use crate::terms::{Slot, Terms};

/// The largest message on the topic: a bid of 100 steps is 128 bytes of header and 800 of powers.
const MAX_MESSAGE: usize = 2048;
/// How often the node looks at its slots' deadlines: each look also polls the whole swarm, so
/// not more often than the shortest grace period needs.
const TICK: Duration = Duration::from_millis(100);
/// Slots kept after they settled, for late fetches and reports.
const KEPT_SLOTS: i64 = 3;
/// How long a message may wait to be sent: the shortest window the default terms give a message
/// (the half of the grace period between holdings and votes).
const QUEUED: Duration = Duration::from_secs(10);
/// How often bootstrap peers not connected are dialled again (they may start after this node),
/// and listening addresses not bound are tried again (another program may hold the port).
const REDIAL: Duration = Duration::from_secs(2);

/// Where the node listens and whom it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// Addresses to listen on (`/ip4/0.0.0.0/tcp/4610`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Whether to find peers on the LAN with mDNS.
    pub mdns: bool,
}

/// What the owner of a node asks of it.
#[derive(Debug, Clone)]
pub enum NodeCommand {
    /// Bid for a slot (signed and published by the node).
    Bid(Bid),
    /// Publish the meter report of a slot that ended.
    Report(MeterReport),
}

/// What a node tells its owner.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// The node listens on this address.
    Listening(Multiaddr),
    /// The node could not listen on this address, for this reason; it tries again, and dials
    /// out meanwhile.
    NotListening(Multiaddr, String),
    /// A peer subscribed to the community's topic.
    PeerJoined(PeerId),
    /// The last connection to a peer closed.
    PeerLeft(PeerId),
    /// A message was refused, with its reason and its sender where known.
    Rejected {
        /// The slot it was for, where it could be read.
        slot: Option<Slot>,
        /// Why.
        reason: Rejection,
    },
    /// A slot settled: agreed and cleared, or no local trade. `bids` is the set it settled on.
    Settled {
        /// The slot.
        slot: Slot,
        /// How it settled.
        phase: Phase,
        /// The signed bids held, for the history and for audits.
        bids: Vec<SignedBid>,
        /// When (ms since 1970) the node first held a quorum of votes for its bid set, if it did.
        agreed_at: Option<i64>,
        /// What the node had received since it started, at settlement.
        received: Traffic,
    },
}

/// What a node received: gossiped messages (each counted once, duplicates dropped by gossipsub)
/// and fetched bids, with their payload bytes (the protocol's messages, without the framing of
/// noise, yamux and gossipsub).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Messages dropped on purpose, for harnesses of lossy networks (this kernel has no netem): a
/// share of the gossiped messages a node receives, before it looks at them, from a seeded
/// sequence so that runs repeat.
#[derive(Debug, Clone, Copy)]
struct Loss {
    permille: u64,
    state: u64,
}

impl Loss {
    /// Whether to drop the next message (SplitMix64).
    fn next(&mut self) -> bool {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 1000 < self.permille
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The key is not a libp2p key.
    #[error("the gateway key: {0}")]
    Key(#[from] identity::DecodingError),
    /// The transport or a behaviour could not be built.
    #[error("libp2p: {0}")]
    Build(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossip: gossipsub::Behaviour,
    fetch: request_response::Behaviour<FetchCodec>,
    identify: identify::Behaviour,
    mdns: libp2p::swarm::behaviour::toggle::Toggle<mdns::tokio::Behaviour>,
}

/// A gateway in its community's dialogue.
pub struct Node {
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    terms: Arc<Terms>,
    key: GatewayKey,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    books: BTreeMap<Slot, SlotBook>,
    rounds: BTreeMap<Slot, u32>,
    /// The peers connected to this node, by the account of their key (their peer id holds it):
    /// kept from the connections' events, so that a fetch goes to a member's own peer.
    peers: HashMap<Address, PeerId>,
    fetched: HashSet<(Slot, Address, [u8; 32])>,
    pending: HashMap<request_response::OutboundRequestId, (Slot, Address, [u8; 32])>,
    /// Each bootstrap address, and whether this node's own connection to it is up.
    bootstrap: HashMap<Multiaddr, bool>,
    /// Each address to listen on, and its listener while it has one.
    listen: HashMap<Multiaddr, Listener>,
    /// When each slot's book first held a quorum of votes for its bid set.
    agreed_at: BTreeMap<Slot, i64>,
    received: Traffic,
    loss: Option<Loss>,
}

/// Whether an address to listen on has a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    /// Listening.
    Bound(libp2p::core::transport::ListenerId),
    /// Not listening; `told` once the owner heard why.
    Unbound { told: bool },
}

/// Why listening failed, in words (libp2p's error shows nothing of an I/O error but its source).
fn why_not(e: &libp2p::TransportError<io::Error>) -> String {
    match e {
        libp2p::TransportError::MultiaddrNotSupported(a) => format!("{a} is not a TCP address"),
        libp2p::TransportError::Other(e) => e.to_string(),
    }
}

/// The account of a peer whose identity is a secp256k1 key (its id holds the key itself).
fn peer_address(peer: &PeerId) -> Option<Address> {
    let key = identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    address_of_public(&key.try_into_secp256k1().ok()?.to_bytes())
}

/// The libp2p identity of a gateway key: the same secp256k1 key.
pub fn peer_key(key: &GatewayKey) -> Result<identity::Keypair, NetError> {
    let secret = identity::secp256k1::SecretKey::try_from_bytes(key.secret())?;
    Ok(identity::secp256k1::Keypair::from(secret).into())
}

impl Node {
    /// A node for `key` in the community of `terms`, on `clock` (ms since 1970).
    pub fn new(
        key: GatewayKey,
        terms: Arc<Terms>,
        net: &NetConfig,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Self, NetError> {
        let keypair = peer_key(&key)?;
        let mdns = net.mdns;
        let topic = IdentTopic::new(format!("/daisee/dialogue/1/{}", terms.community));
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Build(e.to_string()))?
            .with_behaviour(|key| behaviour(key, mdns, &topic))
            .map_err(|e| NetError::Build(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
            .build();
        swarm
            .behaviour_mut()
            .gossip
            .subscribe(&topic)
            .map_err(|e| NetError::Build(e.to_string()))?;
        Ok(Self {
            swarm,
            topic,
            terms,
            key,
            clock,
            books: BTreeMap::new(),
            rounds: BTreeMap::new(),
            peers: HashMap::new(),
            fetched: HashSet::new(),
            pending: HashMap::new(),
            // Dialled at the first redial, once the node runs.
            bootstrap: net.bootstrap.iter().map(|a| (a.clone(), false)).collect(),
            // Bound at the first redial, once the node runs.
            listen: net
                .listen
                .iter()
                .map(|a| (a.clone(), Listener::Unbound { told: false }))
                .collect(),
            agreed_at: BTreeMap::new(),
            received: Traffic::default(),
            loss: None,
        })
    }

    /// Drops `permille` of the gossiped messages this node receives, as a lossy network would,
    /// from a sequence seeded by `seed`: for harnesses.
    pub fn lose_messages(&mut self, permille: u16, seed: u64) {
        self.loss = Some(Loss {
            permille: u64::from(permille),
            state: seed,
        });
    }

    /// Runs until `commands` closes, telling `events` what happens.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<NodeCommand>,
        events: mpsc::Sender<NodeEvent>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut redial = tokio::time::interval(REDIAL);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let said = tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                _ = tick.tick() => self.on_tick(),
                _ = redial.tick() => self.redial(),
            };
            for event in said {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Dials every bootstrap address this node has no connection of its own to: an unreachable
    /// peer is no reason not to start, and it may come later.
    fn redial(&mut self) -> Vec<NodeEvent> {
        for (address, _) in self.bootstrap.iter().filter(|(_, up)| !**up) {
            let _ = self.swarm.dial(address.clone());
        }
        self.relisten()
    }

    /// Listens on every address that has no listener, telling the first failure of each run of
    /// failures: a port held by another program is no reason not to take part by dialling out.
    fn relisten(&mut self) -> Vec<NodeEvent> {
        let mut said = Vec::new();
        for (address, listener) in &mut self.listen {
            let Listener::Unbound { told } = listener else {
                continue;
            };
            match self.swarm.listen_on(address.clone()) {
                Ok(id) => *listener = Listener::Bound(id),
                Err(e) if !*told => {
                    *told = true;
                    said.push(NodeEvent::NotListening(address.clone(), why_not(&e)));
                }
                Err(_) => {}
            }
        }
        said
    }

    /// Notes that a listener closed, so that its address is bound again at the next redial.
    fn listener_closed(&mut self, id: libp2p::core::transport::ListenerId) {
        for listener in self.listen.values_mut() {
            if *listener == Listener::Bound(id) {
                *listener = Listener::Unbound { told: false };
            }
        }
    }

    /// Notes whether this node's own connection to a bootstrap address is up.
    fn dialled(&mut self, endpoint: &libp2p::core::ConnectedPoint, up: bool) {
        if let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint
            && let Some(state) = self.bootstrap.get_mut(address)
        {
            *state = up;
        }
    }

    /// The book of `slot`, opened if the slot is current or among the next two; `Err` says why
    /// a message for it is refused.
    fn book(&mut self, slot: Slot) -> Result<&mut SlotBook, Rejection> {
        let current = self.terms.slot_at(self.now());
        if slot < current && !self.books.contains_key(&slot) {
            return Err(Rejection::Replay);
        }
        if slot.0 > current.0 + 2 * self.terms.slot_ms || slot.0 % self.terms.slot_ms != 0 {
            return Err(Rejection::WrongSlot);
        }
        let me = self.key.address();
        let terms = self.terms.clone();
        Ok(self
            .books
            .entry(slot)
            .or_insert_with(|| SlotBook::new(terms, slot, me)))
    }

    fn publish(&mut self, bytes: Vec<u8>) {
        // With no peer in the mesh yet the message is lost to them; they fetch the bids at gate
        // closure, and a holding is published again with every change.
        let _ = self
            .swarm
            .behaviour_mut()
            .gossip
            .publish(self.topic.clone(), bytes);
    }

    fn on_command(&mut self, command: NodeCommand) -> Vec<NodeEvent> {
        match command {
            NodeCommand::Bid(bid) => {
                let slot = bid.slot;
                // A second, different bid would exclude this gateway from the slot.
                let me = self.key.address();
                if let Some(held) = self.books.get(&slot).and_then(|b| b.bid_of(&me))
                    && held.body != bid
                {
                    return vec![NodeEvent::Rejected {
                        slot: Some(slot),
                        reason: Rejection::Equivocation(me),
                    }];
                }
                let signed = bid.sign(&self.key);
                let now = self.now();
                let taken = self.book(slot).and_then(|b| b.offer(signed.clone(), now));
                match taken {
                    Ok(_) => {
                        self.publish(signed.to_bytes());
                        Vec::new()
                    }
                    Err(reason) => vec![NodeEvent::Rejected {
                        slot: Some(slot),
                        reason,
                    }],
                }
            }
            NodeCommand::Report(report) => {
                let signed = report.sign(&self.key);
                if let Ok(book) = self.book(report.slot) {
                    let _ = book.report(signed.clone());
                }
                self.publish(signed.to_bytes());
                Vec::new()
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) -> Vec<NodeEvent> {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => vec![NodeEvent::Listening(address)],
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.listener_closed(listener_id);
                Vec::new()
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                self.dialled(&endpoint, true);
                if let Some(member) = peer_address(&peer_id) {
                    self.peers.insert(member, peer_id);
                }
                Vec::new()
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                self.dialled(&endpoint, false);
                if num_established == 0 {
                    self.peers.retain(|_, p| *p != peer_id);
                    vec![NodeEvent::PeerLeft(peer_id)]
                } else {
                    Vec::new()
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                if self.loss.as_mut().is_some_and(Loss::next) {
                    self.swarm
                        .behaviour_mut()
                        .gossip
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    return Vec::new();
                }
                self.received.messages += 1;
                self.received.bytes += message.data.len() as u64;
                let (acceptance, said) = self.on_gossip(&message.data);
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                said
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Subscribed {
                peer_id,
                ..
            })) => vec![NodeEvent::PeerJoined(peer_id)],
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(request_response::Event::Message {
                message,
                ..
            })) => self.on_fetch(message),
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(
                request_response::Event::OutboundFailure { request_id, .. },
            )) => {
                // Asked again at the next tick, while there is time.
                if let Some(asked) = self.pending.remove(&request_id) {
                    self.fetched.remove(&asked);
                }
                Vec::new()
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (_, address) in found {
                    let _ = self.swarm.dial(address);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Takes one gossiped message: accepted (and forwarded), ignored, or rejected with a reason.
    fn on_gossip(&mut self, data: &[u8]) -> (MessageAcceptance, Vec<NodeEvent>) {
        let now = self.now();
        let result = if let Some(bid) = SignedBid::from_bytes(data) {
            let slot = bid.body.slot;
            (
                Some(slot),
                self.book(slot).and_then(|b| b.offer(bid, now).map(|_| ())),
            )
        } else if let Some(holding) = Signed::<Holding>::from_bytes(data) {
            let slot = holding.body.slot;
            let heard = self.book(slot).and_then(|b| b.hear(&holding));
            self.note_agreement(slot, now);
            (Some(slot), heard.map(|_| ()))
        } else if let Some(report) = Signed::<MeterReport>::from_bytes(data) {
            let slot = report.body.slot;
            (
                Some(slot),
                self.book(slot).and_then(|b| b.report(report).map(|_| ())),
            )
        } else {
            (None, Err(Rejection::Malformed))
        };
        match result {
            (_, Ok(())) => (MessageAcceptance::Accept, Vec::new()),
            (slot, Err(reason)) => {
                let acceptance = match reason {
                    // Not the sender's fault, or already known: do not punish the forwarder.
                    Rejection::Late | Rejection::Replay | Rejection::WrongSlot => {
                        MessageAcceptance::Ignore
                    }
                    _ => MessageAcceptance::Reject,
                };
                (acceptance, vec![NodeEvent::Rejected { slot, reason }])
            }
        }
    }

    fn on_fetch(
        &mut self,
        message: request_response::Message<BidRequest, Vec<Vec<u8>>>,
    ) -> Vec<NodeEvent> {
        match message {
            request_response::Message::Request {
                request, channel, ..
            } => {
                let bids = self
                    .books
                    .get(&request.slot)
                    .map(|b| {
                        b.missing_from(&request.inventory)
                            .iter()
                            .map(Signed::to_bytes)
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .fetch
                    .send_response(channel, bids);
                Vec::new()
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                self.pending.remove(&request_id);
                self.on_fetched(response)
            }
        }
    }

    /// Notes when `slot`'s book, voting, first holds a quorum of votes for its bid set.
    fn note_agreement(&mut self, slot: Slot, now: i64) {
        if let Some(book) = self.books.get(&slot)
            && *book.phase() == Phase::Voting
            && book.agreeing() >= self.terms.quorum
        {
            self.agreed_at.entry(slot).or_insert(now);
        }
    }

    /// Offers every bid a peer sent, then publishes this node's holding again if its bid set
    /// changed.
    fn on_fetched(&mut self, response: Vec<Vec<u8>>) -> Vec<NodeEvent> {
        let mut said = Vec::new();
        let mut changed = BTreeSet::new();
        self.received.messages += response.len() as u64;
        self.received.bytes += response.iter().map(|b| b.len() as u64).sum::<u64>();
        for bytes in response {
            let Some(bid) = SignedBid::from_bytes(&bytes) else {
                said.push(NodeEvent::Rejected {
                    slot: None,
                    reason: Rejection::Malformed,
                });
                continue;
            };
            let slot = bid.body.slot;
            let Some(book) = self.books.get_mut(&slot) else {
                continue;
            };
            let before = book.digest();
            let outcome = book.offer_fetched(bid);
            if book.digest() != before {
                changed.insert(slot);
            }
            match outcome {
                // Known bids, and the excluded sender's bids again, are no news.
                Ok(_) | Err(Rejection::Equivocation(_)) => {}
                Err(reason) => said.push(NodeEvent::Rejected {
                    slot: Some(slot),
                    reason,
                }),
            }
        }
        for slot in changed {
            self.publish_holding(slot, false);
        }
        said
    }

    /// Publishes the next round of this node's holding for `slot`: its vote if `vote` (which
    /// freezes the bid set), else what it holds now.
    fn publish_holding(&mut self, slot: Slot, vote: bool) {
        let Some(book) = self.books.get_mut(&slot) else {
            return;
        };
        let round = self.rounds.entry(slot).or_insert(0);
        let holding = if vote {
            book.vote(*round)
        } else {
            book.holding(*round)
        };
        *round += 1;
        let signed = holding.sign(&self.key);
        self.publish(signed.to_bytes());
    }

    /// The phase of `slot`'s book, if there is one.
    fn phase(&self, slot: Slot) -> Option<&Phase> {
        self.books.get(&slot).map(SlotBook::phase)
    }

    /// Gate closures, fetches of differing bid sets, votes, settlements and old books. The
    /// first half of the grace period reconciles the bid sets, the second counts the votes on
    /// the frozen ones.
    fn on_tick(&mut self) -> Vec<NodeEvent> {
        let now = self.now();
        let mut said = Vec::new();
        let slots: Vec<Slot> = self.books.keys().copied().collect();
        for slot in slots {
            let gate = self.terms.gate_closure(slot);
            let vote_at = gate + self.terms.grace_ms / 2;
            if now >= gate && self.phase(slot) == Some(&Phase::Open) {
                if let Some(book) = self.books.get_mut(&slot) {
                    book.close_gate();
                }
                self.publish_holding(slot, false);
            }
            if now >= gate && now < vote_at {
                self.fetch_differing(slot);
            }
            if now >= vote_at && self.phase(slot) == Some(&Phase::GateClosed) {
                self.publish_holding(slot, true);
                self.note_agreement(slot, now);
            }
            if now >= gate + self.terms.grace_ms
                && self.phase(slot) == Some(&Phase::Voting)
                && let Some(book) = self.books.get_mut(&slot)
            {
                let phase = book.settle().clone();
                said.push(NodeEvent::Settled {
                    slot,
                    phase,
                    bids: book.bids(),
                    agreed_at: self.agreed_at.get(&slot).copied(),
                    received: self.received,
                });
            }
        }
        let oldest = Slot(self.terms.slot_at(now).0 - KEPT_SLOTS * self.terms.slot_ms);
        self.books.retain(|s, _| *s >= oldest);
        self.rounds.retain(|s, _| *s >= oldest);
        self.fetched.retain(|(s, ..)| *s >= oldest);
        self.agreed_at.retain(|s, _| *s >= oldest);
        said
    }

    /// Asks every member connected to this node whose digest differs from its own for the bids
    /// it lacks, once per digest (the others are reached through the members that fetched from
    /// them).
    fn fetch_differing(&mut self, slot: Slot) {
        let Some(book) = self.books.get(&slot) else {
            return;
        };
        let mine = book.digest();
        let asked: Vec<(PeerId, Address, [u8; 32])> = book
            .digests()
            .filter(|(_, d)| *d != mine)
            .filter(|(member, digest)| !self.fetched.contains(&(slot, *member, *digest)))
            .filter_map(|(member, digest)| Some((*self.peers.get(&member)?, member, digest)))
            .collect();
        if asked.is_empty() {
            return;
        }
        let inventory = book.inventory();
        for (peer, member, digest) in asked {
            self.fetched.insert((slot, member, digest));
            let request = BidRequest {
                slot,
                inventory: inventory.clone(),
            };
            let id = self
                .swarm
                .behaviour_mut()
                .fetch
                .send_request(&peer, request);
            self.pending.insert(id, (slot, member, digest));
        }
    }
}

fn behaviour(
    key: &identity::Keypair,
    mdns: bool,
    topic: &IdentTopic,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    // Every dialogue message is signed by its gateway's key, which is also its peer id: a second
    // signature by gossipsub would be checked on each copy a node receives (several per message
    // in a mesh), before duplicates are dropped. Messages go anonymous, named by their hash.
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|m| gossipsub::MessageId::new(&keccak256(&m.data)))
        .validate_messages()
        // The dialogue's messages are small; the frames around them (control messages listing
        // many message ids) keep gossipsub's own limit.
        .max_transmit_size_for_topic(MAX_MESSAGE, topic.hash())
        // Every member publishes at the same instants (gate closure, the vote): a busy node
        // sends late rather than drops what gossipsub would give up on after 1 s.
        .forward_queue_duration(QUEUED)
        .publish_queue_duration(QUEUED)
        .build()?;
    let gossip = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)?;
    let fetch = request_response::Behaviour::new(
        [(FETCH, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
    );
    let identify = identify::Behaviour::new(identify::Config::new(
        "/daisee/dialogue/1".into(),
        key.public(),
    ));
    let mdns = if mdns {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            key.public().to_peer_id(),
        )?)
    } else {
        None
    };
    Ok(Behaviour {
        gossip,
        fetch,
        identify,
        mdns: mdns.into(),
    })
}

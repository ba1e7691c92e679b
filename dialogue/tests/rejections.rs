//! Every reason to refuse a message, sent over the network: a peer of the harness speaks raw
//! gossipsub on the community's topic to a running node and publishes one bad message of each
//! kind; the node names each reason. A member that signs two different bids is excluded from the
//! slot, and the node keeps both bids as evidence.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod clock;
mod common;

use std::sync::Arc;
use std::time::Duration;

use clock::now_ms;
use daisee_dialogue::net::{NetConfig, Node, NodeCommand, NodeEvent};
use daisee_dialogue::{
    Address, Bid, Body, CurveError, GatewayKey, Phase, Rejection, Slot, Terms, keccak256,
};
use futures_util::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, identity, noise, tcp, yamux};
use tokio::sync::mpsc;

/// A peer that speaks gossipsub on the community's topic and nothing of the protocol.
fn raw_peer(topic: &IdentTopic) -> Swarm<gossipsub::Behaviour> {
    let key = identity::Keypair::generate_ed25519();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            // As the dialogue speaks it: anonymous messages, named by their hash.
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(ValidationMode::Anonymous)
                .message_id_fn(|m| gossipsub::MessageId::new(&keccak256(&m.data)))
                .heartbeat_interval(Duration::from_millis(200))
                .build()
                .unwrap();
            gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config).unwrap()
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.behaviour_mut().subscribe(topic).unwrap();
    swarm
}

/// A bid of `key` for `slot` with `powers`, as bytes on the wire.
fn bid(terms: &Terms, key: &GatewayKey, slot: Slot, powers: Vec<i64>) -> Vec<u8> {
    Bid {
        terms: terms.digest(),
        slot,
        powers,
    }
    .sign(key)
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_message_sent_over_the_network_is_refused_with_its_reason() {
    let keys = common::keys(3);
    // Slots of ten seconds: the slot after next stays open while the messages go out. A quorum
    // of one: the node alone clears, so that the clearing shows who is left out.
    let mut terms = (*common::terms(&keys, 10_000, 2_000, 1_000)).clone();
    terms.quorum = 1;
    let terms = Arc::new(terms);
    let net = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        mdns: false,
    };
    let node = Node::new(keys[0].clone(), terms.clone(), &net, Arc::new(now_ms)).unwrap();
    let (_commands, inbox) = mpsc::channel::<NodeCommand>(16);
    let (outbox, mut events) = mpsc::channel(256);
    tokio::spawn(node.run(inbox, outbox));
    let listening: Multiaddr = loop {
        if let Some(NodeEvent::Listening(a)) = events.recv().await {
            break a;
        }
    };

    let topic = IdentTopic::new(format!("/daisee/dialogue/1/{}", terms.community));
    let mut peer = raw_peer(&topic);
    peer.dial(listening).unwrap();
    // Until the node has joined the topic on the peer's side.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) =
                peer.select_next_some().await
            {
                return;
            }
        }
    })
    .await
    .expect("the node subscribes");

    let current = terms.slot_at(now_ms());
    let open = Slot(current.0 + 2 * terms.slot_ms);
    let good = common::powers(1);
    let stranger = GatewayKey::from_secret(&[99; 32]).unwrap();
    let mut other_terms = (*terms).clone();
    other_terms.community = "elsewhere".into();
    let member = keys[1].address();
    let mut forged = bid(&terms, &keys[2], open, good.clone());
    *forged.last_mut().unwrap() ^= 1;
    let mut rising = good.clone();
    rising[5] = rising[4] + 1;
    let mut too_much = good.clone();
    too_much[0] = 5_000_001;
    let equivocating = vec![-1_000_000; 40];
    type Check = fn(&Rejection, Address) -> bool;
    let late = Slot(open.0 + 10 * terms.slot_ms);
    let past = Slot(current.0 - 5 * terms.slot_ms);
    // Each message and the reason it must be refused for; `None`: taken.
    let sent: Vec<(Vec<u8>, Option<Check>)> = vec![
        (forged, Some(|r, _| *r == Rejection::BadSignature)),
        (
            bid(&terms, &stranger, open, good.clone()),
            Some(|r, _| matches!(r, Rejection::NotMember(_))),
        ),
        (
            bid(&other_terms, &keys[1], open, good.clone()),
            Some(|r, _| *r == Rejection::WrongTerms),
        ),
        (
            bid(&terms, &keys[1], late, good.clone()),
            Some(|r, _| *r == Rejection::WrongSlot),
        ),
        (
            bid(&terms, &keys[1], past, good.clone()),
            Some(|r, _| *r == Rejection::Replay),
        ),
        (
            bid(&terms, &keys[1], current, good.clone()),
            Some(|r, _| *r == Rejection::Late),
        ),
        (
            bid(&terms, &keys[1], open, rising),
            Some(|r, _| matches!(r, Rejection::Curve(CurveError::NotMonotone(5)))),
        ),
        (
            bid(&terms, &keys[1], open, too_much),
            Some(|r, _| {
                matches!(
                    r,
                    Rejection::Curve(CurveError::OutsideRatings { step: 0, .. })
                )
            }),
        ),
        (
            b"not a message of the protocol".to_vec(),
            Some(|r, _| *r == Rejection::Malformed),
        ),
        // A good bid, then another for the same slot: the second is the equivocation.
        (bid(&terms, &keys[1], open, good.clone()), None),
        (
            bid(&terms, &keys[1], open, equivocating),
            Some(|r, a| *r == Rejection::Equivocation(a)),
        ),
    ];
    for (bytes, _) in &sent {
        peer.behaviour_mut()
            .publish(topic.clone(), bytes.clone())
            .unwrap();
        // Let the peer's swarm send it.
        let _ = tokio::time::timeout(Duration::from_millis(50), peer.select_next_some()).await;
    }
    let checks: Vec<Check> = sent.iter().filter_map(|(_, check)| *check).collect();
    let mut refused = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while refused.len() < checks.len() {
            tokio::select! {
                e = events.recv() => if let Some(NodeEvent::Rejected { reason, .. }) = e {
                    refused.push(reason);
                },
                _ = peer.select_next_some() => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only these were refused: {refused:?}"));
    for (i, check) in checks.iter().enumerate() {
        assert!(
            refused.iter().any(|r| check(r, member)),
            "refusal {i} is missing: {refused:?}"
        );
    }

    // The slot clears without the excluded member, and both its bids are kept.
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                e = events.recv() => if let Some(NodeEvent::Settled { slot, phase, bids, .. }) = e
                    && slot == open
                {
                    return (phase, bids);
                },
                _ = peer.select_next_some() => {}
            }
        }
    })
    .await
    .expect("the slot settles");
    let (phase, bids) = settled;
    let Phase::Agreed(clearing) = phase else {
        panic!("{phase:?}")
    };
    assert!(
        clearing.allocations.iter().all(|(a, _)| *a != member),
        "{clearing:?}"
    );
    let from_member = bids
        .iter()
        .filter(|b| b.sender().is_ok_and(|s| s == member))
        .count();
    assert_eq!(
        from_member, 2,
        "both bids of the equivocating member are kept"
    );
}

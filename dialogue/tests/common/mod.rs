//! A small community shared by the tests: gateways with well-known keys, half producing, half
//! consuming.

use std::sync::Arc;

use daisee_dialogue::{GatewayKey, Member, PriceBasis, Step, Terms};

/// The keys of `n` gateways (secrets 0x01…01, 0x02…02, …).
pub(crate) fn keys(n: u8) -> Vec<GatewayKey> {
    (1..=n)
        .map(|i| GatewayKey::from_secret(&[i; 32]).expect("a key"))
        .collect()
}

/// The community of `keys`: 40 price steps, the grid buying at 10 and selling at 30, 8 kW
/// feeder caps, 5 kW ratings, slots of `slot_ms` closing `gate_ms` before, `grace_ms` to agree.
pub(crate) fn terms(keys: &[GatewayKey], slot_ms: i64, gate_ms: i64, grace_ms: i64) -> Arc<Terms> {
    let terms = Terms {
        community: "rue-des-lilas".into(),
        basis: PriceBasis {
            first: 0,
            increment: 10_000,
            steps: 40,
        },
        import_tariff: Step(30),
        feed_in_tariff: Step(10),
        import_cap_mw: 8_000_000,
        export_cap_mw: 8_000_000,
        slot_ms,
        gate_ms,
        grace_ms,
        quorum: Terms::default_quorum(keys.len()),
        members: keys
            .iter()
            .map(|k| Member {
                address: k.address(),
                import_mw: 5_000_000,
                export_mw: 5_000_000,
            })
            .collect(),
    };
    terms.check().expect("good terms");
    Arc::new(terms)
}

/// Gateway `i`'s curve: the odd ones produce 2 kW at any price, the even ones take 3 kW below
/// step 20 and nothing from there.
pub(crate) fn powers(i: usize) -> Vec<i64> {
    (0..40)
        .map(|k| match (i % 2, k < 20) {
            (1, _) => -2_000_000,
            (_, true) => 3_000_000,
            _ => 0,
        })
        .collect()
}

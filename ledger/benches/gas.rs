//! What the ledger costs on chain, in gas (a count that does not drift with the machine): a
//! commitment whatever the readings behind it, a settlement (the first of a slot and the
//! others) in communities of 2, 5 and 10 gateways, a gateway's day at 1 Hz, a reading's proof as
//! the readings grow, and the gas of checking one with `eth_call`.
//!
//! `cargo bench -p daisee-ledger --bench gas` (needs anvil: `npm ci` in ledger/contracts).

use alloy::network::TransactionBuilder;
use alloy::primitives::B256;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use daisee_hal::{MilliWatts, Timestamp};
use daisee_ledger::admin::{Admin, community_id};
use daisee_ledger::contract::DaiseeLedger::{self, SlotResult};
use daisee_ledger::devnet::{CHAIN_ID, Devnet, GRID, OPERATOR_SECRET, POOL, terms};
use daisee_ledger::{Chain, INTERVAL_MS, Reading, ReadingTree, U256};

const SLOT_MS: i64 = 900_000;
const INTERVALS_A_DAY: u64 = 96;
const START: i64 = 1_800_000_000_000;

/// Sends `call` from `chain`'s account and returns the gas its receipt says it used.
async fn gas_of(provider: &RootProvider, chain: &Chain, call: &[u8]) -> u64 {
    let gas = chain.simulate(call).await.expect("the call goes through");
    let nonce = chain.nonce(true).await.expect("nonce");
    let signed = chain.sign(call, nonce, gas).await.expect("signed");
    chain.broadcast(&signed.raw).await.expect("sent");
    let mut receipt = None;
    for _ in 0..200 {
        receipt = provider
            .get_transaction_receipt(signed.hash)
            .await
            .expect("receipt");
        if receipt.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let receipt = receipt.expect("mined within 4 s");
    assert!(receipt.status(), "the transaction reverted");
    receipt.gas_used
}

/// The readings of the interval starting at `start`: `channels` channels at 1 Hz.
fn interval_readings(start: i64, channels: usize) -> Vec<Reading> {
    (0..channels)
        .flat_map(|c| {
            (0..INTERVAL_MS / 1000).map(move |s| Reading {
                channel: format!("ch{c}"),
                at: Timestamp(start + s * 1000),
                power: MilliWatts(1_000_000 + s * 7 + c as i64),
            })
        })
        .collect()
}

fn mean(values: &[u64]) -> u64 {
    values.iter().sum::<u64>() / values.len().max(1) as u64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let node = Devnet::start(0, None, true).expect("anvil (npm ci in ledger/contracts)");
    let provider = daisee_ledger::node(&node.url()).expect("url");
    let operator = Admin::new(&node.url(), &OPERATOR_SECRET).expect("operator");
    let contract = operator.deploy().await.expect("deploy");
    let credits = U256::from(10u64).pow(U256::from(21u64));
    let eth = U256::from(10u64).pow(U256::from(19u64));
    let mut gateways = Vec::new();
    for (name, members) in [("two", 2u8), ("five", 5), ("ten", 10)] {
        let terms = terms(name, operator.address(), SLOT_MS);
        operator
            .create_community(contract, &terms)
            .await
            .expect("community");
        let mut chains = Vec::new();
        for i in 0..members {
            let secret = [gateways.len() as u8 * 16 + i + 1; 32];
            let chain = Chain::new(&node.url(), CHAIN_ID, contract, &secret).expect("chain");
            let ratings = (20_000_000, 20_000_000);
            operator
                .enroll(contract, chain.address(), name, ratings, (eth, credits))
                .await
                .expect("enroll");
            chains.push(chain);
        }
        gateways.push((name, chains));
    }
    for account in [POOL, GRID] {
        operator
            .mint(contract, account, credits)
            .await
            .expect("mint");
    }

    // Commitments: the same gas whatever the readings behind the root.
    println!(
        "{:<44} {:>10} {:>12} {:>12}",
        "commitment of one interval", "readings", "gas", "proof hashes"
    );
    let committer = &gateways[0].1[0];
    let mut commit_gas = Vec::new();
    for (k, channels) in [1usize, 4, 16].into_iter().enumerate() {
        let interval = START + k as i64 * INTERVAL_MS;
        let readings = interval_readings(interval, channels);
        let tree = ReadingTree::new(readings.iter().map(Reading::leaf).collect());
        let call = DaiseeLedger::commitCall {
            interval,
            root: tree.root(),
            readings: readings.len() as u32,
            importMwh: 250_000,
            exportMwh: 1_000,
        };
        let gas = gas_of(&provider, committer, &call.abi_encode()).await;
        commit_gas.push(gas);
        let proof = tree.proof(0).expect("proof").len();
        println!(
            "{:<44} {:>10} {gas:>12} {proof:>12}",
            format!("  {channels} channel(s) at 1 Hz"),
            readings.len()
        );
    }

    // Checking a reading: a view, free to anyone, but it has a gas figure all the same.
    let readings = interval_readings(START + 2 * INTERVAL_MS, 16);
    let tree = ReadingTree::new(readings.iter().map(Reading::leaf).collect());
    let (reading, index) = (&readings[5000], 5000);
    let proof: Vec<B256> = tree.proof(index).expect("proof");
    let view = DaiseeLedger::verifyReadingCall {
        gateway: committer.address(),
        channel: reading.channel.clone(),
        timeMs: reading.at.0,
        powerMw: reading.power.0,
        proof: proof.clone(),
    };
    let request = TransactionRequest::default()
        .with_to(contract)
        .with_input(view.abi_encode());
    let verify_gas = provider.estimate_gas(request).await.expect("estimate");
    assert!(
        committer
            .verify(committer.address(), reading, &proof)
            .await
            .expect("verify")
    );
    println!(
        "\nproof of one reading among {} (16 channels, an interval at 1 Hz): {} hashes, {} bytes; \
         verifyReading by eth_call: {verify_gas} gas (free)",
        readings.len(),
        proof.len(),
        proof.len() * 32
    );
    println!(
        "{:<44} {:>12}",
        "readings in an interval's tree", "proof hashes"
    );
    for n in [60usize, 900, 3_600, 14_400, 57_600] {
        let tree = ReadingTree::new((0..n).map(|i| B256::from(U256::from(i + 1))).collect());
        println!(
            "{:<44} {:>12}",
            format!("  {n}"),
            // The first leaf's path: the longest, no level skipped for want of a sibling.
            tree.proof(0).expect("proof").len()
        );
    }

    // Settlements: each gateway of a community settles one slot.
    println!(
        "\n{:<44} {:>14} {:>14}",
        "settlement of one slot", "first (gas)", "others (gas)"
    );
    let mut settle_gas = Vec::new();
    for (name, chains) in &gateways {
        let n = chains.len() as i64;
        // Half take 2 kW, half send 1.5 kW; the grid takes or gives the rest.
        let allocations: Vec<i64> = (0..n)
            .map(|i| if i % 2 == 0 { 2_000_000 } else { -1_500_000 })
            .collect();
        let grid_mw: i64 = allocations.iter().sum();
        let mut gas = Vec::new();
        for (chain, allocation) in chains.iter().zip(&allocations) {
            let r = SlotResult {
                community: community_id(name),
                slot: START,
                digest: B256::repeat_byte(0x5E),
                price: 200_000,
                gridMw: grid_mw,
                allocationMw: *allocation,
                importMwh: if *allocation > 0 { 520_000 } else { 0 },
                exportMwh: if *allocation < 0 { 360_000 } else { 0 },
            };
            gas.push(gas_of(&provider, chain, &chain.settle_call(&r)).await);
        }
        println!(
            "{:<44} {:>14} {:>14}",
            format!("  {n} gateways"),
            gas[0],
            mean(&gas[1..])
        );
        settle_gas.extend_from_slice(&gas[1..]);
    }

    let commit = mean(&commit_gas);
    let settle = mean(&settle_gas);
    println!(
        "\na gateway's day at 1 Hz (96 intervals, one commitment each whatever the sampling rate; \
         96 slots settled):"
    );
    println!("  commitments {:>12} gas", commit * INTERVALS_A_DAY);
    println!("  settlements {:>12} gas", settle * INTERVALS_A_DAY);
    println!(
        "  total       {:>12} gas",
        (commit + settle) * INTERVALS_A_DAY
    );
}

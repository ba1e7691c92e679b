//! The ledger from the command line: `daiseectl ledger` shows the gateway's account, credits and
//! outbox; `daiseectl prove CHANNEL TIME` gets a reading and its proof from the gateway and asks
//! the chain itself (not the gateway) whether the gateway committed it.

use std::str::FromStr;

use daisee_api::LedgerProxy;
use daisee_hal::{MilliWatts, Timestamp};
use daisee_ledger::{Address, B256, Reading, verify_reading};
use zbus::Connection;

/// Prints the ledger's properties.
pub(crate) async fn status(conn: &Connection) -> zbus::Result<()> {
    let ledger = LedgerProxy::new(conn).await?;
    let credits = ledger.credits().await?;
    println!("account        {}", ledger.address().await?);
    println!(
        "chain          {} at {}",
        ledger.chain_id().await?,
        ledger.rpc_url().await?
    );
    println!("contract       {}", ledger.contract().await?);
    println!(
        "credits        {}",
        if credits.is_empty() {
            "(not read yet)".into()
        } else {
            credits_text(&credits)
        }
    );
    println!("queued         {}", ledger.queued().await?);
    println!("refused        {}", ledger.refused().await?);
    println!("last interval  {}", or_none(ledger.last_interval().await?));
    println!("last slot      {}", or_none(ledger.last_slot().await?));
    let error = ledger.error().await?;
    if !error.is_empty() {
        println!("chain          {error}");
    }
    Ok(())
}

/// Prints the reading of `channel` at `time` and its proof, and checks it on the chain at `rpc`
/// (the gateway's node when `None`). A reading the chain does not confirm is an error.
pub(crate) async fn prove(
    conn: &Connection,
    channel: &str,
    time: i64,
    rpc: Option<String>,
) -> zbus::Result<()> {
    let ledger = LedgerProxy::new(conn).await?;
    let (at, power, interval, root, proof) = ledger.prove(channel, time).await?;
    let failed = |what: &str| zbus::Error::Failure(what.to_owned());
    let gateway = Address::from_str(&ledger.address().await?)
        .map_err(|_| failed("the gateway's account is not an address"))?;
    let contract = Address::from_str(&ledger.contract().await?)
        .map_err(|_| failed("the contract is not an address"))?;
    let rpc = match rpc {
        Some(rpc) => rpc,
        None => ledger.rpc_url().await?,
    };
    let proof: Vec<B256> = proof
        .iter()
        .map(|p| B256::try_from(p.as_slice()).map_err(|_| failed("a proof node is not 32 bytes")))
        .collect::<Result<_, _>>()?;
    let root = B256::try_from(root.as_slice()).map_err(|_| failed("the root is not 32 bytes"))?;
    let reading = Reading {
        channel: channel.to_owned(),
        at: Timestamp(at),
        power: MilliWatts(power),
    };
    println!("reading   {channel} at {at}: {power} mW");
    println!("interval  {interval} (root {root})");
    println!("leaf      {}", reading.leaf());
    for (i, node) in proof.iter().enumerate() {
        println!("proof[{i}]  {node}");
    }
    println!("gateway   {gateway}");
    println!("contract  {contract} at {rpc}");
    let verified = verify_reading(&rpc, contract, gateway, &reading, &proof)
        .await
        .map_err(|e| zbus::Error::Failure(format!("the chain: {e}")))?;
    if verified {
        println!("the chain confirms: this reading is in the gateway's commitment of the interval");
        Ok(())
    } else {
        Err(failed(
            "the chain does NOT confirm this reading: it is not what the gateway committed",
        ))
    }
}

/// Credits in the smallest unit (15 decimals) as units of currency.
fn credits_text(smallest: &str) -> String {
    let digits = format!("{:0>16}", smallest.trim_start_matches('-'));
    let (whole, part) = digits.split_at(digits.len() - 15);
    let sign = if smallest.starts_with('-') { "-" } else { "" };
    format!("{sign}{whole}.{} ({smallest})", &part[..6])
}

fn or_none(ms: i64) -> String {
    if ms == 0 {
        "none yet".into()
    } else {
        ms.to_string()
    }
}

//! The chain as the gateway uses it: one account (the gateway key) calling one contract over
//! JSON-RPC. Every failure is either the chain being away (try later) or the contract refusing.

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolValue};
use alloy::transports::TransportError;

use crate::contract::DaiseeLedger::{self, DaiseeLedgerErrors, SlotResult};
use crate::merkle::Reading;

/// Why a call did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The node did not answer, or not sensibly: the call is tried again later.
    #[error("the chain is away: {0}")]
    Away(String),
    /// The contract refused the call, with its reason.
    #[error("the contract refuses: {0:?}")]
    Refused(DaiseeLedgerErrors),
    /// The call reverted without a reason the contract declares.
    #[error("the call reverts: {0}")]
    Reverted(String),
    /// The configuration is wrong (URL, key, chain id).
    #[error("{0}")]
    Misconfigured(String),
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        match e.as_error_resp() {
            Some(payload) => match payload.as_decoded_interface_error::<DaiseeLedgerErrors>() {
                Some(reason) => Failure::Refused(reason),
                None if payload.as_revert_data().is_some()
                    || payload.message.contains("revert") =>
                {
                    Failure::Reverted(payload.message.to_string())
                }
                None => Failure::Away(payload.to_string()),
            },
            None => Failure::Away(e.to_string()),
        }
    }
}

/// A transaction signed for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCall {
    /// The nonce it takes.
    pub nonce: u64,
    /// Its hash.
    pub hash: B256,
    /// Its bytes (EIP-2718).
    pub raw: Vec<u8>,
}

/// The gateway's account on one contract of one chain.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: RootProvider,
    signer: PrivateKeySigner,
    wallet: EthereumWallet,
    contract: Address,
    chain_id: u64,
}

impl Chain {
    /// The account of `secret` (the gateway key) on the contract at `contract` of chain
    /// `chain_id`, reached at `rpc` (http or https).
    pub fn new(
        rpc: &str,
        chain_id: u64,
        contract: Address,
        secret: &[u8; 32],
    ) -> Result<Self, Failure> {
        let provider = node(rpc)?;
        let signer = PrivateKeySigner::from_bytes(&B256::from(*secret))
            .map_err(|e| Failure::Misconfigured(format!("gateway key: {e}")))?;
        Ok(Self {
            provider,
            wallet: EthereumWallet::from(signer.clone()),
            signer,
            contract,
            chain_id,
        })
    }

    /// The gateway's account.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The contract's address.
    pub fn contract(&self) -> Address {
        self.contract
    }

    /// The chain id this account signs for.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Checks that the node serves the chain this account signs for.
    pub async fn check_chain(&self) -> Result<(), Failure> {
        let served = self.provider.get_chain_id().await?;
        if served != self.chain_id {
            return Err(Failure::Misconfigured(format!(
                "the node serves chain {served}, the configuration names {}",
                self.chain_id
            )));
        }
        Ok(())
    }

    /// The gas `call` takes from this account, simulated on the latest block: the contract's
    /// refusal shows here, before anything is signed.
    pub async fn simulate(&self, call: &[u8]) -> Result<u64, Failure> {
        Ok(self.provider.estimate_gas(self.request(call)).await?)
    }

    /// Signs `call` with `nonce` for `gas`, at the fees the node suggests now.
    pub async fn sign(&self, call: &[u8], nonce: u64, gas: u64) -> Result<SignedCall, Failure> {
        let fees = self.provider.estimate_eip1559_fees().await?;
        let request = self
            .request(call)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            // A fifth more than simulated: the state may change a little before it lands.
            .with_gas_limit(gas + gas / 5)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope = request
            .build(&self.wallet)
            .await
            .map_err(|e| Failure::Misconfigured(format!("signing: {e}")))?;
        Ok(SignedCall {
            nonce,
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718(),
        })
    }

    /// Sends a signed transaction; sending one the node knows or has mined already is no error.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<(), Failure> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_error_resp() {
                // What nodes answer for a transaction they hold or whose nonce is used: the
                // receipt says which.
                Some(p)
                    if [
                        "already known",
                        "already imported",
                        "nonce too low",
                        "known transaction",
                    ]
                    .iter()
                    .any(|m| p.message.to_lowercase().contains(m)) =>
                {
                    Ok(())
                }
                _ => Err(e.into()),
            },
        }
    }

    /// Whether the transaction `hash` is mined: `Some(true)` if it succeeded, `Some(false)` if
    /// it reverted.
    pub async fn landed(&self, hash: B256) -> Result<Option<bool>, Failure> {
        let receipt = self.provider.get_transaction_receipt(hash).await?;
        Ok(receipt.map(|r| r.status()))
    }

    /// The account's nonce: the transactions it has mined (`pending`: and those the node holds).
    pub async fn nonce(&self, pending: bool) -> Result<u64, Failure> {
        let count = self.provider.get_transaction_count(self.address());
        Ok(if pending {
            count.pending().await?
        } else {
            count.latest().await?
        })
    }

    /// The account's energy credits, in the token's smallest unit.
    pub async fn credits(&self) -> Result<U256, Failure> {
        let call = DaiseeLedger::balanceOfCall {
            account: self.address(),
        };
        let out = self.call(&call.abi_encode()).await?;
        U256::abi_decode(&out).map_err(|e| Failure::Away(format!("balance: {e}")))
    }

    /// Asks the contract whether `reading` is in `gateway`'s commitment of its interval.
    pub async fn verify(
        &self,
        gateway: Address,
        reading: &Reading,
        proof: &[B256],
    ) -> Result<bool, Failure> {
        verify_with(&self.provider, self.contract, gateway, reading, proof).await
    }

    /// The gateway's signature of its result `r` (EIP-191 over [`settlement_hash`]).
    pub fn sign_result(&self, r: &SlotResult) -> Bytes {
        let hash = settlement_hash(self.chain_id, self.contract, self.address(), r);
        // A local key over a 32-byte hash: nothing here can fail.
        let signature = self
            .signer
            .sign_message_sync(hash.as_slice())
            .expect("a local key signs any message");
        Bytes::from(signature.as_bytes().to_vec())
    }

    /// The contract call that settles `r` for this gateway, with its signature (ABI-encoded).
    pub fn settle_call(&self, r: &SlotResult) -> Vec<u8> {
        DaiseeLedger::settleCall {
            gateway: self.address(),
            r: r.clone(),
            signature: self.sign_result(r),
        }
        .abi_encode()
    }

    /// A view call on the contract; its answer's bytes.
    pub async fn call(&self, call: &[u8]) -> Result<Bytes, Failure> {
        Ok(self.provider.call(self.request(call)).await?)
    }

    fn request(&self, call: &[u8]) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.address())
            .with_to(self.contract)
            .with_input(call.to_vec())
    }
}

/// Asks the contract at `contract` on the node at `rpc` whether `reading` is in `gateway`'s
/// commitment of its interval: what anyone can check, with no key.
pub async fn verify_reading(
    rpc: &str,
    contract: Address,
    gateway: Address,
    reading: &Reading,
    proof: &[B256],
) -> Result<bool, Failure> {
    verify_with(&node(rpc)?, contract, gateway, reading, proof).await
}

async fn verify_with(
    provider: &RootProvider,
    contract: Address,
    gateway: Address,
    reading: &Reading,
    proof: &[B256],
) -> Result<bool, Failure> {
    let call = DaiseeLedger::verifyReadingCall {
        gateway,
        channel: reading.channel.clone(),
        timeMs: reading.at.0,
        powerMw: reading.power.0,
        proof: proof.to_vec(),
    };
    let request = TransactionRequest::default()
        .with_to(contract)
        .with_input(call.abi_encode());
    let out = provider.call(request).await?;
    bool::abi_decode(&out).map_err(|e| Failure::Away(format!("verifyReading: {e}")))
}

/// A client of the node at `rpc`, keyless (http, or https through rustls on ring).
pub fn node(rpc: &str) -> Result<RootProvider, Failure> {
    Ok(RootProvider::new_http(rpc_url(rpc)?))
}

/// The URL of a node, with the process's TLS provider (ring) installed: reqwest builds every
/// client with it, and panics without one.
pub(crate) fn rpc_url(rpc: &str) -> Result<reqwest::Url, Failure> {
    // Installing fails only if a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rpc.parse()
        .map_err(|e| Failure::Misconfigured(format!("RPC URL {rpc:?}: {e}")))
}

/// What a gateway signs to settle `r`: as the contract's `settlementHash` computes it.
pub fn settlement_hash(chain_id: u64, contract: Address, gateway: Address, r: &SlotResult) -> B256 {
    let tag = keccak256("DAISEE ledger settlement v1");
    keccak256((tag, U256::from(chain_id), contract, gateway, r.clone()).abi_encode_params())
}

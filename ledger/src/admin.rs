//! What a community's operator does on the ledger, once: deploy the contract, create the
//! community, register its gateways, issue credits. Used by the tests, the bench and the demo;
//! a gateway itself never holds an admin key.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::chain::Failure;
use crate::contract::DaiseeLedger;

/// A community's id on the ledger: the Keccak-256 of its name.
pub fn community_id(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

/// The contract's owner or a community's admin, acting with its own key.
#[derive(Debug, Clone)]
pub struct Admin {
    provider: DynProvider,
    address: Address,
}

/// A community's accounts and terms, as the contract keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityTerms {
    /// Its name.
    pub name: String,
    /// The account that registers its gateways.
    pub admin: Address,
    /// The account local trades are paid through.
    pub pool: Address,
    /// The account deviations are paid with.
    pub grid: Address,
    /// Its slot length in ms (a multiple of 3.6 s).
    pub slot_ms: i64,
    /// The grid's import tariff, micro-units per kWh.
    pub import_tariff: u64,
    /// The grid's feed-in tariff, micro-units per kWh.
    pub feed_in_tariff: u64,
}

impl Admin {
    /// The account of `secret` on the node at `rpc`.
    pub fn new(rpc: &str, secret: &[u8; 32]) -> Result<Self, Failure> {
        let url = crate::chain::rpc_url(rpc)?;
        let signer = PrivateKeySigner::from_bytes(&B256::from(*secret))
            .map_err(|e| Failure::Misconfigured(format!("admin key: {e}")))?;
        let address = signer.address();
        let provider = ProviderBuilder::new()
            .wallet(signer)
            .connect_http(url)
            .erased();
        Ok(Self { provider, address })
    }

    /// Its account.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Deploys the contract, owned by this account; its address.
    pub async fn deploy(&self) -> Result<Address, Failure> {
        let contract = DaiseeLedger::deploy(self.provider.clone())
            .await
            .map_err(|e| Failure::Away(format!("deploy: {e}")))?;
        Ok(*contract.address())
    }

    /// Creates a community (as the contract's owner).
    pub async fn create_community(
        &self,
        contract: Address,
        terms: &CommunityTerms,
    ) -> Result<u64, Failure> {
        let ledger = DaiseeLedger::new(contract, self.provider.clone());
        let call = ledger.createCommunity(
            community_id(&terms.name),
            terms.admin,
            terms.pool,
            terms.grid,
            terms.slot_ms,
            terms.import_tariff,
            terms.feed_in_tariff,
        );
        self.land(call.send().await).await
    }

    /// Registers `gateway` with its ratings in `community` (as the community's admin).
    pub async fn register(
        &self,
        contract: Address,
        gateway: Address,
        community: &str,
        import_mw: u64,
        export_mw: u64,
    ) -> Result<u64, Failure> {
        let ledger = DaiseeLedger::new(contract, self.provider.clone());
        let call = ledger.register(gateway, community_id(community), import_mw, export_mw);
        self.land(call.send().await).await
    }

    /// Issues `amount` credits to `to` (as the contract's owner).
    pub async fn mint(&self, contract: Address, to: Address, amount: U256) -> Result<u64, Failure> {
        let ledger = DaiseeLedger::new(contract, self.provider.clone());
        self.land(ledger.mint(to, amount).send().await).await
    }

    /// Sends `wei` of the chain's currency to `to`, for its gas.
    pub async fn fund(&self, to: Address, wei: U256) -> Result<u64, Failure> {
        use alloy::network::TransactionBuilder;
        let request = alloy::rpc::types::TransactionRequest::default()
            .with_to(to)
            .with_value(wei);
        let pending = self.provider.send_transaction(request).await;
        self.land(pending.map_err(alloy::contract::Error::from))
            .await
    }

    /// Gives `gateway` `eth` of the chain's currency for its gas and `credits`, and registers
    /// it in `community` with its ratings (as the owner and the community's admin at once).
    pub async fn enroll(
        &self,
        contract: Address,
        gateway: Address,
        community: &str,
        (import_mw, export_mw): (u64, u64),
        (eth, credits): (U256, U256),
    ) -> Result<(), Failure> {
        self.fund(gateway, eth).await?;
        if !credits.is_zero() {
            self.mint(contract, gateway, credits).await?;
        }
        self.register(contract, gateway, community, import_mw, export_mw)
            .await
            .map(drop)
    }

    /// Waits for a sent transaction's receipt; the gas it used.
    async fn land(
        &self,
        sent: Result<
            alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
            alloy::contract::Error,
        >,
    ) -> Result<u64, Failure> {
        let sent = sent.map_err(contract_failure)?;
        let receipt = sent
            .get_receipt()
            .await
            .map_err(|e| Failure::Away(format!("receipt: {e}")))?;
        if !receipt.status() {
            return Err(Failure::Reverted(format!(
                "transaction {} reverted",
                receipt.transaction_hash
            )));
        }
        Ok(receipt.gas_used)
    }
}

fn contract_failure(e: alloy::contract::Error) -> Failure {
    match e {
        alloy::contract::Error::TransportError(e) => e.into(),
        other => Failure::Away(other.to_string()),
    }
}

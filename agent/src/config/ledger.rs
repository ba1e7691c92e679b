//! The `[ledger]` table: the chain where the gateway commits its readings and settles its slots.

use daisee_ledger::Address;
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names};

/// The ledger, if the gateway records on one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// The node's JSON-RPC URL (http on loopback, https otherwise).
    pub rpc_url: String,
    /// The chain's id, which every transaction is signed for.
    pub chain_id: u64,
    /// The ledger contract's address.
    pub contract: Address,
    /// The channel whose energy each commitment totals.
    pub grid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LedgerTable {
    rpc_url: String,
    chain_id: u64,
    contract: String,
    grid: String,
}

/// The ledger's settings, checked.
pub(super) fn ledger(
    at: &Locator<'_>,
    table: &Spanned<LedgerTable>,
    channels: &Names,
    store: bool,
) -> Result<LedgerConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "ledger"), table.get_ref());
    if !store {
        return Err(at.error(
            "",
            "needs a [store]: the gateway's key and its outbox are kept in its directory",
        ));
    }
    check::http_url(&at, "rpc_url", &t.rpc_url)?;
    if t.chain_id == 0 {
        return Err(at.error("chain_id", "0 is no chain"));
    }
    let contract = t
        .contract
        .parse::<Address>()
        .map_err(|_| at.error("contract", "not an address (0x and 40 hex digits)"))?;
    check::channel(&at, channels, "grid", &t.grid)?;
    Ok(LedgerConfig {
        rpc_url: t.rpc_url.clone(),
        chain_id: t.chain_id,
        contract,
        grid: t.grid.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::dialogue::tests::SITE;

    const LEDGER: &str = r#"
[ledger]
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
grid = "grid"
"#;

    fn ledger() -> String {
        format!("{SITE}{LEDGER}")
    }

    #[test]
    fn a_ledger_names_a_node_a_chain_a_contract_and_the_grid_channel() {
        let config = Config::parse(&ledger()).unwrap();
        let table = config.ledger.unwrap();
        assert_eq!((table.chain_id, table.grid.as_str()), (31337, "grid"));
        for (from, to, key) in [
            ("http://127.0.0.1:8545", "ftp://x", "ledger.rpc_url"),
            ("http://127.0.0.1:8545", "http//x", "ledger.rpc_url"),
            ("31337", "0", "ledger.chain_id"),
            (
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "0x5FbDB23",
                "ledger.contract",
            ),
            ("grid = \"grid\"", "grid = \"meter\"", "ledger.grid"),
        ] {
            let e = Config::parse(&ledger().replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
        }
        let e = Config::parse(&ledger().replace("[store]\ndir = \"/data\"\n", "")).unwrap_err();
        assert!(e.to_string().contains("needs a [store]"), "{e}");
    }
}

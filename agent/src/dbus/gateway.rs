//! `org.daisee.Gateway1` at `Gateway`: the gateway's name, address, version, starting revision
//! and the time of its latest poll.

use std::sync::Arc;

use tokio::sync::watch;
use zbus::interface;

use crate::snapshot::Snapshot;

/// The gateway itself.
pub(super) struct GatewayObject {
    pub(super) name: String,
    pub(super) address: String,
    pub(super) revision: u64,
    pub(super) snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
}

#[interface(name = "org.daisee.Gateway1")]
impl GatewayObject {
    /// The gateway's name from its configuration.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The gateway's account (`0x` and 40 hexadecimal digits), from its key in the data
    /// directory: its identity in its community and on the ledger. Empty without a `[store]`.
    #[zbus(property)]
    fn address(&self) -> String {
        self.address.clone()
    }

    /// The agent's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").into()
    }

    /// The configuration revision the agent started with.
    #[zbus(property)]
    fn started_revision(&self) -> u64 {
        self.revision
    }

    /// When the latest poll started, in ms since 1970 on the gateway's clock (simulated in the
    /// demo); 0 before the first. Read it to ask the history about "the last hour". Not signalled.
    #[zbus(property(emits_changed_signal = "false"))]
    fn last_poll(&self) -> i64 {
        self.snapshots.borrow().as_ref().map_or(0, |s| s.at.0)
    }
}

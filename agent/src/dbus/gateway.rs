//! `org.daisee.Gateway1` at `Gateway`: the gateway's name, version and starting revision.

use zbus::interface;

/// The gateway itself.
pub(super) struct GatewayObject {
    pub(super) name: String,
    pub(super) revision: u64,
}

#[interface(name = "org.daisee.Gateway1")]
impl GatewayObject {
    /// The gateway's name from its configuration.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
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
}

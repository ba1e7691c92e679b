//! Client proxies of every interface the agent serves; the attribute of each carries its
//! interface name, the one place a client takes it from.

use zbus::proxy;

use crate::UpdateSlot;

/// The gateway itself.
#[proxy(
    interface = "org.daisee.Gateway1",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Gateway"
)]
pub trait Gateway {
    /// The gateway's name.
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    /// The gateway's account (`0x…`); empty without a data directory.
    #[zbus(property)]
    fn address(&self) -> zbus::Result<String>;
    /// The agent's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// The configuration revision the agent started with.
    #[zbus(property)]
    fn started_revision(&self) -> zbus::Result<u64>;
    /// When the latest poll started, in ms since 1970 on the gateway's clock.
    #[zbus(property(emits_changed_signal = "false"))]
    fn last_poll(&self) -> zbus::Result<i64>;
}

/// The configuration.
#[proxy(
    interface = "org.daisee.Gateway1.Config",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Config"
)]
pub trait Config {
    /// The whole configuration, as TOML.
    fn get(&self) -> zbus::Result<String>;
    /// Replaces the whole configuration; returns the revision and whether a restart applies it.
    fn set(&self, toml: &str) -> zbus::Result<(u64, bool)>;
    /// One key, as TOML.
    fn get_key(&self, key: &str) -> zbus::Result<String>;
    /// Sets one key to a TOML value; returns the revision and whether a restart applies it.
    fn set_key(&self, key: &str, value: &str) -> zbus::Result<(u64, bool)>;
    /// The revision on disk.
    #[zbus(property)]
    fn revision(&self) -> zbus::Result<u64>;
}

/// A sensor, meter or inverter channel.
#[proxy(
    interface = "org.daisee.Gateway1.Meter",
    default_service = "org.daisee.Gateway1"
)]
pub trait Meter {
    /// The channel's name.
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    /// Active power in mW (positive: consumed or imported).
    #[zbus(property)]
    fn power(&self) -> zbus::Result<i64>;
}

/// A relay.
#[proxy(
    interface = "org.daisee.Gateway1.Relay",
    default_service = "org.daisee.Gateway1"
)]
pub trait Relay {
    /// Holds the relay `on` or `off` by hand until released.
    fn switch(&self, state: &str) -> zbus::Result<()>;
    /// Gives the relay back to demand response, or to its safe state.
    fn release(&self) -> zbus::Result<()>;
}

/// An inverter's power limit.
#[proxy(
    interface = "org.daisee.Gateway1.Inverter",
    default_service = "org.daisee.Gateway1"
)]
pub trait Inverter {
    /// Holds the inverter at `percent` of its rated power for `revert_s` seconds.
    fn set_limit(&self, percent: u8, revert_s: u32) -> zbus::Result<()>;
    /// Gives the inverter back to the export limit, or to full power.
    fn release(&self) -> zbus::Result<()>;
}

/// Demand response.
#[proxy(
    interface = "org.daisee.Gateway1.Controller",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Controller"
)]
pub trait Controller {
    /// The grid power the controller last acted on, in mW.
    #[zbus(property)]
    fn grid_power(&self) -> zbus::Result<i64>;
}

/// The gateway in its community's machine dialogue.
#[proxy(
    interface = "org.daisee.Gateway1.Dialogue",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Dialogue"
)]
pub trait Dialogue {
    /// The community's name.
    #[zbus(property)]
    fn community(&self) -> zbus::Result<String>;
    /// The gateway's libp2p identity.
    #[zbus(property)]
    fn peer_id(&self) -> zbus::Result<String>;
    /// Peers connected now.
    #[zbus(property)]
    fn peers(&self) -> zbus::Result<u32>;
    /// The latest slot the gateway bid for.
    #[zbus(property)]
    fn bid_slot(&self) -> zbus::Result<i64>;
    /// The latest slot that settled.
    #[zbus(property)]
    fn last_slot(&self) -> zbus::Result<i64>;
    /// How it settled.
    #[zbus(property)]
    fn outcome(&self) -> zbus::Result<String>;
    /// Its price, micro-units per kWh.
    #[zbus(property)]
    fn price(&self) -> zbus::Result<i64>;
    /// Its price step; -1 without trade.
    #[zbus(property)]
    fn price_step(&self) -> zbus::Result<i32>;
    /// This gateway's allocation, mW.
    #[zbus(property)]
    fn allocation(&self) -> zbus::Result<i64>;
    /// Power kept in the community, mW.
    #[zbus(property)]
    fn kept_local(&self) -> zbus::Result<i64>;
    /// The slot of the latest meter report.
    #[zbus(property)]
    fn report_slot(&self) -> zbus::Result<i64>;
    /// Its deviation from the allocation, mWh.
    #[zbus(property)]
    fn deviation(&self) -> zbus::Result<i64>;
    /// Messages refused since start.
    #[zbus(property)]
    fn rejected(&self) -> zbus::Result<u64>;
    /// A settled slot: outcome, price step, allocation (mW), bid set (JSON).
    fn slot(&self, slot: i64) -> zbus::Result<(String, i32, i64, String)>;
}

/// The gateway on its community's ledger.
#[proxy(
    interface = "org.daisee.Gateway1.Ledger",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Ledger"
)]
pub trait Ledger {
    /// The gateway's account.
    #[zbus(property)]
    fn address(&self) -> zbus::Result<String>;
    /// The chain's id.
    #[zbus(property)]
    fn chain_id(&self) -> zbus::Result<u64>;
    /// The contract's address.
    #[zbus(property)]
    fn contract(&self) -> zbus::Result<String>;
    /// The node's URL.
    #[zbus(property)]
    fn rpc_url(&self) -> zbus::Result<String>;
    /// Energy credits in the smallest unit (decimal); empty until read.
    #[zbus(property)]
    fn credits(&self) -> zbus::Result<String>;
    /// Transactions not yet confirmed.
    #[zbus(property)]
    fn queued(&self) -> zbus::Result<u64>;
    /// Transactions the contract refused.
    #[zbus(property)]
    fn refused(&self) -> zbus::Result<u64>;
    /// The newest interval committed and confirmed; 0 before the first.
    #[zbus(property)]
    fn last_interval(&self) -> zbus::Result<i64>;
    /// The newest slot settled and confirmed; 0 before the first.
    #[zbus(property)]
    fn last_slot(&self) -> zbus::Result<i64>;
    /// Why the chain is not reached; empty when it is.
    #[zbus(property)]
    fn error(&self) -> zbus::Result<String>;
    /// A reading and its proof: (time, mW, interval start, root, proof).
    fn prove(
        &self,
        channel: &str,
        time: i64,
    ) -> zbus::Result<(i64, i64, i64, Vec<u8>, Vec<Vec<u8>>)>;
}

/// The history.
#[proxy(
    interface = "org.daisee.Gateway1.History",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/History"
)]
pub trait History {
    /// Samples of a channel: (ms since 1970, mW).
    fn samples(&self, channel: &str, from: i64, to: i64) -> zbus::Result<Vec<(i64, i64)>>;
    /// 15-minute energy of a channel: (slot start, mWh imported, mWh exported).
    fn energy(&self, channel: &str, from: i64, to: i64) -> zbus::Result<Vec<(i64, u64, u64)>>;
}

/// The update slots, as RAUC reports them.
#[proxy(
    interface = "org.daisee.Gateway1.Update",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Update"
)]
pub trait Update {
    /// The slot the gateway booted.
    fn boot_slot(&self) -> zbus::Result<String>;
    /// Every slot.
    fn slots(&self) -> zbus::Result<Vec<UpdateSlot>>;
    /// What RAUC is doing and the error of the last install that failed.
    fn installer(&self) -> zbus::Result<(String, String)>;
    /// Reads the feed now; the version it offers to install, or empty.
    fn check(&self) -> zbus::Result<String>;
    /// Installs a bundle (URL or path on the gateway) and reboots into it; its version.
    fn install(&self, url: &str) -> zbus::Result<String>;
    /// Installs a bundle not newer than the running version.
    fn downgrade(&self, url: &str) -> zbus::Result<String>;
    /// The running root's version.
    #[zbus(property)]
    fn running(&self) -> zbus::Result<String>;
    /// The feed followed.
    #[zbus(property)]
    fn feed(&self) -> zbus::Result<String>;
    /// `idle`, `checking`, `downloading`, `installing` or `rebooting`.
    #[zbus(property)]
    fn step(&self) -> zbus::Result<String>;
    /// How far the download or install is, 0 to 100.
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<i32>;
    /// What the download or RAUC is doing.
    #[zbus(property)]
    fn message(&self) -> zbus::Result<String>;
    /// The version the last check found to install.
    #[zbus(property)]
    fn available(&self) -> zbus::Result<String>;
    /// When the feed was last read, in ms since 1970.
    #[zbus(property)]
    fn last_check(&self) -> zbus::Result<i64>;
    /// Why the last check, download or install failed.
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    /// The version the gateway fell back from.
    #[zbus(property)]
    fn rolled_back(&self) -> zbus::Result<String>;
}

/// The gateway's connection to its MQTT broker.
#[proxy(
    interface = "org.daisee.Gateway1.Mqtt",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Mqtt"
)]
pub trait Mqtt {
    /// The broker, `host:port`.
    #[zbus(property)]
    fn broker(&self) -> zbus::Result<String>;
    /// Whether the connection is up.
    #[zbus(property)]
    fn connected(&self) -> zbus::Result<bool>;
    /// Why the last connection failed or ended; empty while connected.
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    /// State messages published since the agent started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn published(&self) -> zbus::Result<u64>;
    /// Relay commands taken from the broker.
    #[zbus(property)]
    fn commands(&self) -> zbus::Result<u64>;
}

/// The gateway's web page.
#[proxy(
    interface = "org.daisee.Gateway1.Web",
    default_service = "org.daisee.Gateway1",
    default_path = "/org/daisee/Gateway1/Web"
)]
pub trait Web {
    /// Sets the page's password, kept as a hash; every session ends.
    fn set_password(&self, password: &str) -> zbus::Result<()>;
    /// The page's address.
    #[zbus(property)]
    fn url(&self) -> zbus::Result<String>;
    /// Whether a person logged in on the page may switch relays.
    #[zbus(property)]
    fn writes(&self) -> zbus::Result<bool>;
}

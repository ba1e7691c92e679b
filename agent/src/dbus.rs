//! The agent on D-Bus: `org.daisee.Gateway1`, an ObjectManager at `/org/daisee/Gateway1`, and
//! below it the configuration, every meter and sensor, every relay, the controller, the history
//! and the update slots (RAUC's). Properties follow each poll, with `PropertiesChanged` for what
//! changed. The interfaces are described in `agent/dbus/org.daisee.Gateway1.xml`;
//! `dbus/org.daisee.Gateway1.conf` says who may change what.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use daisee_hal::{RelayState, Timestamp};
use daisee_store::{Retention, Store};
use tokio::sync::watch;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;
use zbus::{Connection, interface};

use crate::config::{Change, ChangeError, Config, ConfigFile};
use crate::gateway::{ChannelState, RelayMode, RelayStatus, Snapshot};
use crate::update;

/// The bus name the agent owns.
pub const NAME: &str = "org.daisee.Gateway1";
/// The root of its objects, where the ObjectManager is.
pub const ROOT: &str = "/org/daisee/Gateway1";

/// Which bus to serve on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus, as a system service.
    System,
    /// The user's session bus, for development.
    Session,
    /// A bus at a D-Bus address (`unix:path=/run/…`), for tests.
    Address(String),
}

/// What a D-Bus caller asks the main loop to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Hold a relay on or off by hand (`Some`), or give it back (`None`).
    Override {
        /// The relay.
        relay: String,
        /// The state to hold.
        state: Option<RelayState>,
    },
    /// A new configuration whose changes apply without a restart.
    Apply(Box<Config>),
}

/// Errors callers get, under `org.daisee.Gateway1.Error`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.daisee.Gateway1.Error")]
pub enum Error {
    /// A D-Bus failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The configuration was refused: which key, which line, why. Nothing changed.
    InvalidConfig(String),
    /// The configuration cannot be changed (built in), or could not be written.
    ConfigNotWritten(String),
    /// No such relay, channel or state.
    NotFound(String),
    /// The history could not be read.
    History(String),
    /// RAUC, which knows the update slots, did not answer.
    UpdateUnavailable(String),
}

/// A D-Bus object path segment for a name, escaped as systemd escapes unit names on the bus:
/// letters and digits kept, every other byte `_XX` (so `heat-pump` is `heat_2dpump` and
/// `rooftop_pv` is `rooftop_5fpv`); different names never share a path. An empty name is `_`.
pub fn path_segment(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("_{b:02x}"),
        })
        .collect()
}

/// Calls `method` of the agent's object at `path` and decodes the reply: for clients.
pub async fn call<R>(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> zbus::Result<R>
where
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = conn
        .call_method(Some(NAME), path, Some(interface), method, body)
        .await?;
    reply.body().deserialize()
}

/// Starts the service: owns the name, puts every object in place, and follows `snapshots`.
pub async fn serve(
    bus: Bus,
    file: ConfigFile,
    requests: Sender<Request>,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    history: Option<PathBuf>,
) -> zbus::Result<Connection> {
    let builder = match &bus {
        Bus::System => zbus::connection::Builder::system()?,
        Bus::Session => zbus::connection::Builder::session()?,
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str())?,
    };
    let config = &file.config().clone();
    let gateway = GatewayObject {
        name: config.name.clone(),
        revision: file.revision(),
    };
    let file = Arc::new(std::sync::Mutex::new(file));
    let conn = builder
        .name(NAME)?
        .serve_at(ROOT, zbus::fdo::ObjectManager)?
        .serve_at(format!("{ROOT}/Gateway"), gateway)?
        .serve_at(
            format!("{ROOT}/Config"),
            ConfigObject {
                file,
                requests: requests.clone(),
            },
        )?
        .serve_at(format!("{ROOT}/Controller"), ControllerObject::default())?
        .serve_at(
            format!("{ROOT}/History"),
            HistoryObject {
                path: history,
                one_at_a_time: tokio::sync::Semaphore::new(1),
            },
        )?
        .build()
        .await?;
    let server = conn.object_server();
    for name in config
        .sensors
        .iter()
        .map(|s| &s.name)
        .chain(config.modbus_devices().map(|m| &m.name))
    {
        let meter = MeterObject {
            name: name.clone(),
            ..MeterObject::default()
        };
        server.at(meter_path(name), meter).await?;
    }
    for r in &config.relays {
        let relay = RelayObject {
            name: r.name.clone(),
            safe_state: r.safe_state.as_str().into(),
            requests: Some(requests.clone()),
            ..RelayObject::default()
        };
        server.at(relay_path(&r.name), relay).await?;
    }
    server
        .at(
            format!("{ROOT}/Update"),
            UpdateObject { conn: conn.clone() },
        )
        .await?;
    let follower = conn.clone();
    tokio::spawn(async move {
        while snapshots.changed().await.is_ok() {
            let snapshot = snapshots.borrow_and_update().clone();
            if let Some(s) = snapshot {
                // A failed update is one missed poll; the next one tries again.
                let _ = publish(&follower, &s).await;
            }
        }
    });
    Ok(conn)
}

fn meter_path(name: &str) -> String {
    format!("{ROOT}/Meter/{}", path_segment(name))
}

fn relay_path(name: &str) -> String {
    format!("{ROOT}/Relay/{}", path_segment(name))
}

/// Updates every object from a snapshot, signalling what changed.
async fn publish(conn: &Connection, s: &Snapshot) -> zbus::Result<()> {
    let server = conn.object_server();
    for c in &s.channels {
        let iface = server
            .interface::<_, MeterObject>(meter_path(&c.name))
            .await?;
        let changed = iface.get_mut().await.update(c);
        emit(iface.signal_emitter(), "org.daisee.Gateway1.Meter", changed).await?;
    }
    for r in &s.relays {
        let iface = server
            .interface::<_, RelayObject>(relay_path(&r.name))
            .await?;
        let changed = iface.get_mut().await.update(r);
        emit(iface.signal_emitter(), "org.daisee.Gateway1.Relay", changed).await?;
    }
    if let Some(control) = &s.control {
        let iface = server
            .interface::<_, ControllerObject>(format!("{ROOT}/Controller"))
            .await?;
        let changed = {
            let mut o = iface.get_mut().await;
            let mut changed = Changes::default();
            changed.set(
                "GridPower",
                &mut o.grid_power,
                control.grid.map_or(0, |p| p.0),
            );
            changed.set("Stale", &mut o.stale, control.stale);
            changed.set(
                "ImportLimit",
                &mut o.import_limit,
                control.import_limit.map_or(0, |p| p.0),
            );
            changed
        };
        emit(
            iface.signal_emitter(),
            "org.daisee.Gateway1.Controller",
            changed,
        )
        .await?;
    }
    Ok(())
}

/// The properties that changed in one update, with their new values.
#[derive(Default)]
struct Changes(HashMap<&'static str, Value<'static>>);

impl Changes {
    fn set<T>(&mut self, name: &'static str, field: &mut T, value: T)
    where
        T: PartialEq + Clone + Into<Value<'static>>,
    {
        if *field != value {
            *field = value.clone();
            self.0.insert(name, value.into());
        }
    }
}

async fn emit(
    emitter: &SignalEmitter<'_>,
    interface: &'static str,
    changed: Changes,
) -> zbus::Result<()> {
    if changed.0.is_empty() {
        return Ok(());
    }
    let changed = changed.0.iter().map(|(k, v)| (*k, v.clone())).collect();
    let name = zbus::names::InterfaceName::from_static_str_unchecked(interface);
    zbus::fdo::Properties::properties_changed(
        emitter,
        name,
        changed,
        std::borrow::Cow::Borrowed(&[]),
    )
    .await
}

/// The gateway itself.
struct GatewayObject {
    name: String,
    revision: u64,
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

/// The configuration.
struct ConfigObject {
    file: Arc<std::sync::Mutex<ConfigFile>>,
    requests: Sender<Request>,
}

impl ConfigObject {
    fn file(&self) -> std::sync::MutexGuard<'_, ConfigFile> {
        // A panic mid-change left the file as it was on disk: the last good state.
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a change off the runtime's thread (it fsyncs), hands what applies at once to the
    /// main loop while still holding the file (so changes reach it in the order they were made),
    /// and signals the new revision.
    async fn change(
        &self,
        edit: impl FnOnce(&mut ConfigFile) -> Result<Change, ChangeError> + Send + 'static,
        emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        let (file, requests) = (Arc::clone(&self.file), self.requests.clone());
        let change = tokio::task::spawn_blocking(move || {
            let mut file = file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let change = edit(&mut file)?;
            if !change.restart {
                // The main loop is gone only when the agent stops; nothing to apply then.
                let _ = requests.send(Request::Apply(Box::new(change.config.clone())));
            }
            Ok(change)
        })
        .await
        .map_err(|e| Error::ConfigNotWritten(e.to_string()))?
        .map_err(|e| match e {
            ChangeError::Invalid(e) => Error::InvalidConfig(e.to_string()),
            other => Error::ConfigNotWritten(other.to_string()),
        })?;
        self.revision_changed(&emitter).await?;
        Ok((change.revision, change.restart))
    }
}

#[interface(name = "org.daisee.Gateway1.Config")]
impl ConfigObject {
    /// The whole configuration, as TOML.
    fn get(&self) -> String {
        self.file().text().to_owned()
    }

    /// Replaces the whole configuration: validated first (an invalid one changes nothing and the
    /// error names the key and line), then written atomically. Returns the new revision and
    /// whether the agent must restart to apply it all.
    async fn set(
        &self,
        toml: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        self.change(move |f| f.set(&toml), emitter).await
    }

    /// One key (`control.import_limit_w`, `relay[1].priority`), as TOML.
    fn get_key(&self, key: String) -> Result<String, Error> {
        self.file()
            .get(&key)
            .map_err(|e| Error::NotFound(e.to_string()))
    }

    /// Sets one key to a TOML value (`7000`, `"on"`), keeping the rest of the file as written.
    async fn set_key(
        &self,
        key: String,
        value: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(u64, bool), Error> {
        self.change(move |f| f.set_key(&key, &value), emitter).await
    }

    /// The revision on disk; it grows with every change made over D-Bus.
    #[zbus(property)]
    fn revision(&self) -> u64 {
        self.file().revision()
    }
}

/// A sensor or meter channel.
#[derive(Default)]
struct MeterObject {
    name: String,
    device: String,
    power: i64,
    voltage: i64,
    current: i64,
    import: u64,
    export: u64,
    online: bool,
    fault: String,
    updated: i64,
}

impl MeterObject {
    fn update(&mut self, c: &ChannelState) -> Changes {
        let mut changed = Changes::default();
        changed.set("Device", &mut self.device, c.device.to_owned());
        changed.set("Online", &mut self.online, c.reading.is_ok());
        changed.set(
            "Fault",
            &mut self.fault,
            c.reading
                .as_ref()
                .err()
                .map(|f| f.message.clone())
                .unwrap_or_default(),
        );
        changed.set("ImportEnergy", &mut self.import, c.energy.import.0);
        changed.set("ExportEnergy", &mut self.export, c.energy.export.0);
        if let Ok(r) = &c.reading {
            changed.set("Power", &mut self.power, r.power.0);
            changed.set(
                "Voltage",
                &mut self.voltage,
                r.voltage.map_or(0, |v| i64::from(v.0)),
            );
            changed.set("Current", &mut self.current, r.current.map_or(0, |a| a.0));
            changed.set("UpdatedAt", &mut self.updated, c.read_at.map_or(0, |t| t.0));
        }
        changed
    }
}

#[interface(name = "org.daisee.Gateway1.Meter")]
impl MeterObject {
    /// The channel's name.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The kind of device (`ina219`, `modbus`, `sunspec`, `sim`).
    #[zbus(property)]
    fn device(&self) -> String {
        self.device.clone()
    }

    /// Active power in mW: positive taken from the grid or consumed, negative exported or produced.
    #[zbus(property)]
    fn power(&self) -> i64 {
        self.power
    }

    /// Voltage in mV; 0 if the device does not measure it.
    #[zbus(property)]
    fn voltage(&self) -> i64 {
        self.voltage
    }

    /// Current in µA; 0 if the device does not measure it.
    #[zbus(property)]
    fn current(&self) -> i64 {
        self.current
    }

    /// Energy imported (consumed) in mWh, monotonic.
    #[zbus(property)]
    fn import_energy(&self) -> u64 {
        self.import
    }

    /// Energy exported (produced) in mWh, monotonic.
    #[zbus(property)]
    fn export_energy(&self) -> u64 {
        self.export
    }

    /// Whether the last poll read it.
    #[zbus(property)]
    fn online(&self) -> bool {
        self.online
    }

    /// Why the last poll did not read it; empty when it did.
    #[zbus(property)]
    fn fault(&self) -> String {
        self.fault.clone()
    }

    /// When the values were read, in ms since 1970 (UTC).
    #[zbus(property)]
    fn updated_at(&self) -> i64 {
        self.updated
    }
}

/// A relay.
#[derive(Default)]
struct RelayObject {
    name: String,
    state: String,
    safe_state: String,
    mode: String,
    fault: String,
    requests: Option<Sender<Request>>,
}

impl RelayObject {
    fn update(&mut self, r: &RelayStatus) -> Changes {
        let mut changed = Changes::default();
        let state = r.state.as_ref().map_or("unknown", |s| s.as_str());
        changed.set("State", &mut self.state, state.to_owned());
        changed.set(
            "Fault",
            &mut self.fault,
            r.state
                .as_ref()
                .err()
                .map(|f| f.message.clone())
                .unwrap_or_default(),
        );
        let mode = match r.mode {
            RelayMode::Fixed => "fixed",
            RelayMode::Auto => "auto",
            RelayMode::Manual => "manual",
        };
        changed.set("Mode", &mut self.mode, mode.to_owned());
        changed
    }

    fn send(&self, state: Option<RelayState>) -> Result<(), Error> {
        let request = Request::Override {
            relay: self.name.clone(),
            state,
        };
        self.requests
            .as_ref()
            .and_then(|r| r.send(request).ok())
            .ok_or_else(|| Error::NotFound("the agent is stopping".into()))
    }
}

#[interface(name = "org.daisee.Gateway1.Relay")]
impl RelayObject {
    /// Holds the relay `on` or `off` by hand until released; demand response leaves it alone.
    fn switch(&self, state: String) -> Result<(), Error> {
        let state = match state.as_str() {
            "on" => RelayState::On,
            "off" => RelayState::Off,
            other => {
                return Err(Error::NotFound(format!(
                    "`{other}` is not a state: \"on\" or \"off\""
                )));
            }
        };
        self.send(Some(state))
    }

    /// Gives the relay back: to demand response, or to its safe state if it has none.
    fn release(&self) -> Result<(), Error> {
        self.send(None)
    }

    /// The relay's name.
    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// `on` or `off`, read back from the output; `unknown` if it cannot be read.
    #[zbus(property)]
    fn state(&self) -> String {
        self.state.clone()
    }

    /// The state it takes at start, on shutdown and when measurements are stale.
    #[zbus(property)]
    fn safe_state(&self) -> String {
        self.safe_state.clone()
    }

    /// `auto` (demand response switches it), `manual` (held by hand) or `fixed` (in its safe state).
    #[zbus(property)]
    fn mode(&self) -> String {
        self.mode.clone()
    }

    /// Why the output cannot be read; empty when it can.
    #[zbus(property)]
    fn fault(&self) -> String {
        self.fault.clone()
    }
}

/// Demand response.
#[derive(Default)]
struct ControllerObject {
    grid_power: i64,
    stale: bool,
    import_limit: i64,
}

#[interface(name = "org.daisee.Gateway1.Controller")]
impl ControllerObject {
    /// The grid power the controller last acted on, in mW (positive: import).
    #[zbus(property)]
    fn grid_power(&self) -> i64 {
        self.grid_power
    }

    /// Whether the grid measurement is stale (the loads are in their safe states).
    #[zbus(property)]
    fn stale(&self) -> bool {
        self.stale
    }

    /// The import limit in mW; 0 for none.
    #[zbus(property)]
    fn import_limit(&self) -> i64 {
        self.import_limit
    }
}

/// The update slots, as RAUC reports them when asked. Methods, not properties: nothing is cached,
/// and a gateway without RAUC must still list its objects (GetManagedObjects reads properties).
struct UpdateObject {
    conn: Connection,
}

fn unavailable(e: update::Unavailable) -> Error {
    Error::UpdateUnavailable(e.to_string())
}

#[interface(name = "org.daisee.Gateway1.Update")]
impl UpdateObject {
    /// The slot the gateway booted (its bootname, `A` or `B`).
    async fn boot_slot(&self) -> Result<String, Error> {
        update::property(&self.conn, "BootSlot")
            .await
            .map_err(unavailable)
    }

    /// Every slot: name, bootname, state (`booted`, `active`, `inactive`), boot status (`good`, `bad`)
    /// and the version of the bundle installed into it.
    async fn slots(&self) -> Result<Vec<update::Slot>, Error> {
        update::slots(&self.conn).await.map_err(unavailable)
    }

    /// What RAUC is doing (`idle`, `installing`) and the error of the last install that failed.
    async fn installer(&self) -> Result<(String, String), Error> {
        Ok((
            update::property(&self.conn, "Operation")
                .await
                .map_err(unavailable)?,
            update::property(&self.conn, "LastError")
                .await
                .map_err(unavailable)?,
        ))
    }
}

/// The history.
struct HistoryObject {
    path: Option<PathBuf>,
    /// One query at a time: anyone may ask, and each reads the SD card.
    one_at_a_time: tokio::sync::Semaphore,
}

/// The longest span one call returns: a month of samples, ten years of 15-minute energy.
const MAX_SAMPLES_SPAN_MS: i64 = 31 * 86_400_000;
const MAX_ENERGY_SPAN_MS: i64 = 3653 * 86_400_000;

fn span(from: i64, to: i64, max: i64) -> Result<(), Error> {
    match to.checked_sub(from) {
        Some(ms) if (0..=max).contains(&ms) => Ok(()),
        _ => Err(Error::History(format!(
            "from {from} to {to}: ask for at most {} days at a time, `from` before `to`",
            max / 86_400_000
        ))),
    }
}

impl HistoryObject {
    /// Runs `query` on a read connection to the history, off the runtime's thread.
    async fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Store) -> Result<T, daisee_store::StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let path = self
            .path
            .clone()
            .ok_or_else(|| Error::History("no [store] in the configuration".into()))?;
        let retention = Retention {
            samples: std::time::Duration::MAX,
            max_pending: 0,
        };
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| Error::History(e.to_string()))?;
        tokio::task::spawn_blocking(move || query(&Store::open(&path, retention)?))
            .await
            .map_err(|e| Error::History(e.to_string()))?
            .map_err(|e| Error::History(e.to_string()))
    }
}

#[interface(name = "org.daisee.Gateway1.History")]
impl HistoryObject {
    /// The samples of a channel from `from` to `to` (ms since 1970, `to` excluded, at most 31
    /// days): (time, mW).
    async fn samples(&self, channel: String, from: i64, to: i64) -> Result<Vec<(i64, i64)>, Error> {
        span(from, to, MAX_SAMPLES_SPAN_MS)?;
        let samples = self
            .query(move |store| store.samples(&channel, Timestamp(from), Timestamp(to)))
            .await?;
        Ok(samples.into_iter().map(|(t, p)| (t.0, p.0)).collect())
    }

    /// The 15-minute energy slots of a channel (at most ten years a call): (slot start, mWh
    /// imported, mWh exported).
    async fn energy(
        &self,
        channel: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64, u64)>, Error> {
        span(from, to, MAX_ENERGY_SPAN_MS)?;
        let slots = self
            .query(move |store| store.energy(&channel, Timestamp(from), Timestamp(to)))
            .await?;
        Ok(slots
            .into_iter()
            .map(|s| (s.start.0, s.energy.import.0, s.energy.export.0))
            .collect())
    }
}

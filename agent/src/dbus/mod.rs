//! The agent on D-Bus: `org.daisee.Gateway1`, an ObjectManager at `/org/daisee/Gateway1`, and
//! below it the configuration, every channel, relay and inverter, the controller, the history
//! and the update slots (RAUC's); one file per interface. An adapter: it sends the daemon
//! [`Command`]s and follows its snapshots, with `PropertiesChanged` for what changed. The names
//! are in `daisee-api`; `agent/dbus/org.daisee.Gateway1.conf` says who may change what.

mod changes;
mod config;
mod controller;
mod dialogue;
mod gateway;
mod history;
mod inverter;
mod ledger;
mod meter;
mod mqtt;
mod read_only;
mod relay;
mod update;
mod web;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use daisee_api::{
    BUS_NAME, CONFIG_PATH, CONTROLLER_PATH, DIALOGUE_PATH, GATEWAY_PATH, HISTORY_PATH, LEDGER_PATH,
    MQTT_PATH, ROOT, UPDATE_PATH, WEB_PATH, inverter_path, meter_path, relay_path,
};
use futures_util::StreamExt;
use tokio::sync::watch;
use zbus::Connection;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::object_server::{Interface, InterfaceRef};

use crate::config::SharedConfig;
use crate::daemon::{Command, Handles};
use crate::dialogue::DialogueStatus;
use crate::ledger::LedgerStatus;
use crate::mqtt::MqttStatus;
use crate::snapshot::Snapshot;
use crate::update::{UpdateError, UpdateHandle};
use crate::web::WebHandle;
use changes::Changes;
use config::ConfigObject;
use controller::ControllerObject;
use dialogue::{DialogueObject, Shown};
use gateway::GatewayObject;
use history::HistoryObject;
use inverter::InverterObject;
use ledger::LedgerObject;
use meter::MeterObject;
use mqtt::MqttObject;
use read_only::ReadOnly;
use relay::RelayObject;
use update::UpdateObject;
use web::WebObject;

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

impl Bus {
    /// A connection to this bus, owning no name: for asking other services (RAUC).
    pub async fn connect(&self) -> zbus::Result<Connection> {
        self.builder()?.build().await
    }

    fn builder(&self) -> zbus::Result<zbus::connection::Builder<'static>> {
        match self {
            Bus::System => zbus::connection::Builder::system(),
            Bus::Session => zbus::connection::Builder::session(),
            Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
        }
    }
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
    /// No such relay, channel, key or inverter.
    NotFound(String),
    /// An argument out of its range (a state, a percentage).
    InvalidArgument(String),
    /// The agent is stopping and takes no more commands.
    Stopping(String),
    /// The agent has too many commands waiting; try again.
    Busy(String),
    /// The history could not be read.
    History(String),
    /// RAUC, which knows the update slots, did not answer.
    UpdateUnavailable(String),
    /// The bundle is not one this gateway takes (another machine's, not newer), or there is no
    /// feed to check.
    UpdateRefused(String),
    /// Fetching or installing the update failed.
    UpdateFailed(String),
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No bus to connect to.
    #[error("cannot connect to the bus: {0}")]
    Connect(zbus::Error),
    /// Another process owns the name: a second agent.
    #[error("another process owns {BUS_NAME} on this bus (is daisee-agent already running?)")]
    NameTaken,
    /// The bus's policy does not let this user own the name.
    #[error(
        "the bus does not let this user own {BUS_NAME} ({0}); install agent/dbus/org.daisee.Gateway1.conf"
    )]
    Refused(zbus::Error),
    /// Putting the objects in place failed.
    #[error("{0}")]
    Objects(#[from] zbus::Error),
}

/// Sends a command to the daemon, saying why it cannot take it.
fn send(commands: &SyncSender<Command>, command: Command) -> Result<(), Error> {
    commands.try_send(command).map_err(|e| match e {
        TrySendError::Full(_) => Error::Busy("too many commands waiting; try again".into()),
        TrySendError::Disconnected(_) => Error::Stopping("the agent is stopping".into()),
    })
}

impl From<UpdateError> for Error {
    fn from(e: UpdateError) -> Self {
        let text = e.to_string();
        match e {
            UpdateError::NoFeed | UpdateError::Refused(_) => Error::UpdateRefused(text),
            UpdateError::Busy(_) => Error::Busy(text),
            UpdateError::Failed(_) => Error::UpdateFailed(text),
            UpdateError::Unavailable(_) => Error::UpdateUnavailable(text),
            UpdateError::Stopping => Error::Stopping(text),
        }
    }
}

/// A caller's text, cut to a length fit for an error message.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// What the service serves.
pub struct Served {
    /// The configuration, shared with the other adapters that change it.
    pub config: SharedConfig,
    /// The daemon's handles.
    pub handles: Handles,
    /// The history file, if kept.
    pub history: Option<PathBuf>,
    /// The gateway's account, empty without a key.
    pub address: String,
    /// The dialogue's status, if it runs.
    pub dialogue: Option<watch::Receiver<DialogueStatus>>,
    /// The ledger's status and the channel its commitments total, if it runs.
    pub ledger: Option<(watch::Receiver<LedgerStatus>, String)>,
    /// The updater's handles.
    pub update: UpdateHandle,
    /// The MQTT connection's status, if the gateway publishes to a broker.
    pub mqtt: Option<watch::Receiver<MqttStatus>>,
    /// The web page, if served.
    pub web: Option<WebHandle>,
}

/// Starts the service: puts every object in place, owns the name (never taking it from another
/// agent), and follows the daemon's snapshots and the dialogue's status.
pub async fn serve(bus: Bus, served: Served) -> Result<Connection, ServeError> {
    let Served {
        config: shared,
        handles,
        history,
        address,
        dialogue,
        ledger,
        update,
        mqtt,
        web,
    } = served;
    let builder = bus.builder().map_err(ServeError::Connect)?;
    let (config, revision) = {
        let file = shared.file();
        (file.config().clone(), file.revision())
    };
    let channels: Vec<String> = config.channels().map(str::to_owned).collect();
    let conn = builder
        .serve_at(ROOT, zbus::fdo::ObjectManager)?
        .serve_at(
            GATEWAY_PATH,
            ReadOnly(GatewayObject {
                name: config.name.clone(),
                address,
                revision,
                snapshots: handles.snapshots.clone(),
            }),
        )?
        .serve_at(CONFIG_PATH, ReadOnly(ConfigObject { config: shared }))?
        .serve_at(CONTROLLER_PATH, ReadOnly(ControllerObject::default()))?
        .serve_at(
            HISTORY_PATH,
            ReadOnly(HistoryObject {
                path: history.clone(),
                channels: channels.clone(),
                one_at_a_time: tokio::sync::Semaphore::new(1),
            }),
        )?
        .build()
        .await
        .map_err(ServeError::Connect)?;
    put_devices(&conn, &config, &channels, &handles.commands).await?;
    if let Some(status) = dialogue {
        put_dialogue(&conn, status, history.clone()).await?;
    }
    if let (Some((status, grid)), Some(history)) = (ledger, history) {
        put_ledger(&conn, status, history, grid).await?;
    }
    put_update(&conn, update).await?;
    if let Some(status) = mqtt {
        put_mqtt(&conn, status).await?;
    }
    if let Some(handle) = web {
        conn.object_server()
            .at(WEB_PATH, ReadOnly(WebObject { handle }))
            .await?;
    }
    own_name(&conn).await?;
    let objects = Objects::find(&conn, &config).await?;
    tokio::spawn(follow(objects, handles.snapshots));
    Ok(conn)
}

/// An object for every channel, relay and curtailable inverter of `config`.
async fn put_devices(
    conn: &Connection,
    config: &crate::config::Config,
    channels: &[String],
    commands: &SyncSender<Command>,
) -> zbus::Result<()> {
    let server = conn.object_server();
    for name in channels {
        server
            .at(meter_path(name), ReadOnly(MeterObject::new(name)))
            .await?;
    }
    for r in &config.relays {
        let relay = RelayObject {
            name: r.name.clone(),
            state: String::new(),
            safe_state: r.safe_state.as_str().into(),
            mode: String::new(),
            fault: String::new(),
            commands: commands.clone(),
        };
        server.at(relay_path(&r.name), ReadOnly(relay)).await?;
    }
    for i in config.inverters.iter().filter(|i| i.curtailable()) {
        let inverter = InverterObject {
            name: i.meter.name.clone(),
            rated: i.rated.0,
            limited: false,
            limit: 100,
            mode: String::new(),
            fault: String::new(),
            commands: commands.clone(),
        };
        server
            .at(inverter_path(&i.meter.name), ReadOnly(inverter))
            .await?;
    }
    Ok(())
}

/// The dialogue's object, following its status.
async fn put_dialogue(
    conn: &Connection,
    mut status: watch::Receiver<DialogueStatus>,
    history: Option<PathBuf>,
) -> zbus::Result<()> {
    let now = status.borrow_and_update().clone();
    let object = DialogueObject {
        community: now.community.clone(),
        peer_id: now.peer_id.clone(),
        shown: Shown::of(&now),
        history,
        one_at_a_time: tokio::sync::Semaphore::new(1),
    };
    serve_following(conn, DIALOGUE_PATH, object, status, DialogueObject::update).await
}

/// The ledger's object, following its status.
async fn put_ledger(
    conn: &Connection,
    mut status: watch::Receiver<LedgerStatus>,
    history: PathBuf,
    grid: String,
) -> zbus::Result<()> {
    let object = LedgerObject {
        shown: status.borrow_and_update().clone(),
        history,
        grid,
        one_at_a_time: tokio::sync::Semaphore::new(1),
    };
    serve_following(conn, LEDGER_PATH, object, status, LedgerObject::update).await
}

/// The update object, following the updater's status.
async fn put_update(conn: &Connection, handle: UpdateHandle) -> zbus::Result<()> {
    let mut status = handle.status.clone();
    let object = UpdateObject {
        conn: conn.clone(),
        shown: status.borrow_and_update().clone(),
        handle,
    };
    serve_following(conn, UPDATE_PATH, object, status, UpdateObject::update).await
}

/// The MQTT object, following the connection's status.
async fn put_mqtt(conn: &Connection, mut status: watch::Receiver<MqttStatus>) -> zbus::Result<()> {
    let object = MqttObject {
        shown: status.borrow_and_update().clone(),
    };
    serve_following(conn, MQTT_PATH, object, status, MqttObject::update).await
}

/// Serves `object` at `path` and updates it with `update` from each new `status`, signalling
/// what changed: the objects of the adapters, which publish their status on a watch.
async fn serve_following<I, S>(
    conn: &Connection,
    path: &'static str,
    object: I,
    mut status: watch::Receiver<S>,
    update: fn(&mut I, &S) -> Changes,
) -> zbus::Result<()>
where
    I: Interface,
    S: Clone + Send + Sync + 'static,
{
    conn.object_server().at(path, ReadOnly(object)).await?;
    let iface: InterfaceRef<ReadOnly<I>> = conn.object_server().interface(path).await?;
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let now = status.borrow_and_update().clone();
            // A failed signal is one missed change; the properties hold the latest.
            let _ = refresh(Some(&iface), |o| update(o, &now)).await;
        }
    });
    Ok(())
}

/// Requests the bus name without replacing or queueing behind another owner, and logs losing it.
async fn own_name(conn: &Connection) -> Result<(), ServeError> {
    let reply = conn
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DoNotQueue.into())
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => ServeError::NameTaken,
            other => ServeError::Refused(other),
        })?;
    if !matches!(
        reply,
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner
    ) {
        return Err(ServeError::NameTaken);
    }
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut lost = dbus.receive_name_lost().await?;
    tokio::spawn(async move {
        while let Some(signal) = lost.next().await {
            if signal.args().is_ok_and(|a| a.name() == BUS_NAME) {
                eprintln!(
                    "daisee-agent: D-Bus: lost the name {BUS_NAME}: no longer reachable on the bus"
                );
            }
        }
    });
    Ok(())
}

/// The objects that follow the snapshots, looked up once.
struct Objects {
    meters: HashMap<String, InterfaceRef<ReadOnly<MeterObject>>>,
    relays: HashMap<String, InterfaceRef<ReadOnly<RelayObject>>>,
    inverters: HashMap<String, InterfaceRef<ReadOnly<InverterObject>>>,
    controller: InterfaceRef<ReadOnly<ControllerObject>>,
}

impl Objects {
    /// Finds the objects of every channel, relay and curtailable inverter of `config`.
    async fn find(conn: &Connection, config: &crate::config::Config) -> zbus::Result<Self> {
        let server = conn.object_server();
        let mut objects = Self {
            meters: HashMap::new(),
            relays: HashMap::new(),
            inverters: HashMap::new(),
            controller: server.interface(CONTROLLER_PATH).await?,
        };
        let channels = config.sensors.iter().map(|s| &s.name);
        for name in channels.chain(config.modbus_devices().map(|m| &m.name)) {
            let iface = server.interface(meter_path(name)).await?;
            objects.meters.insert(name.clone(), iface);
        }
        for r in &config.relays {
            let iface = server.interface(relay_path(&r.name)).await?;
            objects.relays.insert(r.name.clone(), iface);
        }
        for i in config.inverters.iter().filter(|i| i.curtailable()) {
            let iface = server.interface(inverter_path(&i.meter.name)).await?;
            objects.inverters.insert(i.meter.name.clone(), iface);
        }
        Ok(objects)
    }
}

/// Updates every object from each snapshot until the daemon stops.
async fn follow(objects: Objects, mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>) {
    while snapshots.changed().await.is_ok() {
        let snapshot = snapshots.borrow_and_update().clone();
        if let Some(s) = snapshot {
            // A failed update is one missed poll; the next one tries again.
            let _ = publish(&objects, &s).await;
        }
    }
}

/// Updates one object with `update`, signalling what changed.
async fn refresh<I: Interface>(
    iface: Option<&InterfaceRef<I>>,
    update: impl FnOnce(&mut I) -> Changes,
) -> zbus::Result<()> {
    let Some(iface) = iface else { return Ok(()) };
    let changed = update(&mut *iface.get_mut().await);
    changed.emit(iface.signal_emitter(), I::name()).await
}

/// Updates every object from a snapshot, signalling what changed.
async fn publish(objects: &Objects, s: &Snapshot) -> zbus::Result<()> {
    for c in &s.channels {
        refresh(objects.meters.get(&*c.name), |o| o.update(c)).await?;
    }
    for r in &s.relays {
        refresh(objects.relays.get(&*r.name), |o| o.update(r)).await?;
    }
    for i in &s.inverters {
        refresh(objects.inverters.get(&*i.name), |o| o.update(i)).await?;
    }
    if let Some(control) = &s.control {
        refresh(Some(&objects.controller), |o| o.update(control)).await?;
    }
    Ok(())
}

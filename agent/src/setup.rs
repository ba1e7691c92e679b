//! Builds the agent's workers from its configuration: the clock, the devices, the daemon and
//! the adapters around it (D-Bus, the live view). `main.rs` only dispatches to it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use daisee_hal::sim::SimClock;
use daisee_hal::{Clock, SystemClock, Timestamp};

use crate::config::{Config, ConfigFile, DEMO, MAX_CONFIG_BYTES, SharedConfig, WebConfig};
use crate::daemon::{Command, Daemon, Handles};
use crate::dbus::{self, Bus};
use crate::devices::Devices;
use crate::notify::Notifier;
use crate::view::{Style, View};
use crate::{dialogue, identity, ledger, mqtt, update, web};

/// Where the agent looks for its configuration when none is given.
pub const DEFAULT_CONFIG: &str = "/etc/daisee/agent.toml";

/// Time between setting the devices up and the first turn: sensors just configured need one
/// conversion (an INA219 averaging 128 samples: 136 ms).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Where to serve D-Bus: the system bus if it lets the agent on, or one that must work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbusChoice {
    /// The system bus when it is there and its policy lets the agent own the name; else none.
    SystemIfAllowed,
    /// No D-Bus.
    Off,
    /// This bus, or the agent does not start.
    Required(Bus),
}

/// What the agent runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file; the default file, else the demo, when `None`.
    pub config: Option<PathBuf>,
    /// Where to serve D-Bus.
    pub dbus: DbusChoice,
    /// Stop after this many turns.
    pub turns: Option<u64>,
}

/// Reads the configuration the options name: the text, where it came from, and the file.
fn read_config(options: &Options) -> anyhow::Result<(String, String, Option<PathBuf>)> {
    let path = options
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()));
    let Some(path) = path else {
        eprintln!(
            "daisee-agent: no --config and no {DEFAULT_CONFIG}: running the demo gateway on simulated hardware"
        );
        return Ok((DEMO.to_owned(), "built-in demo configuration".into(), None));
    };
    let text = read_bounded(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((text, path.display().to_string(), Some(path)))
}

/// The text of a regular file of at most [`MAX_CONFIG_BYTES`]: the directory is writable by
/// `daisee-admin`, whose members could otherwise point the file at `/dev/zero`.
fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        bail!("not a regular file");
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        bail!("more than a configuration may have ({MAX_CONFIG_BYTES} bytes)");
    }
    Ok(String::from_utf8(bytes)?)
}

/// The built-in demo's history, kept while it runs so that its page draws plots: a `[store]` in
/// a new directory under the system's temporary one, added to `source`; without one it runs on.
fn demo_store(source: &mut String) -> Option<DemoStore> {
    let made = DemoStore::new().and_then(|store| {
        source.push_str(&store.table()?);
        Ok(store)
    });
    match made {
        Ok(store) => {
            eprintln!(
                "daisee-agent: the demo keeps its history in {} until it stops",
                store.0.display()
            );
            Some(store)
        }
        Err(e) => {
            eprintln!("daisee-agent: the demo's history: {e:#}");
            None
        }
    }
}

/// A directory made for this run (never one that exists, which another user could have planted
/// or linked elsewhere), readable by its owner only, removed with everything in it when dropped.
struct DemoStore(PathBuf);

impl DemoStore {
    fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("daisee-demo-{}", identity::random_hex(8)?));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("making {}", dir.display()))?;
        Ok(DemoStore(dir))
    }

    /// The `[store]` table of the directory.
    fn table(&self) -> anyhow::Result<String> {
        let dir = self
            .0
            .to_str()
            .context("the temporary directory's name is not UTF-8")?;
        let mut store = toml_edit::Table::new();
        store.insert("dir", toml_edit::value(dir));
        let mut table = toml_edit::DocumentMut::new();
        table.insert("store", toml_edit::Item::Table(store));
        Ok(format!("\n{table}"))
    }
}

impl Drop for DemoStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The clock: the system's, or the simulated site's (which may run faster, from a set time).
fn clock(config: &Config) -> Arc<dyn Clock> {
    let Some(sim) = &config.sim else {
        return Arc::new(SystemClock);
    };
    let now = SystemClock.now();
    let start = match sim.start_of_day_ms {
        Some(ms) => Timestamp(now.0 - now.millis_of_day() + ms),
        None => now,
    };
    Arc::new(SimClock::scaled(start, sim.speed))
}

/// Prints the account and peer id of the gateway's key, made first if there is none.
pub fn print_identity(options: &Options) -> anyhow::Result<()> {
    let (source, origin, _) = read_config(options)?;
    let config = Config::parse(&source).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let Some(store) = &config.store else {
        bail!("{origin}: no [store]: the gateway's key is kept in its directory");
    };
    let key = identity::load_or_create(&store.dir)?;
    let peer = daisee_dialogue::net::peer_key(&key)?.public().to_peer_id();
    println!("address {}\npeer-id {peer}", key.address());
    Ok(())
}

/// Runs the agent until its turns are done, Ctrl-C or SIGTERM.
pub fn run(options: Options) -> anyhow::Result<()> {
    let (mut source, origin, path) = read_config(&options)?;
    // Dropped last: the demo's history outlives everything that writes it.
    let _demo_store = match path {
        None => demo_store(&mut source),
        Some(_) => None,
    };
    let config = Config::parse(&source).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let clock = clock(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Modbus buses get their polling tasks on this runtime as the devices are built.
    let devices = {
        let _entered = runtime.enter();
        Devices::build(&config, Arc::clone(&clock))
            .map_err(|e| anyhow::anyhow!("{origin}:\n{e}"))?
    };
    for warning in devices.warnings() {
        eprintln!("daisee-agent: {warning}");
    }
    if config.store.is_none() {
        eprintln!("daisee-agent: no [store] in the configuration: history is not kept");
    }
    let notifier = Notifier::from_env().context("NOTIFY_SOCKET")?;
    let history = config.store.as_ref().map(|s| s.dir.join("history.sqlite"));
    let key = config.store.as_ref().and_then(|store| {
        identity::load_or_create(&store.dir)
            // Metering and demand response do not need it: run on, without an identity.
            .map_err(|e| {
                eprintln!("daisee-agent: the gateway's key: {e}; running without an identity");
            })
            .ok()
    });
    let address = key
        .as_ref()
        .map_or_else(String::new, |k| k.address().to_string());
    let (daemon, handles) = Daemon::new(&config, devices, Arc::clone(&clock), notifier);
    let ledger = match (&config.ledger, &config.store, &key) {
        (Some(ledger), Some(store), Some(key)) => {
            ledger::spawn(ledger, store, key, Arc::clone(&clock))
                // The gateway meters and controls without its ledger; the history keeps what it owes.
                .map_err(|e| eprintln!("daisee-agent: the ledger: {e}; running without it"))
                .ok()
                .map(|status| (status, ledger.grid.clone()))
        }
        _ => None,
    };
    let dialogue = match (&config.dialogue, key) {
        (Some(dialogue), Some(key)) => {
            let _entered = runtime.enter();
            dialogue::spawn(&config, dialogue, key, clock, handles.clone())
                // The gateway meters and controls its own loads without its community.
                .map_err(|e| eprintln!("daisee-agent: the dialogue: {e}; running without it"))
                .ok()
        }
        _ => None,
    };
    let update = {
        let _entered = runtime.enter();
        let bus = match &options.dbus {
            DbusChoice::Off => None,
            DbusChoice::SystemIfAllowed => Some(Bus::System),
            DbusChoice::Required(bus) => Some(bus.clone()),
        };
        update::spawn(config.update.clone(), bus)
    };
    let mqtt = config.mqtt.as_ref().and_then(|m| {
        let _entered = runtime.enter();
        mqtt::spawn(&config, m, &address, handles.clone())
            // Metering and control go on without the broker.
            .map_err(|e| eprintln!("daisee-agent: MQTT: {e}; running without it"))
            .ok()
    });
    let shared = SharedConfig::new(
        ConfigFile::new(path, source, config.clone()),
        handles.commands.clone(),
    );
    let web = config.web.as_ref().and_then(|settings| {
        let _entered = runtime.enter();
        let community = web::Community {
            dialogue: dialogue.clone(),
            ledger: ledger.as_ref().map(|(status, _)| status.clone()),
        };
        serve_web(&config, settings, &handles, &shared, community)
    });
    let served = dbus::Served {
        config: shared,
        handles: handles.clone(),
        history,
        address,
        dialogue,
        ledger,
        update,
        mqtt,
        web,
    };
    let _service = runtime.block_on(serve_dbus(&options.dbus, served))?;
    let interval = std::time::Duration::from_millis(config.poll_interval_ms);
    let turns = options.turns;
    let looped = std::thread::spawn(move || {
        std::thread::sleep(SETTLE);
        daemon.run(interval, turns);
    });
    runtime.block_on(show(&config.name, handles))?;
    looped
        .join()
        .map_err(|_| anyhow::anyhow!("the main loop panicked"))
}

/// Serves the web page of `settings` and says where; the gateway runs on without it if it cannot.
fn serve_web(
    config: &Config,
    settings: &WebConfig,
    handles: &Handles,
    shared: &SharedConfig,
    community: web::Community,
) -> Option<web::WebHandle> {
    let store = config.store.as_ref().map(|s| s.dir.as_path());
    web::spawn(config, settings, store, handles, shared.clone(), community)
        .inspect(|web| match web.address {
            a if a.ip().is_unspecified() => eprintln!(
                "daisee-agent: the web page is at http://localhost:{}/ and on that port of every address",
                a.port()
            ),
            a => eprintln!("daisee-agent: the web page is at http://{a}/"),
        })
        .map_err(|e| {
            eprintln!(
                "daisee-agent: the web page on {}: {e}; running without it",
                settings.listen
            );
        })
        .ok()
}

/// Serves D-Bus as chosen; a system bus that is missing or refuses the agent only warns.
async fn serve_dbus(
    choice: &DbusChoice,
    served: dbus::Served,
) -> anyhow::Result<Option<zbus::Connection>> {
    let (bus, required) = match choice {
        DbusChoice::Off => return Ok(None),
        DbusChoice::SystemIfAllowed => (Bus::System, false),
        DbusChoice::Required(bus) => (bus.clone(), true),
    };
    match dbus::serve(bus.clone(), served).await {
        Ok(conn) => Ok(Some(conn)),
        Err(e) if !required => {
            eprintln!("daisee-agent: D-Bus: {e}; running without it");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("D-Bus {bus:?}: {e}")),
    }
}

/// Shows every snapshot until the daemon stops, or asks it to stop on Ctrl-C or SIGTERM (the
/// devices are dropped with it and the relays go to their safe states).
async fn show(name: &str, handles: Handles) -> anyhow::Result<()> {
    let Handles {
        commands,
        mut snapshots,
    } = handles;
    let mut view = Style::for_stdout().map(|style| View::new(std::io::stdout().lock(), style));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                let snapshot = snapshots.borrow_and_update().clone();
                if let (Some(view), Some(s)) = (&mut view, snapshot) {
                    view.show(name, &s)?;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    if let Some(view) = &mut view {
        view.finish()?;
    }
    // The loop may be gone already; then there is nothing to stop.
    let _ = commands.send(Command::Stop);
    Ok(())
}

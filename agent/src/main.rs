//! `daisee-agent`: runs the gateway.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use daisee_agent::config::ConfigFile;
use daisee_agent::config::{Config, DEMO};
use daisee_agent::daemon::Daemon;
use daisee_agent::dbus::{self, Bus};
use daisee_agent::gateway::{Gateway, Snapshot};
use daisee_agent::notify::Notifier;
use daisee_agent::view::{Style, View};
use daisee_hal::sim::SimClock;
use daisee_hal::{Clock, SystemClock, Timestamp};
use tokio::sync::mpsc;

/// Where the agent looks for its configuration when none is given.
const DEFAULT_CONFIG: &str = "/etc/daisee/agent.toml";

/// Time between setting the devices up and the first poll.
const SETTLE: Duration = Duration::from_millis(200);

const USAGE: &str = "\
usage: daisee-agent [--config FILE] [--dbus BUS] [--polls N] [--print-demo-config]

  --config FILE         the gateway's configuration (default: /etc/daisee/agent.toml if it exists,
                        else the built-in demo gateway on simulated hardware)
  --dbus BUS            where to serve org.daisee.Gateway1: system (the default; without the
                        policy installed the agent runs on without D-Bus), session, none, or a
                        D-Bus address (unix:path=...)
  --polls N             stop after N polls
  --print-demo-config   print the demo gateway's configuration, a starting point for your own
";

struct Args {
    config: Option<PathBuf>,
    /// `None`: the system bus if it lets the agent on; `Some(None)`: no D-Bus.
    dbus: Option<Option<Bus>>,
    polls: Option<u64>,
    print_demo: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: None,
        dbus: None,
        polls: None,
        print_demo: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--config") => {
                args.config = Some(it.next().context("--config needs a file")?.into());
            }
            Some("--polls") => {
                let n = it.next().context("--polls needs a number")?;
                args.polls = Some(
                    n.to_str()
                        .and_then(|n| n.parse().ok())
                        .context("--polls needs a number")?,
                );
            }
            Some("--dbus") => {
                let bus = it.next().context("--dbus needs a bus")?;
                args.dbus = Some(match bus.to_str() {
                    Some("none") => None,
                    Some("system") => Some(Bus::System),
                    Some("session") => Some(Bus::Session),
                    Some(address) => Some(Bus::Address(address.to_owned())),
                    None => bail!("--dbus {bus:?} is not a bus"),
                });
            }
            Some("--print-demo-config") => args.print_demo = true,
            Some("-h" | "--help") => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daisee-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.print_demo {
        print!("{DEMO}");
        return Ok(());
    }
    let path = args
        .config
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()));
    let (source, origin) = match &path {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            p.display().to_string(),
        ),
        None => {
            eprintln!(
                "daisee-agent: no --config and no {DEFAULT_CONFIG}: running the demo gateway on simulated hardware"
            );
            (DEMO.to_owned(), "built-in demo configuration".to_owned())
        }
    };
    let config = Config::parse(&source).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;

    let clock: Arc<dyn Clock> = match &config.sim {
        Some(sim) => {
            let now = SystemClock.now();
            let start = match sim.start_of_day_ms {
                Some(ms) => Timestamp(now.0 - now.millis_of_day() + ms),
                None => now,
            };
            Arc::new(SimClock::scaled(start, sim.speed))
        }
        None => Arc::new(SystemClock),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Modbus buses get their polling tasks on this runtime as the gateway is built.
    let entered = runtime.enter();
    let gateway = Gateway::build(&config, Arc::clone(&clock))
        .map_err(|e| anyhow::anyhow!("{origin}:\n{e}"))?;
    drop(entered);
    for warning in gateway.warnings() {
        eprintln!("daisee-agent: {warning}");
    }
    if config.store.is_none() {
        eprintln!("daisee-agent: no [store] in the configuration: history is not kept");
    }
    let notifier = Notifier::from_env().context("NOTIFY_SOCKET")?;
    let history = config.store.as_ref().map(|s| s.dir.join("history.sqlite"));
    let file = ConfigFile::new(path, source, config.clone());
    let mut daemon = Daemon::new(&config, gateway, clock, notifier);

    // D-Bus: requests to the main loop over a channel, its snapshots back over a watch.
    let (requests, incoming) = std::sync::mpsc::channel();
    let (snapshots, published) = tokio::sync::watch::channel(None);
    let (bus, required) = match args.dbus {
        None => (Some(Bus::System), false),
        Some(bus) => (bus, true),
    };
    let _service = match bus {
        None => None,
        Some(bus) => {
            match runtime.block_on(dbus::serve(bus.clone(), file, requests, published, history)) {
                Ok(conn) => {
                    daemon.connect(incoming, snapshots);
                    Some(conn)
                }
                Err(e) if !required => {
                    eprintln!(
                        "daisee-agent: D-Bus: {e}: running without it (install dbus/org.daisee.Gateway1.conf for the system bus)"
                    );
                    None
                }
                Err(e) => bail!("D-Bus {bus:?}: {e}"),
            }
        }
    };

    let style = if std::io::stdout().is_terminal() {
        Style::Live
    } else {
        Style::Lines
    };
    let interval = Duration::from_millis(config.poll_interval_ms);
    runtime.block_on(serve(daemon, interval, args.polls, style))
}

/// Polls on a thread of its own (device I/O blocks) into a bounded channel, shows each snapshot, and
/// stops on Ctrl-C or SIGTERM, when the gateway is dropped and its relays go to their safe states.
async fn serve(
    mut daemon: Daemon,
    interval: Duration,
    polls: Option<u64>,
    style: Style,
) -> anyhow::Result<()> {
    let name = daemon.name().to_owned();
    let (tx, mut rx) = mpsc::channel::<Arc<Snapshot>>(4);
    let (stop, stopped) = std_mpsc::channel::<()>();
    let poller = std::thread::spawn(move || {
        // Sensors just configured need one conversion (an INA219 averaging 128 samples: 136 ms).
        if stopped.recv_timeout(SETTLE) != Err(std_mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        let start = Instant::now();
        let mut n = 0u64;
        while polls.is_none_or(|max| n < max) {
            if tx.blocking_send(daemon.step()).is_err() {
                break;
            }
            n += 1;
            let next = interval * u32::try_from(n).unwrap_or(u32::MAX);
            let wait = next.saturating_sub(start.elapsed());
            if stopped.recv_timeout(wait) != Err(std_mpsc::RecvTimeoutError::Timeout) {
                break;
            }
        }
        daemon.finish();
        drop(daemon);
    });

    let mut view = View::new(std::io::stdout().lock(), style);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            snapshot = rx.recv() => match snapshot {
                Some(s) => view.show(&name, &s)?,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    view.finish()?;
    let _ = stop.send(());
    drop(rx);
    poller
        .join()
        .map_err(|_| anyhow::anyhow!("the poller panicked"))
}

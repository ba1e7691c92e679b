//! `daiseectl`: the gateway from the command line, over the agent's D-Bus API.

mod audit;
mod ledger;
mod show;
mod update;

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use daisee_api::{
    ConfigProxy, DialogueProxy, GatewayProxy, HistoryProxy, InverterProxy, RelayProxy, UpdateProxy,
    inverter_path, relay_path,
};
use zbus::{Connection, DBusError};

/// The DAISEE gateway from the command line: status, meters, relays, inverters, configuration,
/// history and update slots, over the agent's D-Bus API (org.daisee.Gateway1).
#[derive(Debug, Parser)]
#[command(name = "daiseectl", version)]
struct Cli {
    /// The bus the agent is on: system, session, or a D-Bus address (unix:path=...).
    #[arg(long, default_value = "system", value_name = "BUS")]
    bus: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The gateway, its meters, relays, inverters and demand response.
    Status,
    /// Every sensor, meter and inverter channel.
    Meters,
    /// Every relay.
    Relays,
    /// Holds a relay on or off by hand, or gives it back (auto).
    Relay {
        /// The relay's name.
        name: String,
        /// on, off, or auto (back to demand response, or to its safe state).
        state: RelayCommand,
    },
    /// Every inverter, or limits one by hand (limit PERCENT [REVERT_S]) or gives it back (auto).
    Inverter {
        /// The inverter's name; every inverter when omitted.
        name: Option<String>,
        #[command(subcommand)]
        action: Option<InverterCommand>,
    },
    /// Reads or changes the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A channel's samples as CSV (time_ms,power_w): the last hour by default, at most 31 days.
    History(Span),
    /// A channel's 15-minute energy as CSV (slot_ms,import_wh,export_wh): the last day by default.
    Energy(Span),
    /// The update slots (RAUC's) and the updater; checks the feed or installs a bundle.
    Update {
        #[command(subcommand)]
        action: Option<UpdateCommand>,
    },
    /// The machine dialogue.
    #[command(subcommand)]
    Dialogue(DialogueCommand),
    /// The ledger: the gateway's account, credits, and what waits in its outbox.
    Ledger,
    /// A reading with its Merkle proof, checked against the chain (not the gateway): whether the
    /// gateway committed it.
    Prove {
        /// The channel's name.
        channel: String,
        /// The time, in ms since 1970: the reading at it or the last before it in its interval.
        time: i64,
        /// The node to ask (your own, to trust no one); the gateway's by default.
        #[arg(long, value_name = "URL")]
        rpc: Option<String>,
    },
    /// Prints a completion script for a shell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff).
    Man,
}

#[derive(Debug, Subcommand)]
enum DialogueCommand {
    /// The community, its peers, the latest slot and report.
    Status,
    /// Clears a slot this gateway settled again from its signed bids, and says whether the
    /// outcome matches what the gateway executed.
    Audit {
        /// The slot's start, in ms since 1970 (the `LastSlot` property, the journal's DAISEE_SLOT).
        slot: i64,
    },
    /// Prints a settled slot's bid set in its JSON form, for `clear` anywhere.
    Bids {
        /// The slot's start, in ms since 1970.
        slot: i64,
    },
    /// Clears a slot's bid set again from its JSON form (docs/dialogue.md), checking every
    /// signature, and prints the price, each allocation and what did not count. Offline.
    Clear {
        /// The bid set.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UpdateCommand {
    /// The slots, the running version, the feed and what the updater last did (the default).
    Status,
    /// Reads the feed now and says what it offers (then acts on it as `[update] auto` says).
    Check,
    /// Installs a bundle, following its progress, and reboots into it.
    Install {
        /// An http(s) URL or a path on the gateway; the feed's update when omitted.
        url: Option<String>,
        /// Install it even if it is not newer than the running version.
        #[arg(long)]
        downgrade: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RelayCommand {
    On,
    Off,
    Auto,
}

#[derive(Debug, Subcommand)]
enum InverterCommand {
    /// Holds the inverter at PERCENT of its rated power for REVERT_S seconds (default 600).
    Limit {
        /// 0 to 100.
        percent: u8,
        /// The inverter lifts the limit by itself after this many seconds.
        #[arg(default_value_t = 600)]
        revert_s: u32,
    },
    /// Gives the inverter back to the export limit, or to full power.
    Auto,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// The whole configuration (TOML), or one key (control.import_limit_w, relay[1].priority).
    Get {
        /// The key; the whole file when omitted.
        key: Option<String>,
    },
    /// Sets one key to a TOML value (7000, "on", ["08:00-12:00"]).
    Set {
        /// The key.
        key: String,
        /// The value, as TOML.
        value: String,
    },
    /// Replaces the whole configuration with a file.
    Load {
        /// The file.
        file: std::path::PathBuf,
    },
}

/// A channel and a time span.
#[derive(Debug, clap::Args)]
struct Span {
    /// The channel's name.
    channel: String,
    /// From, in ms since 1970 (default: one span before TO).
    from: Option<i64>,
    /// To, in ms since 1970 (default: the gateway's latest poll).
    to: Option<i64>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daiseectl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "daiseectl",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(());
        }
        Command::Dialogue(DialogueCommand::Clear { file }) => return audit::clear(&file),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let conn = connect(&cli.bus).await?;
        command(&conn, cli.command).await.map_err(explain)
    })
}

async fn connect(bus: &str) -> anyhow::Result<Connection> {
    match bus {
        "system" => Connection::system().await,
        "session" => Connection::session().await,
        address => match zbus::connection::Builder::address(address) {
            Ok(builder) => builder.build().await,
            Err(e) => Err(e),
        },
    }
    .with_context(|| format!("connecting to the {bus} bus"))
}

async fn command(conn: &Connection, command: Command) -> zbus::Result<()> {
    match command {
        Command::Status => show::status(conn).await,
        Command::Meters => show::meters(&show::objects(conn).await?),
        Command::Relays => show::relays(&show::objects(conn).await?),
        Command::Relay { name, state } => relay(conn, &name, state).await,
        Command::Inverter { name, action } => inverter(conn, name, action).await,
        Command::Config(c) => config(conn, c).await,
        Command::History(span) => history(conn, span, false).await,
        Command::Energy(span) => history(conn, span, true).await,
        Command::Update { action } => {
            let proxy = UpdateProxy::new(conn).await?;
            match action.unwrap_or(UpdateCommand::Status) {
                UpdateCommand::Status => update::status(&proxy).await,
                UpdateCommand::Check => update::check(&proxy).await,
                UpdateCommand::Install { url, downgrade } => {
                    update::install(&proxy, url.as_deref().unwrap_or(""), downgrade).await
                }
            }
        }
        Command::Dialogue(DialogueCommand::Status) => show::dialogue(&show::objects(conn).await?),
        Command::Dialogue(DialogueCommand::Audit { slot }) => audit::audit(conn, slot).await,
        Command::Dialogue(DialogueCommand::Bids { slot }) => {
            let (_, _, _, bids) = DialogueProxy::new(conn).await?.slot(slot).await?;
            println!("{bids}");
            Ok(())
        }
        Command::Ledger => ledger::status(conn).await,
        Command::Prove { channel, time, rpc } => ledger::prove(conn, &channel, time, rpc).await,
        Command::Completions { .. }
        | Command::Man
        | Command::Dialogue(DialogueCommand::Clear { .. }) => Ok(()),
    }
}

async fn relay(conn: &Connection, name: &str, state: RelayCommand) -> zbus::Result<()> {
    let relay = RelayProxy::builder(conn)
        .path(relay_path(name))?
        .build()
        .await?;
    match state {
        RelayCommand::On => relay.switch("on").await,
        RelayCommand::Off => relay.switch("off").await,
        RelayCommand::Auto => relay.release().await,
    }
}

async fn inverter(
    conn: &Connection,
    name: Option<String>,
    action: Option<InverterCommand>,
) -> zbus::Result<()> {
    let (Some(name), Some(action)) = (name, action) else {
        return show::inverters(&show::objects(conn).await?);
    };
    let inverter = InverterProxy::builder(conn)
        .path(inverter_path(&name))?
        .build()
        .await?;
    match action {
        InverterCommand::Limit { percent, revert_s } => inverter.set_limit(percent, revert_s).await,
        InverterCommand::Auto => inverter.release().await,
    }
}

async fn config(conn: &Connection, command: ConfigCommand) -> zbus::Result<()> {
    let config = ConfigProxy::new(conn).await?;
    let change = match command {
        ConfigCommand::Get { key } => {
            let text = match key {
                Some(key) => config.get_key(&key).await?,
                None => config.get().await?,
            };
            println!("{}", text.trim_end());
            return Ok(());
        }
        ConfigCommand::Set { key, value } => config.set_key(&key, &value).await?,
        ConfigCommand::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| zbus::Error::Failure(format!("reading {}: {e}", file.display())))?;
            config.set(&text).await?
        }
    };
    let (revision, restart) = change;
    if restart {
        println!(
            "revision {revision}: applies when the agent restarts (systemctl restart daisee-agent)"
        );
    } else {
        println!("revision {revision}: applied");
    }
    Ok(())
}

async fn history(conn: &Connection, span: Span, energy: bool) -> zbus::Result<()> {
    // The gateway's clock, not this machine's: the demo's runs simulated time.
    let now = GatewayProxy::new(conn).await?.last_poll().await? + 1;
    let length = if energy { 86_400_000 } else { 3_600_000 };
    let to = span.to.unwrap_or(now);
    let from = span.from.unwrap_or(to - length);
    let history = HistoryProxy::new(conn).await?;
    if energy {
        let slots = history.energy(&span.channel, from, to).await?;
        println!("slot_ms,import_wh,export_wh");
        for (t, import, export) in slots {
            println!("{t},{},{}", import as f64 / 1000.0, export as f64 / 1000.0);
        }
    } else {
        let samples = history.samples(&span.channel, from, to).await?;
        println!("time_ms,power_w");
        for (t, mw) in samples {
            println!("{t},{}", mw as f64 / 1000.0);
        }
    }
    Ok(())
}

/// An error as a person can act on it: the agent's own message, a hint when the bus refused the
/// call, or when nobody owns the agent's name.
pub(crate) fn explain(e: zbus::Error) -> anyhow::Error {
    let (name, message) = match &e {
        zbus::Error::MethodError(name, message, _) => {
            (name.to_string(), message.clone().unwrap_or_default())
        }
        zbus::Error::FDO(fdo) => (
            fdo.name().to_string(),
            fdo.description().unwrap_or_default().to_owned(),
        ),
        _ => return e.into(),
    };
    match name.as_str() {
        "org.freedesktop.DBus.Error.AccessDenied" => anyhow::anyhow!(
            "the bus refused the call: changing the gateway needs root or membership of the \
             daisee-admin group ({message})"
        ),
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
            anyhow::anyhow!(
                "nobody owns {} on this bus: is daisee-agent running?",
                daisee_api::BUS_NAME
            )
        }
        "org.freedesktop.DBus.Error.UnknownObject" => {
            anyhow::anyhow!("no such relay, inverter or object ({message})")
        }
        _ => match name.strip_prefix(daisee_api::ERROR_PREFIX) {
            Some(short) => anyhow::anyhow!("{message} ({})", short.trim_start_matches('.')),
            None => anyhow::anyhow!("{message} ({name})"),
        },
    }
}

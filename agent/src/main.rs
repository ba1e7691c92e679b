//! `daisee-agent`: runs the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, ValueEnum};
use daisee_agent::config::DEMO;
use daisee_agent::dbus::Bus;
use daisee_agent::setup::{self, DbusChoice, Options};

/// The DAISEE gateway agent: polls sensors and meters, switches relays and curtails inverters,
/// serves org.daisee.Gateway1 on D-Bus and shows a live view.
#[derive(Debug, Parser)]
#[command(name = "daisee-agent", version)]
struct Args {
    /// The gateway's configuration (default: /etc/daisee/agent.toml if it exists, else the
    /// built-in demo gateway on simulated hardware).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to serve org.daisee.Gateway1: system (the default; without a bus or the policy the
    /// agent runs on without D-Bus), session, none, or a D-Bus address (unix:path=...).
    #[arg(long, value_name = "BUS")]
    dbus: Option<String>,
    /// Stop after N polls.
    #[arg(long, value_name = "N")]
    polls: Option<u64>,
    /// Print the demo gateway's configuration, a starting point for your own.
    #[arg(long)]
    print_demo_config: bool,
    /// Print the gateway's account and libp2p peer id (making its key in the `[store]` directory
    /// if there is none): what its community lists in `[[dialogue.member]]`.
    #[arg(long)]
    print_identity: bool,
    /// Print a completion script for SHELL.
    #[arg(long, value_name = "SHELL")]
    completions: Option<Shell>,
    /// Print the manual page (roff).
    #[arg(long)]
    man: bool,
    /// Fetch an update feed or bundle for the running agent, which keeps the HTTP client out of
    /// its own memory this way (a JSON request; internal).
    #[arg(long, value_name = "REQUEST", hide = true)]
    fetch: Option<String>,
}

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(request) = &args.fetch {
        return daisee_agent::update::serve_fetch(request);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daisee-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.print_demo_config {
        print!("{DEMO}");
        return Ok(());
    }
    if let Some(shell) = args.completions {
        let shell = match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "daisee-agent",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if args.man {
        clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout())?;
        return Ok(());
    }
    let dbus = match args.dbus.as_deref() {
        None => DbusChoice::SystemIfAllowed,
        Some("none") => DbusChoice::Off,
        Some("system") => DbusChoice::Required(Bus::System),
        Some("session") => DbusChoice::Required(Bus::Session),
        Some(address) => DbusChoice::Required(Bus::Address(address.to_owned())),
    };
    let options = Options {
        config: args.config,
        dbus,
        turns: args.polls,
    };
    if args.print_identity {
        return setup::print_identity(&options);
    }
    setup::run(options)
}

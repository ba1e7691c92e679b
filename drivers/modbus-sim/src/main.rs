//! `daisee-modbus-sim`: simulated Modbus meters and SunSpec devices on TCP, RTU over TCP or a
//! pseudo-terminal, for trying the gateway (or any Modbus tool) without hardware.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use daisee_hal::MilliWatts;
use daisee_hal::SystemClock;
use daisee_hal::sim::{Load, Profile as LoadProfile, Site};
use daisee_modbus::profile::Profile;
use daisee_modbus::sunspec::Role;
use daisee_modbus_sim::{Layout, ProfileMeter, RtuPort, Simulator, SunSpecDevice};

/// Serves simulated devices whose readings follow a simulated house with PV, on the wall clock.
/// With no device options: --meter 1=eastron-sdm630 --inverter 2. Default: --tcp 127.0.0.1:5020.
#[derive(Debug, Parser)]
#[command(name = "daisee-modbus-sim", version)]
struct Cli {
    /// Serve Modbus TCP at this address.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,
    /// Serve Modbus RTU framing over TCP at this address (an RS-485-to-Ethernet gateway).
    #[arg(long, value_name = "ADDR")]
    rtu_over_tcp: Option<SocketAddr>,
    /// Serve Modbus RTU on a new pseudo-terminal (its path is printed).
    #[arg(long)]
    pty: bool,
    /// A meter: its unit and a shipped profile (eastron-sdm120, eastron-sdm630,
    /// carlo-gavazzi-em340) or a profile file.
    #[arg(long, value_name = "UNIT=PROFILE")]
    meter: Vec<String>,
    /// A SunSpec inverter at this unit.
    #[arg(long, value_name = "UNIT")]
    inverter: Vec<u8>,
    /// A SunSpec meter at this unit.
    #[arg(long, value_name = "UNIT")]
    sunspec_meter: Vec<u8>,
}

enum Device {
    Meter(u8, Arc<Profile>),
    SunSpec(u8, Role),
}

struct Args {
    tcp: Option<SocketAddr>,
    rtu_over_tcp: Option<SocketAddr>,
    pty: bool,
    devices: Vec<Device>,
}

/// The devices and ports the command line asks for, with the defaults filled in.
fn args(cli: Cli) -> anyhow::Result<Args> {
    let mut devices = Vec::new();
    for spec in &cli.meter {
        let (unit, name) = spec.split_once('=').context("--meter takes UNIT=PROFILE")?;
        let profile = match Profile::shipped(name) {
            Some(shipped) => shipped?,
            None => Profile::load(Path::new(name))?,
        };
        let unit = unit
            .parse()
            .with_context(|| format!("--meter {spec}: no unit id"))?;
        devices.push(Device::Meter(unit, Arc::new(profile)));
    }
    devices.extend(
        cli.inverter
            .iter()
            .map(|&u| Device::SunSpec(u, Role::Inverter)),
    );
    devices.extend(
        cli.sunspec_meter
            .iter()
            .map(|&u| Device::SunSpec(u, Role::Meter)),
    );
    if devices.is_empty() {
        let sdm630 = Profile::shipped("eastron-sdm630").context("eastron-sdm630 is shipped")??;
        devices.push(Device::Meter(1, Arc::new(sdm630)));
        devices.push(Device::SunSpec(2, Role::Inverter));
    }
    let mut tcp = cli.tcp;
    if tcp.is_none() && cli.rtu_over_tcp.is_none() && !cli.pty {
        tcp = Some(SocketAddr::from(([127, 0, 0, 1], 5020)));
    }
    Ok(Args {
        tcp,
        rtu_over_tcp: cli.rtu_over_tcp,
        pty: cli.pty,
        devices,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daisee-modbus-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = args(Cli::parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let mut site = Site::new(7);
    let house = MilliWatts(4_000_000);
    site.add(Load::new("house", LoadProfile::Household { peak: house }));
    let pv = MilliWatts(6_000_000);
    site.add(Load::new("pv", LoadProfile::Solar { peak: pv }));
    let site = Arc::new(site);
    let sim = Simulator::new(Arc::new(SystemClock));
    let everything = vec!["house".to_owned(), "pv".to_owned()];
    for device in args.devices {
        match device {
            Device::Meter(unit, profile) => {
                println!("unit {unit}: {}", profile.name);
                sim.add(
                    unit,
                    ProfileMeter::new(profile, site.clone(), everything.clone()),
                );
            }
            Device::SunSpec(unit, Role::Inverter) => {
                println!("unit {unit}: SunSpec inverter (models 1, 103, 120, 123 at 40000)");
                let pv = vec!["pv".to_owned()];
                sim.add(
                    unit,
                    SunSpecDevice::new(Role::Inverter, Layout::inverter(), site.clone(), pv),
                );
            }
            Device::SunSpec(unit, Role::Meter) => {
                println!("unit {unit}: SunSpec meter (models 1, 203 at 40000)");
                sim.add(
                    unit,
                    SunSpecDevice::new(
                        Role::Meter,
                        Layout::meter(),
                        site.clone(),
                        everything.clone(),
                    ),
                );
            }
        }
    }
    let _ticker = sim.spawn_ticker(Duration::from_secs(1));
    let mut servers = tokio::task::JoinSet::new();
    if let Some(addr) = args.tcp {
        let listener = bind(addr, "Modbus TCP").await?;
        let sim = sim.clone();
        servers.spawn(async move { sim.serve_tcp(listener).await });
    }
    if let Some(addr) = args.rtu_over_tcp {
        let listener = bind(addr, "Modbus RTU over TCP").await?;
        let sim = sim.clone();
        servers.spawn(async move { sim.serve_rtu_over_tcp(listener).await });
    }
    let _port = if args.pty {
        let port = RtuPort::open(&sim)
            .await
            .context("cannot open a pseudo-terminal")?;
        println!("Modbus RTU on {}", port.path().display());
        Some(port)
    } else {
        None
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        Some(done) = servers.join_next() => {
            done?.context("server stopped")
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // The bound address: with port 0 the system picks one.
    println!("{what} on {}", listener.local_addr()?);
    Ok(listener)
}

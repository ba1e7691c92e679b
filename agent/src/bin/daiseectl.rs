//! `daiseectl`: the gateway from the command line, over the agent's D-Bus API.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use zbus::Connection;
use zbus::fdo::{ManagedObjects, ObjectManagerProxy};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

const NAME: &str = "org.daisee.Gateway1";
const ROOT: &str = "/org/daisee/Gateway1";

const USAGE: &str = "\
usage: daiseectl [--bus system|session|ADDRESS] COMMAND

  status                         the gateway, its meters, relays and demand response
  meters                         every meter and sensor
  relays                         every relay
  relay NAME on|off|auto         hold a relay on or off by hand, or give it back
  config get [KEY]               the whole configuration (TOML), or one key (control.import_limit_w)
  config set KEY VALUE           set one key to a TOML value (7000, \"on\", [\"08:00-12:00\"])
  config load FILE               replace the whole configuration with FILE
  history CHANNEL [FROM [TO]]    samples as CSV (time,power_w); FROM and TO in ms since 1970,
                                 the last hour by default, at most 31 days
  energy CHANNEL [FROM [TO]]     15-minute energy as CSV (slot,import_wh,export_wh), the last day
  update                         the update slots (RAUC's): which booted, which are good
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daiseectl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut bus = "system".to_owned();
    if args.first().is_some_and(|a| a == "--bus") {
        args.remove(0);
        if args.is_empty() {
            bail!("--bus needs a bus\n{USAGE}");
        }
        bus = args.remove(0);
    }
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        print!("{USAGE}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let conn = match bus.as_str() {
            "system" => Connection::system().await,
            "session" => Connection::session().await,
            address => zbus::connection::Builder::address(address)?.build().await,
        }
        .with_context(|| format!("connecting to the {bus} bus"))?;
        command(&conn, &args).await
    })
}

async fn command(conn: &Connection, args: &[String]) -> anyhow::Result<()> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("status"), None) => status(conn).await,
        (Some("meters"), None) => meters(&objects(conn).await?),
        (Some("relays"), None) => relays(&objects(conn).await?),
        (Some("relay"), Some(name)) => {
            let path = format!("{ROOT}/Relay/{}", daisee_agent::dbus::path_segment(name));
            match arg(2) {
                Some(state @ ("on" | "off")) => {
                    call::<()>(
                        conn,
                        &path,
                        "org.daisee.Gateway1.Relay",
                        "Switch",
                        &(state,),
                    )
                    .await
                }
                Some("auto") => {
                    call::<()>(conn, &path, "org.daisee.Gateway1.Relay", "Release", &()).await
                }
                _ => bail!("relay {name} on|off|auto"),
            }
        }
        (Some("config"), Some("get")) => {
            let text: String = match arg(2) {
                Some(key) => {
                    call(
                        conn,
                        &format!("{ROOT}/Config"),
                        "org.daisee.Gateway1.Config",
                        "GetKey",
                        &(key,),
                    )
                    .await?
                }
                None => {
                    call(
                        conn,
                        &format!("{ROOT}/Config"),
                        "org.daisee.Gateway1.Config",
                        "Get",
                        &(),
                    )
                    .await?
                }
            };
            println!("{}", text.trim_end());
            Ok(())
        }
        (Some("config"), Some("set")) => {
            let (Some(key), Some(value)) = (arg(2), arg(3)) else {
                bail!("config set KEY VALUE");
            };
            let reply = call(
                conn,
                &format!("{ROOT}/Config"),
                "org.daisee.Gateway1.Config",
                "SetKey",
                &(key, value),
            )
            .await?;
            changed(reply);
            Ok(())
        }
        (Some("config"), Some("load")) => {
            let file = arg(2).context("config load FILE")?;
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            let reply = call(
                conn,
                &format!("{ROOT}/Config"),
                "org.daisee.Gateway1.Config",
                "Set",
                &(text,),
            )
            .await?;
            changed(reply);
            Ok(())
        }
        (Some(kind @ ("history" | "energy")), Some(channel)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let span = if kind == "history" {
                3_600_000
            } else {
                86_400_000
            };
            let number = |i: usize, default: i64| -> anyhow::Result<i64> {
                arg(i).map_or(Ok(default), |a| {
                    a.parse()
                        .with_context(|| format!("`{a}` is not ms since 1970"))
                })
            };
            let to = number(3, now)?;
            let from = number(2, to - span)?;
            let path = format!("{ROOT}/History");
            let iface = "org.daisee.Gateway1.History";
            if kind == "history" {
                let samples: Vec<(i64, i64)> =
                    call(conn, &path, iface, "Samples", &(channel, from, to)).await?;
                println!("time_ms,power_w");
                for (t, mw) in samples {
                    println!("{t},{}", mw as f64 / 1000.0);
                }
            } else {
                let slots: Vec<(i64, u64, u64)> =
                    call(conn, &path, iface, "Energy", &(channel, from, to)).await?;
                println!("slot_ms,import_wh,export_wh");
                for (t, import, export) in slots {
                    println!("{t},{},{}", import as f64 / 1000.0, export as f64 / 1000.0);
                }
            }
            Ok(())
        }
        (Some("update"), None) => update(conn).await,
        _ => bail!("unknown command\n{USAGE}"),
    }
}

fn changed((revision, restart): (u64, bool)) {
    if restart {
        println!(
            "revision {revision}: applies when the agent restarts (systemctl restart daisee-agent)"
        );
    } else {
        println!("revision {revision}: applied");
    }
}

async fn call<R>(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> anyhow::Result<R>
where
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    daisee_agent::dbus::call(conn, path, interface, method, body)
        .await
        .map_err(|e| match e {
            zbus::Error::MethodError(name, Some(message), _) => {
                anyhow::anyhow!("{message} ({name})")
            }
            other => other.into(),
        })
}

async fn objects(conn: &Connection) -> anyhow::Result<ManagedObjects> {
    let manager = ObjectManagerProxy::builder(conn)
        .destination(NAME)?
        .path(ROOT)?
        .build()
        .await?;
    manager
        .get_managed_objects()
        .await
        .context("is daisee-agent running?")
}

/// The properties of every object with `interface`, in path order.
fn with<'a>(objects: &'a ManagedObjects, interface: &str) -> Vec<&'a HashMap<String, OwnedValue>> {
    let mut found: Vec<(&OwnedObjectPath, &HashMap<String, OwnedValue>)> = objects
        .iter()
        .filter_map(|(path, ifaces)| {
            ifaces
                .iter()
                .find(|(name, _)| name.as_str() == interface)
                .map(|(_, props)| (path, props))
        })
        .collect();
    found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    found.into_iter().map(|(_, p)| p).collect()
}

fn text(props: &HashMap<String, OwnedValue>, name: &str) -> String {
    props
        .get(name)
        .and_then(|v| String::try_from(v.clone()).ok())
        .unwrap_or_default()
}

fn int(props: &HashMap<String, OwnedValue>, name: &str) -> i64 {
    props
        .get(name)
        .and_then(|v| i64::try_from(v.clone()).ok())
        .unwrap_or_default()
}

fn counter(props: &HashMap<String, OwnedValue>, name: &str) -> u64 {
    props
        .get(name)
        .and_then(|v| u64::try_from(v.clone()).ok())
        .unwrap_or_default()
}

fn meters(objects: &ManagedObjects) -> anyhow::Result<()> {
    println!(
        "{:<16} {:<8} {:>11} {:>9} {:>14} {:>14}  FAULT",
        "METER", "DEVICE", "POWER W", "VOLTAGE", "IMPORT KWH", "EXPORT KWH"
    );
    for m in with(objects, "org.daisee.Gateway1.Meter") {
        let online = m
            .get("Online")
            .and_then(|v| bool::try_from(v.clone()).ok())
            .unwrap_or(false);
        let power = if online {
            format!("{:.1}", int(m, "Power") as f64 / 1000.0)
        } else {
            "offline".into()
        };
        println!(
            "{:<16} {:<8} {:>11} {:>9.1} {:>14.3} {:>14.3}  {}",
            text(m, "Name"),
            text(m, "Device"),
            power,
            int(m, "Voltage") as f64 / 1000.0,
            counter(m, "ImportEnergy") as f64 / 1e6,
            counter(m, "ExportEnergy") as f64 / 1e6,
            text(m, "Fault"),
        );
    }
    Ok(())
}

fn relays(objects: &ManagedObjects) -> anyhow::Result<()> {
    println!("{:<16} {:<8} {:<7} {:<5}", "RELAY", "STATE", "MODE", "SAFE");
    for r in with(objects, "org.daisee.Gateway1.Relay") {
        println!(
            "{:<16} {:<8} {:<7} {:<5}",
            text(r, "Name"),
            text(r, "State"),
            text(r, "Mode"),
            text(r, "SafeState")
        );
    }
    Ok(())
}

async fn update(conn: &Connection) -> anyhow::Result<()> {
    const UPDATE: &str = "org.daisee.Gateway1.Update";
    let path = &format!("{ROOT}/Update");
    let booted: String = call(conn, path, UPDATE, "BootSlot", &()).await?;
    let (operation, error): (String, String) = call(conn, path, UPDATE, "Installer", &()).await?;
    println!("booted slot {booted}, RAUC {operation}");
    if !error.is_empty() {
        println!("last install failed: {error}");
    }
    let slots: Vec<daisee_agent::update::Slot> = call(conn, path, UPDATE, "Slots", &()).await?;
    println!(
        "{:<10} {:<4} {:<9} {:<6} BUNDLE",
        "SLOT", "BOOT", "STATE", "STATUS"
    );
    for s in slots {
        println!(
            "{:<10} {:<4} {:<9} {:<6} {}",
            s.name, s.bootname, s.state, s.boot_status, s.bundle_version
        );
    }
    Ok(())
}

async fn status(conn: &Connection) -> anyhow::Result<()> {
    let objects = objects(conn).await?;
    let gateway = with(&objects, "org.daisee.Gateway1");
    let config = with(&objects, "org.daisee.Gateway1.Config");
    if let (Some(g), Some(c)) = (gateway.first(), config.first()) {
        println!(
            "gateway `{}` (daisee-agent {}), configuration revision {}",
            text(g, "Name"),
            text(g, "Version"),
            counter(c, "Revision")
        );
    }
    if let Some(c) = with(&objects, "org.daisee.Gateway1.Controller").first() {
        let stale = c
            .get("Stale")
            .and_then(|v| bool::try_from(v.clone()).ok())
            .unwrap_or(false);
        let limit = int(c, "ImportLimit");
        println!(
            "demand response: grid {:.1} W, import limit {}{}",
            int(c, "GridPower") as f64 / 1000.0,
            if limit > 0 {
                format!("{:.0} W", limit as f64 / 1000.0)
            } else {
                "none".into()
            },
            if stale {
                ", measurements stale: loads in their safe states"
            } else {
                ""
            }
        );
    }
    println!();
    meters(&objects)?;
    println!();
    relays(&objects)
}

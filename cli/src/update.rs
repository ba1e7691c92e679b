//! `daiseectl update`: the slots and the updater's status, a check of the feed, and an install
//! followed with a progress bar until the gateway reboots into it.

use std::io::{IsTerminal, Write};

use daisee_api::UpdateProxy;
use futures_util::StreamExt;

/// The slots (when RAUC answers), the running version, the feed and what the updater last did.
pub(crate) async fn status(update: &UpdateProxy<'_>) -> zbus::Result<()> {
    // RAUC answers one call at a time: busy installing, it still leaves the updater to show.
    if let Err(e) = crate::show::update(update).await {
        println!("slots: {}", crate::explain(e));
    }
    let line = |label: &str, value: String| {
        if !value.is_empty() {
            println!("{label:<11} {value}");
        }
    };
    line("running", update.running().await?);
    line("feed", update.feed().await?);
    let checked = update.last_check().await?;
    if checked > 0 {
        line("checked", daisee_hal::Timestamp(checked).to_string());
    }
    line("available", update.available().await?);
    let step = update.step().await?;
    if step != "idle" {
        line(
            "now",
            format!(
                "{step} {}% {}",
                update.progress().await?,
                update.message().await?
            ),
        );
    }
    line("last error", update.last_error().await?);
    let rolled_back = update.rolled_back().await?;
    if !rolled_back.is_empty() {
        line(
            "rolled back",
            format!("{rolled_back} never got ready; the gateway fell back"),
        );
    }
    Ok(())
}

/// Reads the feed now and says what it offers.
pub(crate) async fn check(update: &UpdateProxy<'_>) -> zbus::Result<()> {
    let found = update.check().await?;
    if found.is_empty() {
        println!(
            "no newer bundle in the feed (running {})",
            update.running().await?
        );
    } else {
        println!("update available: {found}");
    }
    Ok(())
}

/// Installs `url` (the feed's update when empty) and follows it until the gateway reboots.
pub(crate) async fn install(
    update: &UpdateProxy<'_>,
    url: &str,
    downgrade: bool,
) -> zbus::Result<()> {
    // Listening first, so that no step of this install is missed.
    let properties = zbus::fdo::PropertiesProxy::builder(update.inner().connection())
        .destination(daisee_api::BUS_NAME)?
        .path(daisee_api::UPDATE_PATH)?
        .build()
        .await?;
    let mut changed = properties.receive_properties_changed().await?;
    let version = if downgrade {
        update.downgrade(url).await?
    } else {
        update.install(url).await?
    };
    println!("installing {version}");
    let mut bar = Bar::new();
    while changed.next().await.is_some() {
        let step = update.step().await?;
        let (percent, message) = (update.progress().await?, update.message().await?);
        match step.as_str() {
            "rebooting" => {
                bar.show(100, "installed");
                bar.end();
                println!("installed {version}: the gateway reboots into it");
                return Ok(());
            }
            "idle" => {
                bar.end();
                return Err(zbus::Error::Failure(format!(
                    "the install failed: {}",
                    update.last_error().await?
                )));
            }
            _ => bar.show(percent, &message),
        }
    }
    bar.end();
    Err(zbus::Error::Failure(
        "the agent left the bus during the install".into(),
    ))
}

/// A progress bar on a terminal; a line per new step elsewhere.
struct Bar {
    terminal: bool,
    last: Option<(i32, String)>,
}

impl Bar {
    fn new() -> Self {
        Bar {
            terminal: std::io::stdout().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, percent: i32, message: &str) {
        let now = (percent.clamp(0, 100), message.to_owned());
        if self.last.as_ref() == Some(&now) {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.terminal {
            let filled = usize::try_from(now.0 / 5).unwrap_or(0);
            let _ = write!(
                out,
                "\r\x1b[K[{}{}] {:>3}% {}",
                "#".repeat(filled),
                " ".repeat(20 - filled),
                now.0,
                message
            );
        } else if self.last.as_ref().is_none_or(|(_, m)| *m != now.1) {
            let _ = writeln!(out, "{:>3}% {}", now.0, message);
        }
        let _ = out.flush();
        self.last = Some(now);
    }

    fn end(&mut self) {
        if self.terminal && self.last.is_some() {
            println!();
        }
        self.last = None;
    }
}

//! Showing snapshots: a live table redrawn in place on a terminal, timestamped lines otherwise.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::snapshot::Snapshot;

/// How snapshots are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Redraw a table in place (the output is a terminal).
    Live,
    /// One `key=value` line per device and poll, for logs and pipes.
    Lines,
}

impl Style {
    /// How standard output takes snapshots: live on a terminal, lines in a pipe or a file, not
    /// at all when it is /dev/null (systemd's `StandardOutput=null`), where formatting them
    /// would be most of the agent's work per poll.
    pub fn for_stdout() -> Option<Self> {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            Some(Self::Live)
        } else if is_null(&stdout) {
            None
        } else {
            Some(Self::Lines)
        }
    }
}

/// Whether `out` is the null device.
fn is_null(out: &impl AsFd) -> bool {
    let device = |m: std::fs::Metadata| m.file_type().is_char_device().then(|| m.rdev());
    let null = std::fs::metadata("/dev/null").ok().and_then(device);
    let out = out
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
        .and_then(device);
    null.is_some() && out == null
}

/// Writes snapshots in one style.
#[derive(Debug)]
pub struct View<W: Write> {
    out: W,
    style: Style,
    polls: u64,
}

impl<W: Write> View<W> {
    /// A view writing to `out`.
    pub fn new(out: W, style: Style) -> Self {
        Self {
            out,
            style,
            polls: 0,
        }
    }

    /// Shows one snapshot of gateway `name`.
    pub fn show(&mut self, name: &str, snapshot: &Snapshot) -> io::Result<()> {
        self.polls += 1;
        let text = match self.style {
            Style::Live => live(name, self.polls, snapshot),
            Style::Lines => lines(snapshot),
        };
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Leaves the terminal as it was found.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.style == Style::Live {
            self.out.write_all(b"\x1b[?25h")?;
        }
        self.out.flush()
    }
}

/// Home, then each line cleared to its end, then the rest of the screen cleared: no flicker.
fn live(name: &str, polls: u64, s: &Snapshot) -> String {
    let mut t = String::from("\x1b[?25l\x1b[H");
    let mut line = |text: String| {
        t.push_str(&text);
        t.push_str("\x1b[K\n");
    };
    line(format!(
        "DAISEE gateway `{name}`   {}   poll {polls}   (Ctrl-C to stop)",
        s.at
    ));
    line(String::new());
    line(format!(
        "{:<16} {:<7} {:>12} {:>10} {:>11} {:>13} {:>13}",
        "CHANNEL", "DEVICE", "POWER", "VOLTAGE", "CURRENT", "IMPORT", "EXPORT"
    ));
    for c in &s.channels {
        let energy = format!(
            "{:>13} {:>13}",
            c.energy.import.to_string(),
            c.energy.export.to_string()
        );
        match &c.reading {
            Ok(r) => line(format!(
                "{:<16} {:<7} {:>12} {:>10} {:>11} {energy}",
                c.name,
                c.device,
                r.power.to_string(),
                voltage(r),
                r.current.map(|a| a.to_string()).unwrap_or_default(),
            )),
            Err(f) => line(format!(
                "{:<16} {:<7} {:>12} {f}",
                c.name, c.device, "offline"
            )),
        }
    }
    line(String::new());
    line(format!("{:<16} {:<7} {:>5}", "RELAY", "STATE", "SAFE"));
    for r in &s.relays {
        let state = match &r.state {
            Ok(state) => state.to_string(),
            Err(f) => format!("fault: {f}"),
        };
        line(format!(
            "{:<16} {:<7} {:>5}",
            r.name,
            state,
            r.safe.as_str()
        ));
    }
    t.push_str("\x1b[J");
    t
}

/// The one voltage, or each phase's.
fn voltage(r: &daisee_hal::MeterReading) -> String {
    if let Some(v) = r.voltage {
        return v.to_string();
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .flatten()
        .filter_map(|p| p.voltage.map(|v| format!("{:.0}", v.volts())))
        .collect();
    phases.join("/")
}

fn lines(s: &Snapshot) -> String {
    let mut t = String::new();
    for c in &s.channels {
        let _ = write!(t, "{} channel={} device={}", s.at, c.name, c.device);
        match &c.reading {
            Ok(r) => {
                let _ = write!(t, " power_w={:.3}", r.power.watts());
                if let Some(v) = r.voltage {
                    let _ = write!(t, " voltage_v={:.3}", v.volts());
                }
                if let Some(a) = r.current {
                    let _ = write!(t, " current_a={:.6}", a.amps());
                }
                if let Some(f) = r.frequency {
                    let _ = write!(t, " frequency_hz={:.3}", f.0 as f64 / 1000.0);
                }
                for (i, p) in r.phases.iter().flatten().enumerate() {
                    if let Some(v) = p.voltage {
                        let _ = write!(t, " l{}_voltage_v={:.3}", i + 1, v.volts());
                    }
                }
            }
            Err(f) => {
                let _ = write!(t, " error={:?}", f.message);
            }
        }
        let _ = writeln!(
            t,
            " import_wh={:.3} export_wh={:.3}",
            c.energy.import.0 as f64 / 1000.0,
            c.energy.export.0 as f64 / 1000.0
        );
    }
    for r in &s.relays {
        let _ = write!(t, "{} relay={}", s.at, r.name);
        let _ = match &r.state {
            Ok(state) => write!(t, " state={state}"),
            Err(f) => write!(t, " error={:?}", f.message),
        };
        let _ = writeln!(t, " safe={}", r.safe);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::is_null;
    use std::fs::File;

    #[test]
    fn only_the_null_device_is_null() {
        assert!(is_null(&File::open("/dev/null").unwrap()));
        assert!(!is_null(&File::open("/dev/zero").unwrap()));
        assert!(!is_null(
            &File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap()
        ));
        let (reader, _writer) = std::io::pipe().unwrap();
        assert!(!is_null(&reader));
    }
}

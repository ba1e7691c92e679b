//! The `[[modbus]]` tables: the buses that meters and inverters are on.

use std::net::SocketAddr;
use std::path::PathBuf;

use daisee_modbus::serial::{BAUD_RATES, LineSettings, Parity};
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names, quote};
use super::sim::{self, SimSite};

/// A Modbus bus.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusBus {
    /// Its name, which meters and inverters give as `modbus`.
    pub name: String,
    /// Line of its table in the file.
    pub line: usize,
    /// Where it is.
    pub link: Link,
    /// Pause between the end of one exchange and the next request.
    pub inter_frame_ms: u64,
}

/// How a Modbus bus is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Modbus TCP: a device, or an RS-485-to-Ethernet gateway.
    Tcp(SocketAddr),
    /// Modbus RTU on a serial port (an RS-485 adapter).
    Rtu {
        /// The serial device.
        path: PathBuf,
        /// Baud, parity, stop bits.
        line: LineSettings,
    },
    /// Simulated devices served by the agent itself over TCP on loopback.
    Sim,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum LinkName {
    Tcp,
    Rtu,
    Sim,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModbusTable {
    name: String,
    backend: LinkName,
    address: Option<String>,
    device: Option<String>,
    baud: Option<u32>,
    parity: Option<Parity>,
    stop_bits: Option<u8>,
    inter_frame_ms: Option<u64>,
}

/// The buses, in file order.
pub(super) fn buses(
    at: &Locator<'_>,
    tables: &[Spanned<ModbusTable>],
) -> Result<Vec<ModbusBus>, ConfigError> {
    let mut names = Names::default();
    let mut buses = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let (at, t) = (
            at.table(table.span(), format!("modbus[{i}]")),
            table.get_ref(),
        );
        names.add(&at, &t.name)?;
        let link = match t.backend {
            LinkName::Tcp => tcp(&at, t)?,
            LinkName::Rtu => rtu(&at, t)?,
            LinkName::Sim => Link::Sim,
        };
        let inter_frame_ms = t.inter_frame_ms.unwrap_or(0);
        if inter_frame_ms > 1000 {
            return Err(at.error(
                "inter_frame_ms",
                format!("{inter_frame_ms} is more than 1000 ms"),
            ));
        }
        buses.push(ModbusBus {
            name: t.name.clone(),
            line: at.line(),
            link,
            inter_frame_ms,
        });
    }
    Ok(buses)
}

/// Checks that the simulated buses have their site (after their devices, whose errors say more).
pub(super) fn check_sim(
    at: &Locator<'_>,
    tables: &[Spanned<ModbusTable>],
    sim: Option<&SimSite>,
) -> Result<(), ConfigError> {
    for (i, table) in tables.iter().enumerate() {
        if table.get_ref().backend == LinkName::Sim {
            sim::require(
                &at.table(table.span(), format!("modbus[{i}]")),
                "backend",
                sim,
            )?;
        }
    }
    Ok(())
}

fn tcp(at: &Locator<'_>, t: &ModbusTable) -> Result<Link, ConfigError> {
    let address = check::required(
        at,
        "address",
        t.address.as_deref(),
        "the device's IP and port, e.g. \"192.168.1.20:502\"",
    )?;
    let address = address.parse().map_err(|_| {
        at.error(
            "address",
            format!(
                "{} is not an IP address and port (\"192.168.1.20:502\")",
                quote(address)
            ),
        )
    })?;
    Ok(Link::Tcp(address))
}

fn rtu(at: &Locator<'_>, t: &ModbusTable) -> Result<Link, ConfigError> {
    let device = check::required(
        at,
        "device",
        t.device.as_deref(),
        "the serial port, e.g. \"/dev/ttyUSB0\"",
    )?;
    let baud = t.baud.unwrap_or(9600);
    if !BAUD_RATES.contains(&baud) {
        return Err(at.error("baud", format!("{baud} is not one of {BAUD_RATES:?}")));
    }
    let stop_bits = t.stop_bits.unwrap_or(1);
    if !(1..=2).contains(&stop_bits) {
        return Err(at.error("stop_bits", format!("{stop_bits}: 1 or 2")));
    }
    Ok(Link::Rtu {
        path: PathBuf::from(device),
        line: LineSettings {
            baud,
            parity: t.parity.unwrap_or_default(),
            stop_bits,
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::meter::tests::lan;

    fn error(source: &str) -> crate::config::ConfigError {
        Config::parse(source).expect_err("the configuration should be refused")
    }

    #[test]
    fn serial_settings_are_checked() {
        let e = error(&lan().replace("baud = 19200", "baud = 19201"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(11), Some("modbus[1].baud"))
        );
        let e = error(&lan().replace("parity = \"even\"", "parity = \"mark\""));
        assert_eq!(e.line, Some(12));
        let e = error(&lan().replace(
            "address = \"192.168.1.20:502\"",
            "address = \"inverter.local\"",
        ));
        assert!(e.message.contains("not an IP address and port"), "{e}");
    }
}

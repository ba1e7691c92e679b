//! systemd's notification protocol (sd_notify): READY, STATUS, WATCHDOG and STOPPING datagrams to
//! the socket systemd names in `NOTIFY_SOCKET`. No libsystemd: it is one datagram each.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The service manager, when the agent runs under one that listens.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names (a path, or an abstract name after `@`), with the
    /// watchdog period from `WATCHDOG_USEC`; `None` when not run by systemd.
    pub fn from_env() -> io::Result<Option<Self>> {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let name = name.to_string_lossy();
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name)?,
            None => SocketAddr::from_pathname(&*name)?,
        };
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|us| us.parse().ok())
            .map(Duration::from_micros);
        Ok(Some(Self {
            socket: UnixDatagram::unbound()?,
            addr,
            watchdog,
        }))
    }

    /// How often systemd wants to hear from the main loop, if it watches it.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (`READY=1\nSTATUS=…`).
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(drop)
    }
}

//! A pseudo-terminal with the simulated devices at its far end, speaking RTU: what a client sees
//! through a USB-to-RS-485 adapter, opened by path like one.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use daisee_modbus::serial::SerialPort;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{self, SetArg};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Simulator;

/// A serial line to the simulated devices. Dropping it takes the line down.
#[derive(Debug)]
pub struct RtuPort {
    path: PathBuf,
    // Held so that the line survives clients closing and reopening it: with no slave side open,
    // the master reads EIO.
    _slave: File,
    server: JoinHandle<()>,
    bridge: JoinHandle<()>,
}

impl RtuPort {
    /// Opens a pseudo-terminal served by `sim`; needs a running tokio runtime.
    pub async fn open(sim: &Simulator) -> io::Result<Self> {
        let pty = nix::pty::openpty(None, None)?;
        let slave = File::from(pty.slave);
        let mut t = termios::tcgetattr(&slave)?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&slave, SetArg::TCSANOW, &t)?;
        let path = nix::unistd::ttyname(slave.as_raw_fd())?;
        let master = File::from(pty.master);
        fcntl(
            master.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::O_RDWR | OFlag::O_NONBLOCK),
        )?;
        let mut master = SerialPort::attach(master)?;

        // The devices' RTU server listens on loopback; the bridge carries the line's bytes to it,
        // so that the wire faults are applied where they are for every other connection.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let serving = sim.clone();
        let server = tokio::spawn(async move {
            // It only stops if accepting fails; the line then goes silent and clients time out.
            let _ = serving.serve_rtu_over_tcp(listener).await;
        });
        let bridge = tokio::spawn(async move {
            loop {
                match TcpStream::connect(addr).await {
                    Ok(mut stream) => {
                        let (mut tcp_rx, mut tcp_tx) = stream.split();
                        let (mut line_rx, mut line_tx) = tokio::io::split(&mut master);
                        // The server drops a connection on a request it cannot decode; reconnect.
                        tokio::select! {
                            _ = tokio::io::copy(&mut line_rx, &mut tcp_tx) => {}
                            _ = tokio::io::copy(&mut tcp_rx, &mut line_tx) => {}
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Ok(Self {
            path,
            _slave: slave,
            server,
            bridge,
        })
    }

    /// The device path a client opens (`/dev/pts/N`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RtuPort {
    fn drop(&mut self) {
        self.server.abort();
        self.bridge.abort();
    }
}

//! A serial port (RS-485 adapter, or a pseudo-terminal in tests) as an async byte stream, set up
//! with termios directly: raw 8-bit frames, the baud rate, parity and stop bits Modbus RTU needs.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};
use serde::Deserialize;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Parity bit of each character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit (Modbus then asks for 2 stop bits, though most devices use 1).
    #[default]
    None,
    /// Even parity, the Modbus default.
    Even,
    /// Odd parity.
    Odd,
}

/// The rates a line can be set to.
pub const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200];

/// How the line is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2 stop bits.
    pub stop_bits: u8,
}

impl LineSettings {
    /// Bits on the wire per byte: start, 8 data, parity, stop.
    pub fn bits_per_byte(&self) -> u32 {
        1 + 8 + u32::from(self.parity != Parity::None) + u32::from(self.stop_bits)
    }
}

/// An open serial port.
#[derive(Debug)]
pub struct SerialPort {
    fd: AsyncFd<File>,
}

impl SerialPort {
    /// Opens `path` and sets the line up; needs a running tokio reactor.
    pub fn open(path: &Path, line: LineSettings) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(path)?;
        let mut t = termios::tcgetattr(&file)?;
        termios::cfmakeraw(&mut t);
        termios::cfsetspeed(&mut t, baud_rate(line.baud)?)?;
        t.control_flags |= ControlFlags::CREAD | ControlFlags::CLOCAL | ControlFlags::CS8;
        t.control_flags &= !(ControlFlags::PARENB | ControlFlags::PARODD | ControlFlags::CSTOPB);
        t.control_flags &= !ControlFlags::CRTSCTS;
        match line.parity {
            Parity::None => {}
            Parity::Even => t.control_flags |= ControlFlags::PARENB,
            Parity::Odd => t.control_flags |= ControlFlags::PARENB | ControlFlags::PARODD,
        }
        if line.stop_bits == 2 {
            t.control_flags |= ControlFlags::CSTOPB;
        }
        termios::tcsetattr(&file, SetArg::TCSANOW, &t)?;
        termios::tcflush(&file, termios::FlushArg::TCIOFLUSH)?;
        Self::attach(file)
    }

    /// A terminal that is already set up and opened non-blocking (a pseudo-terminal's master side,
    /// for simulated devices); needs a running tokio reactor.
    pub fn attach(file: File) -> io::Result<Self> {
        // Deprecated for fds the caller might close behind tokio's back; the AsyncFd owns this File,
        // so the descriptor lives exactly as long as its registration.
        #[allow(deprecated)]
        let fd = AsyncFd::new(file)?;
        Ok(Self { fd })
    }
}

fn baud_rate(baud: u32) -> io::Result<BaudRate> {
    Ok(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{baud} baud is not one of {BAUD_RATES:?}"),
            ));
        }
    })
}

impl AsyncRead for SerialPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().read(buf.initialize_unfilled())) {
                Ok(n) => {
                    buf.advance(n?);
                    return Poll::Ready(Ok(()));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for SerialPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

//! One Modbus connection (a TCP socket or a serial line) shared by the devices on it: per-request
//! timeouts, a pause between frames for RS-485 gateways, reconnection after any error, and counts of
//! what crossed the wire.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Request, Response, Slave};

use crate::plan::Read;
use crate::profile::Function;
use crate::serial::{LineSettings, SerialPort};

/// Where a bus is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Modbus TCP (a device, or an RS-485-to-TCP gateway).
    Tcp(SocketAddr),
    /// Modbus RTU on a serial line.
    Rtu {
        /// The serial device (`/dev/ttyUSB0`).
        path: PathBuf,
        /// Baud rate, parity, stop bits.
        line: LineSettings,
    },
}

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// No answer within the device's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The device answered with a Modbus exception.
    #[error("exception {0}")]
    Exception(ExceptionCode),
    /// The connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection failed (reset, closed, an I/O error on the serial port).
    #[error("connection: {0}")]
    Io(String),
    /// The answer was malformed: bad CRC, wrong header, garbage, or not what was asked for.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl daisee_hal::Error for BusError {
    fn kind(&self) -> daisee_hal::ErrorKind {
        use daisee_hal::ErrorKind;
        match self {
            BusError::Timeout(_) | BusError::Connect(_) => ErrorKind::NotResponding,
            // Busy, failing, or a gateway whose device did not answer: worth asking again.
            BusError::Exception(
                ExceptionCode::ServerDeviceBusy
                | ExceptionCode::ServerDeviceFailure
                | ExceptionCode::Acknowledge
                | ExceptionCode::GatewayPathUnavailable
                | ExceptionCode::GatewayTargetDevice,
            ) => ErrorKind::NotResponding,
            BusError::Exception(_) => ErrorKind::Unsupported,
            BusError::Io(_) => ErrorKind::Bus,
            BusError::Malformed(_) => ErrorKind::InvalidData,
        }
    }
}

/// Counts of the traffic on a bus: requests and bytes, as they are framed on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Requests sent (on a connection that was up).
    pub requests: u64,
    /// Bytes of those requests and of the answers expected to them.
    pub bytes: u64,
}

/// A Modbus bus.
pub struct Bus {
    endpoint: Endpoint,
    inter_frame: Duration,
    context: Option<Context>,
    quiet_since: Option<Instant>,
    stats: WireStats,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.context.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Bus {
    /// A bus at `endpoint`, pausing `inter_frame` between the end of one exchange and the next
    /// request (some RS-485 gateways lose frames sent back to back). It connects on first use.
    pub fn new(endpoint: Endpoint, inter_frame: Duration) -> Self {
        Self {
            endpoint,
            inter_frame,
            context: None,
            quiet_since: None,
            stats: WireStats::default(),
        }
    }

    /// Where the bus is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The traffic so far.
    pub fn stats(&self) -> WireStats {
        self.stats
    }

    /// Reads registers from device `unit`: exactly `read.count` of them, or an error.
    pub async fn read(
        &mut self,
        unit: u8,
        read: Read,
        timeout: Duration,
    ) -> Result<Vec<u16>, BusError> {
        let request = match read.function {
            Function::Holding => Request::ReadHoldingRegisters(read.start, read.count),
            Function::Input => Request::ReadInputRegisters(read.start, read.count),
        };
        let answer = 2 * u64::from(read.count) + 1;
        match self.exchange(unit, request, 4, answer, timeout).await? {
            Response::ReadHoldingRegisters(words) | Response::ReadInputRegisters(words)
                if words.len() == usize::from(read.count) =>
            {
                Ok(words)
            }
            other => Err(self.unexpected(format!(
                "asked for {} registers at {}, got {other:?}",
                read.count, read.start
            ))),
        }
    }

    /// Writes registers of device `unit` (function 16), checking the device's echo.
    pub async fn write(
        &mut self,
        unit: u8,
        address: u16,
        words: &[u16],
        timeout: Duration,
    ) -> Result<(), BusError> {
        let count = words.len() as u16;
        let request = Request::WriteMultipleRegisters(address, words.into());
        let data = 5 + 2 * u64::from(count);
        match self.exchange(unit, request, data, 4, timeout).await? {
            Response::WriteMultipleRegisters(a, n) if a == address && n == count => Ok(()),
            other => Err(self.unexpected(format!(
                "wrote {count} registers at {address}, the echo was {other:?}"
            ))),
        }
    }

    /// An answer that does not fit the request: the connection is out of step, so start again.
    fn unexpected(&mut self, message: String) -> BusError {
        self.context = None;
        BusError::Malformed(message)
    }

    /// One request and its answer; `request` and `answer` are the PDU data lengths, for the counts.
    async fn exchange(
        &mut self,
        unit: u8,
        request: Request<'_>,
        request_len: u64,
        answer_len: u64,
        timeout: Duration,
    ) -> Result<Response, BusError> {
        if let Some(quiet) = self.quiet_since {
            tokio::time::sleep_until(quiet + self.inter_frame).await;
        }
        let framing = match self.endpoint {
            // Address, function code, CRC.
            Endpoint::Rtu { .. } => 4,
            // MBAP header (7, unit included), function code.
            Endpoint::Tcp(_) => 8,
        };
        let (endpoint, stats) = (&self.endpoint, &mut self.stats);
        let context = &mut self.context;
        let result = tokio::time::timeout(timeout, async {
            let ctx = match context {
                Some(ctx) => ctx,
                None => context.insert(connect(endpoint).await?),
            };
            stats.requests += 1;
            stats.bytes += 2 * framing + request_len + answer_len;
            ctx.set_slave(Slave(unit));
            ctx.call(request).await.map_err(|e| match e {
                tokio_modbus::Error::Protocol(e) => BusError::Malformed(e.to_string()),
                tokio_modbus::Error::Transport(e)
                    if e.kind() == std::io::ErrorKind::InvalidData =>
                {
                    BusError::Malformed(e.to_string())
                }
                tokio_modbus::Error::Transport(e) => BusError::Io(e.to_string()),
            })
        })
        .await;
        self.quiet_since = Some(Instant::now());
        let result = match result {
            Ok(Ok(Ok(response))) => return Ok(response),
            Ok(Ok(Err(exception))) => return Err(BusError::Exception(exception)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BusError::Timeout(timeout)),
        };
        // A late or garbled answer may still be on its way: start again on a clean connection.
        self.context = None;
        result
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Context, BusError> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| BusError::Connect(format!("{addr}: {e}")))?;
            stream
                .set_nodelay(true)
                .map_err(|e| BusError::Connect(e.to_string()))?;
            Ok(tokio_modbus::client::tcp::attach(stream))
        }
        Endpoint::Rtu { path, line } => {
            let port = SerialPort::open(path, *line)
                .map_err(|e| BusError::Connect(format!("{}: {e}", path.display())))?;
            Ok(tokio_modbus::client::rtu::attach(port))
        }
    }
}

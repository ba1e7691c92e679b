//! One Modbus connection (a TCP socket or a serial line) shared by the devices on it: per-request
//! timeouts, a pause between frames for RS-485 gateways, reconnection after any error, and counts of
//! what crossed the wire.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

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
    /// The transport failed or the answer was malformed (bad CRC, wrong length, garbage).
    #[error("transport: {0}")]
    Transport(String),
}

impl daisee_hal::Error for BusError {
    fn kind(&self) -> daisee_hal::ErrorKind {
        use daisee_hal::ErrorKind;
        match self {
            BusError::Timeout(_) | BusError::Connect(_) => ErrorKind::NotResponding,
            BusError::Exception(_) => ErrorKind::Unsupported,
            BusError::Transport(_) => ErrorKind::InvalidData,
        }
    }
}

/// Counts of the traffic on a bus: requests and bytes, as they would be framed on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Requests sent.
    pub requests: u64,
    /// Bytes of requests and of the answers expected to them.
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

    /// Reads registers from device `unit`.
    pub async fn read(
        &mut self,
        unit: u8,
        read: Read,
        timeout: Duration,
    ) -> Result<Vec<u16>, BusError> {
        let answer = 2 * u64::from(read.count) + 1;
        self.exchange(
            unit,
            4,
            answer,
            timeout,
            async |ctx: &mut Context| match read.function {
                Function::Holding => ctx.read_holding_registers(read.start, read.count).await,
                Function::Input => ctx.read_input_registers(read.start, read.count).await,
            },
        )
        .await
    }

    /// Writes registers of device `unit` (function 16).
    pub async fn write(
        &mut self,
        unit: u8,
        address: u16,
        words: &[u16],
        timeout: Duration,
    ) -> Result<(), BusError> {
        let request = 5 + 2 * words.len() as u64;
        self.exchange(unit, request, 4, timeout, async |ctx: &mut Context| {
            ctx.write_multiple_registers(address, words).await
        })
        .await
    }

    /// One request and its answer; `request` and `answer` are the PDU data lengths, for the counts.
    async fn exchange<T>(
        &mut self,
        unit: u8,
        request: u64,
        answer: u64,
        timeout: Duration,
        call: impl AsyncFnOnce(&mut Context) -> tokio_modbus::Result<T>,
    ) -> Result<T, BusError> {
        if let Some(quiet) = self.quiet_since {
            tokio::time::sleep_until(quiet + self.inter_frame).await;
        }
        let framing = match self.endpoint {
            // Address, function code, CRC.
            Endpoint::Rtu { .. } => 4,
            // MBAP header (7, unit included), function code.
            Endpoint::Tcp(_) => 8,
        };
        self.stats.requests += 1;
        self.stats.bytes += 2 * framing + request + answer;
        let result = tokio::time::timeout(timeout, async {
            let ctx = match &mut self.context {
                Some(ctx) => ctx,
                None => self.context.insert(connect(&self.endpoint).await?),
            };
            ctx.set_slave(Slave(unit));
            call(ctx)
                .await
                .map_err(|e| BusError::Transport(e.to_string()))
        })
        .await;
        self.quiet_since = Some(Instant::now());
        let result = match result {
            Ok(Ok(Ok(value))) => return Ok(value),
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

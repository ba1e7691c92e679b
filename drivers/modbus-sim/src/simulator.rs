//! The simulated devices behind one or more Modbus servers: their registers, behaviour, faults and
//! request counts.

use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use daisee_hal::{Clock, Timestamp};
use daisee_modbus::decode::Values;
use daisee_modbus::profile::{Function, MAX_REGISTERS_PER_READ};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use crate::device::Behaviour;
use crate::registers::RegisterMap;
use crate::wire::{Fault, Framing, line};

/// One simulated device.
struct Unit {
    registers: RegisterMap,
    behaviour: Option<Box<dyn Behaviour>>,
    fault: Option<Fault>,
    online: bool,
    requests: u64,
}

/// Every simulated device, by unit id.
#[derive(Default)]
pub(crate) struct Bank {
    units: BTreeMap<u8, Unit>,
}

pub(crate) fn lock(bank: &Mutex<Bank>) -> MutexGuard<'_, Bank> {
    // A panic in one request handler leaves the registers as consistent as any single write does.
    bank.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Bank {
    /// The fault that mangles `unit`'s answers on the wire, if any.
    pub(crate) fn wire_fault(&self, unit: u8) -> Option<Fault> {
        self.units
            .get(&unit)
            .and_then(|u| u.fault)
            .filter(|f| matches!(f, Fault::Garbage | Fault::BadCrc))
    }

    /// The answer of `unit` to `request`; `None` for no answer at all.
    fn answer(
        &mut self,
        unit: u8,
        request: Request<'_>,
        at: Timestamp,
    ) -> Result<Option<Response>, ExceptionCode> {
        // Nobody at that address: on a bus, nobody answers.
        let Some(device) = self.units.get_mut(&unit) else {
            return Ok(None);
        };
        device.requests += 1;
        match device.fault {
            _ if !device.online => return Ok(None),
            Some(Fault::Silent) => return Ok(None),
            Some(Fault::Exception(code)) => return Err(code),
            Some(Fault::Garbage | Fault::BadCrc | Fault::Short) | None => {}
        }
        let short = device.fault == Some(Fault::Short);
        let read = |function, address, count: u16| {
            if !(1..=MAX_REGISTERS_PER_READ).contains(&count) {
                return Err(ExceptionCode::IllegalDataValue);
            }
            let mut words = device.registers.read(function, address, count)?;
            if short {
                words.pop();
            }
            Ok(words)
        };
        let response = match request {
            Request::ReadHoldingRegisters(address, count) => {
                Response::ReadHoldingRegisters(read(Function::Holding, address, count)?)
            }
            Request::ReadInputRegisters(address, count) => {
                Response::ReadInputRegisters(read(Function::Input, address, count)?)
            }
            Request::WriteSingleRegister(address, word) => {
                device.write(at, address, &[word])?;
                Response::WriteSingleRegister(address, word)
            }
            Request::WriteMultipleRegisters(address, words) => {
                device.write(at, address, &words)?;
                Response::WriteMultipleRegisters(address, words.len() as u16)
            }
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        Ok(Some(response))
    }
}

impl Unit {
    fn write(&mut self, at: Timestamp, address: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        match &mut self.behaviour {
            Some(b) => b.write(at, address, words, &mut self.registers),
            None => Err(ExceptionCode::IllegalDataAddress),
        }
    }
}

/// The request handler of one client connection.
struct Handler {
    bank: Arc<Mutex<Bank>>,
    clock: Arc<dyn Clock>,
}

impl Service for Handler {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: SlaveRequest<'static>) -> Self::Future {
        let at = self.clock.now();
        ready(lock(&self.bank).answer(req.slave, req.request, at))
    }
}

/// Simulated Modbus devices, served over TCP, RTU over TCP and RTU on a pseudo-terminal. Clones
/// share the devices.
#[derive(Clone)]
pub struct Simulator {
    bank: Arc<Mutex<Bank>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units: Vec<u8> = lock(&self.bank).units.keys().copied().collect();
        f.debug_struct("Simulator").field("units", &units).finish()
    }
}

impl Simulator {
    /// A simulator with no devices, whose world runs on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            bank: Arc::default(),
            clock,
        }
    }

    /// Adds a device at `unit` (replacing any there) and brings it up to date.
    pub fn add(&self, unit: u8, behaviour: impl Behaviour + 'static) {
        let mut device = Unit {
            registers: RegisterMap::default(),
            behaviour: Some(Box::new(behaviour)),
            fault: None,
            online: true,
            requests: 0,
        };
        if let Some(b) = &mut device.behaviour {
            b.tick(self.clock.now(), &mut device.registers);
        }
        lock(&self.bank).units.insert(unit, device);
    }

    /// Adds a device at `unit` that holds fixed registers and accepts no writes.
    pub fn add_registers(&self, unit: u8, registers: RegisterMap) {
        let device = Unit {
            registers,
            behaviour: None,
            fault: None,
            online: true,
            requests: 0,
        };
        lock(&self.bank).units.insert(unit, device);
    }

    /// Brings every device up to date with the clock.
    pub fn tick(&self) {
        let at = self.clock.now();
        for device in lock(&self.bank).units.values_mut() {
            if let Some(b) = &mut device.behaviour {
                b.tick(at, &mut device.registers);
            }
        }
    }

    /// Ticks every `period` until the task is aborted (for demos; tests tick by hand).
    pub fn spawn_ticker(&self, period: Duration) -> JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                sim.tick();
            }
        })
    }

    /// What the device at `unit` measures now.
    pub fn values(&self, unit: u8) -> Option<Values> {
        lock(&self.bank)
            .units
            .get(&unit)
            .and_then(|u| u.behaviour.as_ref())
            .map(|b| b.values())
    }

    /// Registers of the device at `unit`, as a client would read them (faults aside).
    pub fn registers(
        &self,
        unit: u8,
        function: Function,
        address: u16,
        count: u16,
    ) -> Result<Vec<u16>, ExceptionCode> {
        lock(&self.bank)
            .units
            .get(&unit)
            .ok_or(ExceptionCode::GatewayTargetDevice)?
            .registers
            .read(function, address, count)
    }

    /// Makes the device at `unit` misbehave, or (`None`) behave again.
    pub fn set_fault(&self, unit: u8, fault: Option<Fault>) {
        if let Some(u) = lock(&self.bank).units.get_mut(&unit) {
            u.fault = fault;
        }
    }

    /// Takes the device at `unit` off the bus (it stops answering) or puts it back.
    pub fn set_online(&self, unit: u8, online: bool) {
        if let Some(u) = lock(&self.bank).units.get_mut(&unit) {
            u.online = online;
        }
    }

    /// Requests addressed to `unit` so far, answered or not.
    pub fn requests(&self, unit: u8) -> u64 {
        lock(&self.bank).units.get(&unit).map_or(0, |u| u.requests)
    }

    /// Serves Modbus TCP on `listener` until an accept fails.
    pub async fn serve_tcp(&self, listener: TcpListener) -> io::Result<()> {
        let server = tokio_modbus::server::tcp::Server::new(listener);
        let on_connected = |stream, _| self.connection(stream, Framing::Tcp);
        server.serve(&on_connected, ignore).await
    }

    /// Serves Modbus RTU framing over TCP on `listener` (what transparent RS-485-to-Ethernet
    /// converters speak) until an accept fails.
    pub async fn serve_rtu_over_tcp(&self, listener: TcpListener) -> io::Result<()> {
        let server = tokio_modbus::server::rtu_over_tcp::Server::new(listener);
        let on_connected = |stream, _| self.connection(stream, Framing::Rtu);
        server.serve(&on_connected, ignore).await
    }

    /// The handler and the transport of a new connection: the server talks to the devices through
    /// a line that applies their wire faults.
    fn connection(
        &self,
        stream: tokio::net::TcpStream,
        framing: Framing,
    ) -> Ready<io::Result<Option<(Handler, tokio::io::DuplexStream)>>> {
        let (server_side, line_side) = tokio::io::duplex(1024);
        tokio::spawn(line(stream, line_side, framing, Arc::clone(&self.bank)));
        let handler = Handler {
            bank: Arc::clone(&self.bank),
            clock: Arc::clone(&self.clock),
        };
        ready(Ok(Some((handler, server_side))))
    }
}

/// A client that closes mid-frame or sends a bad one ends its own connection; the server goes on.
fn ignore(_: io::Error) {}

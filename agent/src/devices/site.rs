//! The simulated site of the `sim` backend: its loads and producers, the relay lines that switch
//! them, the I2C buses its INA219 chips sit on, and the Modbus devices served on loopback. Built
//! empty when the configuration has no `[sim]`: the configuration refuses sim devices then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use daisee_hal::sim::{Ina219Chip, Load, SimI2cBus, SimLine, Site, SitePowerSensor};
use daisee_hal::{Clock, RelayState};
use daisee_modbus::device::Map;
use daisee_modbus::sunspec::Role;
use daisee_modbus_sim::{Layout, ProfileMeter, Simulator, SunSpecDevice};
use daisee_relay::Polarity;
use embedded_hal::digital::PinState;
use tokio::task::AbortHandle;

use super::sensors::{Connect, Sensor, ina219};
use crate::config::SimSite;

/// How often simulated Modbus devices follow their site.
const SIM_TICK: Duration = Duration::from_millis(250);

/// A simulated device served on a Modbus bus: its unit, register map and the loads it measures.
pub(crate) struct Served<'a> {
    pub(crate) unit: u8,
    pub(crate) map: &'a Map,
    pub(crate) loads: &'a [String],
}

/// The simulated site and the devices attached to it.
pub(crate) struct Sim {
    clock: Arc<dyn Clock>,
    lines: HashMap<String, (SimLine, Polarity)>,
    site: Arc<Site>,
    i2c: HashMap<String, SimI2cBus>,
}

impl Sim {
    /// An empty site on `clock`: relay lines first, then [`Sim::populate`].
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            lines: HashMap::new(),
            site: Arc::new(Site::new(0)),
            i2c: HashMap::new(),
        }
    }

    /// A relay line at `level`, which the site's switched loads follow.
    pub(crate) fn line(&mut self, relay: &str, polarity: Polarity, level: PinState) -> SimLine {
        let line = SimLine::new(level);
        self.lines
            .insert(relay.to_owned(), (line.clone(), polarity));
        line
    }

    /// Puts the configured loads on the site, each switched load following its relay's line.
    pub(crate) fn populate(&mut self, config: Option<&SimSite>) {
        let Some(config) = config else { return };
        let mut site = Site::new(config.seed);
        for load in &config.loads {
            let line = load.relay.as_ref().and_then(|r| self.lines.get(r)).cloned();
            site.add(match line {
                Some((line, polarity)) => Load::switched(&load.name, load.profile, move || {
                    polarity.state(line.level()) == RelayState::On
                }),
                None => Load::new(&load.name, load.profile),
            });
        }
        self.site = Arc::new(site);
    }

    /// A mains sensor measuring the sum of `loads`.
    pub(crate) fn power_sensor(&self, loads: &[String]) -> Connect {
        let (site, loads, clock) = (
            Arc::clone(&self.site),
            loads.to_vec(),
            Arc::clone(&self.clock),
        );
        Box::new(move || {
            let sensor = SitePowerSensor::new(Arc::clone(&site), loads.clone(), Arc::clone(&clock));
            Ok(Box::new(sensor) as Box<dyn Sensor>)
        })
    }

    /// An INA219 chip on simulated bus `bus`, its shunt carrying `loads` at `bus_mv`.
    pub(crate) fn ina219(
        &mut self,
        bus: &str,
        loads: &[String],
        bus_mv: i64,
        settings: daisee_ina219::Settings,
    ) -> Connect {
        let i2c = self.i2c.entry(bus.to_owned()).or_default().clone();
        let shunt = i64::from(settings.shunt_uohm);
        let pins = self.site.ina219_input(loads.to_vec(), bus_mv, shunt);
        i2c.attach(
            settings.address,
            Ina219Chip::new(Arc::clone(&self.clock), pins),
        );
        Box::new(move || ina219(i2c.clone(), settings))
    }

    /// Serves `devices` on a loopback port, following the site; returns the port's address and
    /// the tasks to stop with the gateway.
    pub(crate) fn serve(
        &self,
        devices: &[Served<'_>],
    ) -> std::io::Result<(std::net::SocketAddr, [AbortHandle; 2])> {
        let sim = Simulator::new(Arc::clone(&self.clock));
        for d in devices {
            let (site, loads) = (Arc::clone(&self.site), d.loads.to_vec());
            match d.map {
                Map::SunSpec(role) => {
                    let layout = match role {
                        Role::Inverter => Layout::inverter(),
                        Role::Meter => Layout::meter(),
                    };
                    sim.add(d.unit, SunSpecDevice::new(*role, layout, site, loads));
                }
                Map::Profile(p) => sim.add(d.unit, ProfileMeter::new(Arc::clone(p), site, loads)),
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let ticker = sim.spawn_ticker(SIM_TICK).abort_handle();
        let server = tokio::spawn(async move { sim.serve_tcp(listener).await }).abort_handle();
        Ok((addr, [ticker, server]))
    }
}

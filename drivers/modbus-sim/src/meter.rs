//! A meter described by a device profile, measuring loads of the simulated site.

use std::sync::Arc;
use std::time::Duration;

use daisee_hal::sim::Site;
use daisee_hal::{EnergyIntegrator, MicroAmps, MilliVolts, MilliWattHours, MilliWatts, Timestamp};
use daisee_modbus::decode::{PhaseValues, Values};
use daisee_modbus::plan::ReadPlan;
use daisee_modbus::profile::Profile;

use crate::device::{Behaviour, write_values};
use crate::registers::RegisterMap;

/// How a polyphase meter's load splits over L1, L2 and L3, in percent: unbalanced, as homes are.
const PHASE_SHARE: [i64; 3] = [50, 30, 20];

/// Counter readings of a meter that has been installed for a while.
const INSTALLED_IMPORT: MilliWattHours = MilliWattHours(1_234_500_000);
const INSTALLED_EXPORT: MilliWattHours = MilliWattHours(567_800_000);

/// A meter whose registers are laid out by a [`Profile`] and whose readings follow the named loads
/// of a [`Site`]: positive while the loads consume, negative while they produce.
pub struct ProfileMeter {
    profile: Arc<Profile>,
    site: Arc<Site>,
    loads: Vec<String>,
    energy: EnergyIntegrator,
    values: Values,
    mapped: bool,
}

impl std::fmt::Debug for ProfileMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileMeter")
            .field("profile", &self.profile.name)
            .field("loads", &self.loads)
            .finish()
    }
}

impl ProfileMeter {
    /// A meter with `profile`'s registers on the named loads of `site`. Tick it once before the
    /// first read: until then its registers are not defined.
    pub fn new(profile: Arc<Profile>, site: Arc<Site>, loads: Vec<String>) -> Self {
        // A simulated meter keeps counting across any gap between ticks: its world never stops.
        let energy = EnergyIntegrator::new(Duration::from_secs(86_400 * 365));
        Self {
            profile,
            site,
            loads,
            energy,
            values: Values::default(),
            mapped: false,
        }
    }
}

impl Behaviour for ProfileMeter {
    fn tick(&mut self, at: Timestamp, registers: &mut RegisterMap) {
        if !self.mapped {
            // The registers between the profile's points exist on the real device (the profile's
            // max_gap says a read may span them); here they read as zero.
            for read in ReadPlan::for_profile(&self.profile).reads {
                registers.set(read.function, read.start, &vec![0; usize::from(read.count)]);
            }
            self.mapped = true;
        }
        let power = self.site.power(&self.loads, at);
        self.values = show(&self.profile, &mut self.energy, at, power, registers);
    }

    fn values(&self) -> Values {
        self.values
    }
}

/// Counts `power` at `at` into `energy`, and puts what a meter with `profile` then shows into its
/// registers; returns those values.
pub(crate) fn show(
    profile: &Profile,
    energy: &mut EnergyIntegrator,
    at: Timestamp,
    power: MilliWatts,
    registers: &mut RegisterMap,
) -> Values {
    energy.add(at, power);
    let polyphase = profile.points.iter().any(|p| p.phase.is_some());
    let values = measure(at, power, polyphase, energy.energy());
    write_values(profile, &values, registers);
    values
}

/// What a mains meter shows at `at` for a total `power`: a slightly wandering voltage and
/// frequency, currents as magnitudes (meters do not sign them), counters since installation.
pub fn measure(
    at: Timestamp,
    power: MilliWatts,
    polyphase: bool,
    counted: daisee_hal::Energy,
) -> Values {
    let second = at.0.div_euclid(1000);
    let voltage = |phase: i64| MilliVolts((229_400 + 600 * phase + 100 * (second % 7)) as i32);
    let current = |p: MilliWatts, v: MilliVolts| MicroAmps(p.0.abs() * 1_000_000 / i64::from(v.0));
    let mut values = Values {
        frequency_mhz: Some(49_980 + 10 * (second % 5)),
        import: Some(MilliWattHours(INSTALLED_IMPORT.0 + counted.import.0)),
        export: Some(MilliWattHours(INSTALLED_EXPORT.0 + counted.export.0)),
        ..Values::default()
    };
    if polyphase {
        let mut left = power;
        for (i, share) in PHASE_SHARE.iter().enumerate() {
            let p = if i == 2 {
                left
            } else {
                MilliWatts(power.0 * share / 100)
            };
            left = left - p;
            let v = voltage(i as i64);
            values.phases[i] = PhaseValues {
                power: Some(p),
                voltage: Some(v),
                current: Some(current(p, v)),
            };
        }
        // Totals, for meters that have them: the sum of currents, the mean voltage.
        let phases = values.phases.map(|p| p.voltage.unwrap_or_default().0);
        values.voltage = Some(MilliVolts(phases.iter().sum::<i32>() / 3));
        values.current = Some(MicroAmps(
            values
                .phases
                .iter()
                .map(|p| p.current.unwrap_or_default().0)
                .sum(),
        ));
    } else {
        values.voltage = Some(voltage(0));
        values.current = Some(current(power, voltage(0)));
    }
    values.power = Some(power);
    values
}

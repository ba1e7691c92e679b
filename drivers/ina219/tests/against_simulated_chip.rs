//! The driver against the simulated INA219 register file, over a full I2C adapter and over an
//! SMBus-only one. Expected values are worked out by hand from the datasheet's formulas (TI SBOS448,
//! 8.5.1): Current_LSB = Imax / 2^15 (rounded up to 1 µA), Cal = trunc(0.04096 / (Current_LSB × R)),
//! Current = trunc(Shunt × Cal / 4096), Power = trunc(Current × Bus / 5000), Power_LSB = 20 × Current_LSB.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use daisee_hal::Error as _;
use daisee_hal::sim::{Analog, Ina219Chip, SimClock, SimI2cBus};
use daisee_hal::smbus::SmbusI2c;
use daisee_hal::{
    EnergyMeter, ErrorKind, IntegratingMeter, MicroAmps, MilliVolts, MilliWattHours, MilliWatts,
    PowerReading, PowerSensor, Timestamp,
};
use daisee_ina219::{Error, Ina219, Measurement, Settings};
use embedded_hal::i2c::I2c;

const ADDRESS: u8 = 0x40;
const START: Timestamp = Timestamp(1_795_586_400_000);

/// A bus with one INA219 whose pins see whatever the test sets.
struct Bench {
    bus: SimI2cBus,
    clock: SimClock,
    pins: Arc<Mutex<Analog>>,
}

impl Bench {
    fn new() -> Self {
        let bus = SimI2cBus::new();
        let clock = SimClock::manual(START);
        let pins = Arc::new(Mutex::new(Analog::default()));
        let seen = Arc::clone(&pins);
        bus.attach(
            ADDRESS,
            Ina219Chip::new(clock.clone(), move |_| *seen.lock().unwrap()),
        );
        Self { bus, clock, pins }
    }

    fn apply(&self, shunt_uv: i64, bus_mv: i64) {
        *self.pins.lock().unwrap() = Analog { shunt_uv, bus_mv };
        // One full conversion: 2 × 68.1 ms with 128-sample averaging.
        self.clock.advance(Duration::from_millis(137));
    }
}

fn settings(shunt_uohm: u32, max_current_ua: u32) -> Settings {
    Settings {
        address: ADDRESS,
        shunt_uohm,
        max_current_ua,
        reverse: false,
    }
}

fn read<I: I2c>(ina: &mut Ina219<I>) -> PowerReading
where
    I::Error: Send + Sync + 'static,
{
    ina.read().expect("reading")
}

#[test]
fn calibration_for_0_1_ohm_and_3_2_amps() {
    // LSB = ceil(3.2 A / 32768) = 98 µA; Cal = trunc(0.04096 / (98e-6 × 0.1)) = 4179, stored 4178.
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    assert_eq!(ina.calibration().register(), 4178);
    assert_eq!(ina.calibration().current_lsb_ua(), 98);
    assert_eq!(ina.calibration().power_lsb_uw(), 1960);

    // 150 mV across 0.1 Ω at 12 V: Current = trunc(15000 × 4178 / 4096) = 15300 → 1.4994 A;
    // Power = trunc(15300 × 3000 / 5000) = 9180 → 9180 × 1960 µW = 17.9928 W.
    bench.apply(150_000, 12_000);
    assert_eq!(
        read(&mut ina),
        PowerReading {
            voltage: MilliVolts(12_000),
            current: MicroAmps(1_499_400),
            power: MilliWatts(17_992),
        }
    );
}

#[test]
fn calibration_for_0_01_ohm_and_10_amps_with_negative_current() {
    // LSB = ceil(10 A / 32768) = 306 µA; Cal = trunc(0.04096 / (306e-6 × 0.01)) = 13385, stored 13384;
    // 100 mV at 10 A → the 160 mV PGA range.
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(10_000, 10_000_000)).unwrap();
    assert_eq!(ina.calibration().register(), 13384);
    assert_eq!(ina.calibration().current_lsb_ua(), 306);

    // -50 mV (5 A flowing back, e.g. a charging source) at 24 V:
    // Current = trunc(-5000 × 13384 / 4096) = -16337 → -4.999122 A;
    // Power = trunc(16337 × 6000 / 5000) = 19604 → 19604 × 6120 µW = 119.97648 W, exported.
    bench.apply(-50_000, 24_000);
    assert_eq!(
        ina.measure().unwrap(),
        Measurement {
            bus: MilliVolts(24_000),
            shunt_uv: -50_000,
            current: MicroAmps(-4_999_122),
            power: MilliWatts(-119_976),
        }
    );
}

#[test]
fn power_register_is_unsigned() {
    // 300 mV at 26 V through 0.1 Ω: Current = trunc(30000 × 4178 / 4096) = 30600;
    // Power = trunc(30600 × 6500 / 5000) = 39780, above i16::MAX → 39780 × 1960 µW = 77.9688 W.
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    bench.apply(300_000, 26_000);
    assert_eq!(read(&mut ina).power, MilliWatts(77_968));
}

#[test]
fn reverse_wiring_flips_the_sign() {
    let bench = Bench::new();
    let mut ina = Ina219::new(
        bench.bus.clone(),
        Settings {
            reverse: true,
            ..settings(100_000, 3_200_000)
        },
    )
    .unwrap();
    bench.apply(150_000, 12_000);
    let r = read(&mut ina);
    assert_eq!(
        (r.current, r.power),
        (MicroAmps(-1_499_400), MilliWatts(-17_992))
    );
}

#[test]
fn math_overflow_is_an_error_not_a_value() {
    // 150 mV through 0.01 Ω is 15 A, beyond the 10 A calibrated for:
    // Current = trunc(15000 × 13384 / 4096) = 49013 does not fit the register → OVF.
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(10_000, 10_000_000)).unwrap();
    bench.apply(150_000, 12_000);
    let err = ina.read().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Overflow {
                shunt_uv: 150_000,
                bus_mv: 12_000
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Overflow);

    // Back in range, readings resume.
    bench.apply(50_000, 12_000);
    assert_eq!(read(&mut ina).current, MicroAmps(16_337 * 306));
}

#[test]
fn shunt_beyond_the_pga_range_is_an_overflow() {
    // 330 mV across the shunt clips at the 320 mV full scale: the value would be a lie.
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    bench.apply(330_000, 12_000);
    assert!(matches!(
        ina.read(),
        Err(Error::Overflow {
            shunt_uv: 320_000,
            ..
        })
    ));
}

#[test]
fn waits_for_the_first_conversion() {
    let bench = Bench::new();
    let mut ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    assert!(matches!(ina.read(), Err(Error::NotReady)));
    bench.apply(100_000, 5_000);
    let first = read(&mut ina);
    // Faster than the conversion time: the registers still hold the last conversion.
    *bench.pins.lock().unwrap() = Analog {
        shunt_uv: 200_000,
        bus_mv: 5_000,
    };
    assert_eq!(read(&mut ina), first);
    bench.clock.advance(Duration::from_millis(137));
    assert!(read(&mut ina).current > first.current);
}

#[test]
fn nack_is_an_error_at_start_and_while_running() {
    let bench = Bench::new();
    let err = Ina219::new(
        bench.bus.clone(),
        Settings {
            address: 0x41,
            ..settings(100_000, 3_200_000)
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotResponding, "{err}");

    let mut ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    bench.apply(100_000, 5_000);
    read(&mut ina);
    bench.bus.detach(ADDRESS);
    bench.clock.advance(Duration::from_secs(1));
    let err = ina.read().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotResponding, "{err}");

    bench.bus.fail_next(1);
    assert_eq!(ina.read().unwrap_err().kind(), ErrorKind::Bus);
}

#[test]
fn another_chip_at_the_address_is_refused() {
    struct Eeprom;
    impl daisee_hal::sim::WireDevice for Eeprom {
        fn write(&mut self, _: &[u8]) {}
        fn read(&mut self, buf: &mut [u8]) {
            buf.fill(0xFF);
        }
    }
    let bus = SimI2cBus::new();
    bus.attach(ADDRESS, Eeprom);
    let err = Ina219::new(bus, settings(100_000, 3_200_000)).unwrap_err();
    assert!(matches!(err, Error::NotIna219(_)), "{err}");
}

#[test]
fn works_through_an_smbus_only_adapter() {
    // Same chip, same values, but every transfer goes as SMBus word/byte transfers, little-endian
    // on the wire: the byte swap must land the INA219's big-endian registers right.
    let bench = Bench::new();
    let mut ina = Ina219::new(SmbusI2c(bench.bus.clone()), settings(10_000, 10_000_000)).unwrap();
    bench.apply(-50_000, 24_000);
    assert_eq!(
        read(&mut ina),
        PowerReading {
            voltage: MilliVolts(24_000),
            current: MicroAmps(-4_999_122),
            power: MilliWatts(-119_976),
        }
    );
}

#[test]
fn integrates_energy_by_direction() {
    // 17.992 W (see the first calibration test) for an hour each way, read once a second.
    let bench = Bench::new();
    let ina = Ina219::new(bench.bus.clone(), settings(100_000, 3_200_000)).unwrap();
    let mut meter = IntegratingMeter::new(ina, bench.clock.clone(), Duration::from_secs(5));
    let hour_of_reads = |meter: &mut IntegratingMeter<_, _>| {
        for _ in 0..3600 {
            bench.clock.advance(Duration::from_secs(1));
            meter.read().unwrap();
        }
    };
    bench.apply(150_000, 12_000);
    meter.read().unwrap();
    hour_of_reads(&mut meter);
    // The 137 ms of the swing from +17.992 W to -17.992 W split evenly: 0.34 mWh each way.
    bench.apply(-150_000, 12_000);
    meter.read().unwrap();
    hour_of_reads(&mut meter);
    let energy = meter.read().unwrap().energy;
    assert_eq!(energy.import, MilliWattHours(17_992));
    assert_eq!(energy.export, MilliWattHours(17_992));
}

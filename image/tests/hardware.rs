//! The agent on the Linux backends inside the image: an INA219 register file on the kernel's
//! `i2c-stub`, loaded with `i2cset`, read through `/dev/i2c-*`; a relay on a GPIO chip (the test
//! disk's module), switched through the GPIO character device by demand response and by a D-Bus
//! command, its level read back from the kernel.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use std::time::Duration;

use common::{BOOT, boot, first_line, on_each_arch, sh};
use daisee_image::{Arch, Machine, test_disk};
use daisee_ina219::Calibration;

const SHUNT_UOHM: u32 = 100_000;
const MAX_CURRENT_UA: u32 = 3_200_000;

/// Stores `value` in an INA219 register of the stub: the chip sends the high byte first, SMBus
/// words go low byte first, so i2cset gets it swapped.
fn load(m: &mut Machine, bus: &str, register: u8, value: u16) {
    let command = format!(
        "i2cset -y {bus} 0x40 {register:#04x} {:#06x} w",
        value.swap_bytes()
    );
    assert_eq!(sh(m, &command).1, 0, "{command}");
}

/// Loads a conversion of `millivolts` across the load and `milliamps` through the shunt; returns
/// the current and power registers' values.
fn load_conversion(m: &mut Machine, bus: &str, millivolts: u16, milliamps: i32) -> (i16, u16) {
    let calibration = Calibration::new(SHUNT_UOHM, MAX_CURRENT_UA).unwrap();
    let shunt_10uv = milliamps * (SHUNT_UOHM as i32 / 1000) / 10;
    let current = (i64::from(milliamps) * 1000 / calibration.current_lsb_ua()) as i16;
    let power = (i64::from(millivolts) * i64::from(milliamps) / calibration.power_lsb_uw()) as u16;
    load(m, bus, 0x01, shunt_10uv as i16 as u16);
    // Bus voltage: 4 mV steps from bit 3; bit 1 says a conversion is ready.
    load(m, bus, 0x02, ((millivolts / 4) << 3) | 0b10);
    load(m, bus, 0x04, current as u16);
    load(m, bus, 0x03, power);
    (current, power)
}

/// A meter property of the agent's, as busctl prints it (`x 12345`).
fn meter(m: &mut Machine, property: &str) -> i64 {
    let line = first_line(
        m,
        &format!(
            "busctl get-property org.daisee.Gateway1 /org/daisee/Gateway1/Meter/grid \
             org.daisee.Gateway1.Meter {property}"
        ),
    );
    line.trim_start_matches("x ")
        .parse()
        .unwrap_or_else(|_| panic!("{property}: {line}"))
}

/// One quantity of the meter's `Values` (`a{sx} 2 "voltage_mv" 10000 "current_ua" 12345`).
fn meter_value(m: &mut Machine, name: &str) -> i64 {
    let line = first_line(
        m,
        "busctl get-property org.daisee.Gateway1 /org/daisee/Gateway1/Meter/grid \
         org.daisee.Gateway1.Meter Values",
    );
    let key = format!("\"{name}\"");
    let mut words = line.split_whitespace();
    words
        .find(|w| *w == key)
        .and_then(|_| words.next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {line}"))
}

/// The level the kernel reports for the relay's line: `hi` or `lo` (from gpiolib's debugfs).
fn line_level(m: &mut Machine) -> String {
    first_line(
        m,
        "grep -E '\\(relay3 ' /sys/kernel/debug/gpio | grep -oE '(in|out) +(hi|lo)' | tr -s ' '",
    )
}

/// Waits until the relay's line is `level` (the agent acts at its next poll).
fn line_becomes(m: &mut Machine, level: &str) -> String {
    let mut seen = String::new();
    for _ in 0..30 {
        seen = line_level(m);
        if seen == level {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    seen
}

on_each_arch!(the_agent_reads_an_ina219_and_switches_a_relay_through_the_linux_backends);

/// The relay test's configuration: the boiler on `chip`'s line 3, and, given an I2C bus, the
/// INA219 on it as the grid meter with a 20 W import limit under which demand response switches
/// the boiler.
fn config(chip: &str, bus: Option<&str>) -> String {
    let mut config = format!(
        r#"[gateway]
name = "qemu"
poll_interval_ms = 500

[store]
dir = "/data/daisee/history"

[[relay]]
name = "boiler"
backend = "linux"
gpio_chip = "/dev/{chip}"
line = 3
safe_state = "off"
"#
    );
    if let Some(bus) = bus {
        config += &format!(
            r#"nominal_w = 10
min_on_s = 0
min_off_s = 0
max_switches_per_hour = 60

[[sensor]]
name = "grid"
backend = "linux"
chip = "ina219"
bus = "/dev/i2c-{bus}"
address = 0x40
shunt_ohms = 0.1
max_current_a = 3.2

[control]
grid = "grid"
import_limit_w = 20
hysteresis_w = 2
stale_after_ms = 10000
"#
        );
    }
    config
}

/// Debian's arm64 kernel is built without `i2c-stub`: there the INA219 half is left out and the
/// relay is switched over D-Bus only.
fn the_agent_reads_an_ina219_and_switches_a_relay_through_the_linux_backends(arch: Arch) {
    let stub = arch == Arch::Amd64;
    let mut m = Machine::new("hardware", arch).unwrap();
    m.start(&[&test_disk(arch)]).unwrap();
    boot(&mut m);
    assert_eq!(sh(&mut m, "mount -o ro LABEL=test /mnt").1, 0);
    assert_eq!(sh(&mut m, "insmod /mnt/daisee-test-gpio.ko").1, 0);
    let chip = first_line(
        &mut m,
        "grep -oE '^gpiochip[0-9]+: .*daisee-test-gpio' /sys/kernel/debug/gpio | cut -d: -f1",
    );
    assert!(chip.starts_with("gpiochip"), "{chip}");
    let bus = stub.then(|| {
        assert_eq!(sh(&mut m, "modprobe i2c-stub chip_addr=0x40").1, 0);
        first_line(
            &mut m,
            "grep -l 'SMBus stub' /sys/bus/i2c/devices/i2c-*/name | cut -d/ -f6 | cut -d- -f2",
        )
    });
    // 5 W taken from the grid: room under the 20 W limit for the 10 W boiler.
    let conversion = bus
        .as_deref()
        .map(|bus| load_conversion(&mut m, bus, 10_000, 500));

    // One quoted printf argument per line: the console's shell sees one command line.
    let lines: Vec<String> = config(&chip, bus.as_deref())
        .lines()
        .map(|l| format!("'{l}'"))
        .collect();
    let (out, status) = sh(
        &mut m,
        &format!("printf '%s\\n' {} > /tmp/hardware.toml", lines.join(" ")),
    );
    assert_eq!(status, 0, "{out:?}");
    let (out, status) = sh(
        &mut m,
        "daiseectl config load /tmp/hardware.toml && systemctl restart daisee-agent",
    );
    assert_eq!(status, 0, "{out:?}");
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));

    if let (Some(bus), Some((current, power))) = (bus.as_deref(), conversion) {
        // The readings are the registers, through the driver's calibration.
        let calibration = Calibration::new(SHUNT_UOHM, MAX_CURRENT_UA).unwrap();
        assert_eq!(meter_value(&mut m, "voltage_mv"), 10_000);
        assert_eq!(
            meter(&mut m, "Power"),
            i64::from(power) * calibration.power_lsb_uw() / 1000
        );
        assert_eq!(
            meter_value(&mut m, "current_ua"),
            i64::from(current) * calibration.current_lsb_ua()
        );

        // Demand response switches the boiler on while there is room, off once the import
        // passes the limit.
        assert_eq!(line_becomes(&mut m, "out hi"), "out hi");
        load_conversion(&mut m, bus, 10_000, 3_000);
        assert_eq!(line_becomes(&mut m, "out lo"), "out lo");
    }

    // By hand over D-Bus, whatever demand response says; and back to it (or, with no meter, to
    // the safe state).
    assert_eq!(sh(&mut m, "daiseectl relay boiler on").1, 0);
    assert_eq!(line_becomes(&mut m, "out hi"), "out hi");
    assert_eq!(sh(&mut m, "daiseectl relay boiler auto").1, 0);
    assert_eq!(line_becomes(&mut m, "out lo"), "out lo");

    // Each switch is in the journal with the agent's own fields.
    let (logged, _) = sh(
        &mut m,
        "journalctl -b -o cat -u daisee-agent DAISEE_RELAY=boiler DAISEE_STATE=on",
    );
    assert!(
        logged.iter().any(|l| l.starts_with("relay `boiler` on (")),
        "{logged:?}"
    );
}

//! The state messages: one JSON object per channel and per relay, from a snapshot. Numbers are
//! the snapshot's fixed point written as decimals (W and Wh to the thousandth), never floats.

use daisee_hal::RelayState;

use crate::snapshot::{ChannelState, RelayStatus};

/// A channel's state: power (null while its device fails) and its energy counters.
pub(super) fn channel(c: &ChannelState) -> String {
    let power = match &c.reading {
        Ok(r) => thousandths(i128::from(r.power.0)),
        Err(_) => "null".into(),
    };
    format!(
        r#"{{"power_w":{power},"import_wh":{},"export_wh":{}}}"#,
        thousandths(i128::from(c.energy.import.0)),
        thousandths(i128::from(c.energy.export.0)),
    )
}

/// A relay's state (`ON`, `OFF`, or null while its line fails) and who decides it.
pub(super) fn relay(r: &RelayStatus) -> String {
    let state = match r.state {
        Ok(RelayState::On) => r#""ON""#,
        Ok(RelayState::Off) => r#""OFF""#,
        Err(_) => "null",
    };
    format!(r#"{{"state":{state},"mode":"{}"}}"#, r.mode.as_str())
}

/// `value` thousandths as a decimal: `-1234567` is `-1234.567`.
fn thousandths(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    format!("{sign}{}.{:03}", v / 1000, v % 1000)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use daisee_control::Mode;
    use daisee_hal::{Energy, MeterReading, MilliWattHours, MilliWatts, RelayState};

    use super::*;
    use crate::fault::Fault;

    #[test]
    fn decimals_are_exact_on_both_sides_of_zero() {
        assert_eq!(thousandths(-1_234_567), "-1234.567");
        assert_eq!(thousandths(-5), "-0.005");
        assert_eq!(thousandths(0), "0.000");
        assert_eq!(thousandths(i128::from(u64::MAX)), "18446744073709551.615");
    }

    #[test]
    fn a_failing_device_has_null_power_and_keeps_its_energy() {
        let energy = Energy {
            import: MilliWattHours(1_500),
            export: MilliWattHours(20),
        };
        let mut c = ChannelState {
            name: Arc::from("grid"),
            device: "sim",
            reading: Ok(MeterReading {
                power: MilliWatts(-2_000_500),
                ..MeterReading::default()
            }),
            polled: true,
            read_at: None,
            energy,
        };
        assert_eq!(
            channel(&c),
            r#"{"power_w":-2000.500,"import_wh":1.500,"export_wh":0.020}"#
        );
        c.reading = Err(Fault {
            kind: daisee_hal::ErrorKind::NotResponding,
            message: "no answer".into(),
        });
        assert_eq!(
            channel(&c),
            r#"{"power_w":null,"import_wh":1.500,"export_wh":0.020}"#
        );
        let r = RelayStatus {
            name: Arc::from("boiler"),
            state: Ok(RelayState::On),
            safe: RelayState::Off,
            mode: Mode::Auto,
        };
        assert_eq!(relay(&r), r#"{"state":"ON","mode":"auto"}"#);
    }
}

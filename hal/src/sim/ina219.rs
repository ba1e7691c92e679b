use crate::sim::i2c::WireDevice;
use crate::time::{Clock, Timestamp};

/// What an INA219 sees at its pins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Analog {
    /// Voltage across the shunt (IN+ minus IN-), in microvolts; positive towards the load.
    pub shunt_uv: i64,
    /// Voltage from IN- to ground, in millivolts.
    pub bus_mv: i64,
}

const CONFIG: u8 = 0x00;
const SHUNT: u8 = 0x01;
const BUS: u8 = 0x02;
const POWER: u8 = 0x03;
const CURRENT: u8 = 0x04;
const CALIBRATION: u8 = 0x05;

/// The configuration register's value at power-on and after a reset.
const CONFIG_DEFAULT: u16 = 0x399F;
const RESET_BIT: u16 = 1 << 15;
const CONVERSION_READY: u16 = 1 << 1;
const MATH_OVERFLOW: u16 = 1;

/// A simulated INA219: its register file, its ADC timing and its calibration arithmetic, as the
/// datasheet (TI SBOS448) describes them.
///
/// Conversions complete on the clock: in continuous modes every conversion time, in triggered modes
/// once after the configuration write. Only then do the shunt, bus, current and power registers take
/// new values and the conversion-ready flag rise; reading the power register or writing the
/// configuration clears it. The shunt reading saturates at the PGA's full scale; a current or power
/// that does not fit its register saturates and sets the math-overflow flag.
pub struct Ina219Chip {
    clock: Box<dyn Clock>,
    input: Box<dyn FnMut(Timestamp) -> Analog + Send>,
    pointer: u8,
    config: u16,
    calibration: u16,
    shunt: i16,
    bus: u16,
    power: u16,
    current: i16,
    conversion_ready: bool,
    overflow: bool,
    started_us: i64,
    conversions: i64,
}

impl core::fmt::Debug for Ina219Chip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ina219Chip")
            .field("config", &format_args!("{:#06x}", self.config))
            .field("calibration", &self.calibration)
            .field("shunt", &self.shunt)
            .field("bus", &self.bus)
            .field("current", &self.current)
            .field("power", &self.power)
            .finish()
    }
}

impl Ina219Chip {
    /// A chip just powered on, whose pins see what `input` returns at each conversion.
    pub fn new(
        clock: impl Clock + 'static,
        input: impl FnMut(Timestamp) -> Analog + Send + 'static,
    ) -> Self {
        let started_us = clock.now().0 * 1000;
        Self {
            clock: Box::new(clock),
            input: Box::new(input),
            pointer: 0,
            config: CONFIG_DEFAULT,
            calibration: 0,
            shunt: 0,
            bus: 0,
            power: 0,
            current: 0,
            conversion_ready: false,
            overflow: false,
            started_us,
            conversions: 0,
        }
    }

    fn mode(&self) -> u16 {
        self.config & 0b111
    }

    /// Microseconds of one complete conversion in the configured mode.
    fn conversion_time_us(&self) -> i64 {
        let adc_time = |field: u16| -> i64 {
            if field & 0b1000 == 0 {
                [84, 148, 276, 532][usize::from(field & 0b11)]
            } else {
                [532, 1060, 2130, 4260, 8510, 17_020, 34_050, 68_100][usize::from(field & 0b111)]
            }
        };
        let shunt = adc_time((self.config >> 3) & 0xF);
        let bus = adc_time((self.config >> 7) & 0xF);
        match self.mode() & 0b11 {
            0b01 => shunt,
            0b10 => bus,
            _ => shunt + bus,
        }
    }

    /// Completes the conversions due by now.
    fn run_adc(&mut self) {
        let mode = self.mode();
        if mode == 0 || mode == 0b100 {
            return;
        }
        let now_us = self.clock.now().0 * 1000;
        let mut done = (now_us - self.started_us) / self.conversion_time_us();
        if mode & 0b100 == 0 {
            done = done.min(1);
        }
        if done > self.conversions {
            self.conversions = done;
            let input = (self.input)(self.clock.now());
            self.latch(input);
        }
    }

    fn latch(&mut self, input: Analog) {
        let pga_range_10uv = 4000_i64 << ((self.config >> 11) & 0b11);
        let shunt = (input.shunt_uv / 10).clamp(-pga_range_10uv, pga_range_10uv);
        let bus_full_scale_mv = if self.config & (1 << 13) != 0 {
            32_000
        } else {
            16_000
        };
        let bus_4mv = (input.bus_mv.clamp(0, bus_full_scale_mv) / 4).min(0x1FFF);
        let current = shunt * i64::from(self.calibration) / 4096;
        let power = current.abs() * bus_4mv / 5000;
        self.overflow = current > i64::from(i16::MAX)
            || current < i64::from(i16::MIN)
            || power > i64::from(u16::MAX);
        self.shunt = shunt as i16;
        self.bus = bus_4mv as u16;
        self.current = current.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
        self.power = power.min(i64::from(u16::MAX)) as u16;
        self.conversion_ready = true;
    }

    fn restart(&mut self) {
        self.conversion_ready = false;
        self.started_us = self.clock.now().0 * 1000;
        self.conversions = 0;
    }

    fn register(&mut self, pointer: u8) -> u16 {
        self.run_adc();
        match pointer {
            CONFIG => self.config,
            SHUNT => self.shunt as u16,
            BUS => {
                (self.bus << 3)
                    | if self.conversion_ready {
                        CONVERSION_READY
                    } else {
                        0
                    }
                    | if self.overflow { MATH_OVERFLOW } else { 0 }
            }
            POWER => {
                self.conversion_ready = false;
                self.power
            }
            CURRENT => self.current as u16,
            CALIBRATION => self.calibration,
            _ => 0,
        }
    }

    fn set_register(&mut self, pointer: u8, value: u16) {
        self.run_adc();
        match pointer {
            CONFIG if value & RESET_BIT != 0 => {
                self.config = CONFIG_DEFAULT;
                self.calibration = 0;
                self.shunt = 0;
                self.bus = 0;
                self.power = 0;
                self.current = 0;
                self.overflow = false;
                self.restart();
            }
            CONFIG => {
                self.config = value;
                self.restart();
            }
            // Bit 0 of the calibration register does not exist: it always reads 0.
            CALIBRATION => self.calibration = value & !1,
            // The measurement registers are read-only.
            _ => {}
        }
    }
}

impl WireDevice for Ina219Chip {
    fn write(&mut self, bytes: &[u8]) {
        if let Some((&pointer, rest)) = bytes.split_first() {
            self.pointer = pointer;
            if let [msb, lsb, ..] = rest {
                self.set_register(pointer, u16::from_be_bytes([*msb, *lsb]));
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        let bytes = self.register(self.pointer).to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = bytes[i % 2];
        }
    }
}

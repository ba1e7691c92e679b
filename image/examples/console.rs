//! Boots the image (with the test disk) under QEMU and runs each argument in its console's shell,
//! printing the output: `cargo run -p daisee-image --example console -- "daiseectl status"`.

use std::time::Duration;

use daisee_image::{Machine, test_disk};

const WAIT: Duration = Duration::from_secs(300);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut m = Machine::new("console")?;
    m.start(&[&test_disk()])?;
    let slot = m.wait_for_boot(WAIT)?;
    println!("booted slot {slot}");
    for command in std::env::args().skip(1) {
        let (output, status) = m.run(&command, WAIT)?;
        println!("$ {command}  (exit {status})");
        for line in output {
            println!("{line}");
        }
    }
    Ok(())
}

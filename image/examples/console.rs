//! Boots the image (with the test disk) under QEMU and runs each argument in its console's shell,
//! printing the output: `cargo run -p daisee-image --example console -- [--arm64] "daiseectl status"`.

use std::time::Duration;

use daisee_image::{Arch, Machine, test_disk};

const WAIT: Duration = Duration::from_secs(300);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut commands: Vec<String> = std::env::args().skip(1).collect();
    let arch = if commands.first().map(String::as_str) == Some("--arm64") {
        commands.remove(0);
        Arch::Arm64
    } else {
        Arch::Amd64
    };
    let mut m = Machine::new("console", arch)?;
    m.start(&[&test_disk(arch)])?;
    let slot = m.wait_for_boot(WAIT)?;
    println!("booted slot {slot}");
    for command in commands {
        let (output, status) = m.run(&command, WAIT)?;
        println!("$ {command}  (exit {status})");
        for line in output {
            println!("{line}");
        }
    }
    Ok(())
}

//! A local Ethereum node for tests, benches and the demo: anvil from the npm package
//! `@foundry-rs/anvil` (pinned in `contracts/package.json`), on a loopback port of its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alloy::primitives::Address;

use crate::admin::CommunityTerms;

/// The secret of anvil's first development account, which deploys and administers.
pub const OPERATOR_SECRET: [u8; 32] = [
    0xac, 0x09, 0x74, 0xbe, 0xc3, 0x9a, 0x17, 0xe3, 0x6b, 0xa4, 0xa6, 0xb4, 0xd2, 0x38, 0xff, 0x94,
    0x4b, 0xac, 0xb4, 0x78, 0xcb, 0xed, 0x5e, 0xfc, 0xae, 0x78, 0x4d, 0x7b, 0xf4, 0xf2, 0xff, 0x80,
];

/// Anvil's chain id.
pub const CHAIN_ID: u64 = 31_337;

/// The pool account of the communities made here.
pub const POOL: Address = Address::repeat_byte(0xAA);

/// The grid account of the communities made here.
pub const GRID: Address = Address::repeat_byte(0xBB);

/// A community named `name` administered by `admin`, with [`POOL`] and [`GRID`], slots of
/// `slot_ms` and the grid's tariffs at 0.30 (import) and 0.08 (feed-in) a kWh.
pub fn terms(name: &str, admin: Address, slot_ms: i64) -> CommunityTerms {
    CommunityTerms {
        name: name.into(),
        admin,
        pool: POOL,
        grid: GRID,
        slot_ms,
        import_tariff: 300_000,
        feed_in_tariff: 80_000,
    }
}

/// A running anvil, stopped when dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Child,
    port: u16,
    state: Option<PathBuf>,
    mining: bool,
}

/// Where the anvil binary is: `DAISEE_ANVIL`, or the one the npm package installed here.
pub fn anvil_path() -> PathBuf {
    if let Some(path) = std::env::var_os("DAISEE_ANVIL") {
        return path.into();
    }
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contracts/node_modules/@foundry-rs")
        .join(format!("anvil-linux-{arch}/bin/anvil"))
}

impl Devnet {
    /// Starts anvil on `port` (0: any free one), keeping its state in `state` across restarts
    /// if given, and mining each transaction as it arrives unless `mining` is false.
    pub fn start(port: u16, state: Option<&Path>, mining: bool) -> std::io::Result<Self> {
        let path = anvil_path();
        let mut command = Command::new(&path);
        command.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        if !mining {
            command.arg("--no-mining");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("{}: {e} (run npm ci in ledger/contracts)", path.display()),
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let Some(line) = lines.next().transpose()? else {
                let _ = child.kill();
                return Err(std::io::Error::other("anvil ended before it listened"));
            };
            if let Some(address) = line.strip_prefix("Listening on ") {
                let port = address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse().ok());
                break port.ok_or_else(|| std::io::Error::other(format!("anvil said {line:?}")))?;
            }
        };
        // Keep reading its output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self {
            child,
            port,
            state: state.map(Path::to_path_buf),
            mining,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, from the state it wrote when it stopped.
    pub fn restart(&mut self) -> std::io::Result<()> {
        *self = Self::start(self.port, self.state.as_deref(), self.mining)?;
        Ok(())
    }

    /// Stops it as an operator would (SIGTERM: it writes its state first) and waits.
    pub fn stop(&mut self) -> std::io::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let start = std::time::Instant::now();
        while self.child.try_wait()?.is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                self.child.kill()?;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! What the single-agent tests (D-Bus, MQTT) share: a directory and processes that clean up
//! after themselves.

// Each test file uses its own part.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Child;

/// A directory of a test, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    /// A new, empty `daisee-<kind>-<name>-<pid>` in the temporary directory.
    pub fn new(kind: &str, name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("daisee-{kind}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a test directory");
        Self(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! Log lines, with fields for journald: under systemd (which sets `JOURNAL_STREAM` when stderr
//! goes to the journal) each entry goes to journald's native socket with its own fields
//! (`DAISEE_RELAY=boiler`, `DAISEE_CAUSE=import limit` …), so that `journalctl DAISEE_RELAY=boiler`
//! finds them; otherwise it is a line on stderr.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// journald's socket for entries in its native protocol.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// How much an entry matters (syslog priorities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Something failed.
    Error = 3,
    /// Something is wrong but the agent goes on.
    Warning = 4,
    /// Worth knowing.
    Info = 6,
}

/// Where log entries go.
#[derive(Debug)]
pub struct Journal {
    native: Option<(UnixDatagram, PathBuf)>,
}

impl Journal {
    /// journald's socket when systemd connected stderr to the journal (`DAISEE_JOURNAL_SOCKET`
    /// names another, for tests), stderr otherwise.
    pub fn from_env() -> Self {
        let path = match std::env::var_os("DAISEE_JOURNAL_SOCKET") {
            Some(path) => Some(PathBuf::from(path)),
            None => stderr_is_the_journal().then(|| PathBuf::from(JOURNAL_SOCKET)),
        };
        let native = path.and_then(|p| UnixDatagram::unbound().ok().map(|s| (s, p)));
        Self { native }
    }

    /// Logs `message` with `fields` (names in capitals, `DAISEE_` first).
    pub fn log(&self, priority: Priority, message: &str, fields: &[(&str, &str)]) {
        if let Some((socket, path)) = &self.native {
            let mut entry = Vec::new();
            field(&mut entry, "MESSAGE", message);
            field(&mut entry, "PRIORITY", &(priority as u8).to_string());
            field(&mut entry, "SYSLOG_IDENTIFIER", "daisee-agent");
            for (name, value) in fields {
                field(&mut entry, name, value);
            }
            if socket.send_to(&entry, path).is_ok() {
                return;
            }
        }
        eprintln!("daisee-agent: {message}");
    }
}

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` holds its
/// device and inode, and a child whose stderr was redirected inherits the variable but not the
/// stream.
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    // fstat on the descriptor itself: the unit's ProcSubset/ProtectProc may hide /proc.
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(stderr) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    dev.parse() == Ok(stderr.dev()) && ino.parse() == Ok(stderr.ino())
}

/// One field in the native protocol: `NAME=value\n`, or for a value with a newline, the name, a
/// newline, the length as 64-bit little endian, the value and a newline.
fn field(entry: &mut Vec<u8>, name: &str, value: &str) {
    entry.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        entry.push(b'\n');
        entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        entry.push(b'=');
    }
    entry.extend_from_slice(value.as_bytes());
    entry.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_and_without_newlines() {
        let mut entry = Vec::new();
        field(&mut entry, "MESSAGE", "one line");
        field(&mut entry, "DETAIL", "two\nlines");
        let mut expected = b"MESSAGE=one line\nDETAIL\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\n");
        assert_eq!(entry, expected);
    }
}

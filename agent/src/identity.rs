//! The gateway's identity: one secp256k1 key, made on first start and kept in the data
//! directory, readable by the agent's user only. Its account is the gateway's address in its
//! community's dialogue and on the ledger, and its libp2p identity.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use daisee_dialogue::{GatewayKey, KeyError};

/// The key's file in the data directory.
pub const KEY_FILE: &str = "gateway.key";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be read, created or written.
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The file is not a key: 64 hexadecimal digits of a secp256k1 secret.
    #[error("{0}: not a gateway key (64 hexadecimal digits of a secp256k1 secret)")]
    NotAKey(PathBuf),
    /// The file belongs to another user, or others may read it: the key must be taken as known.
    #[error(
        "{0}: another user owns it or others may read it (chown it to the agent's user and chmod 600 it, or replace the key)"
    )]
    Exposed(PathBuf),
    /// The file is not a regular file.
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
}

/// The key in `dir`, made and stored first if there is none.
pub fn load_or_create(dir: &Path) -> Result<GatewayKey, IdentityError> {
    let path = dir.join(KEY_FILE);
    let io = |error| IdentityError::Io {
        path: path.clone(),
        error,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    match create(&path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    // Never follow a link planted in place of the key, nor wait on a pipe planted there.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(IdentityError::NotAFile(path));
    }
    // The process's own directory in /proc belongs to its effective user.
    let me = std::fs::metadata("/proc/self").map_err(io)?.uid();
    if meta.mode() & 0o077 != 0 || meta.uid() != me {
        return Err(IdentityError::Exposed(path));
    }
    let mut text = String::new();
    file.take(130)
        .read_to_string(&mut text)
        .map_err(|_| IdentityError::NotAKey(path.clone()))?;
    GatewayKey::from_hex(text.trim()).map_err(|_| IdentityError::NotAKey(path))
}

/// Makes a key and puts it at `path` whole or not at all: written and synced under a fresh
/// name first, then linked into place (which fails with `AlreadyExists` if anything is there, a
/// link included). A crash leaves no half-written key.
fn create(path: &Path) -> std::io::Result<GatewayKey> {
    // The usual case, without making a key for nothing; the link below decides races.
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let key = fresh_key()?;
    let nonce = random_hex(8)?;
    let temporary = dir.join(format!(".{KEY_FILE}.{nonce}"));
    let written = write_new(&temporary, &key).and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    written?;
    File::open(dir)?.sync_all()?;
    Ok(key)
}

/// Writes `key` to a new file at `path` (mode 0600, never an existing file or link), synced.
fn write_new(path: &Path, key: &GatewayKey) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
    file.sync_all()
}

/// Fills `bytes` with the kernel's random bytes.
pub(crate) fn random(bytes: &mut [u8]) -> std::io::Result<()> {
    File::open("/dev/urandom")?.read_exact(bytes)
}

/// `count` of the kernel's random bytes in hex: names no one can guess, and tokens.
pub(crate) fn random_hex(count: usize) -> std::io::Result<String> {
    let mut bytes = vec![0; count];
    random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A key from the kernel's random bytes (a draw outside the curve's range is drawn again).
fn fresh_key() -> std::io::Result<GatewayKey> {
    loop {
        let mut secret = [0; 32];
        random(&mut secret)?;
        match GatewayKey::from_secret(&secret) {
            Ok(key) => return Ok(key),
            Err(KeyError::Secret) => continue,
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("daisee-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = dir("once");
        let made = load_or_create(&dir).unwrap();
        let meta = std::fs::metadata(dir.join(KEY_FILE)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let read = load_or_create(&dir).unwrap();
        assert_eq!(read.address(), made.address());
        // Another directory, another gateway.
        assert_ne!(
            load_or_create(&super::tests::dir("other"))
                .unwrap()
                .address(),
            made.address()
        );
    }

    #[test]
    fn an_exposed_broken_or_planted_key_is_refused_with_its_reason() {
        let dir = dir("refused");
        let path = dir.join(KEY_FILE);
        load_or_create(&dir).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&dir),
            Err(IdentityError::Exposed(_))
        ));
        std::fs::write(&path, "not hex\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&dir),
            Err(IdentityError::NotAKey(_))
        ));
        // A pipe planted there is refused at once, not waited on.
        std::fs::remove_file(&path).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            load_or_create(&dir),
            Err(IdentityError::NotAFile(_))
        ));
        // A link planted in the key's place is neither followed nor replaced.
        std::fs::remove_file(&path).unwrap();
        let target = dir.join("elsewhere");
        std::fs::write(&target, "kept").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(
            load_or_create(&dir),
            Err(IdentityError::Io { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
    }
}

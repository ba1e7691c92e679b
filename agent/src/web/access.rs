//! Who may write from the page. The password is set over D-Bus and kept only as an argon2 hash
//! in the store's directory. A login opens a session: a cookie the page's scripts cannot read,
//! and a token they send in a header with each write, which a page of another site cannot (the
//! CSRF protection). Failed logins from one address wait longer and longer.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// The file of the password's hash in the store's directory.
const PASSWORD_FILE: &str = "web-password";
/// The shortest and longest password, in bytes.
const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;
/// How long a session lasts: a day's use of the page without logging in again.
pub(super) const SESSION: Duration = Duration::from_secs(12 * 3600);
/// Sessions at once: the oldest ends when another opens.
const MAX_SESSIONS: usize = 16;
/// Addresses whose failed logins are remembered at once.
const MAX_FAILING: usize = 1024;
/// The largest password hash file read.
const MAX_HASH_BYTES: u64 = 4096;
/// Every wrong password is answered after this long.
pub(super) const WRONG_ANSWER_AFTER: Duration = Duration::from_secs(1);
/// The longest wait after failed logins.
const MOST_WAIT: Duration = Duration::from_secs(300);

/// Why a password was not set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("a password of {} to {} bytes", PASSWORD_BYTES.start(), PASSWORD_BYTES.end())]
    Length,
    /// The page does not write.
    #[error("writes from the page are off: set writes = true in [web]")]
    NoWrites,
    /// The hash could not be made or written.
    #[error("{0}")]
    Failed(String),
}

/// Why a login was refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// No password is set: nobody can log in.
    NoPassword,
    /// The password is wrong.
    Wrong,
    /// Too many wrong ones from this address: wait this long.
    Wait(Duration),
    /// No session could be opened (no random bytes).
    Unavailable,
    /// Another login is being checked.
    Busy,
}

/// An open session: its cookie and the token its writes carry.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) cookie: String,
    pub(super) csrf: String,
}

/// Failed logins of one address.
#[derive(Debug, Clone, Copy)]
struct Failing {
    count: u32,
    until: Instant,
}

/// The page's password, sessions and failed logins.
#[derive(Debug)]
pub struct Access {
    /// The hash's file; `None` when the page does not write.
    file: Option<PathBuf>,
    hash: RwLock<Option<String>>,
    sessions: Mutex<Vec<(Session, Instant)>>,
    failing: Mutex<HashMap<IpAddr, Failing>>,
    /// One hash at a time: each takes 19 MiB for a moment.
    hashing: Semaphore,
}

impl Access {
    /// Writes allowed with the password whose hash is in `dir` (once set), or no writes (`None`).
    pub(super) fn new(dir: Option<&Path>) -> Self {
        let file = dir.map(|d| d.join(PASSWORD_FILE));
        let hash = file
            .as_ref()
            .and_then(|f| read_bounded(f).ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| PasswordHash::new(h).is_ok());
        Access {
            file,
            hash: RwLock::new(hash),
            sessions: Mutex::new(Vec::new()),
            failing: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(1),
        }
    }

    /// Whether the page writes: allowed, and a password set.
    pub fn writes(&self) -> bool {
        self.file.is_some() && self.password_set()
    }

    /// Whether a password is set.
    pub fn password_set(&self) -> bool {
        self.hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Sets the password: its hash replaces the file's (never written through a link), and every
    /// session ends.
    pub async fn set_password(self: &Arc<Self>, password: String) -> Result<(), PasswordError> {
        let file = self.file.clone().ok_or(PasswordError::NoWrites)?;
        if !PASSWORD_BYTES.contains(&password.len()) {
            return Err(PasswordError::Length);
        }
        let _turn = self
            .hashing
            .acquire()
            .await
            .map_err(|e| PasswordError::Failed(e.to_string()))?;
        let hash = tokio::task::spawn_blocking(move || {
            let mut salt = [0; 16];
            crate::identity::random(&mut salt).map_err(|e| e.to_string())?;
            let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            let hash = Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| e.to_string())?
                .to_string();
            replace(&file, &hash).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok::<_, String>(hash)
        })
        .await
        .map_err(|e| PasswordError::Failed(e.to_string()))?
        .map_err(PasswordError::Failed)?;
        *self.hash.write().unwrap_or_else(PoisonError::into_inner) = Some(hash);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// Checks `password` from `from`: a new session, or why not. A wrong password is answered
    /// after [`WRONG_ANSWER_AFTER`], and makes `from` wait before its next try.
    pub(super) async fn log_in(&self, from: IpAddr, password: String) -> Result<Session, Refusal> {
        // One password checked at a time, the address's wait read after its turn came: a burst
        // of logins from one address gets one guess, not one each.
        let Ok(turn) = self.hashing.try_acquire() else {
            return Err(Refusal::Busy);
        };
        let now = Instant::now();
        let from = address_of(from);
        if let Some(f) = self.failing().get(&from).filter(|f| f.until > now) {
            return Err(Refusal::Wait(f.until - now));
        }
        let hash = self
            .hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Refusal::NoPassword)?;
        let checked = hash.clone();
        let right = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&checked).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        if !right {
            self.failed(from);
            drop(turn);
            tokio::time::sleep(WRONG_ANSWER_AFTER.saturating_sub(now.elapsed())).await;
            return Err(Refusal::Wrong);
        }
        self.failing().remove(&from);
        let session = Session {
            cookie: token().map_err(|_| Refusal::Unavailable)?,
            csrf: token().map_err(|_| Refusal::Unavailable)?,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        // A password set while this one was checked ends this session before it opens.
        if self
            .hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            != Some(&hash)
        {
            return Err(Refusal::Wrong);
        }
        sessions.retain(|(_, until)| *until > now);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push((session.clone(), now + SESSION));
        Ok(session)
    }

    /// The open session whose cookie is `cookie`.
    pub(super) fn session(&self, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .iter()
            .find(|(s, until)| *until > now && same(&s.cookie, cookie))
            .map(|(s, _)| s.clone())
    }

    /// Ends the session whose cookie is `cookie`.
    pub(super) fn log_out(&self, cookie: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|(s, _)| !same(&s.cookie, cookie));
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failing>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a wrong password from `from`: it waits 1 s, then 2, 4… up to [`MOST_WAIT`].
    fn failed(&self, from: IpAddr) {
        let now = Instant::now();
        let mut failing = self.failing();
        if failing.len() >= MAX_FAILING {
            failing.retain(|_, f| f.until > now);
        }
        if failing.len() >= MAX_FAILING && !failing.contains_key(&from) {
            // Full of addresses still waiting: this one is not remembered, but still answered
            // late.
            return;
        }
        let f = failing.entry(from).or_insert(Failing {
            count: 0,
            until: now,
        });
        f.count = f.count.saturating_add(1);
        let wait = Duration::from_secs(1 << (f.count - 1).min(16)).min(MOST_WAIT);
        f.until = now + wait;
    }
}

/// The text of `file`, at most [`MAX_HASH_BYTES`] of it.
fn read_bounded(file: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(MAX_HASH_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Whose failed logins an address counts for: itself, or for IPv6 its /64, which one host may
/// pick addresses from at will.
fn address_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())
        }
        other => other,
    }
}

/// 32 random bytes in hex.
fn token() -> std::io::Result<String> {
    crate::identity::random_hex(32)
}

/// Whether two tokens are equal, in a time that does not tell how much of them is.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// Replaces `file` with `text`: written to a new file beside it (created exclusively, mode
/// 0600), synced, then renamed over it.
fn replace(file: &Path, text: &str) -> std::io::Result<()> {
    let suffix = crate::identity::random_hex(8)?;
    let new = file.with_extension(format!("{suffix}.new"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&new)?;
    let written = f
        .write_all(format!("{text}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&new, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&new);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_each_wrong_password_up_to_five_minutes() {
        let access = Access::new(None);
        let from: IpAddr = "192.0.2.1".parse().unwrap();
        let mut waits = Vec::new();
        for _ in 0..10 {
            access.failed(from);
            let f = access.failing()[&from];
            waits.push((f.until - Instant::now()).as_secs_f64().round() as u64);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_of(a), address_of(b));
        assert_eq!(address_of(a).to_string(), "2001:db8:1:2::");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_of(v4), v4);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abcd", "abc"));
        assert_eq!(token().unwrap().len(), 64);
        assert_ne!(token().unwrap(), token().unwrap());
    }
}

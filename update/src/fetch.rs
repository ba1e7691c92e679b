//! Fetching over HTTP(S): the feed, bounded in size, and a bundle into a directory, resumed
//! where an interrupted download (a vanished server, a power cut) left it. HTTPS checks the
//! server against the system's CA store; a proxy is used when the configuration names one.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Client, StatusCode, Url};

use crate::feed::{Feed, FeedError, MAX_FEED_BYTES, Offer};

/// How long a connection may take to open, and a read may wait for bytes.
const PATIENCE: Duration = Duration::from_secs(30);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be made (a proxy setting reqwest refuses, no CA store).
    #[error("the HTTP client: {0}")]
    Client(String),
    /// The server could not be reached, or the transfer broke off.
    #[error("{url}: {reason}")]
    Transfer {
        /// What was fetched.
        url: Url,
        /// Why it stopped.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url}: the server answered {status}")]
    Status {
        /// What was fetched.
        url: Url,
        /// Its answer.
        status: StatusCode,
    },
    /// The feed is wrong.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The bundle is not the size the feed says.
    #[error("{url}: {got} bytes, where the feed says {expected}")]
    Size {
        /// What was fetched.
        url: Url,
        /// The feed's size.
        expected: u64,
        /// What the server sent or announced.
        got: u64,
    },
    /// The download directory could not be written.
    #[error("{}: {source}", path.display())]
    Disk {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// An HTTP client for the feed and the bundles.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: Client,
}

impl Fetcher {
    /// A client through `proxy` when there is one, else direct.
    pub fn new(proxy: Option<&Url>) -> Result<Self, FetchError> {
        // reqwest's rustls takes the process's provider: ring, as for the ledger.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = Client::builder()
            .connect_timeout(PATIENCE)
            .read_timeout(PATIENCE)
            .user_agent(concat!("daisee-agent/", env!("CARGO_PKG_VERSION")));
        let builder = match proxy {
            Some(url) => builder
                .proxy(reqwest::Proxy::all(url.clone()).map_err(|e| FetchError::Client(said(&e)))?),
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|e| FetchError::Client(said(&e)))?;
        Ok(Fetcher { client })
    }

    /// The feed at `url`.
    pub async fn feed(&self, url: &Url) -> Result<Feed, FetchError> {
        Ok(Feed::parse(&self.feed_bytes(url).await?, url)?)
    }

    /// The feed at `url` as the server sent it, at most [`MAX_FEED_BYTES`], not yet read.
    pub async fn feed_bytes(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let mut response = self.get(url, None).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| broke(url, &said(&e)))? {
            if bytes.len() + chunk.len() > MAX_FEED_BYTES {
                return Err(FeedError::TooLarge.into());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Downloads `offer` into `dir` (made private if missing), resuming a download of the same
    /// version left there, and returns the complete file. `progress` gets the bytes held so far.
    pub async fn download(
        &self,
        offer: &Offer,
        dir: &Path,
        mut progress: impl FnMut(u64),
    ) -> Result<PathBuf, FetchError> {
        let done = bundle_file(dir, offer);
        if std::fs::metadata(&done).is_ok_and(|m| m.len() == offer.size) {
            return Ok(done);
        }
        let part = done.with_extension("raucb.part");
        let disk = |path: &Path| {
            let path = path.to_owned();
            move |source| FetchError::Disk { path, source }
        };
        private_dir(dir).map_err(disk(dir))?;
        remove_others(dir, &done, &part).map_err(disk(dir))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            // Never through a link, should one be planted in the directory.
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&part)
            .map_err(disk(&part))?;
        let mut held = file.metadata().map_err(disk(&part))?.len();
        if held > offer.size {
            file.set_len(0).map_err(disk(&part))?;
            held = 0;
        }
        if held < offer.size {
            let url = &offer.url;
            let mut response = self.get(url, Some(held)).await?;
            if response.status() == StatusCode::OK {
                // The server ignored the range: it sends the whole bundle again.
                file.set_len(0).map_err(disk(&part))?;
                held = 0;
            } else {
                check_range(url, &response, held, offer.size)?;
            }
            progress(held);
            while let Some(chunk) = response.chunk().await.map_err(|e| broke(url, &said(&e)))? {
                let got = held + chunk.len() as u64;
                if got > offer.size {
                    return Err(FetchError::Size {
                        url: url.clone(),
                        expected: offer.size,
                        got,
                    });
                }
                file.write_all(&chunk).map_err(disk(&part))?;
                held = got;
                progress(held);
            }
            if held != offer.size {
                return Err(broke(
                    url,
                    &format!("the transfer ended at byte {held} of {}", offer.size),
                ));
            }
        }
        file.sync_all().map_err(disk(&part))?;
        std::fs::rename(&part, &done).map_err(disk(&done))?;
        Ok(done)
    }

    /// A GET of `url`, from byte `from` on when given; an error status is an error.
    async fn get(&self, url: &Url, from: Option<u64>) -> Result<reqwest::Response, FetchError> {
        let mut request = self.client.get(url.clone());
        if let Some(from) = from.filter(|&f| f > 0) {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(|e| broke(url, &said(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.clone(),
                status,
            });
        }
        Ok(response)
    }
}

/// Where the complete download of `offer` is kept in `dir`: named by its version (letters,
/// digits, `.`, `-`, `+`: no path).
pub fn bundle_file(dir: &Path, offer: &Offer) -> PathBuf {
    dir.join(format!("daisee-{}.raucb", offer.version))
}

/// Checks that a partial answer starts where the download stopped and ends at the bundle's end.
fn check_range(
    url: &Url,
    response: &reqwest::Response,
    held: u64,
    size: u64,
) -> Result<(), FetchError> {
    let range = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // "bytes FIRST-LAST/TOTAL"
    let parsed = range
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .and_then(|(span, total)| {
            let (first, _) = span.split_once('-')?;
            Some((first.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
        });
    match parsed {
        Some((first, total)) if first == held && total == size => Ok(()),
        Some((_, total)) if total != size => Err(FetchError::Size {
            url: url.clone(),
            expected: size,
            got: total,
        }),
        _ => Err(broke(
            url,
            &format!("the server resumed with {range:?}, not from byte {held}"),
        )),
    }
}

fn broke(url: &Url, reason: &dyn std::fmt::Display) -> FetchError {
    FetchError::Transfer {
        url: url.clone(),
        reason: reason.to_string(),
    }
}

/// `dir`, made with mode 0700 if missing: only the agent writes its downloads.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes every other download from `dir`: one bundle at a time is kept on the data partition.
fn remove_others(dir: &Path, done: &Path, part: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path != done && path != part {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Removes the downloads kept in `dir`, after an install (a missing directory is no error).
pub fn remove_downloads(dir: &Path) -> std::io::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                std::fs::remove_file(entry?.path())?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An error with the errors under it (reqwest's own says only "error sending request").
fn said(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

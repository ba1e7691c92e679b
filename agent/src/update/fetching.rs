//! The feed and the bundles are fetched by a short-lived child: the agent's own binary run with
//! `--fetch`. The HTTP and TLS client and the HTTP and TLS parsing of the server's bytes then never
//! live in the agent, whose memory stays what it is without updates between two checks hours
//! apart; only the feed's JSON (at most 1 MiB) is read back here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use daisee_update::{Feed, Fetcher, MAX_FEED_BYTES, Offer, Url, Version, bundle_file};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::UpdateError;

/// The most of the child's error message kept.
const MAX_ERROR_BYTES: u64 = 4096;

/// What the agent asks its child to fetch, passed as one JSON argument.
#[derive(Debug, Serialize, Deserialize)]
struct Fetch {
    what: What,
    proxy: Option<String>,
}

/// The feed or a bundle.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum What {
    /// The feed at `url`: its bytes on stdout.
    Feed { url: String },
    /// A bundle into `dir`: the bytes held on stdout, a line each time the percentage moves.
    Bundle {
        url: String,
        size: u64,
        version: String,
        dir: PathBuf,
    },
}

/// The feed at `url`, fetched by the child.
pub(super) async fn feed(url: &Url, proxy: Option<&Url>) -> Result<Feed, UpdateError> {
    let mut child = spawn(
        What::Feed {
            url: url.to_string(),
        },
        proxy,
    )?;
    let mut stdout = child
        .stdout
        .take()
        .expect("stdout is piped")
        .take(MAX_FEED_BYTES as u64 + 1);
    let mut bytes = Vec::new();
    let read = stdout.read_to_end(&mut bytes);
    let (read, ended) = tokio::join!(read, ended(&mut child));
    ended?;
    read.map_err(unreachable_child)?;
    Feed::parse(&bytes, url).map_err(|e| UpdateError::Failed(e.to_string()))
}

/// Downloads `offer` into `dir` by the child (resuming a download left there); the complete
/// file. `progress` gets the bytes held so far.
pub(super) async fn download(
    offer: &Offer,
    dir: &Path,
    proxy: Option<&Url>,
    mut progress: impl FnMut(u64),
) -> Result<PathBuf, UpdateError> {
    let what = What::Bundle {
        url: offer.url.to_string(),
        size: offer.size,
        version: offer.version.to_string(),
        dir: dir.to_owned(),
    };
    let mut child = spawn(what, proxy)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let read = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            if let Ok(held) = line.parse() {
                progress(held);
            }
        }
        std::io::Result::Ok(())
    };
    let (read, ended) = tokio::join!(read, ended(&mut child));
    ended?;
    read.map_err(unreachable_child)?;
    Ok(bundle_file(dir, offer))
}

/// Starts the child; it is killed if the agent stops waiting for it.
fn spawn(what: What, proxy: Option<&Url>) -> Result<Child, UpdateError> {
    let proxy = proxy.map(Url::to_string);
    let request =
        serde_json::to_string(&Fetch { what, proxy }).expect("a fetch request is plain data");
    // The agent's own binary even if a package upgrade replaced the file since it started.
    Command::new("/proc/self/exe")
        .arg("--fetch")
        .arg(request)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(unreachable_child)
}

/// Waits for the child: its error message if it failed.
async fn ended(child: &mut Child) -> Result<(), UpdateError> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut said = Vec::new();
    let _ = stderr.take(MAX_ERROR_BYTES).read_to_end(&mut said).await;
    let status = child.wait().await.map_err(unreachable_child)?;
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&said);
    Err(UpdateError::Failed(match said.trim() {
        "" => format!("the fetching process ended: {status}"),
        said => said.to_owned(),
    }))
}

/// The child could not be started or read.
fn unreachable_child(e: std::io::Error) -> UpdateError {
    UpdateError::Failed(format!("the fetching process: {e}"))
}

/// The child's side: does `request` (from `daisee-agent --fetch`) and says why it failed on
/// stderr.
pub fn serve_fetch(request: &str) -> ExitCode {
    match serve(request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(request: &str) -> Result<(), String> {
    let Fetch { what, proxy } =
        serde_json::from_str(request).map_err(|e| format!("--fetch: {e}"))?;
    let url = |s: &str| Url::parse(s).map_err(|e| format!("{s}: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let fetcher = Fetcher::new(proxy.as_deref().map(url).transpose()?.as_ref())
            .map_err(|e| e.to_string())?;
        match what {
            What::Feed { url: feed } => {
                let bytes = fetcher
                    .feed_bytes(&url(&feed)?)
                    .await
                    .map_err(|e| e.to_string())?;
                std::io::stdout()
                    .write_all(&bytes)
                    .map_err(|e| e.to_string())
            }
            What::Bundle {
                url: bundle,
                size,
                version,
                dir,
            } => {
                // Only the version (the file's name), the URL and the size matter to a download.
                let offer = Offer {
                    version: version.parse::<Version>().map_err(|e| e.to_string())?,
                    compatible: String::new(),
                    channels: Vec::new(),
                    url: url(&bundle)?,
                    size,
                };
                let mut percent = None;
                let mut out = std::io::stdout();
                fetcher
                    .download(&offer, &dir, |held| {
                        let now = held * 100 / size.max(1);
                        if percent != Some(now) {
                            percent = Some(now);
                            // A parent gone kills this child: a failed line is not worth stopping for.
                            let _ = writeln!(out, "{held}").and_then(|()| out.flush());
                        }
                    })
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    })
}

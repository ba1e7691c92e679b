//! The MQTT adapter: publishes each snapshot's readings and relay states to the broker of
//! `[mqtt]`, announces the gateway to Home Assistant (device-based discovery), and, when enabled,
//! passes relay commands from `<prefix>/relay/<name>/set` to the daemon. Two tasks: the session
//! (rumqttc's event loop: connects, reconnects with backoff, takes commands) and the publisher
//! (follows the snapshots while connected; what happens while the broker is away is in the
//! history, not buffered here).

mod commands;
mod discovery;
mod session;
mod state;
mod topics;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use tokio::sync::watch;

use crate::config::{Config, MqttConfig, MqttTls};
use crate::daemon::Handles;
use discovery::Announcement;
use topics::Topics;

/// The most bytes of a password file.
const MAX_PASSWORD_BYTES: u64 = 1024;
/// The most bytes of a CA file.
const MAX_CA_BYTES: u64 = 1024 * 1024;
/// The largest message taken from the broker. Commands are a word, but a larger one would end
/// the connection (rumqttc) and come back at every reconnection (it stays unacknowledged).
const MAX_INCOMING_BYTES: usize = 64 * 1024;
/// The largest message sent: the discovery of a gateway with many channels.
const MAX_OUTGOING_BYTES: usize = 256 * 1024;
/// Requests queued for the event loop: one snapshot's states and more.
const QUEUE: usize = 256;

/// How the gateway stands with its broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttStatus {
    /// `host:port`.
    pub broker: String,
    /// Whether the broker accepted the connection and it is up.
    pub connected: bool,
    /// Why the last connection failed or ended; empty while connected.
    pub error: String,
    /// State messages handed to the connection.
    pub published: u64,
    /// Relay commands taken.
    pub commands: u64,
}

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A file it needs could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file it needs is larger than such a file may be.
    #[error("{}: more than {most} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        most: u64,
    },
    /// The password file is in the store's directory, beside the gateway's key.
    #[error("{}: a password file may not be in the store's directory", .0.display())]
    InStore(PathBuf),
    /// The CA file holds no certificate.
    #[error("{}: no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Starts the adapter for `config`'s gateway; `address` is the gateway's account (empty without
/// a key), the default node id's source. Runs on the current tokio runtime.
pub fn spawn(
    config: &Config,
    mqtt: &MqttConfig,
    address: &str,
    handles: Handles,
) -> Result<watch::Receiver<MqttStatus>, MqttError> {
    let node = mqtt
        .node_id
        .clone()
        .unwrap_or_else(|| node_id(&config.name, address));
    let prefix = mqtt
        .prefix
        .clone()
        .unwrap_or_else(|| format!("daisee/{node}"));
    let topics = Topics::new(prefix, mqtt.discovery.clone(), node.clone());
    let store = config.store.as_ref().map(|s| s.dir.as_path());
    let options = options(mqtt, &node, &topics, store)?;
    let announcement = Announcement {
        name: config.name.clone(),
        node,
        channels: config.channels().map(str::to_owned).collect(),
        relays: config.relays.iter().map(|r| r.name.clone()).collect(),
        commands: mqtt.commands,
    };
    let (client, eventloop) = AsyncClient::new(options, QUEUE);
    let (status, watched) = watch::channel(MqttStatus {
        broker: format!("{}:{}", mqtt.host, mqtt.port),
        ..MqttStatus::default()
    });
    let status = Arc::new(status);
    let forwarder = commands::spawn(commands::Forwarder {
        client: client.clone(),
        topics: topics.clone(),
        relays: if mqtt.commands {
            announcement.relays.clone()
        } else {
            Vec::new()
        },
        daemon: handles.commands,
        status: Arc::clone(&status),
    });
    let session = session::Session::new(
        client.clone(),
        topics.clone(),
        announcement,
        forwarder,
        Arc::clone(&status),
    );
    tokio::spawn(session::run(eventloop, session));
    tokio::spawn(session::publish(client, topics, handles.snapshots, status));
    Ok(watched)
}

/// The default node id: from the gateway's account (unique in a community), else its name.
fn node_id(name: &str, address: &str) -> String {
    match address.strip_prefix("0x") {
        Some(hex) if hex.len() >= 12 => format!("daisee_{}", hex[..12].to_ascii_lowercase()),
        _ => format!("daisee_{}", daisee_api::path_segment(name)),
    }
}

/// The connection's settings: a persistent session (commands sent while the gateway was away
/// wait at the broker), acknowledged only once the daemon has the command, and `offline` as
/// the last will.
fn options(
    mqtt: &MqttConfig,
    node: &str,
    topics: &Topics,
    store: Option<&Path>,
) -> Result<MqttOptions, MqttError> {
    let mut options = MqttOptions::new(node, &mqtt.host, mqtt.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_INCOMING_BYTES, MAX_OUTGOING_BYTES)
        .set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &mqtt.username {
        let password = match &mqtt.password_file {
            Some(path) => read_password(path, store)?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            None => String::new(),
        };
        options.set_credentials(user, password);
    }
    if let Some(tls) = &mqtt.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(tls)?),
        )));
    }
    Ok(options)
}

/// The password in `path`, which may not be in the store: its directory holds the gateway's key,
/// which whoever may configure the gateway could otherwise send to a broker of their own.
fn read_password(path: &Path, store: Option<&Path>) -> Result<String, MqttError> {
    let read = |source| MqttError::Read {
        path: path.to_owned(),
        source,
    };
    let real = std::fs::canonicalize(path).map_err(read)?;
    if let Some(store) = store.and_then(|s| std::fs::canonicalize(s).ok())
        && real.starts_with(&store)
    {
        return Err(MqttError::InStore(path.to_owned()));
    }
    read_bounded(&real, MAX_PASSWORD_BYTES)
}

/// TLS on the ring provider the rest of the agent uses, checking the broker against the system's
/// CA store or the configured CA file.
fn tls_config(tls: &MqttTls) -> Result<rustls::ClientConfig, MqttError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let config = match tls {
        MqttTls::SystemRoots => builder.with_platform_verifier()?.with_no_client_auth(),
        MqttTls::Ca(path) => {
            let pem = read_bounded(path, MAX_CA_BYTES)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(MqttError::NoCertificate(path.clone()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// A small text file, at most `most` bytes.
fn read_bounded(path: &Path, most: u64) -> Result<String, MqttError> {
    let read = |source| MqttError::Read {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(most + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > most {
        return Err(MqttError::TooLarge {
            path: path.to_owned(),
            most,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::node_id;

    #[test]
    fn the_node_id_comes_from_the_account_else_the_name() {
        assert_eq!(
            node_id("home", "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"),
            "daisee_abcdef012345"
        );
        assert_eq!(node_id("rooftop pv", ""), "daisee_rooftop_20pv");
    }
}

//! The agent against a real broker (Debian's mosquitto on loopback): Home Assistant's discovery
//! as its documentation describes it, states at each poll, the last will, relay commands only
//! when enabled, and a broker that stops and starts again.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

mod support;
use support::{Dir, Running};

/// A mosquitto on a free port of loopback, its persistence in `dir`.
struct Broker {
    port: u16,
    conf: PathBuf,
    process: Option<Running>,
}

impl Broker {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, "")
    }

    /// One with `more` at the end of its configuration.
    fn start_with(dir: &Path, more: &str) -> Self {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        // Started by root, mosquitto becomes user mosquitto, who could not write the test's
        // directory: its sessions would not be saved.
        let root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
        let user = if root { "user root\n" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "{user}per_listener_settings true\npersistence true\npersistence_location {}/\n\
                 log_dest none\nlistener {port} 127.0.0.1\nallow_anonymous true\n{more}",
                dir.display()
            ),
        )
        .unwrap();
        let mut broker = Broker {
            port,
            conf,
            process: None,
        };
        broker.run();
        broker
    }

    /// Starts mosquitto and waits until it listens.
    fn run(&mut self) {
        // In /usr/sbin, which a user's PATH may lack.
        let program = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(program)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto)");
        self.process = Some(Running(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it as a service manager would (SIGTERM: it saves its sessions).
    fn stop(&mut self) {
        let mut process = self.process.take().unwrap();
        let pid = process.0.id().to_string();
        assert!(Command::new("kill").arg(&pid).status().unwrap().success());
        process.0.wait().unwrap();
    }
}

/// A port of loopback that nothing listens on (until the caller does).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &str) {
    let status = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (Debian package openssl)");
    assert!(status.success(), "openssl {args}");
}

/// A CA `name.pem` (P-256) and, signed by it, a certificate for 127.0.0.1 in `name-server.pem`
/// with its key.
fn certificates(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
             -subj /CN={name} -keyout {name}.key -out {name}.pem"
        ),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
             -keyout {name}-server.key -out {name}-server.csr"
        ),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}-server.csr -CA {name}.pem -CAkey {name}.key -CAcreateserial \
             -days 2 -extfile san.ext -out {name}-server.pem"
        ),
    );
}

/// A simulated home: a grid channel, a heat pump's and a boiler's relay, polled every 100 ms,
/// publishing to the broker on `port` with `mqtt` added to its table.
fn config(dir: &Path, port: u16, mqtt: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nname = \"home\"\npoll_interval_ms = 100\n\n\
             [sim]\n[[sim.load]]\nname = \"house\"\nprofile = \"constant\"\npower_w = 500\n\n\
             [[sim.load]]\nname = \"heat_pump\"\nprofile = \"constant\"\npower_w = 1200\n\n\
             [[sensor]]\nname = \"grid\"\nbackend = \"sim\"\nloads = [\"house\", \"heat_pump\"]\n\n\
             [[sensor]]\nname = \"heat_pump\"\nbackend = \"sim\"\nloads = [\"heat_pump\"]\n\n\
             [[relay]]\nname = \"boiler\"\nbackend = \"sim\"\nsafe_state = \"off\"\n\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n{mqtt}"
        ),
    )
    .unwrap();
    path
}

/// The agent on `config`, without D-Bus, its log lines in `agent.log` beside it.
fn agent(config: &Path) -> Running {
    let log = std::fs::File::create(config.with_file_name("agent.log")).unwrap();
    Running(
        Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
            .arg("--config")
            .arg(config)
            .args(["--dbus", "none"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The log of the agent last started in `dir`.
fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap()
}

/// One message as the test's client saw it.
#[derive(Debug, Clone)]
struct Message {
    topic: String,
    text: String,
    retained: bool,
}

/// A client of the broker that subscribed to `filters` and keeps what arrives.
struct Client {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Message>,
    /// Everything received so far, in order.
    log: Vec<Message>,
    /// Per topic, where the next look starts in `log`.
    read: HashMap<String, usize>,
}

impl Client {
    async fn connect(port: u16, filters: &[&str]) -> Self {
        static CLIENTS: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "test-{}-{}",
            std::process::id(),
            CLIENTS.fetch_add(1, Ordering::Relaxed)
        );
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", port), 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let subscriber = client.clone();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    // Subscribed at each connection: a clean session forgets them.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            subscriber.try_subscribe(filter, QoS::AtLeastOnce).unwrap();
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let message = Message {
                            topic: p.topic.clone(),
                            text: String::from_utf8_lossy(&p.payload).into_owned(),
                            retained: p.retain,
                        };
                        if tx.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // The broker may be restarted under it: try again.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            messages,
            log: Vec::new(),
            read: HashMap::new(),
        }
    }

    /// The next message on `topic` (after the last one returned) whose text satisfies `wanted`,
    /// within 20 s.
    async fn next(&mut self, topic: &str, wanted: impl Fn(&str) -> bool) -> Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut at = self.read.get(topic).copied().unwrap_or(0);
        loop {
            while let Some(m) = self.log.get(at) {
                at += 1;
                if m.topic == topic && wanted(&m.text) {
                    self.read.insert(topic.to_owned(), at);
                    return m.clone();
                }
            }
            let message = tokio::time::timeout_at(deadline, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing wanted on {topic}"))
                .unwrap();
            self.log.push(message);
        }
    }

    /// Everything that arrives in `span`.
    async fn during(&mut self, span: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + span;
        let first = self.log.len();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.messages.recv()).await {
            self.log.push(m);
        }
        self.log[first..].to_vec()
    }

    async fn send(&self, topic: &str, text: &str) {
        self.publish(topic, text, false).await;
    }

    /// Sends `text` to `topic` for the broker to keep (an empty one clears it).
    async fn retain(&self, topic: &str, text: &str) {
        self.publish(topic, text, true).await;
    }

    async fn publish(&self, topic: &str, text: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, text)
            .await
            .unwrap();
    }
}

/// The node id of the test's gateway: no key (no store), so from its name.
const NODE: &str = "daisee_home";
const DISCOVERY: &str = "homeassistant/device/daisee_home/config";
const AVAILABILITY: &str = "daisee/daisee_home/status";
const BOILER: &str = "daisee/daisee_home/relay/boiler";
const BOILER_SET: &str = "daisee/daisee_home/relay/boiler/set";

/// Checks a device-based discovery message against Home Assistant's MQTT documentation: the
/// device's identifiers, the origin's name, each component's platform and unique id (unique),
/// the units and state classes the energy dashboard takes; returns the components by id.
fn check_discovery(d: &Value) -> HashMap<String, Value> {
    assert!(!d["device"]["identifiers"].as_array().unwrap().is_empty());
    assert!(d["device"]["name"].is_string());
    assert!(d["origin"]["name"].is_string(), "origin is required");
    assert_eq!(d["availability_topic"], AVAILABILITY);
    let components = d["components"].as_object().unwrap();
    let mut ids = HashSet::new();
    for (key, c) in components {
        let platform = c["platform"].as_str().unwrap();
        if c.as_object().unwrap().len() == 1 {
            // A component to remove names its platform alone.
            continue;
        }
        assert!(
            ["sensor", "switch", "binary_sensor", "button"].contains(&platform),
            "{key}: {platform}"
        );
        assert!(ids.insert(c["unique_id"].as_str().unwrap().to_owned()));
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{key}"
        );
        match c["device_class"].as_str() {
            Some("power") if platform == "sensor" => {
                assert_eq!(c["unit_of_measurement"], "W", "{key}");
                assert_eq!(c["state_class"], "measurement", "{key}");
            }
            Some("energy") => {
                assert!(["Wh", "kWh"].contains(&c["unit_of_measurement"].as_str().unwrap()));
                assert!(
                    ["total", "total_increasing"].contains(&c["state_class"].as_str().unwrap()),
                    "{key}"
                );
            }
            _ => {}
        }
        if platform != "button" {
            assert!(c["state_topic"].is_string(), "{key}");
        }
    }
    components
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A value template `{{ value_json.power_w }}` read from a state message.
fn templated(template: &str, state: &str) -> Value {
    let field = template
        .trim_start_matches("{{ value_json.")
        .trim_end_matches(" }}");
    serde_json::from_str::<Value>(state).unwrap()[field].clone()
}

#[tokio::test]
async fn discovery_states_and_the_last_will_reach_the_broker_as_home_assistant_expects_them() {
    let dir = Dir::new("mqtt", "discovery");
    let broker = Broker::start(&dir.0);
    let config = config(&dir.0, broker.port, "");
    let mut client = Client::connect(broker.port, &["homeassistant/#", "daisee/#"]).await;
    let mut gateway = agent(&config);

    let discovery = client.next(DISCOVERY, |_| true).await;
    let announced: Value = serde_json::from_str(&discovery.text).unwrap();
    let components = check_discovery(&announced);
    // Power and two counters per channel; the relay's state only (no commands), its switch
    // and button named for removal.
    assert_eq!(components.len(), 2 * 3 + 3, "{components:?}");
    assert_eq!(
        components[&format!("{NODE}_boiler_state")]["platform"],
        "binary_sensor"
    );
    assert_eq!(
        components[&format!("{NODE}_boiler_switch")],
        serde_json::json!({ "platform": "switch" })
    );
    client.next(AVAILABILITY, |t| t == "online").await;
    // Both kept by the broker for whoever comes later (Home Assistant after a restart).
    let mut later = Client::connect(broker.port, &[DISCOVERY, AVAILABILITY]).await;
    assert!(
        later
            .next(DISCOVERY, |t| t == discovery.text)
            .await
            .retained
    );
    assert!(later.next(AVAILABILITY, |t| t == "online").await.retained);

    // Each poll, a state per channel and relay, which the announced templates read.
    let seen = client.during(Duration::from_secs(2)).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &seen {
        *counts.entry(m.topic.as_str()).or_default() += 1;
    }
    for c in components
        .values()
        .filter(|c| c.get("state_topic").is_some())
    {
        let topic = c["state_topic"].as_str().unwrap();
        let state = seen
            .iter()
            .rev()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no state on {topic}: {counts:?}"));
        assert!(!state.retained);
        let value = templated(c["value_template"].as_str().unwrap(), &state.text);
        assert!(value.is_number() || value.is_string(), "{c} on {state:?}");
    }
    // 100 ms polls for two seconds: every snapshot's states go out together, one per topic
    // (a busy machine may skip a poll, never one topic of it).
    let grid = counts["daisee/daisee_home/channel/grid"];
    assert!(grid >= 5, "{counts:?}");
    for topic in ["daisee/daisee_home/channel/heat_pump", BOILER] {
        assert!(counts[topic].abs_diff(grid) <= 1, "{topic}: {counts:?}");
    }
    let grid = seen
        .iter()
        .rev()
        .find(|m| m.topic.ends_with("/channel/grid"))
        .unwrap();
    // The house's 500 W and the heat pump's 1200 W, with the simulated sensor's noise.
    let power = templated("{{ value_json.power_w }}", &grid.text);
    assert!(
        (1600.0..1800.0).contains(&power.as_f64().unwrap()),
        "{grid:?}"
    );

    // The same ids after a restart; and `offline` as soon as it goes.
    drop(gateway);
    client.next(AVAILABILITY, |t| t == "offline").await;
    gateway = agent(&config);
    let again = client.next(DISCOVERY, |_| true).await;
    assert_eq!(again.text, discovery.text);
    client.next(AVAILABILITY, |t| t == "online").await;
    drop(gateway);
}

#[tokio::test]
async fn relay_commands_are_taken_only_when_enabled() {
    let dir = Dir::new("mqtt", "commands");
    let broker = Broker::start(&dir.0);
    let mut client = Client::connect(broker.port, &["daisee/#", "homeassistant/#"]).await;

    let gateway = agent(&config(&dir.0, broker.port, "discovery = false\n"));
    client
        .next(BOILER, |t| t.contains(r#""mode":"fixed""#))
        .await;
    client.send(BOILER_SET, "ON").await;
    let after = client.during(Duration::from_secs(1)).await;
    assert!(
        after
            .iter()
            .filter(|m| m.topic == BOILER)
            .all(|m| m.text == r#"{"state":"OFF","mode":"fixed"}"#),
        "{after:?}"
    );
    assert!(!after.iter().any(|m| m.topic.starts_with("homeassistant/")));
    drop(gateway);

    let gateway = agent(&config(&dir.0, broker.port, "commands = true\n"));
    let discovery = client.next(DISCOVERY, |t| t.contains("\"switch\"")).await;
    let components = check_discovery(&serde_json::from_str(&discovery.text).unwrap());
    assert_eq!(
        components[&format!("{NODE}_boiler_switch")]["command_topic"],
        BOILER_SET
    );
    client.next(BOILER, |t| t.contains("fixed")).await;
    // A retained command is taken as it comes, but not again when the broker hands it over at
    // the next connection (it would undo every later command).
    client.retain(BOILER_SET, "ON").await;
    client
        .next(BOILER, |t| t == r#"{"state":"ON","mode":"manual"}"#)
        .await;
    client.send(BOILER_SET, "AUTO").await;
    client.next(BOILER, |t| t.contains("fixed")).await;
    drop(gateway);
    let gateway = agent(&config(&dir.0, broker.port, "commands = true\n"));
    client.next(AVAILABILITY, |t| t == "online").await;
    let after = client.during(Duration::from_secs(1)).await;
    assert!(
        after
            .iter()
            .filter(|m| m.topic == BOILER)
            .all(|m| m.text.contains("fixed")),
        "{after:?}"
    );
    assert!(
        log(&dir.0).contains("ignored a retained command"),
        "{}",
        log(&dir.0)
    );
    client.retain(BOILER_SET, "").await;
    client.send(BOILER_SET, "ON").await;
    client
        .next(BOILER, |t| t == r#"{"state":"ON","mode":"manual"}"#)
        .await;
    client.send(BOILER_SET, "banana").await;
    client.send(BOILER_SET, "off").await;
    client
        .next(BOILER, |t| t == r#"{"state":"OFF","mode":"manual"}"#)
        .await;
    client.send(BOILER_SET, "AUTO").await;
    client.next(BOILER, |t| t.contains("fixed")).await;
    drop(gateway);
}

#[tokio::test]
async fn the_gateway_reconnects_by_itself_and_loses_no_command_across_a_broker_restart() {
    let dir = Dir::new("mqtt", "restart");
    let mut broker = Broker::start(&dir.0);
    let mut client = Client::connect(broker.port, &["daisee/#"]).await;
    let gateway = agent(&config(&dir.0, broker.port, "commands = true\n"));
    client.next(AVAILABILITY, |t| t == "online").await;
    client.next(BOILER, |t| t.contains("fixed")).await;

    broker.stop();
    // Let the gateway fail a few times (its waits grow), then bring the broker back and send a
    // command at once: the broker keeps it in the gateway's session until it is back.
    std::thread::sleep(Duration::from_secs(4));
    broker.run();
    let sender = Client::connect(broker.port, &[]).await;
    sender.send(BOILER_SET, "ON").await;
    client.next(AVAILABILITY, |t| t == "online").await;
    client
        .next(BOILER, |t| t == r#"{"state":"ON","mode":"manual"}"#)
        .await;
    drop(gateway);
}

#[tokio::test]
async fn over_tls_the_broker_s_certificate_is_checked_against_the_configured_ca() {
    let dir = Dir::new("mqtt", "tls");
    certificates(&dir.0, "ca");
    certificates(&dir.0, "stranger");
    let tls = free_port();
    let broker = Broker::start_with(
        &dir.0,
        &format!(
            "listener {tls} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.pem\n\
             certfile {0}/ca-server.pem\nkeyfile {0}/ca-server.key\n",
            dir.0.display()
        ),
    );
    let mut client = Client::connect(broker.port, &["daisee/#"]).await;

    // A CA that did not sign the broker's certificate: no connection.
    let stranger = format!("ca = \"{}/stranger.pem\"\n", dir.0.display());
    let gateway = agent(&config(&dir.0, tls, &stranger));
    let seen = client.during(Duration::from_secs(3)).await;
    assert!(seen.is_empty(), "{seen:?}");
    let said = log(&dir.0);
    assert!(
        said.contains(&format!("mqtt: 127.0.0.1:{tls}: ")) && said.contains("UnknownIssuer"),
        "{said}"
    );
    drop(gateway);

    let ca = format!("ca = \"{}/ca.pem\"\n", dir.0.display());
    let gateway = agent(&config(&dir.0, tls, &ca));
    client.next(AVAILABILITY, |t| t == "online").await;
    client.next(BOILER, |t| t.contains("fixed")).await;
    drop(gateway);
}

#[tokio::test]
async fn a_broker_that_asks_for_a_password_gets_the_one_in_the_password_file() {
    let dir = Dir::new("mqtt", "password");
    let passwords = dir.0.join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwords)
        .args(["daisee", "s3cret word"])
        .status()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(status.success());
    let guarded = free_port();
    let broker = Broker::start_with(
        &dir.0,
        &format!(
            "listener {guarded} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            passwords.display()
        ),
    );
    let mut client = Client::connect(broker.port, &["daisee/#"]).await;
    let with_password = |password: &str| {
        let file = dir.0.join("mqtt-password");
        std::fs::write(&file, format!("{password}\n")).unwrap();
        config(
            &dir.0,
            guarded,
            &format!(
                "username = \"daisee\"\npassword_file = \"{}\"\n",
                file.display()
            ),
        )
    };

    let gateway = agent(&with_password("wrong"));
    let seen = client.during(Duration::from_secs(3)).await;
    assert!(seen.is_empty(), "{seen:?}");
    let said = log(&dir.0);
    assert!(said.contains("NotAuthorized"), "{said}");
    drop(gateway);

    // Not from the store's directory, where the gateway's key is.
    let store = dir.0.join("data");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("gateway.key"), "s3cret word\n").unwrap();
    let gateway = agent(&config(
        &dir.0,
        guarded,
        &format!(
            "username = \"daisee\"\npassword_file = \"{0}/gateway.key\"\n\n[store]\ndir = \"{0}\"\n",
            store.display()
        ),
    ));
    let seen = client.during(Duration::from_secs(2)).await;
    assert!(seen.is_empty(), "{seen:?}");
    let said = log(&dir.0);
    assert!(
        said.contains("may not be in the store's directory"),
        "{said}"
    );
    drop(gateway);

    let gateway = agent(&with_password("s3cret word"));
    client.next(AVAILABILITY, |t| t == "online").await;
    drop(gateway);
}

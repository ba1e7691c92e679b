//! The agent on a real `dbus-daemon` that runs the system bus's default policy and the project's
//! policy file, checked as clients see it: zbus, `busctl`, and `busctl` under another uid.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use zbus::Connection;
use zbus::fdo::{PropertiesChangedStream, PropertiesProxy};
use zbus::names::InterfaceName;
use zbus::zvariant::OwnedValue;

mod support;
use support::{Dir, Running};

const NAME: &str = "org.daisee.Gateway1";
/// RAUC's own policy for its name, from Debian's rauc-service.
const RAUC_POLICY: &str = "/usr/share/dbus-1/system.d/de.pengutronix.rauc.conf";

/// A bus, the agent on it, and the files they use.
struct Setup {
    address: String,
    config: PathBuf,
    _agent: Running,
    _bus: Running,
    _dir: Dir,
}

const CONFIG: &str = r#"# a test gateway
[gateway]
name = "test"
poll_interval_ms = 100

[sim]
seed = 3

[[sim.load]]
name = "house"
profile = "constant"
power_w = 1500

[[sim.load]]
name = "boiler"
profile = "constant"
power_w = 2000
relay = "boiler"

[[sensor]]
name = "grid"
backend = "sim"
loads = ["house", "boiler"]

[[sensor]]
name = "heat-pump"
backend = "sim"
loads = ["boiler"]

[control]
grid = "grid"
import_limit_w = 6000

[[relay]]
name = "boiler"
backend = "sim"
safe_state = "off"
nominal_w = 2000
min_on_s = 0
min_off_s = 0
max_switches_per_hour = 60

[[relay]]
name = "light"
backend = "sim"
safe_state = "off"

[[sim.load]]
name = "pv"
profile = "constant"
power_w = 1

[[modbus]]
name = "lan"
backend = "sim"

[[inverter]]
name = "pv"
modbus = "lan"
unit = 1
sunspec = true
rated_w = 6000
loads = ["pv"]
"#;

/// The gateway's community, of itself alone.
const DIALOGUE: &str = r#"
[dialogue]
community = "alone"
grid = "grid"
listen = ["/ip4/127.0.0.1/tcp/0"]
price_first = 0
price_increment = 10000
price_steps = 40
import_tariff_step = 30
feed_in_tariff_step = 8
import_cap_w = 20000
export_cap_w = 20000

[[dialogue.member]]
address = "ADDRESS"
import_w = 9000
export_w = 6000
"#;

/// A ledger whose node is away (nothing listens on the discard port): the object is there all
/// the same, and nothing the gateway owes is lost.
const LEDGER: &str = r#"
[ledger]
rpc_url = "http://127.0.0.1:9"
chain_id = 31337
contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
grid = "grid"
"#;

/// A broker that is away (nothing listens on the discard port): the MQTT object says so, and
/// the gateway goes on trying. The web page, whose password only an admin sets.
const MQTT: &str = r#"
[mqtt]
host = "127.0.0.1"
port = 9

[web]
bind = "127.0.0.1"
port = 0
writes = true
"#;

async fn setup(name: &str) -> Setup {
    setup_with(name, "", &[]).await
}

/// A setup whose configuration ends in `extra` and whose agent gets `env`.
async fn setup_with(name: &str, extra: &str, env: &[(&str, &str)]) -> Setup {
    let dir = std::env::temp_dir().join(format!("daisee-dbus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Others (the test's unprivileged caller) must reach the socket.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = Dir(dir);
    let socket = dir.0.join("bus");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/org.daisee.Gateway1.conf");
    // The default policy of Debian's /usr/share/dbus-1/system.conf, and ours.
    let bus_config = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{}</include>
  <include>{RAUC_POLICY}</include>
</busconfig>
"#,
        socket.display(),
        policy.display()
    );
    let bus_config_path = dir.0.join("bus.conf");
    std::fs::write(&bus_config_path, bus_config).unwrap();
    let bus = Running(
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", bus_config_path.display()))
            .args(["--nofork", "--nopidfile"])
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus)"),
    );
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let address = format!("unix:path={}", socket.display());

    let config = dir.0.join("agent.toml");
    // A key of its own, so that the configuration can name it: a community of one.
    let key = daisee_dialogue::GatewayKey::from_secret(&[7; 32]).unwrap();
    std::fs::create_dir_all(dir.0.join("data")).unwrap();
    let key_file = dir.0.join("data/gateway.key");
    std::fs::write(&key_file, key.to_hex()).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let text = CONFIG.replace(
        "[control]",
        &format!(
            "[store]\ndir = \"{}\"\nflush_interval_ms = 200\n\n[control]",
            dir.0.join("data").display()
        ),
    ) + &DIALOGUE.replace("ADDRESS", &key.address().to_string())
        + LEDGER
        + MQTT
        + extra;
    std::fs::write(&config, text).unwrap();
    let agent = Running(
        Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
            .arg("--config")
            .arg(&config)
            .args(["--dbus", &address])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let setup = Setup {
        address,
        config,
        _agent: agent,
        _bus: bus,
        _dir: dir,
    };
    // Wait for the agent to own its name.
    let conn = setup.connect().await;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    for _ in 0..250 {
        if dbus.name_has_owner(NAME.try_into().unwrap()).await.unwrap() {
            return setup;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the agent did not take {NAME}");
}

/// `daiseectl`, built by the same run into the same target directory (it is a package of its own).
fn daiseectl() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("daiseectl")
}

/// Calls `method` of the agent's object at `path` and decodes the reply.
async fn call<R>(
    conn: &Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> zbus::Result<R>
where
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = conn
        .call_method(
            Some(daisee_api::BUS_NAME),
            path,
            Some(interface),
            method,
            body,
        )
        .await?;
    reply.body().deserialize()
}

impl Setup {
    async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    fn busctl(&self, args: &[&str]) -> Output {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .unwrap()
    }

    /// `busctl` as uid 65534 (nobody), in no group.
    fn busctl_as_nobody(&self, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .unwrap()
    }
}

/// `read` until `done` holds of what it returns (the agent acts at its next poll), at most 5 s;
/// the last value either way.
async fn eventually<T>(mut read: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let mut value = read().await;
    for _ in 0..100 {
        if done(&value) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        value = read().await;
    }
    value
}

/// The controller's import limit, once it is `mw` (or the last value read after 5 s).
async fn import_limit_becomes(conn: &Connection, mw: i64) -> i64 {
    let controller = "/org/daisee/Gateway1/Controller";
    let read = async || -> i64 {
        property(
            conn,
            controller,
            "org.daisee.Gateway1.Controller",
            "ImportLimit",
        )
        .await
        .try_into()
        .unwrap()
    };
    eventually(read, |l| *l == mw).await
}

/// The properties of the agent's object at `path`.
async fn properties<'c>(conn: &'c Connection, path: &'c str) -> PropertiesProxy<'c> {
    PropertiesProxy::builder(conn)
        .destination(NAME)
        .unwrap()
        .path(path)
        .unwrap()
        .build()
        .await
        .unwrap()
}

async fn property(
    conn: &Connection,
    path: &str,
    interface: &'static str,
    name: &str,
) -> OwnedValue {
    properties(conn, path)
        .await
        .get(InterfaceName::from_static_str_unchecked(interface), name)
        .await
        .unwrap()
}

/// The `<interface name="org.daisee…">` blocks of an introspection, whitespace normalised.
fn daisee_interfaces(xml: &str) -> Vec<String> {
    xml.split("<interface ")
        .skip(1)
        .filter(|b| b.starts_with("name=\"org.daisee."))
        .map(|b| {
            let b = &b[..b.find("</interface>").unwrap()];
            format!(
                "<interface {}</interface>",
                b.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect()
}

#[tokio::test]
async fn introspection_matches_the_checked_in_description() {
    let s = setup("introspect").await;
    let conn = s.connect().await;
    let mut live = Vec::new();
    for path in [
        "/org/daisee/Gateway1/Gateway",
        "/org/daisee/Gateway1/Config",
        "/org/daisee/Gateway1/Meter/grid",
        "/org/daisee/Gateway1/Relay/boiler",
        "/org/daisee/Gateway1/Inverter/pv",
        "/org/daisee/Gateway1/Controller",
        "/org/daisee/Gateway1/Dialogue",
        "/org/daisee/Gateway1/History",
        "/org/daisee/Gateway1/Ledger",
        "/org/daisee/Gateway1/Update",
        "/org/daisee/Gateway1/Mqtt",
        "/org/daisee/Gateway1/Web",
    ] {
        let xml: String = call(
            &conn,
            path,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            &(),
        )
        .await
        .unwrap();
        live.extend(daisee_interfaces(&xml));
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/org.daisee.Gateway1.xml");
    if std::env::var_os("DAISEE_BLESS").is_some() {
        let body: String = live
            .iter()
            .map(|i| {
                format!(
                    "  {}\n",
                    i.replace("> <", ">\n    <")
                        .replace("></interface>", ">\n  </interface>")
                )
            })
            .collect();
        let head = "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n";
        std::fs::write(&file, format!("{head}<!-- The interfaces of org.daisee.Gateway1; see docs/dbus.md. Regenerate with DAISEE_BLESS=1 cargo test -p daisee-agent --test dbus introspection. -->\n<node>\n{body}</node>\n")).unwrap();
    }
    let checked_in = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        daisee_interfaces(&checked_in),
        live,
        "the service and {} differ",
        file.display()
    );
}

#[tokio::test]
async fn properties_and_their_change_signals() {
    let s = setup("properties").await;
    let conn = s.connect().await;
    let grid = "/org/daisee/Gateway1/Meter/grid";
    // The house draws 1.5 kW; the boiler (2 kW) goes on at once, there is room under 6 kW.
    let power: i64 = eventually(
        async || {
            property(&conn, grid, "org.daisee.Gateway1.Meter", "Power")
                .await
                .try_into()
                .unwrap()
        },
        |p| *p > 3_000_000,
    )
    .await;
    assert!((3_400_000..3_600_000).contains(&power), "{power}");
    // The gateway's account, from the key it made in its data directory.
    let address: String = property(&conn, "/org/daisee/Gateway1/Gateway", NAME, "Address")
        .await
        .try_into()
        .unwrap();
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );
    // What the sensor measures, and nothing it does not: no frequency, no phases, and no 0s.
    let values: std::collections::HashMap<String, i64> =
        property(&conn, grid, "org.daisee.Gateway1.Meter", "Values")
            .await
            .try_into()
            .unwrap();
    let mut measured: Vec<&str> = values.keys().map(String::as_str).collect();
    measured.sort_unstable();
    assert_eq!(measured, ["current_ua", "voltage_mv"], "{values:?}");
    // A channel name that is no D-Bus path segment is escaped.
    let online: bool = property(
        &conn,
        "/org/daisee/Gateway1/Meter/heat_2dpump",
        "org.daisee.Gateway1.Meter",
        "Online",
    )
    .await
    .try_into()
    .unwrap();
    assert!(online);

    let props = properties(&conn, grid).await;
    let mut changes: PropertiesChangedStream = props.receive_properties_changed().await.unwrap();
    let mode: String = property(
        &conn,
        "/org/daisee/Gateway1/Relay/boiler",
        "org.daisee.Gateway1.Relay",
        "Mode",
    )
    .await
    .try_into()
    .unwrap();
    assert_eq!(mode, "auto");
    // Each poll's signal carries the new time and power; `Values` is only named as changed
    // (`emits_changed_signal = "invalidates"`), and its current value is one Get away. The
    // boiler switched off by hand changes the grid's current.
    call::<()>(
        &conn,
        "/org/daisee/Gateway1/Relay/boiler",
        "org.daisee.Gateway1.Relay",
        "Switch",
        &("off",),
    )
    .await
    .unwrap();
    let mut values_changed = false;
    for _ in 0..5 {
        let signal = tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .unwrap()
            .unwrap();
        let args = signal.args().unwrap();
        assert_eq!(args.interface_name().as_str(), "org.daisee.Gateway1.Meter");
        let changed = args.changed_properties();
        assert!(changed.contains_key("UpdatedAt"), "{changed:?}");
        assert!(!changed.contains_key("Values"), "{changed:?}");
        values_changed |= args.invalidated_properties().contains(&"Values");
    }
    assert!(values_changed, "Values never announced as changed");

    let limit: i64 = property(
        &conn,
        "/org/daisee/Gateway1/Controller",
        "org.daisee.Gateway1.Controller",
        "ImportLimit",
    )
    .await
    .try_into()
    .unwrap();
    assert_eq!(limit, 6_000_000);
}

#[tokio::test]
async fn setting_a_property_is_refused_as_read_only() {
    let s = setup("read-only").await;
    let conn = s.connect().await;
    let grid = "/org/daisee/Gateway1/Meter/grid";
    let props = properties(&conn, grid).await;
    let meter = InterfaceName::from_static_str_unchecked("org.daisee.Gateway1.Meter");
    let set = async |name: &str| props.set(meter.clone(), name, 5i64.into()).await;
    match set("Power").await {
        Err(zbus::fdo::Error::PropertyReadOnly(m)) => assert!(m.contains("Power"), "{m}"),
        other => panic!("Set(Power): {other:?}"),
    }
    match set("Voltage").await {
        Err(zbus::fdo::Error::UnknownProperty(m)) => assert!(m.contains("Voltage"), "{m}"),
        other => panic!("Set(Voltage): {other:?}"),
    }
    // Introspection says so too, and the property still reads.
    let xml: String = call(
        &conn,
        grid,
        "org.freedesktop.DBus.Introspectable",
        "Introspect",
        &(),
    )
    .await
    .unwrap();
    assert!(
        xml.contains(r#"<property name="Power" type="x" access="read"/>"#),
        "{xml}"
    );
    let _: i64 = property(&conn, grid, "org.daisee.Gateway1.Meter", "Power")
        .await
        .try_into()
        .unwrap();
}

#[tokio::test]
async fn configuration_round_trip_and_refusal() {
    let s = setup("config").await;
    let conn = s.connect().await;
    let path = "/org/daisee/Gateway1/Config";
    let iface = "org.daisee.Gateway1.Config";
    let text: String = call(&conn, path, iface, "Get", &()).await.unwrap();
    assert_eq!(text, std::fs::read_to_string(&s.config).unwrap());

    let (revision, restart): (u64, bool) = call(
        &conn,
        path,
        iface,
        "SetKey",
        &("control.import_limit_w", "7000"),
    )
    .await
    .unwrap();
    assert_eq!((revision, restart), (1, false));
    let value: String = call(&conn, path, iface, "GetKey", &("control.import_limit_w",))
        .await
        .unwrap();
    assert_eq!(value, "7000");
    let on_disk = std::fs::read_to_string(&s.config).unwrap();
    assert!(
        on_disk.starts_with("# revision 1 (written by daisee-agent)\n# a test gateway\n"),
        "{on_disk}"
    );
    assert!(on_disk.contains("import_limit_w = 7000"), "{on_disk}");
    // Applied without a restart: the controller acts on the new limit.
    let limit = import_limit_becomes(&conn, 7_000_000).await;
    assert_eq!(limit, 7_000_000);
    // A second change, to a file that now has the revision line: applied at once too.
    let (revision, restart): (u64, bool) = call(
        &conn,
        path,
        iface,
        "SetKey",
        &("control.import_limit_w", "7200"),
    )
    .await
    .unwrap();
    assert_eq!((revision, restart), (2, false));
    let limit = import_limit_becomes(&conn, 7_200_000).await;
    assert_eq!(limit, 7_200_000);
    let on_disk = std::fs::read_to_string(&s.config).unwrap();

    // Refused, with the key named; nothing changed on disk or in memory.
    let refused = call::<(u64, bool)>(
        &conn,
        path,
        iface,
        "SetKey",
        &("gateway.poll_interval_ms", "5"),
    )
    .await
    .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("org.daisee.Gateway1.Error.InvalidConfig")
            && message.contains("gateway.poll_interval_ms"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), on_disk);
    let revision: u64 = property(&conn, path, iface, "Revision")
        .await
        .try_into()
        .unwrap();
    assert_eq!(revision, 2);
    let after: String = call(&conn, path, iface, "Get", &()).await.unwrap();
    assert_eq!(after, on_disk);
    let broken = call::<(u64, bool)>(&conn, path, iface, "Set", &("[gateway\n",))
        .await
        .unwrap_err();
    assert!(broken.to_string().contains("line 1"), "{broken}");
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), on_disk);
}

#[tokio::test]
async fn relays_switch_by_hand_and_go_back() {
    let s = setup("relays").await;
    let conn = s.connect().await;
    let light = "/org/daisee/Gateway1/Relay/light";
    let iface = "org.daisee.Gateway1.Relay";
    let state = async |conn: &Connection| -> (String, String) {
        let state = property(conn, light, iface, "State")
            .await
            .try_into()
            .unwrap();
        let mode = property(conn, light, iface, "Mode")
            .await
            .try_into()
            .unwrap();
        (state, mode)
    };
    call::<()>(&conn, light, iface, "Switch", &("on",))
        .await
        .unwrap();
    let seen = eventually(async || state(&conn).await, |s| s.0 == "on").await;
    assert_eq!(seen, ("on".into(), "manual".into()));
    call::<()>(&conn, light, iface, "Release", &())
        .await
        .unwrap();
    let seen = eventually(async || state(&conn).await, |s| s.0 == "off").await;
    assert_eq!(seen, ("off".into(), "fixed".into()));
    let bad = call::<()>(&conn, light, iface, "Switch", &("maybe",))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not a state"), "{bad}");
}

#[tokio::test]
async fn busctl_works_and_others_may_read_but_not_change() {
    let s = setup("policy").await;
    let tree = s.busctl(&["tree", NAME]);
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.contains("/org/daisee/Gateway1/Meter/grid")
            && tree.contains("/org/daisee/Gateway1/Relay/boiler"),
        "{tree}"
    );

    let read = s.busctl_as_nobody(&[
        "get-property",
        NAME,
        "/org/daisee/Gateway1/Relay/boiler",
        "org.daisee.Gateway1.Relay",
        "SafeState",
    ]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "s \"off\"");

    let before = std::fs::read_to_string(&s.config).unwrap();
    let denied = s.busctl_as_nobody(&[
        "call",
        NAME,
        "/org/daisee/Gateway1/Config",
        "org.daisee.Gateway1.Config",
        "SetKey",
        "ss",
        "control.import_limit_w",
        "1",
    ]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Access denied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let switch = s.busctl_as_nobody(&[
        "call",
        NAME,
        "/org/daisee/Gateway1/Relay/light",
        "org.daisee.Gateway1.Relay",
        "Switch",
        "s",
        "on",
    ]);
    assert!(!switch.status.success());
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), before);
    let web = ["/org/daisee/Gateway1/Web", "org.daisee.Gateway1.Web"];
    let set_password = |password| ["call", NAME, web[0], web[1], "SetPassword", "s", password];
    let said = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let denied = s.busctl_as_nobody(&set_password("long enough"));
    assert!(said(&denied).contains("Access denied"), "{}", said(&denied));
    let url = s.busctl_as_nobody(&["get-property", NAME, web[0], web[1], "Url"]);
    assert!(String::from_utf8_lossy(&url.stdout).starts_with("s \"http://127.0.0.1:"));
    let short = s.busctl(&set_password("short"));
    assert!(
        said(&short).contains("a password of 8 to 1024 bytes"),
        "{}",
        said(&short)
    );
    let writes = ["get-property", NAME, web[0], web[1], "Writes"];
    let shown = || {
        String::from_utf8_lossy(&s.busctl(&writes).stdout)
            .trim()
            .to_owned()
    };
    assert_eq!(shown(), "b false");
    let set = s.busctl(&set_password("long enough"));
    assert!(set.status.success(), "{}", said(&set));
    assert_eq!(shown(), "b true");

    // Root may.
    let allowed = s.busctl(&[
        "call",
        NAME,
        "/org/daisee/Gateway1/Config",
        "org.daisee.Gateway1.Config",
        "SetKey",
        "ss",
        "control.import_limit_w",
        "6500",
    ]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&allowed.stdout).trim(),
        "tb 1 false"
    );
}

impl Setup {
    fn daiseectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(daiseectl().as_os_str())
            .args(["--bus", &self.address])
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }
}

#[tokio::test]
async fn daiseectl_reads_switches_configures_and_exports() {
    let s = setup("ctl").await;
    let conn = s.connect().await;
    // Wait for a poll and a flush of the history.
    eventually(
        async || s.daiseectl(&["history", "grid"]).1,
        |csv| csv.lines().count() > 3,
    )
    .await;

    let (ok, status, err) = s.daiseectl(&["status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains("gateway `test`") && status.contains("import limit 6000 W"),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("mqtt: not connected to 127.0.0.1:9: ")
                && l.contains("refused")),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l.starts_with("web page: http://127.0.0.1:")
            && l.ends_with(", it reads only")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("address 0x") && l.len() == 50),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("grid ") && l.contains(" sim ")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("light ") && l.contains("fixed")),
        "{status}"
    );

    let (ok, _, err) = s.daiseectl(&["relay", "light", "on"]);
    assert!(ok, "{err}");
    let mode: String = eventually(
        async || {
            property(
                &conn,
                "/org/daisee/Gateway1/Relay/light",
                "org.daisee.Gateway1.Relay",
                "Mode",
            )
            .await
            .try_into()
            .unwrap()
        },
        |m: &String| m == "manual",
    )
    .await;
    assert_eq!(mode, "manual");

    let (ok, out, err) = s.daiseectl(&["config", "set", "control.import_limit_w", "5500"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "revision 1: applied");
    let (_, value, _) = s.daiseectl(&["config", "get", "control.import_limit_w"]);
    assert_eq!(value.trim(), "5500");
    let (ok, _, err) = s.daiseectl(&["config", "set", "relay[0].safe_state", "\"sometimes\""]);
    assert!(!ok);
    assert!(
        err.contains("relay[0].safe_state") && err.contains("InvalidConfig"),
        "{err}"
    );

    let (ok, csv, err) = s.daiseectl(&["history", "grid"]);
    assert!(ok, "{err}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("time_ms,power_w"));
    let (_, watts) = lines.next().unwrap().split_once(',').unwrap();
    assert!(watts.parse::<f64>().unwrap() > 1000.0, "{csv}");

    let (ok, _, err) = s.daiseectl(&["history", "grid", "0", "9999999999999"]);
    assert!(!ok && err.contains("at most 31 days"), "{err}");

    let denied = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            daiseectl().to_str().unwrap(),
            "--bus",
            &s.address,
            "relay",
            "light",
            "off",
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success());
    // The refusal says who may, and keeps the bus's own words.
    let refused = String::from_utf8_lossy(&denied.stderr);
    assert!(
        refused.contains("daisee-admin") && refused.contains("Rejected send message"),
        "{refused}"
    );
    // An unknown channel is an error, not an empty table.
    let (ok, _, err) = s.daiseectl(&["history", "nowhere"]);
    assert!(!ok && err.contains("no channel `nowhere`"), "{err}");
}

/// A CA (`ca.pem`, RAUC's keyring) and a bundle signing key it certified (`signing.pem`,
/// `signing.key`) in `dir`: P-256, quick to make.
fn signing_keys(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:true",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=test bundles",
                "-keyout",
                "signing.key",
                "-out",
                "signing.csr",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "signing.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "signing.pem",
    ]);
}

/// A slot's 64 KiB, different for each `seed` and not compressible (a bundle's squashfs must
/// be larger than 4 KiB).
fn slot_image(seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x100;
    (0..SLOT_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

const SLOT_BYTES: usize = 64 * 1024;

/// A bundle `name` signed with `dir`'s key, whose image for the raw slot is `slot_image(seed)`.
fn bundle(dir: &Path, name: &str, compatible: &str, version: &str, seed: u8) -> PathBuf {
    let content = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("rootfs.img"), slot_image(seed)).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        format!("[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.img\n"),
    )
    .unwrap();
    let file = dir.join(format!("{name}.raucb"));
    let out = Command::new("rauc")
        .args(["bundle", "--cert", "signing.pem", "--key", "signing.key"])
        .arg(&content)
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rauc bundle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

/// RAUC's D-Bus service on the test's bus, for a system of two raw slots in `dir` (GRUB's part is
/// played by RAUC's noop boot loader), booted from A.
fn rauc_service(address: &str, dir: &Path) -> Running {
    for slot in ["a", "b"] {
        std::fs::write(dir.join(format!("{slot}.img")), [0u8; SLOT_BYTES]).unwrap();
    }
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    signing_keys(dir);
    let conf = dir.join("system.conf");
    std::fs::write(
        &conf,
        format!(
            "[system]\ncompatible=daisee-test\nbootloader=noop\n\n\
             [keyring]\npath={0}/ca.pem\n\n\
             [slot.rootfs.0]\ndevice={0}/a.img\ntype=raw\nbootname=A\n\n\
             [slot.rootfs.1]\ndevice={0}/b.img\ntype=raw\nbootname=B\n",
            dir.display()
        ),
    )
    .unwrap();
    Running(
        Command::new("rauc")
            .arg(format!("--conf={}", conf.display()))
            .arg(format!("--mount={}", dir.join("mnt").display()))
            .args(["service", "--override-boot-slot=A"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rauc (Debian package rauc)"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_slots_come_from_rauc_and_its_absence_is_a_clear_error() {
    let setup = setup("update").await;
    let conn = setup.connect().await;
    let path = "/org/daisee/Gateway1/Update";
    let interface = "org.daisee.Gateway1.Update";

    // No RAUC (development, the demo): a clear error, and everything else still answers.
    let error = call::<String>(&conn, path, interface, "BootSlot", &())
        .await
        .unwrap_err();
    match error {
        zbus::Error::MethodError(name, Some(message), _) => {
            assert_eq!(name.as_str(), "org.daisee.Gateway1.Error.UpdateUnavailable");
            assert!(message.contains("RAUC does not answer"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let (ok, status, _) = setup.daiseectl(&["status"]);
    assert!(ok, "{status}");

    let _rauc = rauc_service(&setup.address, &setup._dir.0);
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    let rauc_up = eventually(
        async || {
            dbus.name_has_owner("de.pengutronix.rauc".try_into().unwrap())
                .await
                .unwrap()
        },
        |up| *up,
    )
    .await;
    assert!(rauc_up, "rauc service took its name");
    let booted: String = call(&conn, path, interface, "BootSlot", &()).await.unwrap();
    assert_eq!(booted, "A");
    let (operation, error): (String, String) = call(&conn, path, interface, "Installer", &())
        .await
        .unwrap();
    assert_eq!((operation.as_str(), error.as_str()), ("idle", ""));
    let slots: Vec<daisee_api::UpdateSlot> =
        call(&conn, path, interface, "Slots", &()).await.unwrap();
    let summary: Vec<_> = slots
        .iter()
        .map(|s| (s.name.as_str(), s.bootname.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("rootfs.0", "A", "booted"), ("rootfs.1", "B", "inactive")]
    );
    // Anyone may read it: it changes nothing.
    let out = setup.busctl_as_nobody(&["call", NAME, path, interface, "BootSlot"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "s \"A\"",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, table, _) = setup.daiseectl(&["update"]);
    assert!(ok, "{table}");
    assert!(table.starts_with("booted slot A, RAUC idle"), "{table}");
    assert!(table.contains("rootfs.1   B    inactive"), "{table}");
}

/// The updater with a real RAUC (Debian bookworm's 1.8, which fetches a URL whole) and a feed
/// on a real HTTP server: a bundle for another machine and an older one are not installed, a
/// newer one goes to RAUC, with its progress or its error relayed; a downgrade only when asked
/// for by name. The QEMU tests install on the image's own RAUC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_s_newer_bundle_installs_and_others_are_refused() {
    let files = std::env::temp_dir().join(format!("daisee-feed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).unwrap();
    let _files = Dir(files.clone());
    let server = daisee_update::server::Server::start().unwrap();
    let url = |name: &str| format!("http://127.0.0.1:{}/{name}", server.port());
    let os_release = files.join("os-release");
    std::fs::write(&os_release, "ID=debian\nIMAGE_VERSION=1.0\n").unwrap();
    let extra = format!(
        "\n[update]\nfeed = \"{}\"\nwindow = \"00:00-24:00\"\n",
        url("feed.json")
    );
    let setup = setup_with(
        "feed",
        &extra,
        &[("DAISEE_OS_RELEASE", os_release.to_str().unwrap())],
    )
    .await;
    let dir = setup._dir.0.clone();
    let _rauc = rauc_service(&setup.address, &dir);
    let conn = setup.connect().await;
    let update = daisee_api::UpdateProxy::new(&conn).await.unwrap();
    let rauc = eventually(async || update.boot_slot().await.is_ok(), |up| *up).await;
    assert!(rauc, "RAUC answers");

    let mut feed = Vec::new();
    let mut offer = |name: &str, compatible: &str, version: &str, seed: u8| {
        let file = bundle(&dir, name, compatible, version, seed);
        server.put(&format!("/{name}.raucb"), &file);
        let size = std::fs::metadata(&file).unwrap().len();
        // The feed says this machine; the bundle says what it really is for.
        feed.push(format!(
            r#"{{"version": "{version}", "compatible": "daisee-test", "channels": ["stable"], "url": "{name}.raucb", "size": {size}}}"#
        ));
        std::fs::write(
            files.join("feed.json"),
            format!("{{\"bundles\": [{}]}}", feed.join(",")),
        )
        .unwrap();
    };
    server.put("/feed.json", files.join("feed.json"));
    offer("older", "daisee-test", "0.9", 1);
    offer("foreign", "daisee-other", "3.0", 2);

    assert_eq!(update.running().await.unwrap(), "1.0");
    assert_eq!(update.check().await.unwrap(), "3.0", "what the feed claims");
    let error = eventually(
        async || update.last_error().await.unwrap(),
        |e| !e.is_empty(),
    )
    .await;
    assert!(
        error.contains("the bundle is for \"daisee-other\""),
        "{error}"
    );
    // Refused once, not offered again; the older one never was.
    assert_eq!(update.check().await.unwrap(), "");
    let b = std::fs::read(dir.join("b.img")).unwrap();
    assert_eq!(b, [0; SLOT_BYTES], "slot B untouched");

    offer("newer", "daisee-test", "2.0", 3);
    let mut changes = PropertiesProxy::builder(&conn)
        .destination(NAME)
        .unwrap()
        .path(daisee_api::UPDATE_PATH)
        .unwrap()
        .build()
        .await
        .unwrap()
        .receive_properties_changed()
        .await
        .unwrap();
    assert_eq!(update.check().await.unwrap(), "2.0");
    let mut steps = Vec::new();
    let mut top = 0;
    // From the signals: the proxy's cached properties may lag behind them.
    let mut error = String::new();
    while let Ok(Some(signal)) = tokio::time::timeout(Duration::from_secs(60), changes.next()).await
    {
        let args = signal.args().unwrap();
        if let Some(step) = args.changed_properties().get("Step") {
            steps.push(String::try_from(step.try_to_owned().unwrap()).unwrap());
        }
        if let Some(p) = args.changed_properties().get("Progress") {
            top = top.max(i32::try_from(p.try_to_owned().unwrap()).unwrap());
        }
        if let Some(e) = args.changed_properties().get("LastError") {
            error = String::try_from(e.try_to_owned().unwrap()).unwrap();
        }
        if steps.last().is_some_and(|s| s == "idle") && steps.iter().any(|s| s == "installing") {
            break;
        }
    }
    assert_eq!(steps[..3], ["checking", "idle", "installing"], "{steps:?}");
    // Verity bundles need the kernel's device mapper, which a container may not offer: then
    // RAUC's own error is what the updater shows, and slot B keeps what it had.
    let no_device_mapper = error.contains("Failed mounting bundle");
    if no_device_mapper {
        assert_eq!(steps.last().map(String::as_str), Some("idle"), "{steps:?}");
        assert!(
            std::fs::read(dir.join("b.img")).unwrap() == [0; SLOT_BYTES],
            "slot B untouched"
        );
    } else {
        assert_eq!(steps[3..], ["rebooting", "idle"], "{steps:?} {error}");
        assert_eq!(top, 100, "RAUC's progress relayed up to its end");
        assert!(
            std::fs::read(dir.join("b.img")).unwrap() == slot_image(3),
            "slot B holds 2.0"
        );
        // Not on a gateway's systemd: the reboot is left to the user, who is told so.
        assert!(error.starts_with("installed; reboot to run it"), "{error}");
    }

    // An older bundle by name: only as a downgrade.
    let refused = update
        .install(&url("older.raucb"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("not newer than the running 1.0"),
        "{refused}"
    );
    let (_, out, err) = setup.daiseectl(&["update", "install", "--downgrade", &url("older.raucb")]);
    assert!(out.starts_with("installing 0.9\n"), "{out}{err}");
    if no_device_mapper {
        assert!(
            err.contains("the install failed: Failed mounting bundle"),
            "{err}"
        );
    } else {
        assert!(
            std::fs::read(dir.join("b.img")).unwrap() == slot_image(1),
            "slot B holds 0.9"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_agent_is_refused_and_the_first_keeps_the_name() {
    let s = setup("second").await;
    let conn = s.connect().await;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
    let owner = dbus.get_name_owner(NAME.try_into().unwrap()).await.unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .arg("--config")
        .arg(&s.config)
        .args(["--dbus", &s.address, "--polls", "50"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second agent ran: {err}");
    assert!(
        err.contains("another process owns org.daisee.Gateway1"),
        "{err}"
    );
    let still = dbus.get_name_owner(NAME.try_into().unwrap()).await.unwrap();
    assert_eq!(owner, still, "the first agent lost its name");
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_bus_or_an_agent_the_error_says_which() {
    let dir = std::env::temp_dir().join(format!("daisee-dbus-nobus-{}", std::process::id()));
    let address = format!("unix:path={}", dir.join("no-bus").display());
    let agent = Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
        .args(["--dbus", &address, "--polls", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&agent.stderr);
    assert!(!agent.status.success());
    assert!(err.contains("cannot connect to the bus"), "{err}");
    assert!(!err.contains("org.daisee.Gateway1.conf"), "{err}");

    // A bus with no agent on it: every command says what to check.
    let mut s = setup("no-agent").await;
    s._agent.0.kill().unwrap();
    s._agent.0.wait().unwrap();
    for args in [
        &["status"][..],
        &["relays"],
        &["config", "get"],
        &["update"],
    ] {
        let (ok, _, err) = s.daiseectl(args);
        assert!(
            !ok && err.contains("is daisee-agent running?"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_inverter_is_limited_by_hand_and_given_back_by_its_owners_only() {
    let s = setup("inverter").await;
    let conn = s.connect().await;
    let path = "/org/daisee/Gateway1/Inverter/pv";
    let iface = "org.daisee.Gateway1.Inverter";
    let err = call::<()>(&conn, path, iface, "SetLimit", &(101u8, 60u32))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0 to 100"), "{err}");
    call::<()>(&conn, path, iface, "SetLimit", &(40u8, 60u32))
        .await
        .unwrap();
    let limited: bool = eventually(
        async || {
            property(&conn, path, iface, "Limited")
                .await
                .try_into()
                .unwrap()
        },
        |on| *on,
    )
    .await;
    assert!(limited, "the inverter never confirmed the limit");
    let mode: String = property(&conn, path, iface, "Mode")
        .await
        .try_into()
        .unwrap();
    let limit: u8 = property(&conn, path, iface, "LimitPercent")
        .await
        .try_into()
        .unwrap();
    assert_eq!((mode.as_str(), limit), ("manual", 40));
    let (ok, out, err) = s.daiseectl(&["inverter"]);
    assert!(ok, "{err}");
    assert!(out.contains("40 %") && out.contains("manual"), "{out}");
    let (ok, _, err) = s.daiseectl(&["inverter", "pv", "auto"]);
    assert!(ok, "{err}");
    let refused = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(daiseectl())
        .args(["--bus", &s.address, "inverter", "pv", "limit", "0"])
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&refused.stderr);
    assert!(refused.contains("daisee-admin"), "{refused}");
}

/// The web page shows the community's dialogue and the ledger beside the readings.
#[tokio::test]
async fn the_web_page_shows_the_dialogue_and_the_ledger() {
    let s = setup("web").await;
    let url = s.busctl(&[
        "get-property",
        NAME,
        "/org/daisee/Gateway1/Web",
        "org.daisee.Gateway1.Web",
        "Url",
    ]);
    let url = String::from_utf8_lossy(&url.stdout).into_owned();
    let address = url
        .trim()
        .trim_start_matches("s \"http://")
        .trim_end_matches("/\"")
        .to_owned();
    let live = eventually(
        async || {
            let (status, _, body) = support::http(&address, "GET", "/api/live");
            (status == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
        },
        Option::is_some,
    )
    .await
    .unwrap();
    assert_eq!(live["dialogue"]["community"], "alone", "{live}");
    assert!(live["dialogue"]["peers"].is_u64(), "{live}");
    assert!(live["ledger"]["queued"].is_u64(), "{live}");
    assert!(live["ledger"]["error"].is_string(), "{live}");
}

//! The web page of a running agent: its answers over HTTP, and the page itself in a real browser
//! (Debian's headless Chromium, driven over the DevTools protocol on a pipe), which sees live
//! values change, draws a history plot and saves a screenshot.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use daisee_hal::{Energy, MilliWatts, Timestamp};
use daisee_store::{Retention, Store};
use serde_json::{Value, json};
use support::{Dir, Running, exchange, header, http, post, request};

/// How long anything the tests wait for may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// A home on simulated hardware with a history and the web page on a port the system picks,
/// writes allowed.
fn config(dir: &Path) -> String {
    format!(
        r#"[gateway]
name = "home <b>&amp;"

[sim]
seed = 7

[[sim.load]]
name = "house"
profile = "household"
peak_w = 3500

[[sim.load]]
name = "pv"
profile = "solar"
peak_w = 4000

[[sim.load]]
name = "heater"
profile = "constant"
power_w = 2000
relay = "heater"

[[sensor]]
name = "grid"
backend = "sim"
loads = ["house", "pv", "heater"]

[[sensor]]
name = "pv"
backend = "sim"
loads = ["pv"]

[control]
grid = "grid"
import_limit_w = 6000

[[relay]]
name = "heater"
backend = "sim"
safe_state = "on"
nominal_w = 2000

[store]
dir = "{}"
flush_interval_ms = 1000

[web]
bind = "127.0.0.1"
port = 0
writes = true
"#,
        dir.display()
    )
}

/// Fifty minutes of the grid's history before now, one sample each 10 s, so that the hour's plot
/// has a line to draw.
fn seed_history(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let retention = Retention {
        samples: Duration::from_secs(30 * 86_400),
        max_pending: 10_000,
    };
    let mut store = Store::open(&dir.join("history.sqlite"), retention).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let now = i64::try_from(now).unwrap();
    for i in 0..300_i64 {
        let at = Timestamp(now - 3_000_000 + i * 10_000);
        let power = MilliWatts(1_500_000 + (i % 30 - 15) * 40_000);
        store.record(at, "grid", power, Energy::default());
    }
    store.flush().unwrap();
}

/// The agent of [`config`] on a bus of its own, and the address of its page (which it prints
/// at start).
struct Home {
    _bus: Running,
    bus: String,
    _agent: Running,
    address: String,
}

impl Home {
    fn start(dir: &Dir) -> Self {
        let socket = dir.0.join("bus");
        let bus = format!("unix:path={}", socket.display());
        let bus_process = Running(
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile"])
                .arg(format!("--address={bus}"))
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon (Debian package dbus)"),
        );
        until("the bus", || socket.exists().then_some(()));
        let data = dir.0.join("data");
        seed_history(&data);
        let config = dir.0.join("agent.toml");
        std::fs::write(&config, self::config(&data)).unwrap();
        let log = dir.0.join("agent.log");
        let agent = Running(
            Command::new(env!("CARGO_BIN_EXE_daisee-agent"))
                .args(["--dbus", &bus, "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let address = until("the agent's web page", || {
            let text = std::fs::read_to_string(&log).ok()?;
            let line = text.lines().find(|l| l.contains("the web page is at"))?;
            Some(
                line.split("http://")
                    .nth(1)?
                    .trim_end_matches('/')
                    .to_owned(),
            )
        });
        Home {
            _bus: bus_process,
            bus,
            _agent: agent,
            address,
        }
    }

    /// Sets the page's password over D-Bus, with `busctl` as a person does.
    fn set_password(&self, password: &str) {
        let out = Command::new("busctl")
            .arg(format!("--address={}", self.bus))
            .args([
                "call",
                daisee_api::BUS_NAME,
                daisee_api::WEB_PATH,
                "org.daisee.Gateway1.Web",
                "SetPassword",
                "s",
                password,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Polls `check` until it gives a value.
fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < PATIENCE, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_page_s_answers_are_read_only_bounded_and_clear() {
    let dir = Dir::new("web", "http");
    let home = Home::start(&dir);
    let address = home.address.as_str();

    let (status, headers, body) = http(address, "GET", "/");
    assert_eq!(status, 200);
    assert!(body.contains("<title>DAISEE gateway</title>"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = header(&headers, "content-security-policy").unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    for asset in [
        "/app.js",
        "/style.css",
        "/uPlot.iife.min.js",
        "/uPlot.min.css",
    ] {
        assert_eq!(http(address, "GET", asset).0, 200, "{asset}");
    }

    let live = until("a poll", || {
        let (status, _, body) = http(address, "GET", "/api/live");
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
    });
    assert_eq!(live["gateway"], "home <b>&amp;");
    assert_eq!(live["grid"], "grid");
    assert_eq!(live["channels"][0]["name"], "grid");
    assert!(live["channels"][0]["power_mw"].is_i64(), "{live}");
    assert_eq!(live["relays"][0]["name"], "heater");
    assert_eq!(live["control"]["import_limit_mw"], 6_000_000);

    let (status, _, body) = http(address, "GET", "/api/history?channel=grid&span=hour");
    assert_eq!(status, 200, "{body}");
    let plot: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plot["step_ms"], 10_000);
    assert_eq!(plot["at_ms"].as_array().unwrap().len(), 360);
    let points = plot["power_mw"].as_array().unwrap();
    assert_eq!(points.len(), 360);
    let seeded = points.iter().filter(|p| !p.is_null()).count();
    assert!((290..=360).contains(&seeded), "{seeded} points with data");
    let (status, _, body) = http(address, "GET", "/api/history?channel=grid&span=week");
    assert_eq!(status, 200, "{body}");
    let week: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(week["at_ms"].as_array().unwrap().len(), 7 * 96);

    let (status, _, body) = http(address, "GET", "/api/history?channel=boiler&span=day");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"no such channel"}"#)
    );
    assert_eq!(
        http(address, "GET", "/api/history?channel=grid&span=year").0,
        400
    );
    // Nothing on the page writes but a relay's switch, and that only once a password is set.
    assert_eq!(http(address, "POST", "/api/live").0, 405);
    assert_eq!(http(address, "PUT", "/").0, 405);
    assert_eq!(http(address, "GET", "/api/relay/heater").0, 405);
    let (status, _, body) = http(address, "GET", "/api/nothing");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"no such page"}"#)
    );
    let (status, _, body) = post(address, "/api/relay/heater", r#"{"state":"off"}"#, "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("writes from the page are off"), "{body}");

    // At most 32 pages follow the live values; the next is told so, and the first still flows.
    let followers: Vec<TcpStream> = (0..32).map(|_| follow(address)).collect();
    let (status, _, body) = http(address, "GET", "/api/events");
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"error":"too many pages open"}"#)
    );
    let mut first = BufReader::new(followers.into_iter().next().unwrap());
    let events = std::iter::from_fn(|| {
        let mut line = String::new();
        first.read_line(&mut line).ok()?;
        Some(line)
    })
    .filter(|l| l.starts_with("event: snapshot"))
    .take(2)
    .count();
    assert_eq!(events, 2);
}

/// The session cookie an answer sets, as a request sends it back.
fn session_cookie(headers: &[(String, String)]) -> String {
    let set = header(headers, "set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn writes_need_the_password_a_session_and_its_csrf_token() {
    let dir = Dir::new("web", "writes");
    let home = Home::start(&dir);
    let address = home.address.as_str();
    let off = r#"{"state":"off"}"#;

    // No password yet: nobody logs in.
    let (status, _, body) = post(address, "/api/login", r#"{"password":"anything"}"#, "");
    assert_eq!(status, 403, "{body}");
    home.set_password("correct horse");
    let stored = std::fs::read_to_string(dir.0.join("data/web-password")).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("correct horse"));

    // A body larger than any the page sends is not read.
    // (Just over: the whole request fits hyper's first read, so the connection closes cleanly.)
    let long = format!(r#"{{"password":"{}"}}"#, "x".repeat(5_000));
    let (status, _, body) = post(address, "/api/login", &long, "");
    assert_eq!(status, 413, "{body}");

    // A write without a login, its body read or not.
    for body in [off, "not json"] {
        let (status, _, answer) = post(address, "/api/relay/heater", body, "");
        assert_eq!(
            (status, answer.as_str()),
            (401, r#"{"error":"log in first"}"#)
        );
    }

    // A wrong password: refused, answered late, and the next try must wait.
    let start = Instant::now();
    let (status, _, body) = post(address, "/api/login", r#"{"password":"wrong horse"}"#, "");
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"error":"wrong password"}"#)
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    let right = r#"{"password":"correct horse"}"#;
    let (status, headers, _) = post(address, "/api/login", right, "");
    assert_eq!(status, 429);
    let wait: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    std::thread::sleep(Duration::from_secs(wait));

    let (status, headers, body) = post(address, "/api/login", right, "");
    assert_eq!(status, 200, "{body}");
    let cookie = session_cookie(&headers);
    let csrf: Value = serde_json::from_str(&body).unwrap();
    let csrf = csrf["csrf"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);

    // The session without its token (a form of another site), or with a wrong one.
    let with_cookie = format!("Cookie: {cookie}\r\n");
    let (status, _, body) = post(address, "/api/relay/heater", off, &with_cookie);
    assert_eq!(
        (status, body.as_str()),
        (403, r#"{"error":"missing or wrong CSRF token"}"#)
    );
    let wrong = format!("{with_cookie}X-CSRF-Token: {}\r\n", "0".repeat(64));
    assert_eq!(post(address, "/api/relay/heater", off, &wrong).0, 403);
    let both = format!("{with_cookie}X-CSRF-Token: {csrf}\r\n");
    let (status, _, body) = post(address, "/api/relay/heater", r#"{"state":"dim"}"#, &both);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"state: on, off or auto"}"#)
    );
    let (status, _, body) = post(address, "/api/relay/heater", r#"{"on":true}"#, &both);
    assert_eq!(status, 422, "{body}");
    let why: Value = serde_json::from_str(&body).unwrap();
    assert!(why["error"].as_str().unwrap().contains("state"), "{body}");
    assert_eq!(post(address, "/api/relay/kettle", off, &both).0, 404);
    assert_eq!(post(address, "/api/relay/heater", off, &both).0, 204);
    until("the heater held off by hand", || {
        let (_, _, body) = http(address, "GET", "/api/live");
        let live: Value = serde_json::from_str(&body).ok()?;
        let heater = &live["relays"][0];
        (heater["state"] == "off" && heater["mode"] == "manual").then_some(())
    });

    // The import limit, changed in the configuration file and applied at once; a wrong one is
    // refused with the configuration's reason, and nothing changes.
    let (status, _, body) = post(address, "/api/limit/import", r#"{"watts":4500}"#, &both);
    assert_eq!(status, 200, "{body}");
    until("the new import limit", || {
        let (_, _, body) = http(address, "GET", "/api/live");
        let live: Value = serde_json::from_str(&body).ok()?;
        (live["control"]["import_limit_mw"] == 4_500_000).then_some(())
    });
    let file = std::fs::read_to_string(dir.0.join("agent.toml")).unwrap();
    assert!(file.contains("import_limit_w = 4500"), "{file}");
    let (status, _, body) = post(address, "/api/limit/import", r#"{"watts":-5}"#, &both);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("import_limit_w"), "{body}");
    assert_eq!(
        post(address, "/api/limit/sideways", r#"{"watts":1}"#, &both).0,
        404
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("agent.toml")).unwrap(),
        file
    );

    // A new password ends every session.
    home.set_password("battery staple");
    let (status, _, _) = post(address, "/api/relay/heater", r#"{"state":"auto"}"#, &both);
    assert_eq!(status, 401);
}

/// A connection following `/api/events`, its answer's head read.
fn follow(address: &str) -> TcpStream {
    let mut stream = request(
        address,
        "GET",
        "/api/events",
        "Accept: text/event-stream\r\n",
    );
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    stream
}

/// Headless Chromium driven over the DevTools protocol on a pipe (its fds 3 and 4), on one page.
struct Browser {
    _process: Running,
    commands: std::process::ChildStdin,
    answers: mpsc::Receiver<Value>,
    next_id: u64,
    session: Option<String>,
}

impl Browser {
    fn start(profile: &Path) -> Self {
        let program = ["chromium-headless-shell", "chromium"]
            .into_iter()
            .find(|p| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {p}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("Chromium (Debian package chromium-headless-shell)");
        let mut process = Command::new("sh")
            // The protocol's pipe is the browser's fds 3 (in) and 4 (out): here, its stdin and
            // stdout, which it then gets no more.
            .args([
                "-c",
                r#"exec "$@" 3<&0 4>&1 </dev/null >/dev/null 2>/dev/null"#,
                "sh",
                program,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let commands = process.stdin.take().unwrap();
        let mut out = BufReader::new(process.stdout.take().unwrap());
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut message = Vec::new();
            while out.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice(&message)
                    && tx.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        Browser {
            _process: Running(process),
            commands,
            answers,
            next_id: 0,
            session: None,
        }
    }

    /// Sends `method`, to the page once one is open; its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut message = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        loop {
            let answer = self
                .answers
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if answer["id"] == self.next_id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url` in a page with a phone's screen; later calls go to it.
    fn open_on_a_phone(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 412, "height": 915, "deviceScaleFactor": 2, "mobile": true }),
        );
        self.call("Page.navigate", json!({ "url": url }));
        let loaded = "location.protocol === 'http:' && document.readyState === 'complete'";
        until("the page", || (self.eval(loaded) == true).then_some(()));
    }

    /// The value of `expression`, a promise, once it settles.
    fn eval_async(&mut self, expression: &str) -> Value {
        self.evaluate(expression, true)
    }

    /// The value of `expression` in the page.
    fn eval(&mut self, expression: &str) -> Value {
        self.evaluate(expression, false)
    }

    fn evaluate(&mut self, expression: &str, settled: bool) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": settled }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }
}

/// Where the test run keeps the page's screenshot.
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-on-a-phone.png")
}

#[test]
fn a_browser_sees_live_values_change_and_draws_the_history() {
    let dir = Dir::new("web", "browser");
    let home = Home::start(&dir);
    let address = home.address.as_str();
    let mut browser = Browser::start(&dir.0.join("chromium"));
    browser.open_on_a_phone(&format!("http://{address}/"));

    // Live: the poll's time moves, and the grid's power with it.
    let live = r"[document.querySelector('#status').dataset.atMs || null,
                  document.querySelector('#grid-card .power').textContent]";
    let mut seen: Vec<(String, String)> = Vec::new();
    until("three polls and a change of the grid's power", || {
        let now = browser.eval(live);
        if let (Some(at), Some(power)) = (now[0].as_str(), now[1].as_str())
            && seen.last().is_none_or(|(last, _)| last != at)
        {
            seen.push((at.to_owned(), power.to_owned()));
        }
        let powers: std::collections::HashSet<_> = seen.iter().map(|(_, p)| p).collect();
        (seen.len() >= 3 && powers.len() >= 2).then_some(())
    });
    assert!(
        seen.iter()
            .all(|(_, p)| p.ends_with(" W") || p.ends_with(" kW")),
        "{seen:?}"
    );
    // The name is text, not markup.
    assert_eq!(
        browser.eval("document.querySelector('#gateway').textContent"),
        "home <b>&amp;"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#gateway b').length"),
        0
    );
    assert_eq!(
        browser.eval("document.querySelector('#relays [data-name=heater] .pill').textContent"),
        "on · auto"
    );

    // History: the seeded hour drawn, ink on the plot's canvas.
    let points = until("the hour's plot", || {
        browser
            .eval("Number(document.querySelector('#plot').dataset.points || 0)")
            .as_u64()
            .filter(|&n| n > 0)
    });
    assert!(points >= 290, "{points} points");
    let inked = r"(() => {
        const canvas = document.querySelector('#plot canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) inked++;
        return inked;
    })()";
    let inked = browser.eval(inked).as_u64().unwrap();
    assert!(inked > 2_000, "{inked} pixels drawn");
    // A phone's width: nothing wider than the screen.
    assert!(browser.eval("document.documentElement.scrollWidth <= 412") == true);

    // Writes: refused without a login; a wrong password refused and answered late; then the
    // right one, and the heater switched off from its row.
    home.set_password("correct horse");
    let write = r"fetch('/api/relay/heater', { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ state: 'off' }) })
        .then((r) => r.status)";
    assert_eq!(browser.eval_async(write), 401);
    until("the login form", || {
        (browser.eval("document.querySelector('#login').hidden") == false).then_some(())
    });
    let log_in = r"(async () => {
        document.querySelector('#password').value = PASSWORD;
        document.querySelector('#login button').click();
        const error = document.querySelector('#login-error');
        while (error.hidden && document.querySelector('#logged-in').hidden) {
            await new Promise((r) => setTimeout(r, 50));
        }
        return error.hidden ? null : error.textContent;
    })()";
    let start = Instant::now();
    let wrong = browser.eval_async(&log_in.replace("PASSWORD", "'wrong horse'"));
    assert_eq!(wrong, "wrong password");
    assert!(start.elapsed() >= Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(2));
    let right = browser.eval_async(&log_in.replace("PASSWORD", "'correct horse'"));
    assert!(right.is_null(), "{right}");
    browser.eval("document.querySelector('#relays [data-name=heater] [data-state=off]').click()");
    until("the heater off by hand on the page", || {
        (browser.eval("document.querySelector('#relays [data-name=heater] .pill').textContent")
            == "off · manual")
            .then_some(())
    });

    // The import limit from its field.
    browser.eval("document.querySelector('#import-limit').value = '4500'");
    browser.eval("document.querySelector('#limit-form button').click()");
    until("the new import limit on the page", || {
        (browser.eval("document.querySelector('#grid-card .limit').textContent")
            == "import limit 4.50 kW")
            .then_some(())
    });

    let shot = browser.call(
        "Page.captureScreenshot",
        json!({ "format": "png", "captureBeyondViewport": true }),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(screenshot_path(), &png).unwrap();
    eprintln!("the page's screenshot: {}", screenshot_path().display());

    // The day's span is asked for and drawn too: 2-minute steps, 25 of them seeded.
    browser.eval("document.querySelector('[data-span=day]').click()");
    let day = "[document.querySelector('#plot').dataset.stepMs, Number(document.querySelector('#plot').dataset.points)]";
    until("the day's plot", || {
        let plot = browser.eval(day);
        (plot[0] == "120000" && plot[1].as_u64() >= Some(20)).then_some(())
    });
}

/// The plotting library built into the page is the one agent/web/package-lock.json pins:
/// byte for byte what npm installs from it (scripts/test runs `npm ci` in agent/web).
#[test]
fn the_built_in_plot_library_is_the_pinned_one() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let installed = web.join("node_modules/uplot");
    assert!(
        installed.is_dir(),
        "{}: run `npm ci` in agent/web (scripts/test does)",
        installed.display()
    );
    for (vendored, package) in [
        ("uPlot.iife.min.js", "dist/uPlot.iife.min.js"),
        ("uPlot.min.css", "dist/uPlot.min.css"),
        ("uPlot.LICENSE", "LICENSE"),
    ] {
        assert!(
            std::fs::read(web.join("vendor").join(vendored)).unwrap()
                == std::fs::read(installed.join(package)).unwrap(),
            "agent/web/vendor/{vendored} is not the pinned package's {package}"
        );
    }
    let version = |file: &Path, pointer: &str| {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        json.pointer(pointer).unwrap().clone()
    };
    assert_eq!(
        version(
            &web.join("package-lock.json"),
            "/packages/node_modules~1uplot/version"
        ),
        version(&installed.join("package.json"), "/version")
    );
}

/// Hosts holding connections open take at most 64 of the agent's descriptors: the next
/// connection is answered only once one of them closes.
#[test]
fn connections_beyond_64_wait_until_one_closes() {
    let dir = Dir::new("web", "connections");
    let home = Home::start(&dir);
    let address = home.address.clone();
    let mut idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let (tx, answered) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(http(&address, "GET", "/api/live").0);
    });
    assert!(
        answered.recv_timeout(Duration::from_secs(2)).is_err(),
        "answered while 64 connections were open"
    );
    idle.pop();
    let status = answered.recv_timeout(PATIENCE).unwrap();
    assert!(status == 200 || status == 503, "{status}");
}

/// A host that connects and sends nothing, or sends a request's body a little at a time, is let
/// go after 10 s instead of holding one of the 64 connections.
#[test]
fn a_silent_connection_and_a_trickled_body_are_let_go() {
    let dir = Dir::new("web", "slow");
    let home = Home::start(&dir);
    let mut silent = TcpStream::connect(&home.address).unwrap();
    let mut trickled = request(
        &home.address,
        "POST",
        "/api/login",
        "Content-Type: application/json\r\nContent-Length: 40\r\n",
    );
    trickled.write_all(br#"{"pass"#).unwrap();
    let start = Instant::now();

    let (status, _, body) = exchange(trickled);
    assert_eq!(
        (status, body.as_str()),
        (408, r#"{"error":"the request came too slowly"}"#)
    );
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    silent
        .read_to_end(&mut answer)
        .expect("closed by the gateway, not by the test's patience");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(start.elapsed() >= Duration::from_secs(9));
}

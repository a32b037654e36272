//! A small Chrome DevTools Protocol driver for the browser tests: Debian's
//! `chromium` runs headless, each page is driven over its own DevTools
//! WebSocket (tokio-tungstenite) with `Page.navigate`, `Runtime.evaluate`
//! and `Page.captureScreenshot`. No node, no WebDriver.
//!
//! Screenshots go to `<target>/browser-artifacts/<test>/NN-<step>.png`
//! (kept after the run; a failed wait saves one named `…-FAILED.png`).
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test shell: it reads the clock

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The longest any single wait of a test may take.
pub const MAX_WAIT: Duration = Duration::from_secs(15);

/// Where Debian's chromium is, or a panic telling how to get it.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium is not installed (`which chromium` finds nothing): run ./scripts/test, \
         which installs Debian's chromium, or `sudo apt-get install -y chromium`"
    );
}

/// Screenshots of one test, numbered in order.
pub struct Artifacts {
    dir: PathBuf,
    n: Mutex<u32>,
}

impl Artifacts {
    /// `<target>/browser-artifacts/<test>/`, emptied.
    pub fn new(test: &str) -> Arc<Self> {
        // The test binary is <target>/debug/deps/browser-<hash>.
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let dir = target.join("browser-artifacts").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the artifacts directory");
        Arc::new(Self {
            dir,
            n: Mutex::new(0),
        })
    }

    /// The path of the next screenshot named `step`.
    fn next(&self, step: &str) -> PathBuf {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        self.dir.join(format!("{:02}-{step}.png", *n))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A headless chromium.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    rt: Arc<tokio::runtime::Runtime>,
    /// `127.0.0.1:<port>` of the DevTools endpoint.
    devtools: String,
    browser: Option<Socket>,
    next_id: u64,
    stderr: Arc<Mutex<Vec<String>>>,
    artifacts: Arc<Artifacts>,
}

impl Browser {
    /// Start chromium and connect to its DevTools endpoint.
    pub fn launch(artifacts: Arc<Artifacts>) -> Self {
        Self::launch_with(artifacts, &[])
    }

    /// [`Self::launch`] with `extra` command-line switches (e.g. a fake
    /// microphone playing a file).
    pub fn launch_with(artifacts: Arc<Artifacts>, extra: &[String]) -> Self {
        let exe = chromium();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(&exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--window-size=1280,900",
                "--lang=zh-CN",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/<id>"
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = lines.lock().unwrap();
                if l.len() < 500 {
                    l.push(line);
                }
            }
        });
        let url = match rx.recv_timeout(MAX_WAIT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not print its DevTools address within {MAX_WAIT:?}:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        let devtools = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let rt = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        );
        let browser = rt.block_on(async {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connect to chromium's DevTools at {url}: {e}"));
            ws
        });
        Self {
            child,
            _profile: profile,
            rt,
            devtools,
            browser: Some(browser),
            next_id: 0,
            stderr,
            artifacts,
        }
    }

    /// A new page (tab) named `name` (for messages), at about:blank.
    pub fn new_page(&mut self, name: &str) -> Page {
        let ws = self.browser.as_mut().expect("browser connection");
        let r = self.rt.block_on(command(
            ws,
            {
                self.next_id += 1;
                self.next_id
            },
            "Target.createTarget",
            json!({ "url": "about:blank", "newWindow": true }),
            &mut Vec::new(),
        ));
        let target = r
            .unwrap_or_else(|e| panic!("Target.createTarget: {e}"))
            .get("targetId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .expect("a targetId");
        let url = format!("ws://{}/devtools/page/{target}", self.devtools);
        let ws = self.rt.block_on(async {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connect to the page target {url}: {e}"));
            ws
        });
        let mut page = Page {
            name: name.to_string(),
            rt: self.rt.clone(),
            ws,
            next_id: 1,
            console: Vec::new(),
            artifacts: self.artifacts.clone(),
        };
        page.send("Page.enable", json!({}));
        page.send("Runtime.enable", json!({}));
        page.send(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        );
        page
    }

    /// chromium's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut ws) = self.browser.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(3),
                    command(
                        &mut ws,
                        9_999_999,
                        "Browser.close",
                        json!({}),
                        &mut Vec::new(),
                    ),
                )
                .await
            });
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send one command and wait for its answer; events on the way are kept
/// in `console` when they are console messages or exceptions.
async fn command(
    ws: &mut Socket,
    id: u64,
    method: &str,
    params: Value,
    console: &mut Vec<String>,
) -> Result<Value, String> {
    let msg = json!({ "id": id, "method": method, "params": params });
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|e| format!("send {method}: {e}"))?;
    let wait = async {
        while let Some(m) = ws.next().await {
            let m = m.map_err(|e| format!("{method}: {e}"))?;
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
            note_event(&v, console);
        }
        Err(format!("{method}: the DevTools connection closed"))
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| format!("{method}: no answer within 30 s"))?
}

fn note_event(v: &Value, console: &mut Vec<String>) {
    let p = &v["params"];
    let line = match v["method"].as_str() {
        Some("Runtime.consoleAPICalled") => {
            let args: Vec<String> = p["args"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    a["value"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| a["description"].to_string())
                })
                .collect();
            format!(
                "console.{}: {}",
                p["type"].as_str().unwrap_or("?"),
                args.join(" ")
            )
        }
        Some("Runtime.exceptionThrown") => {
            let d = &p["exceptionDetails"];
            format!(
                "exception: {} {}",
                d["text"].as_str().unwrap_or(""),
                d["exception"]["description"].as_str().unwrap_or("")
            )
        }
        _ => return,
    };
    if console.len() < 200 {
        console.push(line);
    }
}

/// One page (tab).
pub struct Page {
    name: String,
    rt: Arc<tokio::runtime::Runtime>,
    ws: Socket,
    next_id: u64,
    console: Vec<String>,
    artifacts: Arc<Artifacts>,
}

impl Page {
    /// A DevTools command; `Err` on a protocol error (e.g. no execution
    /// context while a page is navigating).
    pub fn try_send(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.rt
            .block_on(command(&mut self.ws, id, method, params, &mut self.console))
    }

    /// A DevTools command; panics on a protocol error.
    pub fn send(&mut self, method: &str, params: Value) -> Value {
        let r = self.try_send(method, params);
        r.unwrap_or_else(|e| panic!("[{}] {e}", self.name))
    }

    /// Go to `url` and wait until the document has loaded.
    pub fn navigate(&mut self, url: &str) {
        let r = self.send("Page.navigate", json!({ "url": url }));
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            panic!("[{}] navigate to {url}: {e}", self.name);
        }
        self.wait_for(
            &format!("{url} to load"),
            "document.readyState === 'complete'",
        );
    }

    /// Evaluate a JavaScript expression (promises awaited) and return its
    /// value; `Err` with the exception's text if it threw.
    pub fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let r = self.try_send(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            return Err(d["exception"]["description"]
                .as_str()
                .or_else(|| d["text"].as_str())
                .unwrap_or("exception")
                .to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluate, panicking (with the page's text) if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        match self.try_eval(js) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("evaluating `{js}` threw {e}")),
        }
    }

    /// Set an input's (or select's) value as a person typing would.
    pub fn fill(&mut self, selector: &str, value: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) throw new Error('no element ' + {sel}); \
             e.focus(); e.value = {val}; e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            sel = js_str(selector),
            val = js_str(value)
        );
        self.eval(&js);
    }

    /// Click a visible, enabled element.
    pub fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) throw new Error('no element ' + {sel}); \
             if (e.disabled) throw new Error('disabled: ' + {sel}); \
             if (!e.offsetParent) throw new Error('not visible: ' + {sel}); e.click(); return true; }})()",
            sel = js_str(selector)
        );
        self.eval(&js);
    }

    /// The trimmed `innerText` of the first element matching `selector`
    /// (`None` if there is none).
    pub fn text(&mut self, selector: &str) -> Option<String> {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.innerText.trim() : null; }})()",
            js_str(selector)
        );
        self.eval(&js).as_str().map(str::to_owned)
    }

    /// An attribute of the first element matching `selector`.
    pub fn attr(&mut self, selector: &str, name: &str) -> Option<String> {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.getAttribute({}) : null; }})()",
            js_str(selector),
            js_str(name)
        );
        self.eval(&js).as_str().map(str::to_owned)
    }

    /// Everything the page shows, as text.
    pub fn visible_text(&mut self) -> String {
        self.try_eval("document.body ? document.body.innerText : ''")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Poll the JavaScript expression `js` until it is truthy (at most
    /// [`MAX_WAIT`]); its last value. On a timeout: a `…-FAILED.png`
    /// screenshot and a panic naming `what`, with the page's text.
    pub fn wait_for(&mut self, what: &str, js: &str) -> Value {
        self.wait_for_within(what, js, MAX_WAIT)
    }

    /// [`Page::wait_for`] with a shorter bound.
    pub fn wait_for_within(&mut self, what: &str, js: &str, within: Duration) -> Value {
        let within = within.min(MAX_WAIT);
        let deadline = Instant::now() + within;
        let mut last = Err(String::new());
        loop {
            last = match self.try_eval(js) {
                Ok(v) if truthy(&v) => return v,
                other => other.or(last),
            };
            if Instant::now() > deadline {
                self.fail(&format!(
                    "timed out after {within:?} waiting for {what} (`{js}`; last: {last:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Save a PNG screenshot as the next artifact; its path.
    pub fn screenshot(&mut self, step: &str) -> PathBuf {
        let path = self.artifacts.next(&format!("{}-{step}", self.name));
        let r = self.send(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64_decode(r["data"].as_str().unwrap_or_default());
        assert!(
            png.starts_with(b"\x89PNG"),
            "[{}] the screenshot is not a PNG",
            self.name
        );
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Console messages and exceptions seen so far.
    pub fn console(&self) -> String {
        self.console.join("\n")
    }

    /// Panic with `msg`, the page's visible text and its console, after a
    /// screenshot.
    pub fn fail(&mut self, msg: &str) -> ! {
        let shot =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.screenshot("FAILED")))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "(no screenshot)".into());
        let text = self.visible_text();
        panic!(
            "[{} page] {msg}\n--- the page shows ---\n{text}\n--- console ---\n{}\n--- screenshot: {shot}",
            self.name,
            self.console()
        );
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A JavaScript string literal for `s`.
pub fn js_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// Standard base64 (the screenshots' encoding).
fn base64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_round_trip() {
    assert_eq!(base64_decode("aG90bGluZQ=="), b"hotline");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}

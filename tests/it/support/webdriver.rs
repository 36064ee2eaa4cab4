//! A headless Chromium driven through W3C WebDriver: chromedriver on a
//! free loopback port, one session, plain JSON over HTTP with reqwest.
//!
//! The endpoints are those of the specification's list
//! (<https://w3c.github.io/webdriver/#endpoints>): New Session
//! (`POST /session`), Delete Session, Navigate To (`POST .../url`), Set
//! Window Rect (`POST .../window/rect`), Find Elements (`POST
//! .../elements`, CSS selectors), Get Element Text / Attribute /
//! Property, Element Clear, Element Send Keys (`POST .../value`), Element
//! Click, Execute Script (`POST .../execute/sync`) and Take Screenshot
//! (`GET .../screenshot`, a base64 PNG of the viewport). Chromium's own
//! options go in `goog:chromeOptions` (`binary`, `args`:
//! <https://developer.chrome.com/docs/chromedriver/capabilities>).
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` packages (`.ci/run` installs them);
//! `VOICE_OPERATOR_TEST_CHROMIUM` and `VOICE_OPERATOR_TEST_CHROMEDRIVER`
//! point elsewhere.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::free_port;

/// How long one WebDriver command may take (starting Chromium included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The key of an element reference in WebDriver's JSON
/// (<https://w3c.github.io/webdriver/#dfn-web-element-identifier>).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags that keep Chromium headless, quiet and off the network: this
/// machine has none, and without them Chromium calls Google's hosts for
/// updates, sync and field trials. `--lang` fixes the date inputs' field
/// order (month/day/year), which typing into them depends on.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",
];

fn program(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// An element of the page, as WebDriver names it.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One browser session; dropping it deletes the session and ends
/// chromedriver and Chromium, whatever the test did.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    /// Fails, naming the Debian packages, when either is not installed.
    pub async fn start() -> Browser {
        let driver_path = program("VOICE_OPERATOR_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("VOICE_OPERATOR_TEST_CHROMIUM", "/usr/bin/chromium");
        for path in [&driver_path, &chromium] {
            assert!(
                path.exists(),
                "{} is missing: the browser tests need Debian's chromium and chromium-driver \
                 packages (apt-get install chromium chromium-driver; .ci/run installs them), or \
                 VOICE_OPERATOR_TEST_CHROMIUM and VOICE_OPERATOR_TEST_CHROMEDRIVER naming another \
                 Chromium and its chromedriver",
                path.display()
            );
        }
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        // Its own process group, so that ending the group ends Chromium too.
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let http = reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .no_proxy()
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
            profile,
        };
        browser.wait_ready(&base).await;
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.path().join("chromium").display()
        ));
        let created = browser
            .call(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(json!({"capabilities": {"alwaysMatch": {
                    "goog:chromeOptions": {"binary": chromium, "args": args}
                }}})),
            )
            .await;
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("New Session answered without a sessionId: {created}"));
        browser.session = format!("{base}/session/{id}");
        browser
    }

    /// Waits until chromedriver answers `GET /status` with `ready`.
    async fn wait_ready(&mut self, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = self.http.get(format!("{base}/status")).send().await
                && let Ok(body) = answer.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!(
                    "chromedriver exited at start: {status}{}",
                    self.driver_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within 20 s{}",
                self.driver_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of chromedriver's log, for failure messages.
    fn driver_log(&self) -> String {
        let log = std::fs::read_to_string(self.profile.path().join("chromedriver.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("\nchromedriver log:\n{}", tail.join("\n"))
    }

    /// One command; its `value`, or a panic naming the command and
    /// WebDriver's error (<https://w3c.github.io/webdriver/#errors>).
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {status}, not JSON: {e}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {url}: {status} {}: {}{}",
            body["value"]["error"],
            body["value"]["message"],
            self.driver_log()
        );
        body["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        self.call(reqwest::Method::POST, &url, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.session);
        self.call(reqwest::Method::GET, &url, None).await
    }

    /// Navigate To `url`; returns once the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Sets the window's size in CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Every element matching the CSS `selector`, in document order.
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let found = self
            .post(
                "/elements",
                json!({"using": "css selector", "value": selector}),
            )
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("Find Elements {selector}: {found}"))
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().unwrap().to_owned()))
            .collect()
    }

    /// The one element matching `selector`.
    pub async fn find(&self, selector: &str) -> Element {
        let mut found = self.find_all(selector).await;
        assert_eq!(found.len(), 1, "one element matches {selector}");
        found.remove(0)
    }

    /// The text of `selector`'s element as rendered (what a reader sees).
    pub async fn text(&self, selector: &str) -> String {
        let element = self.find(selector).await;
        self.element_text(&element).await
    }

    /// The rendered text of `element`.
    pub async fn element_text(&self, element: &Element) -> String {
        let text = self.get(&format!("/element/{}/text", element.0)).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute of `element` as written in the document.
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await;
        value.as_str().map(str::to_owned)
    }

    /// A DOM property of `selector`'s element (an input's `value`).
    pub async fn property(&self, selector: &str, name: &str) -> Value {
        let element = self.find(selector).await;
        self.get(&format!("/element/{}/property/{name}", element.0))
            .await
    }

    /// Empties the input `selector` and types `keys` into it.
    pub async fn fill(&self, selector: &str, keys: &str) {
        let element = self.find(selector).await;
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": keys }),
        )
        .await;
    }

    /// Clicks `selector`'s element.
    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script` every 50 ms until it returns something truthy, at
    /// most `limit`; returns that, or panics with `what` and the page's
    /// text.
    pub async fn wait_until(&self, limit: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.execute(script, json!([])).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let page = self
                    .execute("return document.body.innerText", json!([]))
                    .await;
                panic!(
                    "timed out after {limit:?} waiting for {what}; the page shows:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("Take Screenshot answers base64");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Delete Session closes Chromium; it runs on a thread of its own,
        // since drop cannot wait for a future and the test's runtime may
        // have one thread only.
        if !self.session.is_empty() {
            let http = self.http.clone();
            let session = self.session.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    http.delete(session)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .map(drop)
                        .map_err(std::io::Error::other)
                })
            })
            .join();
        }
        // Then chromedriver's process group: chromedriver and whatever of
        // Chromium is left.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

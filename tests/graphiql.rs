//! GraphiQL served from the binary: its assets and their cache headers over HTTP, and the page in a real
//! headless browser (Debian's `chromium`, driven over the DevTools protocol): it renders, loads nothing
//! from another host, and a query typed into it returns the server's data.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::server::{Server, VIEWER_KEY, sqlite_store, temp_folder};
use tungstenite::stream::MaybeTlsStream;

use crate::e2e_support::record_payment;
use crate::subscription::{Socket, receive, send};
use crate::support::{binary, required_tool};

/// Longest wait for the browser to start, the page to render, or a query to answer.
const BROWSER_DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn graphiql_assets_are_embedded_and_cacheable() {
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    let page = server.fetch("/graphql", None);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("/graphql/assets/graphiql-3.9.0.min.js"),
        "{}",
        page.text()
    );
    assert!(
        !page.text().contains("://"),
        "the page names no other host: {}",
        page.text()
    );
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    for (name, content_type, cache) in [
        ("graphiql-3.9.0.min.js", "text/javascript", "immutable"),
        ("graphiql-3.9.0.min.css", "text/css", "immutable"),
        ("react-18.3.1.production.min.js", "text/javascript", "immutable"),
        ("react-dom-18.3.1.production.min.js", "text/javascript", "immutable"),
        ("page.js", "text/javascript", "no-cache"),
        ("page.css", "text/css", "no-cache"),
    ] {
        let asset = server.fetch(&format!("/graphql/assets/{name}"), None);
        assert_eq!(asset.status, 200, "{name}");
        assert!(asset.header("content-type").starts_with(content_type), "{name}");
        assert!(asset.header("cache-control").contains(cache), "{name}");
        assert!(!asset.body.is_empty(), "{name} has a body");
    }
    let checked_in =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/graphiql/graphiql-3.9.0.min.js")).unwrap();
    assert_eq!(
        server.get_with("/graphql/assets/graphiql-3.9.0.min.js", None).1,
        checked_in,
        "served as checked in"
    );
    assert_eq!(server.fetch("/graphql/assets/nope.js", None).status, 404);
    assert_eq!(server.fetch("/graphql/assets/..%2FCargo.toml", None).status, 404);
}

#[test]
fn graphiql_renders_and_runs_a_typed_query_in_a_headless_browser() {
    let Some(chromium) = required_tool("graphiql in a headless browser", &["chromium", "chromium-browser"]) else {
        return;
    };
    let (_guard, folder) = temp_folder();
    let server = Server::start(binary(), &sqlite_store(&folder), &folder);
    record_payment(&server, "P-GRAPHIQL", "12345");
    let mut browser = Browser::launch(&chromium, &folder);
    let origin = server.url("");
    browser.call("Page.navigate", json!({ "url": server.url("/graphql") }));

    browser.wait_for("document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror') !== null");
    // GraphiQL asks for the schema on load with the placeholder key, and shows the 401 in its response pane:
    // let that happen first, so it cannot land over the answer to the typed query.
    let graphql_url = server.url("/graphql");
    browser.wait_until_seen("the schema request's 401", |event| {
        event["method"] == "Network.responseReceived"
            && event["params"]["response"]["url"] == graphql_url.as_str()
            && event["params"]["response"]["status"] == 401
    });
    // The headers: open the Headers tab and type the viewer key over the placeholder.
    browser.click(".graphiql-editor-tools > button:nth-of-type(2)");
    browser.wait_for("document.querySelector('section.graphiql-editor-tool[aria-label=\"Headers\"]') !== null");
    browser.type_into(
        "section.graphiql-editor-tool[aria-label=\"Headers\"] .graphiql-editor:not(.hidden) .CodeMirror",
        &format!(r#"{{"Authorization": "Bearer {VIEWER_KEY}"}}"#),
    );
    browser.type_into(
        ".graphiql-query-editor .CodeMirror",
        r#"{ payment(paymentId: "P-GRAPHIQL") { paymentId refundableAmount { currency value } } }"#,
    );
    browser.click(".graphiql-execute-button");
    let response = browser.wait_for(
        "(() => { const text = document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(); \
         return text.includes('\"data\"') ? text : null; })()",
    );
    let response: Value = serde_json::from_str(response.as_str().unwrap()).unwrap();
    assert_eq!(
        response,
        json!({ "data": { "payment": { "paymentId": "P-GRAPHIQL",
                                        "refundableAmount": { "currency": "USD", "value": "12345" } } } }),
    );

    let requests = browser.requested_urls();
    assert!(
        requests
            .iter()
            .any(|url| url.ends_with("/graphql/assets/graphiql-3.9.0.min.js")),
        "{requests:?}"
    );
    // GraphiQL's style sheet inlines its fonts as data URIs; anything else must come from this server.
    let elsewhere: Vec<_> = requests
        .iter()
        .filter(|url| !url.starts_with(&origin) && !url.starts_with("data:"))
        .collect();
    assert!(elsewhere.is_empty(), "the page loaded from another host: {elsewhere:?}");
    // The schema request on load, with the placeholder key, was refused (401): that one is expected.
    let graphql_url = json!(graphql_url);
    let problems: Vec<_> = browser
        .problems()
        .into_iter()
        .filter(|problem| {
            let entry = &problem["params"]["entry"];
            let placeholder_refused = entry["url"] == graphql_url
                && entry["text"]
                    .as_str()
                    .is_some_and(|text| text.contains("401 (Unauthorized)"));
            !placeholder_refused
        })
        .collect();
    assert!(problems.is_empty(), "errors in the page: {problems:#?}");
    browser.close();
}

/// A headless chromium with one page, driven over the DevTools protocol (flattened sessions on the
/// browser's socket). Killed on drop.
struct Browser {
    child: Child,
    socket: Socket,
    session: String,
    next_id: u64,
    /// Events received so far (`method` and `params`).
    events: Vec<Value>,
}

impl Browser {
    fn launch(chromium: &std::path::Path, folder: &std::path::Path) -> Self {
        let profile = folder.join("chromium-profile");
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                // The tests run as root in CI, where chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let endpoint = loop {
            let Some(Ok(line)) = lines.next() else {
                let _killed = child.kill();
                panic!("chromium printed no DevTools endpoint: {seen:#?}");
            };
            if let Some(endpoint) = line.strip_prefix("DevTools listening on ") {
                break endpoint.trim().to_owned();
            }
            seen.push(line);
        };
        // Keep draining stderr so chromium never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let (mut socket, _) = tungstenite::connect(endpoint.as_str()).expect("the DevTools socket opens");
        if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        }
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        for domain in ["Page", "Runtime", "Network", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    /// Sends a command (to the page once attached) and returns its result; events arriving meanwhile
    /// are kept.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        send(&mut self.socket, message);
        let deadline = Instant::now() + BROWSER_DEADLINE;
        loop {
            let message =
                receive(&mut self.socket, deadline).unwrap_or_else(|| panic!("no answer to {method} from chromium"));
            if message["id"] == json!(id) {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// Evaluates `expression` in the page; its value (JSON).
    fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy; its value.
    fn wait_for(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + BROWSER_DEADLINE;
        loop {
            let value = self.evaluate(expression);
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expression}; problems so far: {:#?}",
                self.problems()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an event that `seen` accepts has arrived.
    fn wait_until_seen(&mut self, what: &str, seen: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + BROWSER_DEADLINE;
        while !self.events.iter().any(&seen) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
            // Any command reads the events that arrived meanwhile.
            self.evaluate("0");
        }
    }

    /// Clicks the middle of the first element matching `selector`, as a mouse would.
    fn click(&mut self, selector: &str) {
        let center = self.wait_for(&format!(
            "(() => {{ const element = document.querySelector({selector:?}); if (!element) return null; \
             const box = element.getBoundingClientRect(); return [box.x + box.width / 2, box.y + box.height / 2]; }})()"
        ));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": center[0], "y": center[1], "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Focuses the CodeMirror editor matching `selector`, selects its text and types `text` over it.
    fn type_into(&mut self, selector: &str, text: &str) {
        self.wait_for(&format!(
            "(() => {{ const element = document.querySelector({selector:?}); if (!element) return false; \
             element.CodeMirror.focus(); element.CodeMirror.execCommand('selectAll'); return true; }})()"
        ));
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// Every URL the page requested.
    fn requested_urls(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| event["method"] == "Network.requestWillBeSent")
            .filter_map(|event| event["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Uncaught exceptions, console errors and the browser's own errors (a blocked or failed load, a
    /// Content-Security-Policy violation).
    fn problems(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|event| {
                event["method"] == "Runtime.exceptionThrown"
                    || (event["method"] == "Runtime.consoleAPICalled" && event["params"]["type"] == "error")
                    || (event["method"] == "Log.entryAdded" && event["params"]["entry"]["level"] == "error")
                    || event["method"] == "Network.loadingFailed"
            })
            .cloned()
            .collect()
    }

    fn close(mut self) {
        self.session.clear();
        send(&mut self.socket, json!({ "id": 0, "method": "Browser.close" }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

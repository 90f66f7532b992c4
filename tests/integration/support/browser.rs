//! The panel in a real headless Chromium: a static server for the built panel (`dist/`), Debian's
//! chromedriver, and a WebDriver session (fantoccini) with helpers that wait for the page.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::free_port;

/// Where the panel is built (`cargo xtask test` builds it with Trunk before the tests).
pub fn dist() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dist = root.join("dist");
    assert!(
        dist.join("index.html").exists(),
        "{} has no built panel: run `cargo xtask test` (it builds the panel with Trunk first)",
        dist.display()
    );
    dist
}

/// Where tests save screenshots (`tests/artifacts/`, kept by CI as test artifacts).
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serves a folder over HTTP on loopback: GET, one thread per connection, optionally with a
/// Content Security Policy whose violation reports (POST `/csp-report`) it keeps. Written here
/// (standard library only) because the tests need nothing more than files with the right
/// content types.
#[derive(Debug)]
pub struct StaticServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    reports: Arc<Mutex<Vec<String>>>,
}

/// Where a served page's policy sends its violation reports.
pub const CSP_REPORTS: &str = "/csp-report";

impl StaticServer {
    /// Starts serving `root`; the server lives as long as the test process.
    pub fn start(root: PathBuf) -> StaticServer {
        StaticServer::serve(root, None)
    }

    /// Serves `root` with the header `Content-Security-Policy: <policy>; report-uri /csp-report`.
    pub fn start_with_policy(root: PathBuf, policy: &str) -> StaticServer {
        StaticServer::serve(root, Some(format!("{policy}; report-uri {CSP_REPORTS}")))
    }

    fn serve(root: PathBuf, policy: Option<String>) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let kept = reports.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, policy, kept) = (root.clone(), policy.clone(), kept.clone());
                std::thread::spawn(move || serve_one(stream, &root, policy.as_deref(), &kept));
            }
        });
        StaticServer {
            url: format!("http://{addr}"),
            reports,
        }
    }

    /// The violation reports the browser sent so far.
    pub fn csp_reports(&self) -> Vec<String> {
        self.reports.lock().unwrap().clone()
    }
}

fn serve_one(stream: TcpStream, root: &Path, policy: Option<&str>, reports: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0;
    let mut h = String::new();
    while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        h.clear();
    }
    if line.starts_with("POST ") {
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        if line.split_whitespace().nth(1) == Some(CSP_REPORTS) {
            reports
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
        }
        let mut out = stream;
        let _ = out.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let rel = path.trim_start_matches('/');
    let file = if rel.is_empty() || rel.contains("..") {
        root.join("index.html")
    } else {
        root.join(rel)
    };
    let (status, body, kind) = match std::fs::read(&file) {
        Ok(b) => {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("wasm") => "application/wasm",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("html") => "text/html; charset=utf-8",
                _ => "application/octet-stream",
            };
            ("200 OK", b, kind)
        }
        Err(_) => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let mut out = stream;
    let policy = policy
        .map(|p| format!("Content-Security-Policy: {p}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{policy}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&body);
}

/// A headless Chromium driven through chromedriver; both stop when this is dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Browser")
    }
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium (its own profile folder).
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more Chromium flags.
    pub async fn start_with(flags: &[String]) -> Browser {
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            // Its own process group, which the Chromium it starts joins: dropping the browser
            // ends them all, even when a failed test never closed the session.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; cargo xtask test installs it)");
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            "--disable-breakpad",
            "--disable-crash-reporter",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend_from_slice(flags);
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
            }
        });
        let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        _profile: profile,
                    }
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }

    /// Waits up to `timeout` for the element at `css`.
    pub async fn find(&self, css: &str, timeout: Duration) -> Element {
        self.client
            .wait()
            .at_most(timeout)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within {timeout:?}: {e}"))
    }

    /// Waits until `js` (a function body returning a value) returns something truthy; returns it.
    pub async fn until(&self, what: &str, js: &str, timeout: Duration) -> serde_json::Value {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.client.execute(js, vec![]).await.unwrap();
            let truthy = match &v {
                serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                serde_json::Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if tokio::time::Instant::now() > until {
                let shot = self
                    .screenshot(&format!("failed-{}", what.replace(' ', "-")))
                    .await;
                panic!("{what}: not within {timeout:?} (last value {v}; screenshot {shot:?})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Saves a PNG screenshot as `tests/artifacts/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = artifacts().join(format!("{name}.png"));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(&path, png);
        }
        path
    }

    /// Closes the session (the driver stops when this is dropped).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

//! The pattern document's own programs, `client.py` (a device) and `application.py`, run as they
//! are published: extracted from `docs/command-pattern.md` at test time, with only their global
//! variables (endpoint, client id, certificate paths) replaced, as the document asks its readers
//! to do. They run on the AWS IoT Device SDK for Python that `cargo xtask test` installs into
//! `target/tools/python` (pinned in `tests/reference/requirements.txt`).
//!
//! Their SDK connects to port 443 when given no port (with an ALPN protocol id that mosquitto
//! ignores), so every test here holds [`PORT_443`] while its broker runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, Mutex, MutexGuard};

use super::broker::Broker;
use super::certs::TestPki;

/// Port 443 on loopback, which the reference programs connect to: one test at a time.
pub static PORT_443: Mutex<()> = Mutex::const_new(());

/// The global variables the document says to replace, and only those.
pub const GLOBALS: [&str; 5] = [
    "client_id",
    "endpoint",
    "client_certificate",
    "client_private_key",
    "root_ca",
];

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The pattern document.
pub fn document() -> String {
    let path = workspace().join("docs/command-pattern.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The document's two Python code blocks: (`client.py`, `application.py`).
pub fn programs(document: &str) -> (String, String) {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in document.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```python") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert_eq!(
        blocks.len(),
        2,
        "the document should hold exactly two python blocks (client.py, application.py)"
    );
    let application = blocks.pop().unwrap();
    let client = blocks.pop().unwrap();
    assert!(
        client.starts_with("# client.py"),
        "first block: {client:.60}"
    );
    assert!(
        application.starts_with("# application.py"),
        "second block: {application:.60}"
    );
    (client, application)
}

/// `program` with each of [`GLOBALS`] assigned `values` (same order), checked with
/// [`only_globals_differ`].
pub fn configure(program: &str, values: [&str; 5]) -> String {
    let mut found = [0usize; 5];
    let mut out = String::with_capacity(program.len() + 256);
    for line in program.lines() {
        match assigned_global(line) {
            Some(i) => {
                found[i] += 1;
                out.push_str(&format!("{} = {:?}", GLOBALS[i], values[i]));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (g, n) in GLOBALS.iter().zip(found) {
        assert_eq!(n, 1, "the program should assign the global `{g}` once");
    }
    if let Err(e) = only_globals_differ(program, &out) {
        panic!("configuring the program changed more than its globals: {e}");
    }
    out
}

/// Which of [`GLOBALS`] `line` assigns, if any (by its index).
fn assigned_global(line: &str) -> Option<usize> {
    GLOBALS.iter().position(|g| {
        line.strip_prefix(g)
            .is_some_and(|rest| rest.starts_with(" = "))
    })
}

/// Fails unless `configured` is `original` with only the assignments of [`GLOBALS`] changed.
pub fn only_globals_differ(original: &str, configured: &str) -> Result<(), String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (original.lines().collect(), configured.lines().collect());
    if a.len() != b.len() {
        return Err(format!("{} lines became {}", a.len(), b.len()));
    }
    for (n, (was, is)) in a.iter().zip(&b).enumerate() {
        if was == is {
            continue;
        }
        match (assigned_global(was), assigned_global(is)) {
            (Some(g), Some(h)) if g == h => {}
            _ => return Err(format!("line {}: {was:?} became {is:?}", n + 1)),
        }
    }
    Ok(())
}

/// The document's two programs, read and extracted once for all tests.
fn reference_programs() -> &'static (String, String) {
    static PROGRAMS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    PROGRAMS.get_or_init(|| programs(&document()))
}

/// How long a reference program may take to connect and subscribe.
const STARTUP: Duration = Duration::from_secs(20);

/// The Python with the reference programs' SDK.
pub fn python() -> PathBuf {
    let python = workspace().join("target/tools/python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `cargo xtask test` creates it with tests/reference/requirements.txt",
        python.display()
    );
    python
}

/// A broker the reference programs can reach, and a test PKI, for one test.
pub struct Setup {
    /// The CA, the server's certificate and the clients'.
    pub pki: TestPki,
    /// mosquitto: mutual TLS on 443 and on [`Setup::mtls_url`], plain TCP (`broker.url`) and
    /// WebSocket (`broker.ws_url()`).
    pub broker: Broker,
    /// `mqtts://127.0.0.1:<free port>`.
    pub mtls_url: String,
    dir: tempfile::TempDir,
    _port_443: MutexGuard<'static, ()>,
}

impl Setup {
    /// Takes port 443, makes a PKI and starts the broker.
    pub async fn start() -> Setup {
        let port = PORT_443.lock().await;
        if let Err(e) = std::net::TcpListener::bind("127.0.0.1:443") {
            panic!(
                "port 443 on 127.0.0.1 is needed (the reference programs connect there) but \
                 cannot be bound: {e}. Run the tests as root, with nothing else on that port."
            );
        }
        let pki = TestPki::generate();
        let (broker, mtls_url) = Broker::start_reference(&pki).await;
        Setup {
            pki,
            broker,
            mtls_url,
            dir: tempfile::tempdir().unwrap(),
            _port_443: port,
        }
    }

    /// A client certificate for `name`: (certificate, key).
    pub fn certificate(&self, name: &str) -> (PathBuf, PathBuf) {
        self.pki.client(name)
    }

    /// `client.py` as device `device1`, connected with its own certificate and listening for
    /// commands.
    pub async fn client_py(&self) -> Reference {
        let (client, _) = reference_programs();
        let mut program = self.start_program("client.py", client, "device1").await;
        program.expect_line("Listening for commands", STARTUP).await;
        program
    }

    /// `application.py` as `app1`, connected with its own certificate and subscribed to
    /// device1's answers.
    pub async fn application_py(&self) -> Reference {
        let (_, application) = reference_programs();
        let mut program = self
            .start_program("application.py", application, "app1")
            .await;
        program.expect_line("Subscribed with", STARTUP).await;
        program
    }

    async fn start_program(&self, name: &str, program: &str, client_id: &str) -> Reference {
        let (cert, key) = self.certificate(client_id);
        let ca = self.pki.ca.to_string_lossy().into_owned();
        let source = configure(
            program,
            [
                client_id,
                "127.0.0.1",
                &cert.to_string_lossy(),
                &key.to_string_lossy(),
                &ca,
            ],
        );
        let script = self.dir.path().join(name);
        std::fs::write(&script, source).unwrap();
        Reference::start(name, &script, &self.dir.path().join(format!("{name}.log"))).await
    }
}

/// A running reference program: its standard input, and its standard output line by line.
pub struct Reference {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Each line with the moment it was read.
    lines: mpsc::UnboundedReceiver<(Instant, String)>,
    seen: Vec<String>,
    log: PathBuf,
}

impl Reference {
    async fn start(name: &str, script: &Path, log: &Path) -> Reference {
        let mut child = tokio::process::Command::new(python())
            // Unbuffered, so each line arrives as it is printed.
            .arg("-u")
            .arg(script)
            .current_dir(script.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The SDK's own log.
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Reference {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            log: log.to_path_buf(),
        }
    }

    /// Waits up to `timeout` for a line that `matches`; returns when it was printed.
    pub async fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Instant {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some((at, line))) => {
                    let hit = matches(&line);
                    self.seen.push(line);
                    if hit {
                        return at;
                    }
                }
                Ok(None) => panic!("{} ended before {what}\n{}", self.name, self.report()),
                Err(_) => panic!(
                    "{}: no {what} within {timeout:?}\n{}",
                    self.name,
                    self.report()
                ),
            }
        }
    }

    /// Waits for a line containing `text`; returns when it was printed.
    pub async fn expect_line(&mut self, text: &str, timeout: Duration) -> Instant {
        self.expect(&format!("line with {text:?}"), timeout, |l| {
            l.contains(text)
        })
        .await
    }

    /// Collects what the program prints for `period`.
    pub async fn settle(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some((_, line))) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.seen.push(line);
        }
    }

    /// How many lines printed so far contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(text)).count()
    }

    /// Types `line` (and Enter) into the program.
    pub async fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("standard input is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Ctrl-C (SIGINT): the program disconnects and ends; fails if it does not end cleanly.
    pub async fn interrupt(mut self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT {pid}");
        // The SDK's disconnect waits on its own event-loop thread, which a loaded 2-core machine
        // can starve for several seconds.
        self.expect_line("Disconnected!", Duration::from_secs(30))
            .await;
        let exit = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not end after SIGINT", self.name))
            .unwrap();
        assert!(
            exit.success(),
            "{} ended with {exit}\n{}",
            self.name,
            self.report()
        );
    }

    /// What the program printed, and the end of its SDK log.
    fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!(
            "--- {name} printed:\n{}\n--- the end of its SDK log:\n{}",
            self.seen.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            name = self.name,
        )
    }
}

/// Round-trip times one test measured: printed as they come, and saved in
/// `tests/artifacts/round-trips-<test>.txt` when dropped.
pub struct RoundTrips {
    test: &'static str,
    lines: Vec<String>,
}

impl RoundTrips {
    /// For the test named `test`.
    pub fn new(test: &'static str) -> RoundTrips {
        RoundTrips {
            test,
            lines: Vec::new(),
        }
    }

    /// Records that `what` took `rtt`.
    pub fn record(&mut self, what: &str, rtt: Duration) {
        let line = format!("{what}\t{:.1} ms", rtt.as_secs_f64() * 1e3);
        println!("{}: {line}", self.test);
        self.lines.push(line);
    }
}

impl Drop for RoundTrips {
    fn drop(&mut self) {
        let path = super::browser::artifacts().join(format!("round-trips-{}.txt", self.test));
        let _ = std::fs::write(path, self.lines.join("\n") + "\n");
    }
}

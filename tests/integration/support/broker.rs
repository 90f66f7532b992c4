//! Real brokers for tests: mosquitto from Debian's package, started with a configuration written
//! by the test, and the simulator's embedded broker. Both listen on loopback only.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use device_sim::broker::EmbeddedBroker;

use super::free_addr;

/// Which broker a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// mosquitto, a separate process.
    Mosquitto,
    /// The simulator's in-process broker.
    Embedded,
}

/// Who may log in to a secured broker, and what each may do.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    /// User names and passwords.
    pub users: &'a [(&'a str, &'a str)],
    /// mosquitto ACL file contents; `None` lets every user do anything.
    pub acl: Option<&'a str>,
    /// Also a WebSocket listener over TLS, with this PKI's server certificate.
    pub wss: Option<&'a super::certs::TestPki>,
}

/// The secured listeners of [`Broker::start_secured`].
#[derive(Clone, Debug)]
pub struct SecuredUrls {
    /// `mqtt://127.0.0.1:<port>`.
    pub tcp: String,
    /// `wss://127.0.0.1:<port>/mqtt`, when asked for.
    pub wss: Option<String>,
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    /// `mqtt://127.0.0.1:<port>`.
    pub url: String,
    tcp: SocketAddr,
    ws: SocketAddr,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Mosquitto {
        child: Child,
        dir: tempfile::TempDir,
        extra: String,
    },
    Embedded(Option<EmbeddedBroker>),
}

impl Broker {
    /// Starts a broker of `kind` on free loopback ports.
    pub async fn start(kind: Kind) -> Broker {
        let (tcp, ws) = (free_addr(), free_addr());
        let inner = match kind {
            Kind::Mosquitto => {
                return Broker::mosquitto(tempfile::tempdir().unwrap(), String::new()).await
            }
            Kind::Embedded => Inner::Embedded(Some(EmbeddedBroker::start(tcp, ws).await.unwrap())),
        };
        let b = Broker {
            url: format!("mqtt://{tcp}"),
            tcp,
            ws,
            inner,
        };
        b.wait_listening().await;
        b
    }

    /// mosquitto with an extra listener for mutual TLS: clients must present a certificate
    /// signed by `pki`'s CA. Returns the broker and the `mqtts://` URL.
    pub async fn start_mutual_tls(pki: &super::certs::TestPki) -> (Broker, String) {
        let tls = free_addr();
        let extra = mutual_tls_listener(tls.port(), pki);
        let broker = Broker::mosquitto(tempfile::tempdir().unwrap(), extra).await;
        (broker, format!("mqtts://{tls}"))
    }

    /// mosquitto as the pattern document's programs expect it: mutual TLS on port 443 (where
    /// their SDK connects when given no port) and on a free port, besides the plain TCP and
    /// WebSocket listeners. Returns the broker and the free port's `mqtts://` URL. The caller
    /// holds port 443 (see `reference::PORT_443`).
    pub async fn start_reference(pki: &super::certs::TestPki) -> (Broker, String) {
        let tls = free_addr();
        let extra = format!(
            "{}{}",
            mutual_tls_listener(443, pki),
            mutual_tls_listener(tls.port(), pki)
        );
        let broker = Broker::mosquitto(tempfile::tempdir().unwrap(), extra).await;
        (broker, format!("mqtts://{tls}"))
    }

    /// mosquitto with an extra listener that takes only `user` / `password`. Returns the broker and
    /// that listener's URL.
    pub async fn start_with_password(user: &str, password: &str) -> (Broker, String) {
        let (broker, urls) = Broker::start_secured(&Access {
            users: &[(user, password)],
            acl: None,
            wss: None,
        })
        .await;
        (broker, urls.tcp)
    }

    /// mosquitto with listeners that take only `access`'s users, each held to its ACL: one on
    /// TCP, and one for WebSockets over TLS when `access.wss` names a PKI.
    pub async fn start_secured(access: &Access<'_>) -> (Broker, SecuredUrls) {
        let dir = tempfile::tempdir().unwrap();
        let passwords = dir.path().join("passwords");
        for (i, (user, password)) in access.users.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            cmd.arg("-b");
            if i == 0 {
                cmd.arg("-c");
            }
            let status = cmd
                .arg(&passwords)
                .args([user, password])
                .status()
                .expect("mosquitto_passwd is installed with mosquitto");
            assert!(status.success());
        }
        let mut checks = format!(
            "allow_anonymous false\npassword_file {}\n",
            passwords.display()
        );
        if let Some(acl) = access.acl {
            let file = dir.path().join("acl");
            std::fs::write(&file, acl).unwrap();
            checks.push_str(&format!("acl_file {}\n", file.display()));
        }
        let tcp = free_addr();
        // Every log line, refused CONNACKs included (debug level), for tests that count them.
        let mut extra = format!("log_type all\nlistener {} 127.0.0.1\n{checks}", tcp.port());
        let mut wss_url = None;
        if let Some(pki) = access.wss {
            let wss = free_addr();
            extra.push_str(&format!(
                "listener {port} 127.0.0.1\n\
                 protocol websockets\n\
                 certfile {cert}\n\
                 keyfile {key}\n\
                 {checks}",
                port = wss.port(),
                cert = pki.server_cert.display(),
                key = pki.server_key.display(),
            ));
            wss_url = Some(format!("wss://{wss}/mqtt"));
        }
        let broker = Broker::mosquitto(dir, extra).await;
        let urls = SecuredUrls {
            tcp: format!("mqtt://{tcp}"),
            wss: wss_url,
        };
        (broker, urls)
    }

    /// What mosquitto wrote to its log so far (connections, refusals, denied publishes).
    pub fn log(&self) -> String {
        match &self.inner {
            Inner::Mosquitto { dir, .. } => {
                std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default()
            }
            Inner::Embedded(_) => String::new(),
        }
    }

    /// mosquitto on free TCP and WebSocket ports, keeping its files in `dir`, with `extra`
    /// configuration (more listeners) appended.
    async fn mosquitto(dir: tempfile::TempDir, extra: String) -> Broker {
        let (tcp, ws) = (free_addr(), free_addr());
        let child = spawn_mosquitto(dir.path(), tcp, ws, &extra);
        let b = Broker {
            url: format!("mqtt://{tcp}"),
            tcp,
            ws,
            inner: Inner::Mosquitto { child, dir, extra },
        };
        b.wait_listening().await;
        b
    }

    /// `ws://127.0.0.1:<port>/mqtt`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/mqtt", self.ws)
    }

    async fn wait_listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.tcp).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("broker did not listen on {}", self.tcp);
    }

    /// Stops the broker abruptly and starts it again on the same ports. Persistent sessions and
    /// retained messages survive with mosquitto (it persists to its folder); the embedded broker
    /// keeps them in memory, so they are lost: clients must resubscribe and resend.
    pub async fn restart(&mut self, down_for: Duration) {
        match &mut self.inner {
            Inner::Mosquitto { child, dir, extra } => {
                let _ = child.kill();
                let _ = child.wait();
                tokio::time::sleep(down_for).await;
                *child = spawn_mosquitto(dir.path(), self.tcp, self.ws, extra);
            }
            Inner::Embedded(b) => {
                if let Some(b) = b.take() {
                    b.stop().await;
                }
                tokio::time::sleep(down_for).await;
                let mut started = None;
                for _ in 0..50 {
                    match EmbeddedBroker::start(self.tcp, self.ws).await {
                        Ok(nb) => {
                            started = Some(nb);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                *b = Some(started.expect("embedded broker restarts on its ports"));
            }
        }
        self.wait_listening().await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Inner::Mosquitto { child, .. } = &mut self.inner {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A mosquitto listener on loopback `port` that takes clients with a certificate from `pki`'s CA.
fn mutual_tls_listener(port: u16, pki: &super::certs::TestPki) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         allow_anonymous true\n",
        ca = pki.ca.display(),
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
    )
}

fn spawn_mosquitto(dir: &Path, tcp: SocketAddr, ws: SocketAddr, extra: &str) -> Child {
    let conf = dir.join("mosquitto.conf");
    let config = format!(
        "# written by the Switchboard integration tests\n\
         user root\n\
         per_listener_settings true\n\
         persistence true\n\
         persistence_location {dir}/\n\
         autosave_interval 1\n\
         max_queued_messages 100000\n\
         listener {tcp_port} 127.0.0.1\n\
         allow_anonymous true\n\
         set_tcp_nodelay true\n\
         listener {ws_port} 127.0.0.1\n\
         protocol websockets\n\
         allow_anonymous true\n\
         {extra}",
        dir = dir.display(),
        tcp_port = tcp.port(),
        ws_port = ws.port(),
    );
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
    Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("mosquitto is installed (cargo xtask test installs it)")
}

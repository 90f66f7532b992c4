//! Real network faults: a broker in a network namespace of the test's own, reached over a veth
//! pair, and what goes wrong on that link. Loss and partitions are packets the kernel drops
//! (`iptables -m statistic` and `-j DROP` inside the namespace); delay with jitter is a delay line
//! in front of the broker, since the kernels these tests run on may lack `sch_netem`. Everything
//! stays inside the namespaces the test makes and removes (addresses 10.231.N.0/30 on its own veth
//! pair); nothing is routed anywhere else.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A broker's namespace and the link to it.
pub struct NetLab {
    ns: String,
    host_if: String,
    ns_if: String,
    /// The broker's address on the link.
    pub broker_ip: Ipv4Addr,
    broker: Option<Child>,
    dir: tempfile::TempDir,
}

static NEXT: AtomicU8 = AtomicU8::new(1);

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetLab {
    /// Makes the namespace and the link, or says why it cannot (not root, no `ip`): the caller
    /// skips its test with that reason.
    pub fn start() -> Result<NetLab, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let (ns, host_if, ns_if) = (
            format!("sbns{tag}"),
            format!("sbh{tag}"),
            format!("sbd{tag}"),
        );
        let third = 100 + (std::process::id() % 100) as u8 + n;
        let host_ip = Ipv4Addr::new(10, 231, third, 1);
        let broker_ip = Ipv4Addr::new(10, 231, third, 2);
        run(&["ip", "netns", "add", &ns])?;
        let lab = NetLab {
            ns,
            host_if,
            ns_if,
            broker_ip,
            broker: None,
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        let (ns, h, d) = (&lab.ns, &lab.host_if, &lab.ns_if);
        run(&["ip", "link", "add", h, "type", "veth", "peer", "name", d])?;
        run(&["ip", "link", "set", d, "netns", ns])?;
        run(&["ip", "addr", "add", &format!("{host_ip}/30"), "dev", h])?;
        run(&["ip", "link", "set", h, "up"])?;
        lab.in_ns(&["ip", "addr", "add", &format!("{broker_ip}/30"), "dev", d])?;
        lab.in_ns(&["ip", "link", "set", d, "up"])?;
        lab.in_ns(&["ip", "link", "set", "lo", "up"])?;
        // iptables itself must work in here, or the faults cannot be made.
        lab.in_ns(&["iptables-legacy", "-L", "-n"])?;
        Ok(lab)
    }

    fn in_ns(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", &self.ns];
        all.extend_from_slice(args);
        run(&all)
    }

    /// mosquitto inside the namespace on the link's address, TCP on 1883 and WebSockets on 8083;
    /// returns the TCP listener's `mqtt://` URL.
    pub async fn start_mosquitto(&mut self) -> String {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nallow_anonymous true\nset_tcp_nodelay true\npersistence true\n\
                 persistence_location {}/\nmax_queued_messages 100000\nlistener 1883 {ip}\n\
                 listener 8083 {ip}\nprotocol websockets\n",
                self.dir.path().display(),
                ip = self.broker_ip
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "mosquitto", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto is installed");
        self.broker = Some(child);
        let addr = SocketAddr::from((self.broker_ip, 1883));
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                return format!("mqtt://{addr}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mosquitto did not listen on {addr} in its namespace");
    }

    /// Drops `probability` of the packets on the link, each way.
    pub fn lossy(&self, probability: f64) {
        let p = format!("{probability}");
        self.drop_packets(&["-m", "statistic", "--mode", "random", "--probability", &p]);
    }

    /// Cuts the link: every packet either way is dropped until [`Heal::now`].
    pub fn partition(&self) -> Heal {
        self.drop_packets(&[]);
        Heal {
            ns: self.ns.clone(),
        }
    }

    /// Drops the packets that `matching` selects, in both directions on the namespace's end.
    fn drop_packets(&self, matching: &[&str]) {
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            let mut rule = vec!["iptables-legacy", "-A", chain, dir, &self.ns_if];
            rule.extend_from_slice(matching);
            rule.extend_from_slice(&["-j", "DROP"]);
            self.in_ns(&rule).unwrap();
        }
    }
}

/// Ends every fault on a lab's link.
#[derive(Clone, Debug)]
pub struct Heal {
    ns: String,
}

impl Heal {
    /// Removes every drop rule.
    pub fn now(&self) {
        run(&["ip", "netns", "exec", &self.ns, "iptables-legacy", "-F"]).unwrap();
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        if let Some(mut b) = self.broker.take() {
            let _ = b.kill();
            let _ = b.wait();
        }
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

/// A delay line: a TCP proxy on loopback that holds every chunk `delay` plus up to `jitter`,
/// each way, keeping each direction's order (as a slow path does). Returns its address.
pub async fn delay_line(upstream: SocketAddr, delay: Duration, jitter: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(delayed(cr, sw, delay, jitter));
            tokio::spawn(delayed(sr, cw, delay, jitter));
        }
    });
    addr
}

async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    jitter: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut last = tokio::time::Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(0);
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let extra = Duration::from_millis(fastrand::u64(0..=jitter_ms));
                // In order: never before the chunk ahead of it.
                last = last.max(tokio::time::Instant::now() + delay + extra);
                if tx.send((last, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

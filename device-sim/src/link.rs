//! One MQTT connection: a protocol [`Engine`] (a device's [`Session`], or the sender's
//! [`Client`](switchboard_protocol::Client)) driven over a [`Transport`] with tokio timers.
//!
//! The engine decides everything (what to send, when to ping, when to reconnect); the link only
//! carries out its requests and turns socket reads and timer expiries into engine input. Devices
//! and the command sender both sit on top of it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_protocol::engine::{Engine, TransportRequest};
use switchboard_protocol::session::{Publish, PublishId, Session, SessionError};
use switchboard_protocol::Timestamp;
use tokio::time::Instant;
use tokio_rustls::rustls;

use crate::transport::{BrokerUrl, Endpoint, Transport};

/// The wall clock as the protocol wants it.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

/// The tokio instant at which the wall clock reads `at`.
pub fn instant_at(at: Timestamp) -> Instant {
    Instant::now() + at.saturating_since(now())
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What woke the link up.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Input reached the session; its events are in the vector given to [`Link::step`].
    Session,
    /// The caller's own deadline passed.
    Deadline,
    /// The caller's interrupt future completed.
    Interrupted,
}

/// An engine, the transport it asked for, and the broker to reach.
#[derive(Debug)]
pub struct Link<E: Engine = Session> {
    session: E,
    url: BrokerUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    transport: Option<Transport>,
    buf: Vec<u8>,
}

impl<E: Engine> Link<E> {
    /// A link that has not connected yet; tell the engine to connect to start.
    pub fn new(session: E, endpoint: &Endpoint) -> Link<E> {
        Link {
            session,
            url: endpoint.url.clone(),
            tls: endpoint.tls.clone(),
            transport: None,
            buf: Vec::new(),
        }
    }

    /// The engine, to subscribe, publish, connect or disconnect.
    pub fn session_mut(&mut self) -> &mut E {
        &mut self.session
    }

    /// The engine.
    pub fn session(&self) -> &E {
        &self.session
    }

    /// Drops the transport without a word to the broker, as a power cut would: the broker
    /// publishes the Last Will. The session is told the transport closed.
    pub fn cut(&mut self) {
        self.transport = None;
        self.session.handle_transport_closed(now());
    }

    /// Writes what the session wants written and carries out its transport requests; session
    /// events go to `events`.
    pub async fn flush(&mut self, events: &mut Vec<E::Event>) {
        loop {
            while let Some(bytes) = self.session.poll_transmit() {
                if let Some(t) = self.transport.as_mut() {
                    if let Err(e) = t.send(bytes).await {
                        tracing::debug!(error = %e, "write failed");
                        self.transport = None;
                        self.session.handle_transport_closed(now());
                    }
                }
            }
            let Some(event) = self.session.poll_event() else {
                return;
            };
            match E::transport_request(&event) {
                Some(TransportRequest::Open) => {
                    match tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        // Boxed: the connect future is large and would otherwise sit in every
                        // device task's state for its whole life.
                        Box::pin(Transport::connect(&self.url, self.tls.as_ref())),
                    )
                    .await
                    {
                        Ok(Ok(t)) => {
                            self.transport = Some(t);
                            self.session.handle_transport_open(now());
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(url = %self.url, error = %e, "connect failed");
                            self.session.handle_transport_closed(now());
                        }
                        Err(_) => {
                            tracing::debug!(url = %self.url, "connect timed out");
                            self.session.handle_transport_closed(now());
                        }
                    }
                }
                Some(TransportRequest::Close) => {
                    if let Some(t) = self.transport.take() {
                        t.close().await;
                    }
                }
                None => events.push(event),
            }
        }
    }

    /// Waits for input (bytes, a closed socket, a session timer) or for `deadline`, feeds it to
    /// the session and flushes. Returns what woke it.
    pub async fn step(
        &mut self,
        deadline: Option<Instant>,
        events: &mut Vec<E::Event>,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Wake {
        self.flush(events).await;
        if !events.is_empty() {
            return Wake::Session;
        }
        let session_at = self.session.poll_timeout().map(instant_at);
        let far = Instant::now() + Duration::from_secs(3600);
        let timer = session_at.unwrap_or(far).min(deadline.unwrap_or(far));
        let interrupt = std::pin::pin!(interrupt);
        let woke = match self.transport.as_mut() {
            Some(t) => {
                tokio::select! {
                    r = t.recv(&mut self.buf) => Some(r),
                    () = tokio::time::sleep_until(timer) => None,
                    () = interrupt => return Wake::Interrupted,
                }
            }
            None => {
                tokio::select! {
                    () = tokio::time::sleep_until(timer) => None,
                    () = interrupt => return Wake::Interrupted,
                }
            }
        };
        let mut wake = Wake::Session;
        match woke {
            Some(Ok(Some(()))) => self.session.handle_bytes(&self.buf, now()),
            Some(Ok(None)) | Some(Err(_)) => {
                self.transport = None;
                self.session.handle_transport_closed(now());
            }
            None => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    wake = Wake::Deadline;
                }
                self.session.handle_timeout(now());
            }
        }
        self.flush(events).await;
        wake
    }
}

impl Link<Session> {
    /// Publishes through the session.
    pub fn publish(&mut self, p: Publish) -> Result<PublishId, SessionError> {
        self.session.publish(p, now())
    }
}

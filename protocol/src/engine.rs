//! What a caller needs to drive any of this crate's MQTT state machines over a real transport.
//!
//! A [`Session`](crate::session::Session) and a [`Client`](crate::client::Client) are driven the
//! same way: open or close the transport when an event asks for it, feed it what arrives, write
//! what it hands out, and wake it at its next deadline. One driver (a tokio task, a browser
//! socket, a test harness) serves both.

use crate::time::Timestamp;

/// What an event asks of the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportRequest {
    /// Open a transport to the broker, then report it open or closed.
    Open,
    /// Close the transport, after writing what [`Engine::poll_transmit`] still returns.
    Close,
}

/// A sans-I/O MQTT state machine: input with `handle_*(.., now)`, output with `poll_*`.
///
/// After every input, drain [`Engine::poll_transmit`] before [`Engine::poll_event`]: a close
/// request may follow final bytes (a DISCONNECT) that belong on the transport before it closes.
pub trait Engine {
    /// What the engine reports.
    type Event;

    /// The transport asked for is open.
    fn handle_transport_open(&mut self, now: Timestamp);
    /// The transport closed, or could not be opened.
    fn handle_transport_closed(&mut self, now: Timestamp);
    /// Bytes from the transport, in any fragmentation.
    fn handle_bytes(&mut self, data: &[u8], now: Timestamp);
    /// Fires whatever is due at `now`.
    fn handle_timeout(&mut self, now: Timestamp);
    /// Bytes to write to the transport.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When [`Engine::handle_timeout`] has work next.
    fn poll_timeout(&mut self) -> Option<Timestamp>;
    /// Whether `event` asks to open or close the transport.
    fn transport_request(event: &Self::Event) -> Option<TransportRequest>;
}

//! The session as an [`Engine`]: the surface one driver shares with the client.

use super::{Session, SessionEvent};
use crate::engine::{Engine, TransportRequest};
use crate::time::Timestamp;

impl Engine for Session {
    type Event = SessionEvent;

    fn handle_transport_open(&mut self, now: Timestamp) {
        Session::handle_transport_open(self, now);
    }

    fn handle_transport_closed(&mut self, now: Timestamp) {
        Session::handle_transport_closed(self, now);
    }

    fn handle_bytes(&mut self, data: &[u8], now: Timestamp) {
        Session::handle_bytes(self, data, now);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        Session::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Session::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        Session::poll_event(self)
    }

    fn poll_timeout(&mut self) -> Option<Timestamp> {
        Session::poll_timeout(self)
    }

    fn transport_request(event: &SessionEvent) -> Option<TransportRequest> {
        match event {
            SessionEvent::OpenTransport => Some(TransportRequest::Open),
            SessionEvent::CloseTransport => Some(TransportRequest::Close),
            _ => None,
        }
    }
}

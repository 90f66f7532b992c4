//! The browser WebSocket to the broker, and nothing else: the only module that names it. It opens
//! with the `mqtt` subprotocol and binary frames, reports what happens as [`SocketEvent`]s, and
//! writes what it is given.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What happened on the socket.
#[derive(Debug)]
pub enum SocketEvent {
    /// It is open.
    Open,
    /// A frame arrived.
    Bytes(Vec<u8>),
    /// It closed (or never opened), for a person.
    Closed(String),
}

/// An open (or opening) socket and the callbacks it holds; dropping it detaches them and closes it.
pub struct Socket {
    ws: WebSocket,
    _onopen: Closure<dyn FnMut()>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("url", &self.ws.url())
            .finish()
    }
}

impl Socket {
    /// Opens a socket to `url`; `on_event` hears everything that happens on it.
    pub fn open(url: &str, on_event: impl Fn(SocketEvent) + 'static) -> Result<Socket, String> {
        let ws = WebSocket::new_with_str(url, "mqtt").map_err(|e| {
            let msg = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}"));
            format!("cannot open {url}: {msg}")
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = std::rc::Rc::new(on_event);
        let tell = on_event.clone();
        let opened = std::rc::Rc::new(std::cell::Cell::new(false));
        let was_opened = opened.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || {
            was_opened.set(true);
            tell(SocketEvent::Open)
        });
        let tell = on_event.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Ok(buf) = e.data().dyn_into::<js_sys::ArrayBuffer>() {
                tell(SocketEvent::Bytes(js_sys::Uint8Array::new(&buf).to_vec()));
            }
        });
        let tell = on_event;
        let secure = url.starts_with("wss:");
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            tell(SocketEvent::Closed(close_reason(
                opened.get(),
                secure,
                e.code(),
                &e.reason(),
            )))
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _onopen: onopen,
            _onmessage: onmessage,
            _onclose: onclose,
        })
    }

    /// Writes `bytes` if the socket is open; bytes for a socket not open yet are the session's to
    /// send again, so they are dropped here.
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        if self.ws.ready_state() != WebSocket::OPEN {
            return Ok(());
        }
        self.ws
            .send_with_u8_array(bytes)
            .map_err(|e| format!("socket write failed: {e:?}"))
    }
}

/// Why a socket closed, for a person. A browser tells a page nothing about a socket that failed
/// to open (refused, unreachable, a certificate it does not trust: all code 1006), so the message
/// names what to check.
fn close_reason(opened: bool, secure: bool, code: u16, reason: &str) -> String {
    match (opened, code) {
        (false, _) if secure => "could not open a secure connection to the broker: is it running, is the URL right, and does this browser trust its certificate? (opening the URL with https:// in a tab shows the certificate error, if any)".to_owned(),
        (false, _) => "could not connect to the broker: is it running, and is the URL right?".to_owned(),
        (true, 1006) => "the connection to the broker was cut (no close frame)".to_owned(),
        (true, code) if reason.is_empty() => format!("the broker closed the connection (code {code})"),
        (true, code) => format!("the broker closed the connection (code {code}: {reason})"),
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

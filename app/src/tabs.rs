//! The panel's tabs in one browser tell each other which MQTT client id each connects with, so
//! that two of them never take the broker's session from each other unseen.
//!
//! A duplicated tab copies its session storage, and with it the client id: the broker then gives
//! the session to whichever tab connected last, and the other, reconnecting, takes it back, for
//! ever. Over a BroadcastChannel, a tab that connects says `claim:<id>`; a tab that already holds
//! that id answers `held:<id>`; the newcomer hears it, stays off the broker and offers the operator
//! a fresh id. (Clients elsewhere are the broker's to report: MQTT 5's DISCONNECT 0x8E.)

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

const CHANNEL: &str = "switchboard.client-ids";

/// What another tab said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabMessage {
    /// It is about to connect with this client id.
    Claim(String),
    /// It is connected (or reconnecting) with this client id.
    Held(String),
}

impl TabMessage {
    fn encode(&self) -> String {
        match self {
            TabMessage::Claim(id) => format!("claim:{id}"),
            TabMessage::Held(id) => format!("held:{id}"),
        }
    }

    /// Reads a message; anything else on the channel is ignored.
    pub fn decode(s: &str) -> Option<TabMessage> {
        if let Some(id) = s.strip_prefix("claim:") {
            Some(TabMessage::Claim(id.to_owned()))
        } else {
            s.strip_prefix("held:")
                .map(|id| TabMessage::Held(id.to_owned()))
        }
    }
}

/// This tab's end of the channel; dropping it closes it.
pub struct Tabs {
    channel: BroadcastChannel,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
}

impl std::fmt::Debug for Tabs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tabs")
    }
}

impl Tabs {
    /// Joins the channel; `on_message` hears the other tabs. `None` where the browser has no
    /// BroadcastChannel (then nothing is said or heard).
    pub fn open(on_message: impl Fn(TabMessage) + 'static) -> Option<Tabs> {
        let channel = BroadcastChannel::new(CHANNEL).ok()?;
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(m) = e.data().as_string().as_deref().and_then(TabMessage::decode) {
                on_message(m);
            }
        });
        channel.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        Some(Tabs {
            channel,
            _onmessage: onmessage,
        })
    }

    /// Tells the other tabs.
    pub fn say(&self, m: &TabMessage) {
        let _ = self.channel.post_message(&m.encode().into());
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

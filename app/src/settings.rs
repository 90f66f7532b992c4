//! Connection settings: remembered in the browser's storage, overridable by the page's URL query
//! (`?broker=ws://host:8083/mqtt&client_id=..&username=..&version=3.1.1`), so a link can open a
//! panel on a given broker.

use serde::{Deserialize, Serialize};
use switchboard_protocol::session::ProtocolVersion;

const KEY: &str = "switchboard.settings";
const CLIENT_ID_KEY: &str = "switchboard.client_id";

/// What the operator chooses on the connect form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Broker WebSocket URL, `ws://` or `wss://`.
    pub url: String,
    /// MQTT client id; empty means "one per browser tab".
    #[serde(default)]
    pub client_id: String,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: String,
    /// Password; kept for this tab only, never written to storage.
    #[serde(skip)]
    pub password: String,
    /// MQTT 3.1.1 instead of 5 (5 falls back to 3.1.1 on its own when a broker refuses it).
    #[serde(default)]
    pub mqtt311: bool,
}

impl Settings {
    /// The settings for this page: stored ones, then the URL query on top, then defaults.
    pub fn load() -> Settings {
        let mut s = storage(false)
            .and_then(|st| st.get_item(KEY).ok().flatten())
            .and_then(|json| serde_json::from_str::<Settings>(&json).ok())
            .unwrap_or_else(Settings::default_for_page);
        if let Some(q) = query() {
            if let Some(v) = q.get("broker") {
                s.url = v;
            }
            if let Some(v) = q.get("client_id") {
                s.client_id = v;
            }
            if let Some(v) = q.get("username") {
                s.username = v;
            }
            if let Some(v) = q.get("version") {
                s.mqtt311 = v.starts_with('3');
            }
        }
        s
    }

    /// The embedded broker of `device-sim` on the host that served the page.
    fn default_for_page() -> Settings {
        let host = web_sys::window()
            .and_then(|w| w.location().hostname().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        Settings {
            url: format!("ws://{host}:8083/mqtt"),
            client_id: String::new(),
            username: String::new(),
            password: String::new(),
            mqtt311: false,
        }
    }

    /// Remembers these settings (the password excepted).
    pub fn save(&self) {
        if let (Some(st), Ok(json)) = (storage(false), serde_json::to_string(self)) {
            let _ = st.set_item(KEY, &json);
        }
    }

    /// The client id to connect with: the chosen one, or one kept for this browser tab (it survives
    /// a reload, so the broker's persistent session and its queued answers survive it too).
    pub fn effective_client_id(&self) -> String {
        if !self.client_id.trim().is_empty() {
            return self.client_id.trim().to_owned();
        }
        let tab = storage(true);
        if let Some(id) = tab
            .as_ref()
            .and_then(|st| st.get_item(CLIENT_ID_KEY).ok().flatten())
        {
            return id;
        }
        let id = random_id("panel");
        if let Some(st) = tab {
            let _ = st.set_item(CLIENT_ID_KEY, &id);
        }
        id
    }

    /// The same settings with a client id of this tab's own, newly drawn: for a tab whose session
    /// another tab (or client) took, having the same id (a duplicated tab copies its session
    /// storage, and so its id).
    pub fn with_fresh_client_id(mut self) -> Settings {
        let id = random_id("panel");
        match storage(true) {
            Some(st) => {
                let _ = st.set_item(CLIENT_ID_KEY, &id);
                self.client_id.clear();
            }
            // Without the tab's storage, the id goes in the settings themselves.
            None => self.client_id = id,
        }
        self
    }

    /// The protocol version to start with.
    pub fn version(&self) -> ProtocolVersion {
        if self.mqtt311 {
            ProtocolVersion::V3_1_1
        } else {
            ProtocolVersion::V5
        }
    }

    /// Checks the URL before a socket is opened, with a message for a person.
    pub fn check_url(&self) -> Result<(), String> {
        let url = self.url.trim();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(format!(
                "\"{url}\" is not a WebSocket URL: it must start with ws:// or wss://"
            ));
        }
        if web_sys::Url::new(url).is_err() {
            return Err(format!("\"{url}\" is not a valid URL"));
        }
        Ok(())
    }
}

/// Local storage (`false`) or this tab's session storage (`true`).
pub fn storage(tab: bool) -> Option<web_sys::Storage> {
    let w = web_sys::window()?;
    if tab {
        w.session_storage().ok().flatten()
    } else {
        w.local_storage().ok().flatten()
    }
}

/// The page's URL query.
fn query() -> Option<web_sys::UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()
}

/// One parameter of the page's URL query.
pub fn query_param(name: &str) -> Option<String> {
    query()?.get(name)
}

/// `<prefix>-` and eight random hex digits (not a secret: only to tell tabs apart).
pub fn random_id(prefix: &str) -> String {
    format!(
        "{prefix}-{:08x}",
        (js_sys::Math::random() * f64::from(u32::MAX)) as u32
    )
}

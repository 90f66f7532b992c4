//! The panel's parts in a real browser: the WebSocket link against a real broker with simulated
//! devices behind it, and components mounted into the page.
//!
//! `cargo xtask test` starts `device-sim` (embedded broker, devices `wasm1..wasm4` in group
//! `wasm`) and passes its WebSocket URL at build time as `SWITCHBOARD_TEST_WS`.

#![cfg(target_family = "wasm")]
#![allow(clippy::unwrap_used)]

use std::future::Future;

use leptos::prelude::*;
use switchboard_app::components::device_card::DeviceCard;
use switchboard_app::components::light::Light;
use switchboard_app::device_view::Presence;
use switchboard_app::link::Link;
use switchboard_app::settings::{storage, Settings};
use switchboard_app::view::Conn;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId, GroupId};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Devices the simulator runs for these tests.
const DEVICES: usize = 4;

// Read at build time like `env!`, but a build without it (a plain `cargo clippy`) still compiles
// and the test says what is missing when it runs.
#[allow(clippy::option_env_unwrap)]
fn broker() -> &'static str {
    option_env!("SWITCHBOARD_TEST_WS").expect(
        "SWITCHBOARD_TEST_WS names the broker these tests talk to; `cargo xtask test` starts one",
    )
}

fn settings(client_id: &str, url: &str) -> Settings {
    Settings {
        url: url.to_owned(),
        client_id: client_id.to_owned(),
        username: String::new(),
        password: String::new(),
        mqtt311: false,
    }
}

/// A link with nothing left over from an earlier test in this page.
fn fresh_link() -> Link {
    if let Some(s) = storage(true) {
        let _ = s.clear();
    }
    Link::new()
}

async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Polls `ok` every 10 ms for up to `ms`; panics with `what` when it never holds.
async fn until(what: &str, ms: u32, mut ok: impl FnMut() -> bool) {
    for _ in 0..ms / 10 {
        if ok() {
            return;
        }
        sleep(10).await;
    }
    panic!("{what}: not within {ms} ms");
}

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

async fn connected(client_id: &str) -> Link {
    let link = fresh_link();
    link.connect(settings(client_id, broker()));
    until("online", 10_000, || {
        matches!(link.store.conn.get_untracked(), Conn::Online { .. })
    })
    .await;
    until("every device discovered online", 10_000, || {
        (1..=DEVICES).all(|i| {
            link.store
                .device(&dev(&format!("wasm{i}")))
                .is_some_and(|d| d.with_untracked(|d| d.presence == Presence::Online))
        })
    })
    .await;
    link
}

fn with_owner<F: Future<Output = ()>>(f: impl FnOnce() -> F) -> F {
    let owner = Owner::new();
    owner.set();
    f()
}

#[test]
async fn the_link_connects_and_discovers_the_fleet_from_retained_status() {
    with_owner(|| async {
        let link = connected("wasm-test-discover").await;
        let ids = link.store.device_ids.get_untracked();
        assert_eq!(ids.len(), DEVICES);
        assert_eq!(
            link.store
                .groups
                .get_untracked()
                .get(&GroupId::new("wasm").unwrap()),
            Some(&DEVICES)
        );
        let d = link.store.device(&dev("wasm1")).unwrap().get_untracked();
        assert!(d.capabilities.iter().any(|c| c == "light"), "{d:?}");
        assert!(d.state.is_some(), "retained status carries the state");
        link.disconnect();
    })
    .await;
}

#[test]
async fn a_light_command_is_pending_until_the_device_confirms_it() {
    with_owner(|| async {
        let link = connected("wasm-test-light").await;
        let d = link.store.device(&dev("wasm2")).unwrap();
        let was = d.with_untracked(|d| d.light());
        let tid = link.send(Target::Device(dev("wasm2")), &Command::Light { on: !was });
        // At once: pending, and still drawn as it was.
        d.with_untracked(|d| {
            assert_eq!(d.pending_light(), Some(!was));
            assert_eq!(d.light(), was);
        });
        until("confirmed by the device", 10_000, || {
            d.with_untracked(|d| d.light() != was && d.pending.is_empty())
        })
        .await;
        let row = link.store.command(&tid).unwrap().get_untracked();
        assert_eq!(row.status, "succeeded");
        assert!(row.round_trip_ms.is_some());
        link.disconnect();
    })
    .await;
}

#[test]
async fn a_group_command_reconciles_every_member() {
    with_owner(|| async {
        let link = connected("wasm-test-group").await;
        let tid = link.send(
            Target::Group(GroupId::new("wasm").unwrap()),
            &Command::GetState,
        );
        assert_eq!(
            link.store.fanout_view.get_untracked().map(|f| f.tid),
            Some(tid)
        );
        until("every member answered", 10_000, || {
            link.store
                .fanout_view
                .with_untracked(|f| f.as_ref().is_some_and(|f| f.finished))
        })
        .await;
        let f = link.store.fanout_view.get_untracked().unwrap();
        assert_eq!(f.devices.len(), DEVICES);
        assert_eq!(f.progress.succeeded, DEVICES);
        // The export has one CSV row per member.
        let csv = link.export_csv();
        assert_eq!(
            csv.lines()
                .filter(|l| l.starts_with(&tid.to_string()))
                .count(),
            DEVICES
        );
        link.disconnect();
    })
    .await;
}

#[test]
async fn a_url_that_is_not_a_websocket_is_refused_with_a_clear_error() {
    with_owner(|| async {
        let link = fresh_link();
        link.connect(settings("wasm-test-bad-url", "http://127.0.0.1:8083/mqtt"));
        let err = link.store.conn_error.get_untracked().unwrap_or_default();
        assert!(err.contains("ws://"), "{err}");
        assert_eq!(link.store.conn.get_untracked(), Conn::Offline);
    })
    .await;
}

#[test]
async fn a_broker_that_is_not_there_is_reported_and_retried() {
    with_owner(|| async {
        let link = fresh_link();
        link.connect(settings("wasm-test-absent", "ws://127.0.0.1:9/mqtt"));
        until("a reconnect planned", 10_000, || {
            matches!(link.store.conn.get_untracked(), Conn::Reconnecting { .. })
        })
        .await;
        let err = link.store.conn_error.get_untracked().unwrap_or_default();
        assert!(err.contains("could not connect to the broker"), "{err}");
        // A command sent meanwhile is kept, not dropped.
        let tid = link.send(Target::Device(dev("wasm1")), &Command::GetState);
        link.flush();
        let row = link.store.command(&tid).unwrap().get_untracked();
        assert!(!row.finished, "{row:?}");
        link.disconnect();
    })
    .await;
}

fn mount_point() -> web_sys::HtmlElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let el = doc.create_element("div").unwrap();
    doc.body().unwrap().append_child(&el).unwrap();
    el.dyn_into().unwrap()
}

#[test]
async fn the_light_is_drawn_lit_only_when_confirmed() {
    let on = RwSignal::new(false);
    let pending = RwSignal::new(Some(true));
    let el = mount_point();
    let _handle = leptos::mount::mount_to(el.clone(), move || {
        view! { <Light on=on pending=pending /> }
    });
    leptos::task::tick().await;
    let svg = el.query_selector("svg").unwrap().unwrap();
    let class = || svg.get_attribute("class").unwrap_or_default();
    assert!(
        class().contains("pending") && !class().contains(" on"),
        "{}",
        class()
    );
    assert!(svg
        .get_attribute("aria-label")
        .unwrap()
        .contains("turning on"));
    on.set(true);
    pending.set(None);
    leptos::task::tick().await;
    assert!(
        class().contains("on") && !class().contains("pending"),
        "{}",
        class()
    );
    assert_eq!(svg.get_attribute("aria-label").unwrap(), "light: on");
}

#[test]
async fn pressing_a_card_button_while_offline_shows_pending_not_on() {
    let link = fresh_link();
    let id = dev("card1");
    link.add_device(id.clone());
    let el = mount_point();
    let id2 = id.clone();
    let _handle = leptos::mount::mount_to(el.clone(), move || {
        provide_context(link);
        view! { <DeviceCard id=id2 /> }
    });
    leptos::task::tick().await;
    let card = el
        .query_selector("[data-device=\"card1\"]")
        .unwrap()
        .unwrap();
    assert_eq!(
        card.get_attribute("data-presence").unwrap(),
        "presence unknown"
    );
    assert_eq!(card.get_attribute("data-light").unwrap(), "off");
    let button: web_sys::HtmlElement = card
        .query_selector("[data-action=\"light\"]")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    button.click();
    leptos::task::tick().await;
    assert_eq!(card.get_attribute("data-pending").unwrap(), "true");
    assert_eq!(card.get_attribute("data-light").unwrap(), "off");
    assert!(button.text_content().unwrap().contains("turning on"));
}

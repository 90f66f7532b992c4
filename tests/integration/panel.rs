//! The panel end to end: the release build (Trunk) in a real headless Chromium, talking MQTT over
//! WebSockets to a real broker, with simulated devices behind it. Each test saves a screenshot
//! to `tests/artifacts/`.

use std::time::Duration;

use device_sim::faults::Faults;
use switchboard_protocol::envelope::{Outcome, Response};
use switchboard_protocol::{Command, DeviceId, Tid};

use crate::support::broker::{Broker, Kind};
use crate::support::browser::{dist, Browser, StaticServer};
use crate::support::{
    dev, fleet_options, publish_raw, send_command, spawn_simulator, specs, start_fleet, to,
    wait_online,
};

const T: Duration = Duration::from_secs(20);

fn panel_url(server: &StaticServer, broker: &Broker) -> String {
    format!("{}/?broker={}", server.url, broker.ws_url())
}

/// JavaScript that reads one attribute of a device's card ('' when the card is not there).
pub(crate) fn card_attr(device: &str, attr: &str) -> String {
    format!(
        "const c = document.querySelector('[data-device=\"{device}\"]'); return c ? c.getAttribute('{attr}') : '';"
    )
}

/// The panel, connected to `broker`'s WebSocket listener.
pub(crate) async fn open_panel_online(broker: &Broker) -> Browser {
    let server = StaticServer::start(dist());
    let browser = Browser::start().await;
    browser
        .client
        .goto(&panel_url(&server, broker))
        .await
        .unwrap();
    browser
        .until(
            "the panel online",
            "const b = document.querySelector('[data-conn]'); return b && b.dataset.conn === 'online';",
            T,
        )
        .await;
    browser
}

async fn open_panel(broker: &Broker, device: &str) -> Browser {
    let browser = open_panel_online(broker).await;
    browser
        .until(
            &format!("{device} discovered online"),
            &format!(
                "const c = document.querySelector('[data-device=\"{device}\"]'); return c && c.dataset.presence === 'online';"
            ),
            T,
        )
        .await;
    browser
}

/// One attribute of a device's card ('' when the card is not there).
pub(crate) async fn card_value(browser: &Browser, device: &str, attr: &str) -> String {
    let v = browser
        .client
        .execute(&card_attr(device, attr), vec![])
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_owned()
}

/// Presses a device's light button and waits until the card shows it confirmed on.
pub(crate) async fn turn_on_and_confirm(browser: &Browser, device: &str) {
    click(
        browser,
        &format!("[data-device=\"{device}\"] [data-action=\"light\"]"),
    )
    .await;
    browser
        .until(
            &format!("{device} confirmed on"),
            &format!("const c = document.querySelector('[data-device=\"{device}\"]'); return c.dataset.pending === 'false' && c.dataset.light === 'on';"),
            T,
        )
        .await;
}

pub(crate) async fn click(browser: &Browser, css: &str) {
    browser.find(css, T).await.click().await.unwrap();
}

async fn light_turns_on_only_when_confirmed(kind: Kind) {
    let broker = Broker::start(kind).await;
    // device1 takes 600 ms to act, so "pending" is there to be seen.
    let mut sp = specs("device", 3, &["floor1"], &Faults::default());
    sp[0].faults = Faults::parse("slow-ms=600").unwrap();
    let fleet = start_fleet(sp, fleet_options(&broker.url, None)).await;
    let browser = open_panel(&broker, "device1").await;
    assert_eq!(card_value(&browser, "device1", "data-light").await, "off");

    click(
        &browser,
        "[data-device=\"device1\"] [data-action=\"light\"]",
    )
    .await;
    browser
        .until(
            "device1 pending and still drawn off",
            "const c = document.querySelector('[data-device=\"device1\"]'); return c.dataset.pending === 'true' && c.dataset.light === 'off';",
            T,
        )
        .await;
    browser.screenshot(&format!("light-pending-{kind:?}")).await;
    browser
        .until(
            "device1 confirmed on",
            "const c = document.querySelector('[data-device=\"device1\"]'); return c.dataset.pending === 'false' && c.dataset.light === 'on';",
            T,
        )
        .await;
    let tid = browser
        .until(
            "the command succeeded in the history",
            "const r = document.querySelector('tr[data-tid]'); return r && r.dataset.phase === 'succeeded' ? r.dataset.tid : '';",
            T,
        )
        .await;
    browser.screenshot(&format!("light-on-{kind:?}")).await;

    // The simulator really switched device1's light, once.
    let tid = Tid::parse(tid.as_str().unwrap()).unwrap();
    assert_eq!(fleet.stats().executions_of(&dev("device1"), &tid), 1);
    let t = send_command(&broker.url, to("device1"), Command::GetState, T).await;
    let state = t.members[&dev("device1")]
        .response
        .as_ref()
        .unwrap()
        .state
        .clone()
        .unwrap();
    assert!(state.light, "the device's own state says on");
    // The other devices were left alone.
    assert_eq!(card_value(&browser, "device2", "data-light").await, "off");
    // At phone width nothing overflows sideways, and the light is still one press away.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser
        .until(
            "no horizontal overflow at phone width",
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            T,
        )
        .await;
    browser
        .find("[data-device=\"device1\"] [data-action=\"light\"]", T)
        .await;
    browser.screenshot(&format!("phone-{kind:?}")).await;
    browser.close().await;
    fleet.stop(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_turns_on_only_when_confirmed_embedded() {
    light_turns_on_only_when_confirmed(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_turns_on_only_when_confirmed_mosquitto() {
    light_turns_on_only_when_confirmed(Kind::Mosquitto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_fan_out_fills_the_matrix_for_100_devices() {
    let broker = Broker::start(Kind::Embedded).await;
    let fleet = start_fleet(
        specs("fan", 100, &["hall"], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let browser = open_panel(&broker, "fan1").await;
    browser
        .until(
            "100 devices in group hall",
            "const o = document.querySelector('select[name=\"group\"] option'); return o && o.textContent.includes('100 devices');",
            T,
        )
        .await;
    click(&browser, "[data-action=\"fanout\"]").await;
    let tid = browser
        .until(
            "the matrix complete",
            "const f = document.querySelector('[data-fanout]'); return f && f.dataset.complete === 'true' ? f.dataset.fanout : '';",
            T,
        )
        .await;
    let answered = browser
        .client
        .execute(
            "return document.querySelector('[data-fanout]').dataset.answered;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(answered, "100");
    browser.screenshot("fanout-100").await;
    let tid = Tid::parse(tid.as_str().unwrap()).unwrap();
    for i in 1..=100 {
        let d = DeviceId::new(format!("fan{i}")).unwrap();
        assert_eq!(
            fleet.stats().executions_of(&d, &tid),
            1,
            "fan{i} ran it once"
        );
    }
    // Every card shows the light the group command turned on.
    let lit = browser
        .client
        .execute(
            "return document.querySelectorAll('[data-device][data-light=\"on\"]').length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        lit.as_u64().unwrap() > 0,
        "the cards drawn show the light on"
    );
    browser.close().await;
    fleet.stop(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_killed_mid_command_shows_interrupted_after_it_returns() {
    let broker = Broker::start(Kind::Embedded).await;
    let dir = tempfile::tempdir().unwrap();
    // Acting takes 5 s: long enough to kill the process in the middle.
    let mut sim = spawn_simulator(&broker.url, dir.path(), "cut", "slow-ms=5000");
    wait_online(&broker.url, "cut1").await;
    let browser = open_panel(&broker, "cut1").await;
    click(&browser, "[data-device=\"cut1\"] [data-action=\"light\"]").await;
    browser
        .until(
            "cut1 pending",
            "const c = document.querySelector('[data-device=\"cut1\"]'); return c.dataset.pending === 'true';",
            T,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.kill();
    let _again = spawn_simulator(&broker.url, dir.path(), "cut", "");
    browser
        .until(
            "the command shown interrupted",
            "const r = document.querySelector('tr[data-tid]'); return r && r.dataset.phase === 'interrupted';",
            T,
        )
        .await;
    browser
        .until(
            "the card no longer pending, light still off",
            "const c = document.querySelector('[data-device=\"cut1\"]'); return c.dataset.pending === 'false' && c.dataset.light === 'off';",
            T,
        )
        .await;
    browser.screenshot("interrupted").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_command_outstanding_is_reconciled_after_it() {
    let broker = Broker::start(Kind::Embedded).await;
    let mut sp = specs("reload", 1, &[], &Faults::default());
    sp[0].faults = Faults::parse("slow-ms=3000").unwrap();
    let fleet = start_fleet(sp, fleet_options(&broker.url, None)).await;
    let browser = open_panel(&broker, "reload1").await;
    click(
        &browser,
        "[data-device=\"reload1\"] [data-action=\"light\"]",
    )
    .await;
    let tid = browser
        .until(
            "the command delivered",
            "const r = document.querySelector('tr[data-tid]'); return r && r.dataset.phase === 'delivered' ? r.dataset.tid : '';",
            T,
        )
        .await;
    browser.client.refresh().await.unwrap();
    // After the reload: the command is listed again, and reconciled when the answer comes.
    browser
        .until(
            "the outstanding command restored",
            &format!(
                "return !!document.querySelector('tr[data-tid=\"{}\"]');",
                tid.as_str().unwrap()
            ),
            T,
        )
        .await;
    browser
        .until(
            "the restored command succeeded",
            &format!(
                "const r = document.querySelector('tr[data-tid=\"{}\"]'); return r && r.dataset.phase === 'succeeded';",
                tid.as_str().unwrap()
            ),
            T,
        )
        .await;
    browser
        .until(
            "reload1 drawn on",
            "const c = document.querySelector('[data-device=\"reload1\"]'); return c && c.dataset.light === 'on' && c.dataset.pending === 'false';",
            T,
        )
        .await;
    browser.screenshot("reload-reconciled").await;
    let tid = Tid::parse(tid.as_str().unwrap()).unwrap();
    assert_eq!(
        fleet.stats().executions_of(&dev("reload1"), &tid),
        1,
        "executed once, however many times it was sent"
    );
    browser.close().await;
    fleet.stop(T).await;
}

/// Text of the first element matching `css` ('' when there is none).
fn text_of(css: &str) -> String {
    format!("const e = document.querySelector('{css}'); return e ? e.textContent : '';")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_details_drive_every_command() {
    let broker = Broker::start(Kind::Embedded).await;
    let mut opts = fleet_options(&broker.url, None);
    opts.telemetry = Duration::from_millis(400);
    let fleet = start_fleet(specs("det", 1, &[], &Faults::default()), opts).await;
    let browser = open_panel(&broker, "det1").await;
    click(&browser, "[data-device=\"det1\"] .card-open").await;
    browser.find("[data-detail=\"det1\"]", T).await;

    // Telemetry is drawn live, and changes rate at once.
    browser
        .until(
            "telemetry samples drawn",
            "const f = document.querySelector('figure.telemetry'); return f && Number(f.dataset.samples) >= 3;",
            T,
        )
        .await;
    let input = browser
        .find("[data-detail=\"det1\"] input[type=\"number\"]", T)
        .await;
    input.clear().await.unwrap();
    input.send_keys("150").await.unwrap();
    click(&browser, "[data-action=\"telemetry\"]").await;
    browser
        .until(
            "telemetry at the new rate",
            "const e = document.querySelector('figure.telemetry figcaption'); return e && e.textContent.includes('every 150 ms');",
            T,
        )
        .await;

    // The log arrives on its own topic and is shown.
    click(&browser, "[data-action=\"get-log\"]").await;
    browser
        .until(
            "log lines shown",
            "const l = document.querySelector('pre.log'); return l && Number(l.dataset.logLines) > 0;",
            T,
        )
        .await;

    // An out-of-order step is refused, and the stepper says what the device expects.
    click(&browser, "[data-action=\"firmware-activate\"]").await;
    let refused = browser
        .until(
            "the out-of-order step refused",
            "const e = document.querySelector('[data-seq-last]'); return e && e.textContent.includes('rejected') ? e.textContent : '';",
            T,
        )
        .await;
    assert!(
        refused.as_str().unwrap().contains("firmware_activate"),
        "{refused}"
    );
    for step in ["stage", "verify", "activate"] {
        click(&browser, &format!("[data-action=\"firmware-{step}\"]")).await;
        browser
            .until(
                &format!("firmware_{step} succeeded"),
                &format!("const e = document.querySelector('[data-seq-last]'); return e && e.textContent === 'firmware_{step}: succeeded';"),
                T,
            )
            .await;
    }

    // Saved config is pending until the restart, which applies it.
    click(&browser, ".config input[type=\"checkbox\"]").await;
    click(&browser, "[data-action=\"set-config\"]").await;
    browser.find("[data-pending-config]", T).await;
    browser.screenshot("device-detail").await;
    click(&browser, "[data-detail=\"det1\"] [data-action=\"restart\"]").await;
    browser
        .until(
            "restarted with the saved config: light on at boot, nothing pending",
            "const c = document.querySelector('[data-device=\"det1\"]'); return c.dataset.light === 'on' && !document.querySelector('[data-pending-config]');",
            T,
        )
        .await;
    let state = browser
        .client
        .execute(&text_of("[data-state]"), vec![])
        .await
        .unwrap();
    assert!(state.as_str().unwrap().contains("2 boots"), "{state}");
    browser.close().await;
    fleet.stop(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_match_nothing_and_malformed_messages_are_shown_not_dropped() {
    let broker = Broker::start(Kind::Embedded).await;
    let fleet = start_fleet(
        specs("odd", 1, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let browser = open_panel(&broker, "odd1").await;
    let stray = Response::new(
        Tid::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap(),
        dev("odd1"),
        "light",
        Outcome::Succeeded,
    );
    publish_raw(
        &broker.url,
        &[
            ("cmd/odd1/resp", &stray.encode()),
            ("cmd/odd1/resp", b"{not json"),
            (
                "cmd/odd1/resp",
                b"SUCCESS: command ran successfully from payload: b'x'",
            ),
        ],
    )
    .await;
    for (what, needle) in [
        (
            "the unknown TID",
            "matches no command: unknown TID 01234567-89ab-cdef-0123-456789abcdef",
        ),
        ("the malformed payload", "malformed message from odd1"),
        (
            "the text answer nobody asked for",
            "a text answer with no text command outstanding",
        ),
    ] {
        browser
            .until(
                &format!("{what} listed under notices"),
                &format!(
                    "return document.querySelector('.notices').textContent.includes('{needle}');"
                ),
                T,
            )
            .await;
    }
    browser
        .client
        .execute(
            "document.querySelector('.notices').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("notices").await;
    // The panel is still online and still commands the device.
    click(&browser, "[data-device=\"odd1\"] [data-action=\"light\"]").await;
    browser
        .until(
            "odd1 confirmed on",
            "const c = document.querySelector('[data-device=\"odd1\"]'); return c.dataset.light === 'on';",
            T,
        )
        .await;
    browser.close().await;
    fleet.stop(T).await;
}

/// Two tabs of one browser given one client id (a duplicated tab copies the id with its session
/// storage): the newer tab is told the id is held by another tab, stays off the broker instead of
/// taking the session, and offers a fresh id, with which both are online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_with_one_client_id_do_not_take_the_session_from_each_other() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let server = StaticServer::start(dist());
    let page = format!(
        "{}/?broker={}&client_id=shared-tab-id",
        server.url,
        broker.ws_url()
    );
    const CONN: &str =
        "const b = document.querySelector('[data-conn]'); return b ? b.dataset.conn : '';";
    const ONLINE: &str =
        "const b = document.querySelector('[data-conn]'); return b && b.dataset.conn === 'online';";
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&page).await.unwrap();
    browser.until("the first tab online", ONLINE, T).await;
    let first = c.window().await.unwrap();
    let second = c.new_window(true).await.unwrap().handle;
    c.switch_to_window(second.clone()).await.unwrap();
    c.goto(&page).await.unwrap();
    let told = browser
        .until(
            "the second tab told the id is held",
            "const b = document.querySelector('[data-conn]'); const e = document.querySelector('.conn-error'); return b && b.dataset.conn === 'taken-over' && e ? e.textContent : '';",
            T,
        )
        .await;
    assert!(
        told.as_str().unwrap().contains(
            "another tab of this browser is connected with this client id (shared-tab-id)"
        ),
        "{told}"
    );
    browser.screenshot("second-tab-told").await;
    // Neither takes the session from the other: a few seconds later the first is online and
    // the second still waits for the operator.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = || async { c.execute(CONN, vec![]).await.unwrap() };
    assert_eq!(state().await, "taken-over");
    c.switch_to_window(first.clone()).await.unwrap();
    assert_eq!(state().await, "online");
    c.switch_to_window(second).await.unwrap();
    click(&browser, "[data-action=\"fresh-client-id\"]").await;
    browser
        .until("the second tab online with a new id", ONLINE, T)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state().await, "online");
    c.switch_to_window(first).await.unwrap();
    assert_eq!(
        state().await,
        "online",
        "the new id took nothing from the first tab"
    );
    browser.close().await;
}

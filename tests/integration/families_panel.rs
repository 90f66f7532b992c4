//! The panel in headless Chromium with devices of other families: a mixed fleet found by its
//! announcements and each light drawn on only once confirmed; a group that mixes families, each
//! member confirmed on its own; and the outcomes only such devices have (contradicted, timed out
//! with presence offline).

use std::time::Duration;

use device_sim::faults::Faults;
use device_sim::fleet::DeviceSpec;
use switchboard_protocol::family::Family;

use crate::families::{family_spec, one_of_each};
use crate::panel::{card_value, click, open_panel_online, turn_on_and_confirm};
use crate::support::broker::{Broker, Kind};
use crate::support::browser::Browser;
use crate::support::{collect, fleet_options, publish_raw, specs, start_fleet};

const T: Duration = Duration::from_secs(10);

/// Waits until every one of `ids` has a card.
async fn cards(browser: &Browser, ids: &[String]) {
    for id in ids {
        browser
            .until(
                &format!("{id} on the panel"),
                &format!("return !!document.querySelector('[data-device=\"{id}\"]');"),
                T,
            )
            .await;
    }
}

/// The panel in headless Chromium, on a mixed fleet: it finds a device of every family by its
/// announcements, and each light is drawn on only once its device confirmed it; an optimistic
/// entity (no state topic) is drawn as unconfirmable and never lit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_finds_every_family_and_lights_each_only_when_confirmed() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let mut fleet_specs = one_of_each();
    fleet_specs.extend(specs("device", 2, &["floor1"], &Faults::default()));
    let ids: Vec<String> = fleet_specs.iter().map(|s| s.id.to_string()).collect();
    let fleet = start_fleet(fleet_specs, fleet_options(&broker.url, None)).await;
    let browser = open_panel_online(&broker).await;
    for id in &ids {
        browser
            .until(
                &format!("{id} on the panel"),
                &format!("return !!document.querySelector('[data-device=\"{id}\"]');"),
                T,
            )
            .await;
    }
    // An optimistic switch: a command topic and no state topic.
    publish_raw(
        &broker.url,
        &[(
            "homeassistant/switch/porch-fan/config",
            br#"{"name":"Porch fan","uniq_id":"porch-fan","cmd_t":"garage/porch-fan/set"}"#,
        )],
    )
    .await;
    browser
        .until(
            "the optimistic switch drawn unconfirmable",
            "const c = document.querySelector('[data-device=\"porch-fan\"]'); return c && c.dataset.confirmable === 'false';",
            T,
        )
        .await;
    for id in ids.iter().filter(|id| !id.starts_with("device")) {
        let family = card_value(&browser, id, "data-family").await;
        assert_ne!(family, "switchboard", "{id} is drawn as its family's");
        assert_eq!(card_value(&browser, id, "data-light").await, "off");
        click(
            &browser,
            &format!("[data-device=\"{id}\"] [data-action=\"light\"]"),
        )
        .await;
        browser
            .until(
                &format!("{id} ({family}) confirmed on"),
                &format!(
                    "const c = document.querySelector('[data-device=\"{id}\"]'); return c.dataset.pending === 'false' && c.dataset.light === 'on';"
                ),
                T,
            )
            .await;
    }
    let confirmed = browser
        .until(
            "every family's command confirmed in the history",
            "const rows = [...document.querySelectorAll('tr[data-tid]')].map(r => r.dataset.phase); return rows.filter(p => p.startsWith('succeeded (confirmed by')).length >= 5 ? rows : null;",
            T,
        )
        .await;
    assert!(
        confirmed.to_string().contains("answer with id")
            && confirmed.to_string().contains("state report"),
        "the history says how each was confirmed: {confirmed}"
    );
    // Switchboard's own devices are there too, and still work.
    turn_on_and_confirm(&browser, "device1").await;
    browser.screenshot("families-mixed-fleet").await;
    // The optimistic switch is commanded but never drawn on.
    click(
        &browser,
        "[data-device=\"porch-fan\"] [data-action=\"light\"]",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(card_value(&browser, "porch-fan", "data-light").await, "off");
    browser.close().await;
    fleet.stop(T).await;
}

/// One command to a group that mixes families: Switchboard's devices take the envelope on the
/// group's topic, the Tasmota devices their GroupTopic, the Zigbee2MQTT bulbs their Zigbee group,
/// and the Shelly, ESPHome and Home Assistant devices the operator put in the group one publish
/// each. Every member is confirmed on its own: a bulb that did not act is contradicted, whatever
/// Zigbee2MQTT's optimistic group echo said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_mixed_families_is_commanded_at_once_and_each_member_confirmed() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let grouped = |family, name: &str| DeviceSpec {
        groups: vec![switchboard_protocol::GroupId::new("lights").unwrap()],
        ..family_spec(family, name)
    };
    let mut fleet_specs = vec![
        grouped(Family::Tasmota, "tl1"),
        grouped(Family::Tasmota, "tl2"),
        grouped(Family::Zigbee2mqtt, "zl1"),
        DeviceSpec {
            faults: Faults::parse("stuck=1").unwrap(),
            ..grouped(Family::Zigbee2mqtt, "zl2")
        },
    ];
    let by_hand = [
        family_spec(Family::Shelly, "sl1"),
        family_spec(Family::Esphome, "el1"),
        family_spec(Family::Homeassistant, "hl1"),
    ];
    let by_hand_ids: Vec<String> = by_hand.iter().map(|s| s.id.to_string()).collect();
    fleet_specs.extend(by_hand);
    fleet_specs.extend(specs("device", 2, &["lights"], &Faults::default()));
    let ids: Vec<String> = fleet_specs.iter().map(|s| s.id.to_string()).collect();
    let fleet = start_fleet(fleet_specs, fleet_options(&broker.url, None)).await;
    let browser = open_panel_online(&broker).await;
    cards(&browser, &ids).await;
    for id in &by_hand_ids {
        click(&browser, &format!("[data-device=\"{id}\"] .card-open")).await;
        let input = browser
            .find(&format!("[data-detail=\"{id}\"] input[name=\"groups\"]"), T)
            .await;
        input.send_keys("lights").await.unwrap();
        click(
            &browser,
            &format!("[data-detail=\"{id}\"] [data-action=\"set-groups\"]"),
        )
        .await;
        browser
            .until(
                &format!("{id} in group lights"),
                &format!(
                    "const d = document.querySelector('[data-detail=\"{id}\"] [data-groups]'); return d && d.textContent.includes('lights');"
                ),
                T,
            )
            .await;
    }
    browser
        .until(
            "all nine in group lights (the GroupTopic and the Zigbee group learned)",
            "const o = [...document.querySelectorAll('select[name=\"group\"] option')].find(o => o.value === 'lights'); return o && o.textContent.includes('(9 devices)');",
            T,
        )
        .await;
    browser
        .client
        .execute(
            "const s = document.querySelector('select[name=\"group\"]'); s.value = 'lights'; s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
    let url = broker.url.clone();
    let watch = tokio::spawn(async move {
        collect(
            &url,
            &["cmnd/+/POWER", "zigbee2mqtt/+/set", "cmd/group/+/req"],
            Duration::from_secs(5),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    click(&browser, "[data-action=\"fanout\"]").await;
    let counts = browser
        .until(
            "the group command complete",
            "const f = document.querySelector('[data-fanout]'); return f && f.dataset.complete === 'true' ? [f.dataset.expected, f.dataset.succeeded, f.dataset.contradicted] : null;",
            T,
        )
        .await;
    assert_eq!(
        counts,
        serde_json::json!(["9", "8", "1"]),
        "every member but the stuck bulb confirmed; the stuck bulb contradicted"
    );
    for id in ids.iter().filter(|id| id.as_str() != "zl2") {
        assert_eq!(
            card_value(&browser, id, "data-light").await,
            "on",
            "{id} confirmed on"
        );
    }
    assert_eq!(
        card_value(&browser, "zl2", "data-light").await,
        "off",
        "the optimistic echo did not light the stuck bulb"
    );
    browser
        .until(
            "the history row says one was contradicted",
            "return [...document.querySelectorAll('tr[data-tid]')].some(r => r.dataset.phase.includes('9 of 9') && r.dataset.phase.includes('1 contradicted'));",
            T,
        )
        .await;
    // One publish per family group, not per member; a retransmission never goes to the group.
    let sent: Vec<String> = watch
        .await
        .unwrap()
        .into_iter()
        .map(|(_, t, _)| t)
        .collect();
    let times = |topic: &str| sent.iter().filter(|t| t.as_str() == topic).count();
    assert_eq!(times("cmnd/lights/POWER"), 1, "the GroupTopic: {sent:?}");
    assert_eq!(
        times("zigbee2mqtt/lights/set"),
        1,
        "the Zigbee group: {sent:?}"
    );
    assert_eq!(
        times("cmd/group/lights/req"),
        1,
        "Switchboard's group: {sent:?}"
    );
    // A member's own topic is used only to retransmit to it as a straggler (a slow machine),
    // after the group's own topic carried the command.
    let first = |topic: &str| sent.iter().position(|t| t.as_str() == topic);
    for (member, carrier) in [
        ("cmnd/tl1/POWER", "cmnd/lights/POWER"),
        ("cmnd/tl2/POWER", "cmnd/lights/POWER"),
        ("zigbee2mqtt/zl1/set", "zigbee2mqtt/lights/set"),
    ] {
        assert!(
            first(member).is_none_or(|m| first(carrier).is_some_and(|c| c < m)),
            "{member} is carried by {carrier} first: {sent:?}"
        );
    }
    browser.screenshot("families-mixed-group").await;
    browser.close().await;
    fleet.stop(T).await;
}

/// A relay that does not switch ends contradicted, with what it reports; a device whose Last
/// Will says it is gone ends timed out, offline, when the confirmation window closes (before the
/// command's deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_relay_ends_contradicted_and_a_gone_one_timed_out_offline() {
    let broker = Broker::start(Kind::Mosquitto).await;
    // Its discovery config stays retained, and its LWT says Offline.
    let gone = start_fleet(
        vec![family_spec(Family::Tasmota, "gone1")],
        fleet_options(&broker.url, None),
    )
    .await;
    // The broker holds its announcements before it goes (a loaded machine may be slow to send).
    let until = std::time::Instant::now() + T;
    while collect(
        &broker.url,
        &["tasmota/discovery/+/config"],
        Duration::from_millis(300),
    )
    .await
    .is_empty()
    {
        assert!(std::time::Instant::now() < until, "gone1 announced itself");
    }
    gone.stop(T).await;
    let fleet = start_fleet(
        vec![DeviceSpec {
            faults: Faults::parse("stuck=1").unwrap(),
            ..family_spec(Family::Tasmota, "stuck1")
        }],
        fleet_options(&broker.url, None),
    )
    .await;
    let browser = open_panel_online(&broker).await;
    cards(&browser, &["gone1".to_owned(), "stuck1".to_owned()]).await;
    browser
        .until(
            "gone1 drawn offline",
            "const c = document.querySelector('[data-device=\"gone1\"]'); return c && c.dataset.presence === 'offline';",
            T,
        )
        .await;
    for id in ["stuck1", "gone1"] {
        click(
            &browser,
            &format!("[data-device=\"{id}\"] [data-action=\"light\"]"),
        )
        .await;
    }
    let phases = browser
        .until(
            "both commands ended",
            "const rows = [...document.querySelectorAll('tr[data-tid]')].map(r => r.dataset.phase); return rows.length === 2 && rows.every(p => !p.includes('pending') && (p.startsWith('contradicted') || p.startsWith('timed out'))) ? rows : null;",
            Duration::from_secs(12),
        )
        .await;
    let phases = phases.to_string();
    assert!(
        phases.contains("contradicted (the device reports off)"),
        "{phases}"
    );
    assert!(phases.contains("timed out (device offline)"), "{phases}");
    for id in ["stuck1", "gone1"] {
        assert_eq!(card_value(&browser, id, "data-light").await, "off", "{id}");
    }
    browser.close().await;
    fleet.stop(T).await;
}

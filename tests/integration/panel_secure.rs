//! The panel as it is deployed for real: over `wss://` to mosquitto with a password file and the
//! shipped ACL, its devices each logged in as themselves. The test's throwaway CA is trusted by the
//! test browser only (by its key hash); a second browser that does not trust it is told so.

use std::time::Duration;

use device_sim::faults::Faults;
use fantoccini::Locator;

use crate::panel::{card_value, turn_on_and_confirm};
use crate::support::broker::{Access, Broker};
use crate::support::browser::{dist, Browser, StaticServer};
use crate::support::certs::TestPki;
use crate::support::{fleet_options, specs, start_fleet};

const T: Duration = Duration::from_secs(20);

const USERS: &[(&str, &str)] = &[
    ("operator", "operator-pw"),
    ("device1", "device1-pw"),
    ("device2", "device2-pw"),
];

/// A JavaScript expression: the badge's state and its error line, as `state|error`.
const BADGE: &str = "(() => { const b = document.querySelector('[data-conn]'); const e = document.querySelector('.conn-error'); return b ? b.dataset.conn + '|' + (e ? e.textContent : '') : ''; })()";

async fn badge(browser: &Browser) -> String {
    let v = browser
        .client
        .execute(&format!("return {BADGE};"), vec![])
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_owned()
}

/// Types `password` into the connect form and submits it.
async fn log_in_with(browser: &Browser, password: &str) {
    let field = browser.find("input[name=\"password\"]", T).await;
    field.clear().await.unwrap();
    field.send_keys(password).await.unwrap();
    browser
        .client
        .find(Locator::Css("form button[type=\"submit\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The CONNECTs mosquitto refused so far: its CONNACKs (logged at debug level) with a code other
/// than 0.
fn refused_logins(broker: &Broker) -> usize {
    broker
        .log()
        .lines()
        .filter(|l| l.contains("Sending CONNACK") && !l.trim_end().ends_with(", 0)"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_logs_in_over_wss_and_commands_devices_under_the_acl() {
    let pki = TestPki::generate();
    let acl = include_str!("../../docs/security/mosquitto.acl");
    let (mut broker, urls) = Broker::start_secured(&Access {
        users: USERS,
        acl: Some(acl),
        wss: Some(&pki),
    })
    .await;
    let wss = urls.wss.clone().unwrap();
    let mut opts = fleet_options(&urls.tcp, None);
    opts.endpoint.username = Some("{device}".into());
    opts.endpoint.password = Some("{device}-pw".into());
    let fleet = start_fleet(specs("device", 2, &[], &Faults::default()), opts).await;

    // Served as `cargo xtask dist` says, under the strict policy with the broker filled in.
    let policy = include_str!("../../docs/security/content-security-policy")
        .trim()
        .replace("BROKER", wss.trim_end_matches("/mqtt"));
    let server = StaticServer::start_with_policy(dist(), &policy);
    let browser = Browser::start_with(&[pki.chromium_trust_flag()]).await;
    let page = format!("{}/?broker={wss}&username=operator", server.url);
    browser.client.goto(&page).await.unwrap();

    // No password yet: refused, said in the badge, and not tried again by itself.
    let refused = browser
        .until(
            "the login refused",
            &format!("return {BADGE}.startsWith('offline|the broker refused') ? 'yes' : '';"),
            T,
        )
        .await;
    assert_eq!(refused, "yes");
    let said = badge(&browser).await;
    assert!(
        said.contains("bad user name or password") || said.contains("not authori"),
        "{said}"
    );
    let tries = refused_logins(&broker);
    assert!(
        tries >= 1,
        "mosquitto saw the refused login: {}",
        broker.log()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(badge(&browser).await.starts_with("offline|"));
    assert_eq!(
        refused_logins(&broker),
        tries,
        "no retry with refused credentials until the operator changes them"
    );
    browser.screenshot("secure-refused").await;

    // A wrong password: refused again, once.
    log_in_with(&browser, "not-the-password").await;
    for _ in 0..100 {
        if refused_logins(&broker) > tries {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused_logins(&broker), tries + 1);
    assert!(badge(&browser)
        .await
        .starts_with("offline|the broker refused"));

    // The right one: online over wss, devices discovered, a command confirmed.
    log_in_with(&browser, "operator-pw").await;
    browser
        .until(
            "the panel online over wss",
            "const b = document.querySelector('[data-conn]'); return b && b.dataset.conn === 'online';",
            T,
        )
        .await;
    browser
        .until(
            "device1 discovered online",
            "const c = document.querySelector('[data-device=\"device1\"]'); return c && c.dataset.presence === 'online';",
            T,
        )
        .await;
    turn_on_and_confirm(&browser, "device1").await;
    assert_eq!(card_value(&browser, "device2", "data-light").await, "off");
    browser.screenshot("secure-online").await;

    // The broker goes away: the panel says the connection was cut (in the badge while it waits,
    // and under Notices) and comes back by itself, still logged in.
    broker.restart(Duration::from_secs(2)).await;
    browser
        .until(
            "the cut connection listed under Notices",
            "const n = document.querySelector('#notices'); const s = n ? n.textContent : ''; return s.includes('disconnected: the connection to the broker was cut') || s.includes('disconnected: the broker closed the connection') ? s : '';",
            T,
        )
        .await;
    browser
        .until(
            "the panel online again",
            "const b = document.querySelector('[data-conn]'); return b && b.dataset.conn === 'online';",
            Duration::from_secs(40),
        )
        .await;

    // A browser that does not trust the broker's certificate is told what to check.
    let untrusting = Browser::start().await;
    untrusting.client.goto(&page).await.unwrap();
    let said = untrusting
        .until(
            "the untrusted certificate reported",
            &format!("const s = {BADGE}; return s.includes('trust its certificate') ? s : '';"),
            T,
        )
        .await;
    untrusting.screenshot("secure-untrusted").await;
    assert!(!said.as_str().unwrap().starts_with("online"), "{said}");
    untrusting.close().await;
    browser.close().await;
    assert_eq!(
        server.csp_reports(),
        Vec::<String>::new(),
        "the panel ran under {policy} with no violation"
    );
    fleet.stop(Duration::from_secs(5)).await;
}

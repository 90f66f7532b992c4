//! Switchboard with the pattern document's own device (`client.py`) and application
//! (`application.py`), both ways, over mosquitto with mutual TLS on port 443 where their SDK
//! connects. The programs run as published; only their global variables are replaced (see
//! `support::reference`). Each test saves the round trips it measured in
//! `tests/artifacts/round-trips-<test>.txt`.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use switchboard_protocol::Command;

use crate::panel::{card_attr, card_value, click, open_panel_online};
use crate::support::reference::{
    configure, document, only_globals_differ, programs, Reference, RoundTrips, Setup, GLOBALS,
};
use crate::support::{dev, send_command, simulator_binary, spawn_simulator_with, to, wait_online};

const T: Duration = Duration::from_secs(20);

/// What `application.py` prints for `answer` on device1's response topic (it prints the bytes).
fn application_saw(answer: &str) -> String {
    format!("Received command response on topic 'cmd/device1/resp' with payload: b\"{answer}\"")
}

/// Types `command` into `application.py` and waits for `answer`; returns the round trip as the
/// program sees it, from its "Publishing command" line to its "Received command response" line.
async fn command_and_answer(app: &mut Reference, command: &str, answer: &str) -> Duration {
    app.type_line(command).await;
    let published = app
        .expect_line(
            &format!("Publishing command to topic 'cmd/device1/req': {command}"),
            T,
        )
        .await;
    app.expect_line(&application_saw(answer), T).await - published
}

/// What `client.py` prints when `command` arrives.
fn client_got(command: &str) -> String {
    format!("Received command from topic 'cmd/device1/req': b'{command}'")
}

fn success(command: &str) -> String {
    format!("SUCCESS: command ran successfully from payload: b'{command}'")
}

fn failure(command: &str) -> String {
    format!("FAILURE: command did not run successfully from payload: b'{command}'")
}

/// The fixture takes the programs from the document as they are, and would notice if anything
/// but their globals changed.
#[test]
fn the_reference_programs_come_from_the_document_with_only_their_globals_replaced() {
    let (client, application) = programs(&document());
    for program in [&client, &application] {
        let configured = configure(program, ["id", "host", "c.pem", "k.pem", "ca.pem"]);
        let changed = program
            .lines()
            .zip(configured.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, GLOBALS.len(), "each global replaced, nothing else");
        assert!(configured.contains("\nendpoint = \"host\"\n"));
        assert!(configured.contains("\nclient_id = \"id\"\n"));
        // The check refuses any other change: a command handler that fails, a topic, a line more.
        let tampered = configured.replace("QoS.AT_LEAST_ONCE", "QoS.AT_MOST_ONCE");
        let err = only_globals_differ(program, &tampered).unwrap_err();
        assert!(err.contains("AT_MOST_ONCE"), "{err}");
        let topic = configured.replace("cmd/{target_device}/req", "cmd/{target_device}/x");
        let topic = topic.replace("cmd/device1/req", "cmd/device1/x");
        assert!(only_globals_differ(program, &topic).is_err());
        let longer = format!("{configured}print('more')\n");
        assert!(only_globals_differ(program, &longer).is_err());
    }
    assert!(client.contains("clean_session=False") && client.contains("keep_alive_secs=6"));
    assert!(application.contains("input(f\"Enter command to send to {target_device}: \")"));
}

/// The control: the reference application drives the reference device, so that a red run in the
/// other tests says which side broke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_application_drives_the_reference_device() {
    let mut rtt = RoundTrips::new("reference-pair");
    let setup = Setup::start().await;
    let mut client = setup.client_py().await;
    let mut app = setup.application_py().await;

    for command in ["light: on", "light: off", "restart"] {
        let took = command_and_answer(&mut app, command, &success(command)).await;
        rtt.record(command, took);
        assert_eq!(client.count(&client_got(command)), 0, "not read yet");
        client.expect_line(&client_got(command), T).await;
    }
    app.interrupt().await;
    client.interrupt().await;
}

/// Direction 1: `application.py` drives the simulator's device1, which connects with a client
/// certificate of its own, executes the text commands for real and answers in the document's
/// text form; a text command cut off mid-way is reported after the device comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_application_drives_the_simulator() {
    let mut rtt = RoundTrips::new("application-to-simulator");
    let setup = Setup::start().await;
    let state = tempfile::tempdir().unwrap();
    let (cert, key) = setup.certificate("device1");
    let tls: [&OsStr; 6] = [
        "--ca".as_ref(),
        setup.pki.ca.as_os_str(),
        "--cert".as_ref(),
        cert.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ];
    let simulator =
        |faults: &str| spawn_simulator_with(&setup.mtls_url, state.path(), "device", faults, &tls);
    let url = setup.broker.url.clone();
    let get_state = || async {
        let t = send_command(&url, to("device1"), Command::GetState, T).await;
        let member = &t.members[&dev("device1")];
        member.response.as_ref().unwrap().state.clone().unwrap()
    };

    let mut sim = simulator("");
    wait_online(&setup.broker.url, "device1").await;
    let mut app = setup.application_py().await;

    let boots = get_state().await.boots;
    for (command, light) in [("light: on", true), ("light: off", false)] {
        let took = command_and_answer(&mut app, command, &success(command)).await;
        rtt.record(command, took);
        assert_eq!(get_state().await.light, light, "after {command}");
    }

    // A restart really restarts: the device reconnects and counts one more boot.
    let took = command_and_answer(&mut app, "restart", &success("restart")).await;
    rtt.record("restart", took);
    let until = Instant::now() + T;
    while get_state().await.boots != boots + 1 {
        assert!(
            Instant::now() < until,
            "device1 never came back from restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // It left only once the broker had its answer, so the answer is not sent again after it.
    app.settle(Duration::from_millis(500)).await;
    assert_eq!(app.count(&application_saw(&success("restart"))), 1);

    // What the device cannot do is a failure, in the document's words.
    let took = command_and_answer(&mut app, "make coffee", &failure("make coffee")).await;
    rtt.record("make coffee (unknown: FAILURE)", took);

    // A text command cut off mid-way (the simulator killed while device1 takes 10 s to act) is
    // reported as a failure once device1 is back, and not executed behind anyone's back.
    sim.kill();
    let mut sim_slow = simulator("slow-ms=10000");
    wait_online(&setup.broker.url, "device1").await;
    app.type_line("light: on").await;
    app.expect_line(
        "Publishing command to topic 'cmd/device1/req': light: on",
        T,
    )
    .await;
    // It arrives and is journaled within milliseconds; give it plenty.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim_slow.kill();
    let _sim = simulator("");
    app.expect_line(&application_saw(&failure("light: on")), T)
        .await;
    app.settle(Duration::from_secs(2)).await;
    assert_eq!(
        app.count(&application_saw(&success("light: on"))),
        1,
        "only the first light: on succeeded"
    );
    assert!(
        !get_state().await.light,
        "the cut-off light: on did not run"
    );
    app.interrupt().await;
}

/// Direction 2, from the command line: `device-sim send --text` drives `client.py` (over mutual
/// TLS, and over plain TCP), and a text command to a device that is gone times out without a
/// retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_drives_the_reference_device() {
    let mut rtt = RoundTrips::new("sender-to-reference-device");
    let setup = Setup::start().await;
    let mut client = setup.client_py().await;
    let (cert, key) = setup.certificate("operator");

    let send = |url: &str, tls: bool, text: &str, timeout: &str| {
        let mut cmd = std::process::Command::new(simulator_binary());
        cmd.args(["send", "--broker", url]);
        if tls {
            cmd.arg("--ca").arg(&setup.pki.ca);
            cmd.arg("--cert").arg(&cert).arg("--key").arg(&key);
        }
        cmd.args([
            "--text",
            "device1",
            text,
            "--wait",
            "--timeout-secs",
            timeout,
        ]);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    for (url, tls, command) in [
        (setup.mtls_url.as_str(), true, "light: on"),
        (setup.broker.url.as_str(), false, "light: off"),
    ] {
        let (ok, out, err) = send(url, tls, command, "10");
        assert!(ok, "send {command}: {out}{err}");
        // device1	succeeded	<n> ms	"SUCCESS: ..."
        let fields: Vec<&str> = out.trim_end().split('\t').collect();
        assert_eq!(fields[..2], ["device1", "succeeded"], "{out}");
        assert_eq!(fields[3], format!("{:?}", success(command)), "{out}");
        let ms: f64 = fields[2].trim_end_matches(" ms").parse().unwrap();
        let over = if tls { "mutual TLS" } else { "TCP" };
        rtt.record(
            &format!("{command} over {over}"),
            Duration::from_secs_f64(ms / 1e3),
        );
        client.expect_line(&client_got(command), T).await;
    }

    // The device goes away: a text command times out with the usual connectivity report, and
    // is never retransmitted (a device without TIDs cannot tell a retry from a new command).
    client.interrupt().await;
    let (ok, out, _) = send(&setup.broker.url, false, "restart", "3");
    assert!(!ok, "no answer is a failure: {out}");
    assert!(out.contains("timed out"), "{out}");
    assert!(out.contains("no answer by the deadline"), "{out}");
    // Nor is it carried out late: the command expired at the broker with its deadline, so the
    // device, back with its persistent session, never gets it. (The broker counts expiry in whole
    // seconds: give it two more.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut client = setup.client_py().await;
    client.settle(Duration::from_secs(2)).await;
    assert_eq!(
        client.count("Received command"),
        0,
        "expired, not delivered late"
    );
    client.interrupt().await;
}

/// Direction 2, from the panel: device1 (`client.py`) announces nothing, so the operator adds it
/// by id, sees its presence unknown, and presses the document's "light: on": the light is drawn
/// on once the device's text answer confirms it. Two text commands answered in turn are matched
/// to the oldest, and the panel says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_drives_the_reference_device() {
    let mut rtt = RoundTrips::new("panel-to-reference-device");
    let setup = Setup::start().await;
    let mut client = setup.client_py().await;
    let browser = open_panel_online(&setup.broker).await;

    let input = browser.find("input[name=device_id]", T).await;
    input.send_keys("device1").await.unwrap();
    click(&browser, "[data-action=add-device]").await;
    browser
        .until(
            "device1 listed with its presence unknown",
            &format!(
                "return {}",
                js_eq(&card_attr("device1", "data-presence"), "presence unknown")
            ),
            T,
        )
        .await;
    assert_eq!(card_value(&browser, "device1", "data-light").await, "off");

    click(&browser, "[data-text=\"light: on\"]").await;
    browser
        .until(
            "device1 confirmed on",
            "const c = document.querySelector('[data-device=\"device1\"]'); return c.dataset.pending === 'false' && c.dataset.light === 'on';",
            T,
        )
        .await;
    browser
        .until(
            "the details say where the light state comes from",
            "return document.body.textContent.includes('light on (confirmed by its answer; it reports no state)');",
            T,
        )
        .await;
    let row = browser
        .until(
            "the text command succeeded in the history",
            "const r = document.querySelector('tr[data-tid]'); return r && r.dataset.phase === 'succeeded' ? r.textContent : '';",
            T,
        )
        .await;
    let row = row.as_str().unwrap().to_owned();
    assert!(row.contains(&success("light: on")), "{row}");
    rtt.record(
        "light: on (panel's own round trip)",
        panel_round_trip(&browser, 0).await,
    );
    client.expect_line(&client_got("light: on"), T).await;
    browser.screenshot("reference-device").await;

    // Two text commands in one go: both are out before the first answer comes back.
    browser
        .client
        .execute(
            "document.querySelector('[data-text=\"light: off\"]').click(); \
             document.querySelector('[data-text=\"light: on\"]').click();",
            vec![],
        )
        .await
        .unwrap();
    browser
        .until(
            "both answered",
            "const r = [...document.querySelectorAll('tr[data-tid]')]; return r.length === 3 && r.every(x => x.dataset.phase === 'succeeded');",
            T,
        )
        .await;
    browser
        .until(
            "the panel says the first answer was matched while two were outstanding",
            "return [...document.querySelectorAll('#notices li')].some(n => n.textContent.includes('2 text commands outstanding: matched to the oldest'));",
            T,
        )
        .await;
    let light = card_value(&browser, "device1", "data-light").await;
    assert_eq!(light, "on", "light: off then light: on, confirmed in turn");
    client.settle(Duration::from_millis(500)).await;
    assert_eq!(client.count(&client_got("light: off")), 1);
    assert_eq!(client.count(&client_got("light: on")), 2);
    browser.screenshot("reference-device-ambiguous").await;
    browser.close().await;
    client.interrupt().await;
}

/// JavaScript: whether the value `js` returns equals `value`.
fn js_eq(js: &str, value: &str) -> String {
    format!("(() => {{ {js} }})() === '{value}'")
}

/// The round trip the panel shows for history row `index` (newest first).
async fn panel_round_trip(browser: &crate::support::browser::Browser, index: usize) -> Duration {
    let text = browser
        .client
        .execute(
            &format!(
                "return document.querySelectorAll('tr[data-tid]')[{index}].cells[5].textContent;"
            ),
            vec![],
        )
        .await
        .unwrap();
    let ms: f64 = text
        .as_str()
        .unwrap()
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    Duration::from_secs_f64(ms / 1e3)
}

//! The workspace links the protocol core, and its public API answers as documented.

#[test]
fn workspace_links_protocol() {
    assert_eq!(
        switchboard_protocol::topic::request(&"device1".parse().unwrap()),
        "cmd/device1/req"
    );
}

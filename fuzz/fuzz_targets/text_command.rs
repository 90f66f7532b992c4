//! The pattern document's text commands: any string parses or is refused, never panics; what
//! parses names a command the JSON form also takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::Command;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = Command::parse_text(&text) {
        let again = Command::from_parts(c.name(), &c.args()).expect("its JSON form parses");
        assert_eq!(again, c);
    }
});

//! Every envelope decoder on the same bytes: request, response, status, telemetry, log, and the
//! TID salvage of a malformed request. None may panic; what decodes must encode and decode again
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::envelope::{
    decode_log, decode_request, decode_response, decode_status, decode_telemetry, readable_tid,
    IncomingRequest, IncomingResponse,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(IncomingRequest::Envelope(r)) = decode_request(data) {
        let again = decode_request(&r.encode()).expect("an encoded request decodes");
        assert_eq!(again, IncomingRequest::Envelope(r));
    }
    if let Ok(IncomingResponse::Envelope(r)) = decode_response(data) {
        let again = decode_response(&r.encode()).expect("an encoded response decodes");
        assert_eq!(again, IncomingResponse::Envelope(r));
    }
    if let Ok(Some(s)) = decode_status(data) {
        assert_eq!(decode_status(&s.encode()).expect("re-decodes"), Some(s));
    }
    let _ = decode_telemetry(data);
    let _ = decode_log(data);
    let _ = readable_tid(data);
});

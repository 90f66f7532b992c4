//! The pattern document's text form: a bare command (`light: on`) and its answer,
//! `SUCCESS: command ran successfully from payload: b'light: on'` or `FAILURE: ...`, the payload
//! printed as Python prints a `bytes` object. A text answer carries no TID.

/// A parsed text answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextResponse {
    /// `true` for `SUCCESS:`.
    pub success: bool,
    /// The whole text.
    pub text: String,
}

pub(super) const TEXT_SUCCESS: &str = "SUCCESS:";
pub(super) const TEXT_FAILURE: &str = "FAILURE:";

/// The pattern document's text answer for a text command `payload`.
pub fn text_response(success: bool, payload: &[u8]) -> String {
    let repr = python_bytes_repr(payload);
    if success {
        format!("{TEXT_SUCCESS} command ran successfully from payload: {repr}")
    } else {
        format!("{TEXT_FAILURE} command did not run successfully from payload: {repr}")
    }
}

/// The text form's `FAILURE: ...` for a command that was never read: a message of `size` bytes
/// that the device's connection passed over, being larger than its `max`.
pub fn text_dropped(size: usize, max: u32) -> String {
    format!(
        "{TEXT_FAILURE} command did not run: a message of {size} bytes was dropped unread (at \
         most {max} bytes are taken)"
    )
}

/// `repr(bytes)` as CPython prints it: `b'light: on'`.
///
/// Single quotes unless the bytes hold a `'` and no `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped;
/// other bytes outside printable ASCII as `\xNN`.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

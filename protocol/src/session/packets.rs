//! What the bytes a session writes hold, read from the MQTT fixed headers alone: enough for a
//! driver to tell acknowledgements (which may wait a moment and leave together) from everything
//! else (which leaves at once).

/// MQTT control packet type of PUBACK (the acknowledgement of a QoS 1 PUBLISH).
const PUBACK: u8 = 4;

/// Whether `bytes` hold one or more whole packets, every one a PUBACK. Anything else (another
/// packet type, a truncated or malformed header, nothing at all) is `false`.
pub fn only_acknowledgements(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    if rest.is_empty() {
        return false;
    }
    while let Some((&first, tail)) = rest.split_first() {
        if first >> 4 != PUBACK {
            return false;
        }
        let Some((len, header)) = remaining_length(tail) else {
            return false;
        };
        let Some(next) = tail.get(header + len..) else {
            return false;
        };
        rest = next;
    }
    true
}

/// The remaining length (a variable byte integer, at most four bytes) and how many bytes it took.
fn remaining_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::only_acknowledgements;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn acknowledgements_are_told_from_everything_else() {
        let v3_puback = [0x40, 0x02, 0x00, 0x07];
        let v5_puback = [0x40, 0x03, 0x00, 0x08, 0x00];
        let pingreq = [0xc0, 0x00];
        let publish = [0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'x'];
        assert!(only_acknowledgements(&v3_puback));
        assert!(only_acknowledgements(&[v3_puback, v3_puback].concat()));
        assert!(only_acknowledgements(
            &[&v3_puback[..], &v5_puback].concat()
        ));
        assert!(!only_acknowledgements(&pingreq));
        assert!(!only_acknowledgements(&publish));
        assert!(!only_acknowledgements(&[&v3_puback[..], &pingreq].concat()));
        assert!(!only_acknowledgements(&[]));
        assert!(!only_acknowledgements(&v3_puback[..3]), "truncated");
        assert!(
            !only_acknowledgements(&[0x40, 0xff, 0xff, 0xff, 0xff]),
            "bad length"
        );
    }
}

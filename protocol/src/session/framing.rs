//! The broker's byte stream cut at packet boundaries, read from the fixed headers alone, so that
//! a PUBLISH too large to take can be passed over instead of ending the connection.
//!
//! An MQTT 5 client tells the broker its Maximum Packet Size, and the broker drops what is
//! larger. An MQTT 3.1.1 client cannot: the broker delivers a message of any size, and a client
//! that closes the connection over it gets it again on its persistent session, forever. So on
//! 3.1.1 a PUBLISH larger than the maximum (QoS 0 or 1) is skipped as it streams in, without
//! being buffered: only its topic and packet id are kept, to acknowledge it and to say what was
//! dropped. Everything else goes on to the protocol engine untouched, in slices of the input.

use std::borrow::Cow;

/// MQTT control packet type of PUBLISH.
const PUBLISH: u8 = 3;

/// Packet types whose variable header starts with a packet id: PUBACK, PUBREC, PUBREL,
/// PUBCOMP, SUBACK, UNSUBACK.
const ID_FIRST: [u8; 6] = [4, 5, 6, 7, 9, 11];

/// A PUBLISH that was passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Skipped {
    /// Its topic, as far as it could be read (lossily decoded).
    pub topic: String,
    /// Its packet id, for a QoS 1 message (which must be acknowledged).
    pub packet_id: Option<u16>,
    /// Its whole size in bytes.
    pub size: usize,
}

/// A piece of the input.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Bytes for the protocol engine.
    Bytes(Cow<'a, [u8]>),
    /// A packet the engine must not see: the connection is to end with this error. (The MQTT
    /// engine panics on a packet id of 0, which the protocol forbids; nothing follows.)
    Malformed(&'static str),
    /// A PUBLISH passed over, now wholly received.
    Skipped(Skipped),
}

#[derive(Debug)]
enum State {
    /// Reading a fixed header; the bytes of it that came in earlier input.
    Header { stash: Vec<u8> },
    /// A packet's body going on to the engine: bytes still to come, and its packet id still to
    /// be checked.
    Body {
        remaining: usize,
        id: Option<IdCheck>,
    },
    /// Passing over a PUBLISH too large.
    Skipping {
        qos: u8,
        size: usize,
        remaining: usize,
        /// The start of its variable header, kept until topic and packet id can be read.
        head: Vec<u8>,
    },
    /// A fixed header the engine will refuse: everything goes to it from here on.
    Opaque,
    /// A packet broke the protocol in a way the engine must not see: nothing goes on.
    Broken,
}

/// Finds a packet's id in its body as the bytes go by, without holding them.
#[derive(Debug)]
struct IdCheck {
    /// Body bytes already gone by.
    offset: usize,
    /// Where the id starts, once known (a PUBLISH's id follows its topic).
    at: Option<usize>,
    /// The topic length's first byte, for a PUBLISH.
    topic_hi: u8,
    /// The id's first byte.
    id_hi: u8,
}

impl IdCheck {
    fn for_packet(first: u8) -> Option<Self> {
        let kind = first >> 4;
        let qos = (first >> 1) & 0b11;
        let at = if ID_FIRST.contains(&kind) {
            Some(0)
        } else if kind == PUBLISH && qos > 0 {
            None
        } else {
            return None;
        };
        Some(IdCheck {
            offset: 0,
            at,
            topic_hi: 0,
            id_hi: 0,
        })
    }

    /// Looks at the next body bytes; `Some(i)` when the id is 0 and `chunk[i]` its last byte.
    /// `Ok(true)` once the id is known to be fine.
    fn scan(&mut self, chunk: &[u8]) -> Result<bool, usize> {
        let start = self.offset;
        self.offset += chunk.len();
        let byte = |o: usize| o.checked_sub(start).and_then(|i| chunk.get(i)).copied();
        if self.at.is_none() {
            if let Some(b) = byte(0) {
                self.topic_hi = b;
            }
            if let Some(lo) = byte(1) {
                self.at = Some(2 + usize::from(u16::from_be_bytes([self.topic_hi, lo])));
            }
        }
        let Some(at) = self.at else {
            return Ok(false);
        };
        if let Some(b) = byte(at) {
            self.id_hi = b;
        }
        match byte(at + 1) {
            Some(lo) if self.id_hi == 0 && lo == 0 => Err(at + 1 - start),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }
}

/// Cuts the broker's stream at packet boundaries: see the [module documentation](self).
#[derive(Debug)]
pub(super) struct Framer {
    /// The largest packet taken, in bytes.
    max: usize,
    /// Whether a PUBLISH larger than `max` is passed over (MQTT 3.1.1) or left to the engine,
    /// which refuses it (MQTT 5, where the broker must never send one).
    skip_oversized: bool,
    state: State,
}

impl Framer {
    pub(super) fn new(max: u32, skip_oversized: bool) -> Self {
        Framer {
            max: usize::try_from(max).unwrap_or(usize::MAX),
            skip_oversized,
            state: State::Header { stash: Vec::new() },
        }
    }

    /// The pieces `data` holds, in order. Bytes of a fixed header cut by the end of `data` wait
    /// for the next call.
    pub(super) fn split<'a>(&mut self, data: &'a [u8]) -> Vec<Piece<'a>> {
        let mut out = Vec::new();
        // `data[run..i]` is going on to the engine and not yet in `out`.
        let mut run = 0;
        let mut i = 0;
        while i < data.len() {
            match &mut self.state {
                State::Opaque => i = data.len(),
                State::Broken => {
                    i = data.len();
                    run = i;
                }
                State::Body { remaining, id } => {
                    let take = (*remaining).min(data.len() - i);
                    if let Some(check) = id {
                        match check.scan(data.get(i..i + take).unwrap_or_default()) {
                            Ok(true) => *id = None,
                            Ok(false) => {}
                            Err(last) => {
                                // Everything before the id's last byte may go; the packet
                                // never completes.
                                push(&mut out, data, run, i + last);
                                out.push(Piece::Malformed(
                                    "the broker sent a packet with packet id 0",
                                ));
                                self.state = State::Broken;
                                i = data.len();
                                run = i;
                                continue;
                            }
                        }
                    }
                    i += take;
                    *remaining -= take;
                    if *remaining == 0 {
                        self.state = State::Header { stash: Vec::new() };
                    }
                }
                State::Skipping {
                    qos,
                    size,
                    remaining,
                    head,
                } => {
                    let take = (*remaining).min(data.len() - i);
                    let mut chunk = data.get(i..i + take).unwrap_or_default();
                    loop {
                        let wanted = head_len(head, *qos).saturating_sub(head.len());
                        if wanted == 0 || chunk.is_empty() {
                            break;
                        }
                        let (kept, rest) = chunk.split_at(wanted.min(chunk.len()));
                        head.extend_from_slice(kept);
                        chunk = rest;
                    }
                    i += take;
                    run = i;
                    *remaining -= take;
                    if *remaining == 0 {
                        let skipped = read_skipped(head, *qos, *size);
                        out.push(Piece::Skipped(skipped));
                        self.state = State::Header { stash: Vec::new() };
                    }
                }
                State::Header { stash } => {
                    let rest = data.get(i..).unwrap_or_default();
                    match fixed_header(stash, rest) {
                        Header::Incomplete => {
                            push(&mut out, data, run, i);
                            stash.extend_from_slice(rest);
                            i = data.len();
                            run = i;
                        }
                        Header::Invalid => {
                            push(&mut out, data, run, i);
                            if !stash.is_empty() {
                                out.push(Piece::Bytes(Cow::Owned(core::mem::take(stash))));
                            }
                            run = i;
                            self.state = State::Opaque;
                        }
                        Header::Complete {
                            first,
                            remaining,
                            len,
                        } => {
                            let in_data = len - stash.len();
                            let size = len.saturating_add(remaining);
                            let qos = (first >> 1) & 0b11;
                            if self.skip_oversized
                                && first >> 4 == PUBLISH
                                && qos < 2
                                && size > self.max
                            {
                                push(&mut out, data, run, i);
                                i += in_data;
                                run = i;
                                self.state = State::Skipping {
                                    qos,
                                    size,
                                    remaining,
                                    head: Vec::new(),
                                };
                            } else {
                                if !stash.is_empty() {
                                    push(&mut out, data, run, i);
                                    out.push(Piece::Bytes(Cow::Owned(core::mem::take(stash))));
                                    run = i;
                                }
                                i += in_data;
                                self.state = if remaining == 0 {
                                    State::Header { stash: Vec::new() }
                                } else {
                                    State::Body {
                                        remaining,
                                        id: IdCheck::for_packet(first),
                                    }
                                };
                            }
                        }
                    }
                }
            }
        }
        push(&mut out, data, run, i);
        out
    }
}

/// Adds `data[from..to]` for the engine, if it holds anything.
fn push<'a>(out: &mut Vec<Piece<'a>>, data: &'a [u8], from: usize, to: usize) {
    if let Some(bytes) = data.get(from..to).filter(|b| !b.is_empty()) {
        out.push(Piece::Bytes(Cow::Borrowed(bytes)));
    }
}

enum Header {
    Incomplete,
    Invalid,
    Complete {
        first: u8,
        /// The remaining length.
        remaining: usize,
        /// The fixed header's own length.
        len: usize,
    },
}

/// Reads a fixed header from `stash` followed by `rest`.
fn fixed_header(stash: &[u8], rest: &[u8]) -> Header {
    let mut bytes = stash.iter().chain(rest).copied();
    let Some(first) = bytes.next() else {
        return Header::Incomplete;
    };
    let mut remaining = 0usize;
    for (i, b) in bytes.take(4).enumerate() {
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Header::Complete {
                first,
                remaining,
                len: i + 2,
            };
        }
    }
    if stash.len() + rest.len() >= 5 {
        Header::Invalid
    } else {
        Header::Incomplete
    }
}

/// How much of a PUBLISH's variable header tells its topic and packet id.
fn head_len(head: &[u8], qos: u8) -> usize {
    match head {
        [hi, lo, ..] => {
            2 + usize::from(u16::from_be_bytes([*hi, *lo])) + if qos > 0 { 2 } else { 0 }
        }
        _ => 2,
    }
}

fn read_skipped(head: &[u8], qos: u8, size: usize) -> Skipped {
    let topic_len = match head {
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => 0,
    };
    let topic = head.get(2..2 + topic_len).unwrap_or_default();
    let packet_id = match head.get(2 + topic_len..2 + topic_len + 2) {
        Some([hi, lo]) if qos > 0 => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    };
    Skipped {
        topic: String::from_utf8_lossy(topic).into_owned(),
        packet_id,
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A 3.1.1 PUBLISH at `qos` with packet id 7.
    fn publish(topic: &str, payload_len: usize, qos: u8) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&7u16.to_be_bytes());
        }
        body.extend(core::iter::repeat_n(b'x', payload_len));
        let mut packet = vec![0x30 | (qos << 1)];
        let mut len = body.len();
        loop {
            let byte = u8::try_from(len & 0x7f).unwrap();
            len >>= 7;
            packet.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        packet.extend(body);
        packet
    }

    /// What the engine would receive, and what was passed over, for `stream` cut into `chunk`s.
    fn run(framer: &mut Framer, stream: &[u8], chunk: usize) -> (Vec<u8>, Vec<Skipped>) {
        let (mut engine, mut skipped) = (Vec::new(), Vec::new());
        for piece in stream.chunks(chunk) {
            for p in framer.split(piece) {
                match p {
                    Piece::Bytes(b) => engine.extend_from_slice(&b),
                    Piece::Skipped(s) => skipped.push(s),
                    Piece::Malformed(e) => panic!("{e}"),
                }
            }
        }
        (engine, skipped)
    }

    #[test]
    fn an_oversized_publish_is_passed_over_and_the_rest_goes_on_whole() {
        let small = publish("cmd/d1/req", 10, 1);
        let big = publish("cmd/d1/req", 5_000, 1);
        let ping = [0xd0, 0x00];
        let stream = [&small[..], &big, &ping, &small].concat();
        for chunk in [1, 2, 3, 7, 100, 4_999, stream.len()] {
            let (engine, skipped) = run(&mut Framer::new(1_024, true), &stream, chunk);
            assert_eq!(
                engine,
                [&small[..], &ping, &small].concat(),
                "chunks of {chunk}"
            );
            assert_eq!(
                skipped,
                [Skipped {
                    topic: "cmd/d1/req".into(),
                    packet_id: Some(7),
                    size: big.len()
                }],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn without_skipping_or_at_qos_2_everything_goes_to_the_engine() {
        let big = publish("t", 5_000, 1);
        let (engine, skipped) = run(&mut Framer::new(1_024, false), &big, 100);
        assert_eq!((engine, skipped.len()), (big.clone(), 0));
        let big2 = publish("t", 5_000, 2);
        let (engine, skipped) = run(&mut Framer::new(1_024, true), &big2, 100);
        assert_eq!((engine, skipped.len()), (big2, 0));
    }

    #[test]
    fn a_packet_id_of_0_is_malformed_and_the_packet_never_reaches_the_engine() {
        let mut zero = publish("cmd/d1/resp", 4, 1);
        let at = 2 + 2 + "cmd/d1/resp".len();
        zero[at] = 0;
        zero[at + 1] = 0;
        let ok = publish("cmd/d1/resp", 4, 1);
        let puback0 = [0x40, 0x02, 0x00, 0x00];
        for stream in [[&ok[..], &zero].concat(), [&ok[..], &puback0].concat()] {
            for chunk in [1, 3, stream.len()] {
                let mut framer = Framer::new(1_024, true);
                let mut engine = Vec::new();
                let mut malformed = 0;
                for piece in stream.chunks(chunk) {
                    for p in framer.split(piece) {
                        match p {
                            Piece::Bytes(b) => engine.extend_from_slice(&b),
                            Piece::Malformed(_) => malformed += 1,
                            Piece::Skipped(_) => panic!(),
                        }
                    }
                }
                assert_eq!(malformed, 1, "chunks of {chunk}");
                assert!(engine.starts_with(&ok), "the good packet went on");
                assert!(engine.len() < stream.len(), "the bad one never completes");
            }
        }
        // A packet id of 7 is fine.
        let (engine, _) = run(&mut Framer::new(1_024, true), &ok, 2);
        assert_eq!(engine, ok);
    }

    #[test]
    fn a_qos_0_publish_has_no_packet_id_and_a_bad_header_goes_on_as_is() {
        let big = publish("a/b", 3_000, 0);
        let (_, skipped) = run(&mut Framer::new(1_024, true), &big, 64);
        assert_eq!(skipped[0].packet_id, None);
        assert_eq!(skipped[0].topic, "a/b");
        let bad = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02];
        let (engine, skipped) = run(&mut Framer::new(1_024, true), &bad, 2);
        assert_eq!((engine, skipped.len()), (bad.to_vec(), 0));
    }
}

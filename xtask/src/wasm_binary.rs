//! Just enough of the WebAssembly binary format to tell what a test binary will do under
//! `wasm-bindgen-test-runner`: how many tests it exports, and whether it asked for a browser.
//!
//! This matters because a test binary without `wasm_bindgen_test_configure!(run_in_browser)` does
//! not fail: the runner quietly runs it in Node instead, and the browser tests test nothing.

/// The export-name prefix `#[wasm_bindgen_test]` gives each test.
const TEST_PREFIX: &[u8] = b"__wbgt_";
/// The custom section `wasm_bindgen_test_configure!` writes; the byte 1 means "run in a browser".
const CONFIGURE_SECTION: &[u8] = b"__wasm_bindgen_test_unstable";
const RUN_IN_BROWSER: u8 = 0x01;

const CUSTOM_SECTION: u8 = 0;
const EXPORT_SECTION: u8 = 7;

/// What the runner will find in a test binary.
#[derive(Debug, PartialEq, Eq)]
pub struct TestBinary {
    /// `#[wasm_bindgen_test]` functions.
    pub tests: usize,
    /// Whether `wasm_bindgen_test_configure!(run_in_browser)` was given.
    pub runs_in_browser: bool,
}

/// Reads the sections of a wasm module; `Err` says where the bytes stop making sense.
pub fn inspect(bytes: &[u8]) -> Result<TestBinary, String> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(8)? != b"\0asm\x01\0\0\0" {
        return Err(String::from("not a WebAssembly 1.0 module"));
    }
    let mut binary = TestBinary {
        tests: 0,
        runs_in_browser: false,
    };
    while !reader.is_empty() {
        let id = reader.byte()?;
        let length = reader.length()?;
        let mut section = Reader {
            bytes: reader.take(length)?,
            at: 0,
        };
        match id {
            CUSTOM_SECTION => {
                let name_length = section.length()?;
                if section.take(name_length)? == CONFIGURE_SECTION {
                    binary.runs_in_browser |= section.rest().contains(&RUN_IN_BROWSER);
                }
            }
            EXPORT_SECTION => {
                for _ in 0..section.length()? {
                    let name_length = section.length()?;
                    if section.take(name_length)?.starts_with(TEST_PREFIX) {
                        binary.tests += 1;
                    }
                    section.byte()?; // kind
                    section.length()?; // index
                }
            }
            _ => {}
        }
    }
    Ok(binary)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        rest
    }

    /// An unsigned LEB128 number, as wasm writes every length and count.
    fn length(&mut self) -> Result<usize, String> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| format!("length {value} too large"));
            }
        }
        Err(format!("overlong number before byte {}", self.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"\0asm\x01\0\0\0";

    fn section(id: u8, payload: &[u8]) -> Vec<u8> {
        let length = u8::try_from(payload.len()).expect("test sections stay short");
        [&[id, length][..], payload].concat()
    }

    fn name(text: &[u8]) -> Vec<u8> {
        let length = u8::try_from(text.len()).expect("test names stay short");
        [&[length][..], text].concat()
    }

    fn exports(names: &[&[u8]]) -> Vec<u8> {
        let mut payload = vec![u8::try_from(names.len()).expect("few exports")];
        for export in names {
            payload.extend(name(export));
            payload.extend([0, 0]); // a function, index 0
        }
        section(EXPORT_SECTION, &payload)
    }

    fn configure(mode: u8) -> Vec<u8> {
        section(
            CUSTOM_SECTION,
            &[name(CONFIGURE_SECTION), vec![mode]].concat(),
        )
    }

    #[test]
    fn counts_tests_and_sees_run_in_browser() {
        let module = [
            HEADER.to_vec(),
            exports(&[
                b"__wbgt_a_0::tests::one",
                b"memory",
                b"__wbgt_b_1::tests::two",
            ]),
            configure(RUN_IN_BROWSER),
        ]
        .concat();
        assert_eq!(
            inspect(&module),
            Ok(TestBinary {
                tests: 2,
                runs_in_browser: true
            })
        );
    }

    #[test]
    fn a_binary_without_configure_runs_in_node() {
        let module = [HEADER.to_vec(), exports(&[b"__wbgt_a_0::tests::one"])].concat();
        assert_eq!(
            inspect(&module),
            Ok(TestBinary {
                tests: 1,
                runs_in_browser: false
            })
        );
    }

    #[test]
    fn node_mode_is_not_a_browser() {
        let module = [HEADER.to_vec(), configure(0x05)].concat();
        assert_eq!(
            inspect(&module).map(|binary| binary.runs_in_browser),
            Ok(false)
        );
    }

    #[test]
    fn rejects_what_is_not_wasm() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(&[HEADER, &[EXPORT_SECTION, 9, 1][..]].concat()).is_err());
    }
}

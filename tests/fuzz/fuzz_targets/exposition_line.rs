//! `exposition::parse_line` on arbitrary bytes: never panics, and what it
//! accepts survives a round trip through the canonical form the cache
//! stores and the renderer writes.
//!
//! * a sample: `ingest::write_key` + `" "` + `render::write_value` parses
//!   back to the same name, labels (sorted) and value (NaN aware), and its
//!   key is a fixed point of `write_key`;
//! * a HELP or TYPE line: `# HELP name text` / `# TYPE name type` parses
//!   back to the same name, text and type.
//!
//! A canonical line longer than the parser's input limit (a value such as
//! `.5` is written `0.5`) is valid text the parser refuses by design; it is
//! skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_gateway::exposition::{Line, LineError, parse_line};
use push_gateway::ingest::write_key;
use push_gateway::limits::LINE_MAX_BYTES;
use push_gateway::render::write_value;

use fuzz_check::{labels_of, same_value};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = parse_line(data) else {
        return;
    };
    let mut text = Vec::new();
    match line {
        Line::Sample(sample) => {
            write_key(&sample, &[], &[], &mut text);
            let key = text.clone();
            text.push(b' ');
            write_value(&mut text, sample.value);
            if text.len() > LINE_MAX_BYTES {
                assert_eq!(parse_line(&text).err(), Some(LineError::TooLong));
                return;
            }
            let again = match parse_line(&text) {
                Ok(Line::Sample(s)) => s,
                other => panic!(
                    "canonical form {:?} of {:?} does not parse as a sample: {other:?}",
                    String::from_utf8_lossy(&text),
                    String::from_utf8_lossy(data)
                ),
            };
            assert_eq!(again.name, sample.name);
            let mut want = labels_of(sample.labels());
            want.sort_unstable_by(|a, b| a.0.cmp(b.0));
            assert_eq!(
                labels_of(again.labels()),
                want,
                "labels of {:?}",
                String::from_utf8_lossy(&text)
            );
            assert!(
                same_value(again.value, sample.value),
                "{:?}: {} became {}",
                String::from_utf8_lossy(&text),
                sample.value,
                again.value
            );
            let mut key2 = Vec::new();
            write_key(&again, &[], &[], &mut key2);
            assert_eq!(key2, key, "write_key is not idempotent");
        }
        Line::Help { name, text: help } => {
            text.extend_from_slice(b"# HELP ");
            text.extend_from_slice(name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(help.as_bytes());
            if text.len() > LINE_MAX_BYTES {
                return;
            }
            match parse_line(&text) {
                Ok(Line::Help { name: n, text: t }) => {
                    assert_eq!(
                        (n, t),
                        (name, help),
                        "HELP of {:?}",
                        String::from_utf8_lossy(data)
                    );
                }
                other => panic!(
                    "HELP line {:?} from {:?} does not parse back: {other:?}",
                    String::from_utf8_lossy(&text),
                    String::from_utf8_lossy(data)
                ),
            }
        }
        Line::Type { name, kind } => {
            text.extend_from_slice(b"# TYPE ");
            text.extend_from_slice(name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(kind.as_str().as_bytes());
            match parse_line(&text) {
                Ok(Line::Type { name: n, kind: k }) => assert_eq!((n, k), (name, kind)),
                other => panic!("TYPE line does not parse back: {other:?}"),
            }
        }
        _ => {}
    }
});

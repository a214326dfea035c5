//! The JSON parser as its readers use it: negative integers read as `i64`, strings written back
//! with serde_json's escapes, and a truncated text told apart from a wrong one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_primitives::json::{parse, Kind, Value};

#[test]
fn negative_integers_read_as_i64() {
    assert_eq!(parse(b"-5").unwrap().as_i64(), Some(-5));
    assert_eq!(parse(b"7").unwrap().as_i64(), Some(7));
    assert_eq!(parse(b"1.5").unwrap().as_i64(), None);
}

#[test]
fn strings_are_written_with_json_escapes() {
    let s = Value::new(Kind::String("a\\b\r\t\u{8}\u{c}\u{1f} z\"".into()));
    assert_eq!(s.to_string(), r#""a\\b\r\t\b\f\u001f z\"""#);
}

#[test]
fn a_truncated_text_is_told_from_a_wrong_one() {
    assert!(parse(br#"{"a": 1,"#).unwrap_err().is_eof());
    assert!(parse(br#""abc"#).unwrap_err().is_eof());
    assert!(!parse(br#"{"a": [1, 2, {"b": tru}]}"#).unwrap_err().is_eof());
    assert!(!parse(b"[1] x").unwrap_err().is_eof());
}

/// Strings are scanned eight bytes at a time: whichever byte of a word ends the plain run (a
/// quote, an escape, a control character), wherever the word starts, the string read is the
/// same as a byte-by-byte reading, and multi-byte UTF-8 is never taken for one of them.
#[test]
fn every_string_end_and_escape_is_found_at_every_offset() {
    let plain = ["a", "é", "😀", "~", "\u{7f}", "\u{a2}"];
    for len in 0..26 {
        for p in plain {
            let body: String = std::iter::repeat_n(p, len).collect();
            // Ends here.
            let text = format!("\"{body}\"");
            assert_eq!(
                parse(text.as_bytes()).unwrap().as_str(),
                Some(body.as_str())
            );
            // An escape here, then more plain text.
            let text = format!("\"{body}\\n{body}\"");
            let expected = format!("{body}\n{body}");
            assert_eq!(
                parse(text.as_bytes()).unwrap().as_str(),
                Some(expected.as_str())
            );
            // A raw control character here is refused, at its own offset.
            for control in [0u8, 0x09, 0x1f] {
                let mut text = format!("\"{body}").into_bytes();
                text.push(control);
                text.extend_from_slice(b"x\"");
                let err = parse(&text).unwrap_err();
                assert_eq!(
                    err.reason, "control character (\\u0000-\\u001F) found while parsing a string",
                    "{len} x {p:?} then {control:#x}"
                );
                assert_eq!(
                    err.offset,
                    1 + body.len(),
                    "{len} x {p:?} then {control:#x}"
                );
            }
            // Inside an object, where the scan starts at other offsets of the text.
            let text = format!("{{\"k{body}\": \"{body}\"}}");
            let value = parse(text.as_bytes()).unwrap();
            let key = format!("k{body}");
            assert_eq!(value.get(&key).and_then(Value::as_str), Some(body.as_str()));
        }
    }
}

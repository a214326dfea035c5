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

//! The JSON path at a byte position, for error messages.
//!
//! serde reports where in the text it failed (line, column); this walks the
//! text up to that point and names the place, e.g. `flags.checkout.rules[1]`.
//! Cheaper in .wasm bytes than tracking the path through every deserializer.

enum Frame {
    /// Inside an object; the last key read, if any.
    Object(Option<String>),
    /// Inside an array; the index of the current element.
    Array(usize),
}

/// The path of the innermost value or key that ends at or before `offset`.
pub fn path_at(text: &[u8], offset: usize) -> String {
    let end = offset.min(text.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    // Whether the next string inside an object is a key.
    let mut expect_key = false;
    while i < end {
        match text[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => {
                stack.push(Frame::Array(0));
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(_)) => expect_key = true,
                None => {}
            },
            b':' => expect_key = false,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if expect_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let raw = &text[start..i.min(text.len())];
                        *key = Some(String::from_utf8_lossy(raw).into_owned());
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
        }
    }
    if path.is_empty() {
        path.push_str("config");
    }
    path
}

/// Byte offset of a 1-based line and column (serde_json's error position).
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut current = 1;
    let mut line_start = 0;
    for (i, b) in text.iter().enumerate() {
        if current == line {
            break;
        }
        if *b == b'\n' {
            current += 1;
            line_start = i + 1;
        }
    }
    line_start + column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, marker: &str) -> String {
        let offset = text.find(marker).unwrap() + marker.len();
        path_at(text.as_bytes(), offset)
    }

    #[test]
    fn names_keys_and_indices() {
        let doc =
            r#"{"flags": {"checkout": {"rules": [{"serve": "on"}, {"rollout": {"on": 40}}]}}}"#;
        assert_eq!(at(doc, r#""on": 40"#), "flags.checkout.rules[1].rollout.on");
        assert_eq!(at(doc, r#""serve""#), "flags.checkout.rules[0].serve");
        assert_eq!(at(doc, r#"{"flags""#), "flags");
        assert_eq!(path_at(b"{", 1), "config");
        assert_eq!(
            at(r#"{"a\"b": [1, 2, {"c": "x,y"}]}"#, r#""c": "x,y""#),
            "a\\\"b[2].c"
        );
    }

    #[test]
    fn converts_line_and_column() {
        let text = b"{\n  \"a\": 1,\n  \"b\": 2\n}";
        assert_eq!(
            &text[offset_of(text, 3, 5)..offset_of(text, 3, 5) + 1],
            b":"
        );
    }
}

//! Text quoted for error and log messages, like `{:?}` but without the standard library's
//! Unicode printability tables (~15 KB of .wasm that only `Debug` for `str`/`char` pulls in):
//! quotes, backslashes and control characters are escaped, everything else is written as is.
use std::fmt;

/// `"text"` with `"`, `\` and control characters escaped.
pub struct Quoted<'a>(pub &'a str);

/// The text with `"`, `\` and control characters escaped, no quotes around it (for messages that
/// put it in backticks).
pub struct Escaped<'a>(pub &'a str);

/// `'c'` with `'`, `\` and control characters escaped.
pub struct QuotedChar(pub char);

fn write_escaped(f: &mut fmt::Formatter<'_>, c: char, quote: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        '\0' => f.write_str("\\0"),
        c if c == quote => write!(f, "\\{c}"),
        c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32),
        c => write!(f, "{c}"),
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            write_escaped(f, c, '"')?;
        }
        f.write_str("\"")
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            write_escaped(f, c, '"')?;
        }
        Ok(())
    }
}

impl fmt::Display for QuotedChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        write_escaped(f, self.0, '\'')?;
        f.write_str("'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_debug_for_ascii_and_control_characters() {
        for s in [
            "plain",
            "a \"quoted\" word",
            "back\\slash",
            "tab\tnl\ncr\r",
            "bell\u{7}",
            "ünï",
        ] {
            assert_eq!(Quoted(s).to_string(), format!("{s:?}"), "{s}");
        }
        for c in ['a', '\'', '\\', '\n', '\r', '\u{1b}', '\u{7f}', '"'] {
            assert_eq!(QuotedChar(c).to_string(), format!("{c:?}"), "{c}");
        }
        assert_eq!(Escaped("x-a\r\nb").to_string(), "x-a\\r\\nb");
    }
}

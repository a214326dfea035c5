//! Sluice's own regex engine, for Unleash's REGEX constraint operator: the syntax and the
//! `is_match` results of regex-lite 0.1, which it replaces in the .wasm. regex-lite's big
//! functions (a 7.5 KB parser loop, a 3.8 KB compiler) cost every Envoy of a mesh resident
//! memory for V8's compiled code; here every function stays small.
//!
//! - `parse.rs`: pattern -> [`node::Node`] tree, accepting exactly what regex-lite accepts
//! - `class.rs`: character-class sets (sort, merge, ASCII case folding, negation, POSIX names)
//! - `compile.rs`: tree -> Thompson NFA, its size bounded like regex-lite's
//! - `vm.rs`: Pike VM (an NFA simulation): linear in the haystack, no backtracking, so an
//!   untrusted payload cannot make a request hang
//!
//! `differential.rs` (tests) checks it against regex-lite on many generated patterns.

mod class;
mod compile;
#[cfg(test)]
mod differential;
mod node;
mod parse;
mod vm;

use std::fmt;

/// A compiled pattern; only "does it match anywhere in the haystack" is asked of it.
pub(crate) struct Regex {
    program: compile::Program,
}

/// Why a pattern does not compile: what is wrong and, when known, the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    what: &'static str,
    at: Option<usize>,
}

impl Error {
    fn at<T>(what: &'static str, at: usize) -> Result<T, Error> {
        Err(Error { what, at: Some(at) })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{} at {at}", self.what),
            None => f.write_str(self.what),
        }
    }
}

impl Regex {
    /// Compiles `pattern`; `case_insensitive` is regex-lite's builder option (as `(?i)`), and
    /// a program whose size (counted like regex-lite counts it) exceeds `size_limit` bytes is
    /// an error.
    pub(crate) fn new(
        pattern: &str,
        case_insensitive: bool,
        size_limit: usize,
    ) -> Result<Regex, Error> {
        let node = parse::parse(pattern, case_insensitive)?;
        let program = compile::compile(&node, size_limit)?;
        Ok(Regex { program })
    }

    /// Whether the pattern matches anywhere in `haystack` (regex-lite's `is_match`).
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        vm::is_match(&self.program, haystack)
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({} states)", self.program.states.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn why(pattern: &str) -> String {
        Regex::new(pattern, false, 1 << 20)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(why("(a"), "unclosed group at 0");
        assert_eq!(why("ab)"), "unopened group at 2");
        assert_eq!(why("a{2,1}"), "repetition min above max at 1");
        assert_eq!(why("x(?=y)"), "look-around is not supported at 1");
        assert_eq!(why(r"\p{L}"), "Unicode classes are not supported at 0");
        assert_eq!(why("[a"), "unclosed class at 0");
        assert_eq!(why("a{100000}"), "compiled regex exceeds the size limit");
        assert_eq!(why("ok"), "");
    }

    #[test]
    fn case_insensitive_option_is_ascii_only() {
        let re = Regex::new("straße", true, 1 << 20).unwrap();
        assert!(re.is_match("STRAßE"));
        assert!(!re.is_match("STRASSE"));
    }
}

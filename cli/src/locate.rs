//! From a config path (`flags.checkout.rules[1].rollout`) to where it is written.
use sluice_primitives::json::{self, Kind, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[2].c` → [a, b, 2, c]. Keys may contain dots (names are found greedily by [`find`]).
pub fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            match inner[..end].parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => out.push(Step::Key(inner[..end].to_string())),
            }
            rest = &inner[end + 1..];
        }
    }
    out
}

/// The deepest value on `path` that the document has (a missing field's error names its parent).
pub fn find<'v, 't>(root: &'v Value<'t>, path: &str) -> &'v Value<'t> {
    let steps = steps(path);
    let mut at = root;
    let mut i = 0;
    while i < steps.len() {
        let next = match (&steps[i], &at.kind) {
            (Step::Index(n), Kind::Array(items)) => items.get(*n).map(|v| (v, 1)),
            (Step::Key(_), Kind::Object(members)) => {
                // A key with dots in it spans several steps: try the longest first.
                (1..=steps.len() - i).rev().find_map(|take| {
                    let joined: Option<Vec<&str>> = steps[i..i + take]
                        .iter()
                        .map(|s| match s {
                            Step::Key(k) => Some(k.as_str()),
                            Step::Index(_) => None,
                        })
                        .collect();
                    let key = joined?.join(".");
                    members
                        .iter()
                        .rev()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| (v, take))
                })
            }
            _ => None,
        };
        match next {
            Some((value, took)) => {
                at = value;
                i += took;
            }
            None => break,
        }
    }
    at
}

/// 1-based line and column of `path` in `text`; (1, 1) when the text is not JSON.
pub fn line_column(text: &[u8], path: &str) -> (usize, usize) {
    match json::parse(text) {
        Ok(root) => json::line_column(text, find(&root, path).offset),
        Err(_) => (1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_values() {
        let text = br#"{"flags": {"a.b": {"rules": [1, {"x": 2}]}},
 "routes": {"r": {"guard": {"max_error_rate": 0.02}}}}"#;
        assert_eq!(line_column(text, "flags.a.b.rules[1].x"), (1, 39));
        assert_eq!(line_column(text, "routes.r.guard.max_error_rate"), (2, 47));
        // Missing: the deepest existing value.
        assert_eq!(line_column(text, "routes.r.guard.window"), (2, 28));
        assert_eq!(line_column(text, "version"), (1, 1));
    }
}

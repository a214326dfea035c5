//! `{{NAME}}` placeholder substitution for the configs in `envoy/`.
use std::collections::BTreeMap;
use std::fmt;

/// Placeholder name → value.
pub type Vars = BTreeMap<String, String>;

/// A placeholder left without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled(pub Vec<String>);

impl fmt::Display for Unfilled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "placeholders without a value: {}", self.0.join(", "))
    }
}

impl std::error::Error for Unfilled {}

/// Replaces every `{{NAME}}` found in `vars`; leaves the others in place.
pub fn fill(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if is_name(&after[..end]) => {
                let name = &after[..end];
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders (`{{NAME}}`, NAME in `A-Z0-9_`) still in `text`, in order, without repeats.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if is_name(&after[..end]) => {
                let name = after[..end].to_string();
                if !found.contains(&name) {
                    found.push(name);
                }
                rest = &after[end + 2..];
            }
            _ => rest = after,
        }
    }
    found
}

/// Fills `template` and fails if a placeholder is left (a typo, or a value forgotten).
pub fn render(template: &str, vars: &Vars) -> Result<String, Unfilled> {
    let text = fill(template, vars);
    let left = placeholders(&text);
    if left.is_empty() {
        Ok(text)
    } else {
        Err(Unfilled(left))
    }
}

/// `text` as one quoted, escaped string: valid JSON, and a valid YAML double-quoted scalar, so a
/// JSON config can be put on a single line of the YAML (`value: {{CONFIG_JSON}}`).
pub fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fills_known_and_reports_unknown() {
        let t = "a: {{A}}\nb: {{B}}\nc: {{A}} {{ not a placeholder }}";
        assert_eq!(
            fill(t, &vars(&[("A", "1")])),
            "a: 1\nb: {{B}}\nc: 1 {{ not a placeholder }}"
        );
        assert_eq!(
            render(t, &vars(&[("A", "1")])),
            Err(Unfilled(vec!["B".to_string()]))
        );
        assert!(render(t, &vars(&[("A", "1"), ("B", "2")])).is_ok());
    }

    #[test]
    fn yaml_string_escapes_json() {
        assert_eq!(yaml_string(r#"{"a":"b\c"}"#), r#""{\"a\":\"b\\c\"}""#);
        assert_eq!(yaml_string("x\ny"), r#""x\ny""#);
    }
}

//! Reading the model out of a parsed JSON tree (`sluice_primitives::json`),
//! with the path of every error. Hand-written rather than derived: serde's
//! derives cost ~70 KB of .wasm here, this costs a few.
//!
//! A repeated key in an object: the last one wins, as in `JSON.parse` and
//! the Unleash SDKs (the payload is the server's, not an operator's, so it is
//! read leniently; the config reader rejects repeated keys instead).

pub(crate) use sluice_primitives::json::Path;
use sluice_primitives::quoted::Quoted;
use std::borrow::Cow;

use sluice_primitives::json::{self as tree, Kind, Value};

use crate::model::Error;

#[inline(never)]
pub(crate) fn error(path: &Path<'_>, message: impl Into<String>) -> Error {
    Error {
        path: path.render(),
        message: message.into(),
    }
}

/// Parses JSON text into a value; syntax errors carry line and column.
#[inline(never)]
pub(crate) fn parse(json: &[u8]) -> Result<Value<'_>, Error> {
    tree::parse(json).map_err(|err| {
        let (line, column) = tree::line_column(json, err.offset);
        Error {
            path: err.path(),
            message: format!("{} at line {line} column {column}", err.reason),
        }
    })
}

#[inline(never)]
fn kind(value: &Value) -> String {
    match &value.kind {
        Kind::Null => "null".into(),
        Kind::Bool(b) => format!("boolean `{b}`"),
        Kind::Number(n) => format!("number {n}"),
        Kind::String(s) => format!("string {}", Quoted(s)),
        Kind::Array(_) => "an array".into(),
        Kind::Object(_) => "an object".into(),
    }
}

fn wrong(value: &Value, path: &Path<'_>, expected: &str) -> Error {
    error(path, format!("expected {expected}, found {}", kind(value)))
}

/// An object: the fields of one model type.
pub(crate) struct Obj<'v, 'p> {
    members: &'v [(Cow<'v, str>, Value<'v>)],
    path: &'p Path<'p>,
}

impl<'v, 'p> Obj<'v, 'p> {
    #[inline(never)]
    pub(crate) fn new(value: &'v Value<'_>, path: &'p Path<'p>) -> Result<Obj<'v, 'p>, Error> {
        match &value.kind {
            Kind::Object(members) => Ok(Obj { members, path }),
            _ => Err(wrong(value, path, "an object")),
        }
    }

    /// A present, non-null field; of repeated keys, the last.
    #[inline(never)]
    fn get(&self, key: &str) -> Option<&'v Value<'v>> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str) -> Error {
        error(self.path, format!("missing field `{key}`"))
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, Error> {
        self.opt_string(key)?.ok_or_else(|| self.missing(key))
    }

    #[inline(never)]
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => string(v, &self.path.key(key)).map(Some),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<bool, Error> {
        self.opt_bool(key)?.ok_or_else(|| self.missing(key))
    }

    #[inline(never)]
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key).map(|v| (v, &v.kind)) {
            None => Ok(None),
            Some((_, Kind::Bool(b))) => Ok(Some(*b)),
            Some((v, _)) => Err(wrong(v, &self.path.key(key), "a boolean")),
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Result<u64, Error> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    #[inline(never)]
    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(v, &self.path.key(key), "a whole number ≥ 0")),
        }
    }

    #[inline(never)]
    pub(crate) fn i64(&self, key: &str) -> Result<i64, Error> {
        match self.get(key) {
            None => Err(self.missing(key)),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| wrong(v, &self.path.key(key), "a whole number")),
        }
    }

    /// A string, number or boolean as text; strategy parameters and
    /// constraint values are strings in Unleash's schema, but hand-written
    /// payloads put numbers there.
    #[inline(never)]
    pub(crate) fn opt_scalar_text(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_text(v, &self.path.key(key)).map(Some),
        }
    }

    /// A list; absent or null is empty.
    #[inline(never)]
    pub(crate) fn list<T>(
        &self,
        key: &str,
        mut item: impl FnMut(&'v Value<'v>, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let path = self.path.key(key);
        match self.get(key).map(|v| (v, &v.kind)) {
            None => Ok(Vec::new()),
            Some((_, Kind::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, v)| item(v, &path.index(i)))
                .collect(),
            Some((v, _)) => Err(wrong(v, &path, "an array")),
        }
    }

    /// A list that must be there.
    #[inline(never)]
    pub(crate) fn required_list<T>(
        &self,
        key: &str,
        item: impl FnMut(&'v Value<'v>, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        if self.get(key).is_none() {
            return Err(self.missing(key));
        }
        self.list(key, item)
    }

    /// An object of name → value, sorted by name, a repeated name's last
    /// value; absent or null is empty.
    #[inline(never)]
    pub(crate) fn entries<T>(
        &self,
        key: &str,
        mut item: impl FnMut(&'v Value<'v>, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<(String, T)>, Error> {
        let path = self.path.key(key);
        match self.get(key).map(|v| (v, &v.kind)) {
            None => Ok(Vec::new()),
            Some((_, Kind::Object(members))) => {
                let mut sorted: Vec<&(Cow<'_, str>, Value<'_>)> = members.iter().collect();
                // Stable: of equal names, the last in the document stays last.
                sluice_primitives::order::sort_by(&mut sorted, |a, b| a.0.cmp(&b.0));
                let mut out: Vec<(String, T)> = Vec::with_capacity(sorted.len());
                for (k, v) in sorted {
                    let read = item(v, &path.key(k))?;
                    match out.last_mut() {
                        Some(last) if last.0 == *k => last.1 = read,
                        _ => out.push((k.to_string(), read)),
                    }
                }
                Ok(out)
            }
            Some((v, _)) => Err(wrong(v, &path, "an object")),
        }
    }

    /// A nested object, required.
    #[inline(never)]
    pub(crate) fn object<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'v Value<'v>, &Path<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.get(key) {
            None => Err(self.missing(key)),
            Some(v) => read(v, &self.path.key(key)),
        }
    }

    #[inline(never)]
    pub(crate) fn opt_object<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'v Value<'v>, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => read(v, &self.path.key(key)).map(Some),
        }
    }
}

#[inline(never)]
pub(crate) fn string(value: &Value, path: &Path<'_>) -> Result<String, Error> {
    match &value.kind {
        Kind::String(s) => Ok(s.to_string()),
        _ => Err(wrong(value, path, "a string")),
    }
}

pub(crate) fn i64(value: &Value, path: &Path<'_>) -> Result<i64, Error> {
    value
        .as_i64()
        .ok_or_else(|| wrong(value, path, "a whole number"))
}

#[inline(never)]
pub(crate) fn scalar_text(value: &Value, path: &Path<'_>) -> Result<String, Error> {
    match &value.kind {
        Kind::String(s) => Ok(s.to_string()),
        Kind::Number(n) => Ok(n.to_string()),
        Kind::Bool(b) => Ok(b.to_string()),
        _ => Err(wrong(value, path, "a string, number or boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_json_paths() {
        let root = Path::Root;
        let features = root.key("features");
        let third = features.index(3);
        let name = third.key("name");
        assert_eq!(name.render(), "features[3].name");
        assert_eq!(root.render(), "");
        let list = root.index(0);
        assert_eq!(list.key("a").render(), "[0].a");
    }

    #[test]
    fn type_errors_say_what_was_found() {
        let value = parse(br#"{"a": "yes", "b": [1], "c": null}"#).unwrap();
        let root = Path::Root;
        let obj = Obj::new(&value, &root).unwrap();
        assert_eq!(
            obj.bool("a").unwrap_err().to_string(),
            "a: expected a boolean, found string \"yes\""
        );
        assert_eq!(obj.opt_bool("c").unwrap(), None);
        assert_eq!(
            obj.string("missing").unwrap_err().to_string(),
            "missing field `missing`"
        );
        assert_eq!(
            obj.list("b", string).unwrap_err().to_string(),
            "b[0]: expected a string, found number 1"
        );
        assert!(obj.list("c", string).unwrap().is_empty());
    }
}

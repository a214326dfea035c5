//! Reading the model out of a parsed `serde_json::Value`, with the path of
//! every error. Hand-written rather than `#[derive(Deserialize)]`: the
//! derives cost ~70 KB of .wasm here, this costs a few.

use serde_json::{Map, Value};

use crate::model::Error;

/// Where a value sits in the document, rendered only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, index) => {
                parent.render_into(out);
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error {
            path: self.render(),
            message: message.into(),
        }
    }
}

/// Parses JSON text into a value; syntax errors carry line and column.
pub(crate) fn parse(json: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(json).map_err(|err| Error {
        path: String::new(),
        message: err.to_string(),
    })
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn wrong(value: &Value, path: &Path<'_>, expected: &str) -> Error {
    path.error(format!("expected {expected}, found {}", kind(value)))
}

/// An object: the fields of one model type.
pub(crate) struct Obj<'v, 'p> {
    map: &'v Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'v, 'p> Obj<'v, 'p> {
    pub(crate) fn new(value: &'v Value, path: &'p Path<'p>) -> Result<Obj<'v, 'p>, Error> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(wrong(other, path, "an object")),
        }
    }

    /// A present, non-null field.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str) -> Error {
        self.path.error(format!("missing field `{key}`"))
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, Error> {
        self.opt_string(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong(other, &self.path.key(key), "a string")),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<bool, Error> {
        self.opt_bool(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong(other, &self.path.key(key), "a boolean")),
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Result<u64, Error> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(v, &self.path.key(key), "a whole number ≥ 0")),
        }
    }

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
    pub(crate) fn opt_scalar_text(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_text(v, &self.path.key(key)).map(Some),
        }
    }

    /// A list; absent or null is empty.
    pub(crate) fn list<T>(
        &self,
        key: &str,
        mut item: impl FnMut(&'v Value, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let path = self.path.key(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| item(v, &path.index(i)))
                .collect(),
            Some(other) => Err(wrong(other, &path, "an array")),
        }
    }

    /// A list that must be there.
    pub(crate) fn required_list<T>(
        &self,
        key: &str,
        item: impl FnMut(&'v Value, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        if self.get(key).is_none() {
            return Err(self.missing(key));
        }
        self.list(key, item)
    }

    /// An object of name → value; absent or null is empty.
    pub(crate) fn entries<T>(
        &self,
        key: &str,
        mut item: impl FnMut(&'v Value, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Vec<(String, T)>, Error> {
        let path = self.path.key(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), item(v, &path.key(k))?)))
                .collect(),
            Some(other) => Err(wrong(other, &path, "an object")),
        }
    }

    /// A nested object, required.
    pub(crate) fn object<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'v Value, &Path<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.get(key) {
            None => Err(self.missing(key)),
            Some(v) => read(v, &self.path.key(key)),
        }
    }

    pub(crate) fn opt_object<T>(
        &self,
        key: &str,
        read: impl FnOnce(&'v Value, &Path<'_>) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => read(v, &self.path.key(key)).map(Some),
        }
    }
}

pub(crate) fn string(value: &Value, path: &Path<'_>) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong(other, path, "a string")),
    }
}

pub(crate) fn i64(value: &Value, path: &Path<'_>) -> Result<i64, Error> {
    value
        .as_i64()
        .ok_or_else(|| wrong(value, path, "a whole number"))
}

pub(crate) fn scalar_text(value: &Value, path: &Path<'_>) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(wrong(other, path, "a string, number or boolean")),
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
        let value: Value = serde_json::json!({"a": "yes", "b": [1], "c": null});
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

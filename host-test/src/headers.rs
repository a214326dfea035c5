//! Header maps as Envoy keeps them: ordered byte pairs, lower-case keys,
//! duplicates preserved, values may be any bytes (non-UTF-8 included).

use std::fmt;

/// An ordered list of header pairs. Keys are stored lower-cased (Envoy's
/// `LowerCaseString`); values are kept byte for byte.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from pairs, lower-casing the keys.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.add(k, v);
        }
        map
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The first value of `name` (what Envoy's `proxy_get_header_map_value` returns
    /// when the header is repeated).
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = lower(name.as_ref());
        self.pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text (lossy for non-UTF-8 bytes).
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: impl AsRef<[u8]>) -> Vec<&[u8]> {
        let name = lower(name.as_ref());
        self.pairs
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn contains(&self, name: impl AsRef<[u8]>) -> bool {
        self.get(name).is_some()
    }

    /// Appends a pair (Envoy's `addCopy`).
    pub fn add(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.pairs
            .push((lower(name.as_ref()), value.as_ref().to_vec()));
    }

    /// Removes every pair named `name`; returns how many were removed.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> usize {
        let name = lower(name.as_ref());
        let before = self.pairs.len();
        self.pairs.retain(|(k, _)| *k != name);
        before - self.pairs.len()
    }

    /// Envoy's `setCopy` (with `http_set_copy_replace_all_headers`, the default):
    /// removes every pair named `name`, then appends one.
    pub fn replace(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.remove(name.as_ref());
        self.add(name, value);
    }

    /// Serializes as proxy-wasm does for `proxy_get_header_map_pairs`:
    /// `count: u32`, then `count` × (`key_len: u32`, `value_len: u32`),
    /// then `key \0 value \0` for each pair. All integers little-endian.
    pub fn serialize(&self) -> Vec<u8> {
        let size = 4 + self
            .pairs
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len() + 2)
            .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&(self.pairs.len() as u32).to_le_bytes());
        for (k, v) in &self.pairs {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in &self.pairs {
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    /// Parses the serialized form; `None` if it is malformed. An empty input is an
    /// empty map (what the SDK sends for `vec![]`).
    pub fn deserialize(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::new());
        }
        let read_u32 = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let count = read_u32(0)?;
        let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
        if data > bytes.len() {
            return None;
        }
        let mut map = Self::new();
        for i in 0..count {
            let klen = read_u32(4 + i * 8)?;
            let vlen = read_u32(8 + i * 8)?;
            let key = bytes.get(data..data.checked_add(klen)?)?;
            data += klen + 1;
            let value = bytes.get(data..data.checked_add(vlen)?)?;
            data += vlen + 1;
            if data > bytes.len() {
                return None;
            }
            map.add(key, value);
        }
        Some(map)
    }
}

fn lower(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_matches_the_proxy_wasm_layout() {
        let map = HeaderMap::from_pairs([("A", "1"), ("b", "")]);
        let bytes = map.serialize();
        let mut expected = vec![2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b"a\x001\x00b\x00\x00");
        assert_eq!(bytes, expected);
        assert_eq!(HeaderMap::deserialize(&bytes), Some(map));
    }

    #[test]
    fn malformed_maps_are_rejected_not_panicking() {
        assert_eq!(HeaderMap::deserialize(&[5, 0, 0, 0]), None);
        assert_eq!(
            HeaderMap::deserialize(&[1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, b'a']),
            None
        );
        assert_eq!(HeaderMap::deserialize(&[0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn replace_removes_duplicates_and_appends_like_envoy_set_copy() {
        let mut map = HeaderMap::from_pairs([("x", "1"), ("y", "2"), ("X", "3")]);
        assert_eq!(map.get("X"), Some(&b"1"[..]));
        map.replace("x", "9");
        assert_eq!(map.get_all("x"), vec![&b"9"[..]]);
        assert_eq!(
            map.iter().map(|(k, _)| k.to_vec()).collect::<Vec<_>>(),
            vec![b"y".to_vec(), b"x".to_vec()]
        );
    }
}

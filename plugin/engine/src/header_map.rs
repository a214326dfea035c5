//! The proxy-wasm serialized header map: a u32 count, then (name length, value length) u32
//! pairs, then each name and value followed by a NUL. Read in place (the filter's `abi.rs`
//! fetches the request's map), and written for the headers of an HTTP call.

/// Calls `f` with each (name, value) pair, borrowed from `bytes`, without allocating. A
/// malformed buffer yields the pairs read before the fault.
pub fn for_each<'a>(bytes: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(count) = word(0) else {
        return;
    };
    let mut at = 4usize.saturating_add(count.saturating_mul(8));
    for n in 0..count {
        let (Some(name_len), Some(value_len)) = (word(4 + n * 8), word(8 + n * 8)) else {
            return;
        };
        let Some(name) = bytes.get(at..at.saturating_add(name_len)) else {
            return;
        };
        at = at.saturating_add(name_len + 1);
        let Some(value) = bytes.get(at..at.saturating_add(value_len)) else {
            return;
        };
        at = at.saturating_add(value_len + 1);
        f(name, value);
    }
}

/// `pairs` in the serialization `for_each` reads. A length beyond u32 (not a header) is written
/// as u32::MAX, which the host rejects.
pub fn serialize<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let text: usize = pairs
        .iter()
        .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + text);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len(name.as_ref().len()));
        out.extend_from_slice(&len(value.as_ref().len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{for_each, serialize};

    fn pairs(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::new();
        for_each(bytes, |n, v| out.push((n, v)));
        out
    }

    #[test]
    fn reads_pairs_in_place() {
        let map = [(":path", "/a?b=1"), ("x-user-id", "u-1"), ("empty", "")];
        let bytes = serialize(&map);
        let want: Vec<(&[u8], &[u8])> = map
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(pairs(&bytes), want);
        assert!(pairs(&[]).is_empty());
        // Truncated: the pairs before the cut.
        assert_eq!(pairs(&bytes[..bytes.len() - 12]).len(), 1);
        assert!(pairs(&[9, 0, 0, 0]).is_empty());
        // The layout the host expects: count, lengths, then each text NUL-terminated.
        assert_eq!(
            serialize(&[("a", "bc")]),
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]
        );
        // Lengths that overflow the buffer end the walk, never panic.
        for_each(&[1, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0], |_, _| {
            panic!("no pair")
        });
    }
}

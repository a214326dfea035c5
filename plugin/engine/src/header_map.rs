//! The proxy-wasm serialized header map: a u32 count, then (name length, value length) u32
//! pairs, then each name and value followed by a NUL. Read in place (the filter's `abi.rs`
//! fetches the request's map), and written for the headers of an HTTP call.

/// Calls `f` with each (name, value) pair, borrowed from `bytes`, without allocating. A
/// malformed buffer yields the pairs read before the fault.
pub fn for_each<'a>(bytes: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) {
    let Some((count, rest)) = bytes.split_first_chunk::<4>() else {
        return;
    };
    // The whole length table up front: the names follow it, so a short table has no pairs.
    let Some((table, mut data)) = (u32::from_le_bytes(*count) as usize)
        .checked_mul(8)
        .and_then(|n| rest.split_at_checked(n))
    else {
        return;
    };
    for lengths in table.chunks_exact(8) {
        let name_len = u32::from_le_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]);
        let value_len = u32::from_le_bytes([lengths[4], lengths[5], lengths[6], lengths[7]]);
        let (name_len, value_len) = (name_len as usize, value_len as usize);
        // A name is followed by its NUL.
        let Some((name, [_, after @ ..])) = data.split_at_checked(name_len) else {
            return;
        };
        let Some(value) = after.get(..value_len) else {
            return;
        };
        // The last value's NUL may be missing.
        data = after.get(value_len + 1..).unwrap_or_default();
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
        // An empty name and value still take their two NULs.
        assert_eq!(
            serialize(&[("", "")]),
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        // Lengths that overflow the buffer end the walk, never panic.
        for_each(&[1, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0], |_, _| {
            panic!("no pair")
        });
    }
}

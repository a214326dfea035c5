//! Reading a proxy-wasm serialized header map in place (the filter's `headers.rs` fetches it): a u32 count, then
//! (name length, value length) u32 pairs, then each name and value followed by a NUL.

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

#[cfg(test)]
mod tests {
    use super::for_each;

    fn pairs(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::new();
        for_each(bytes, |n, v| out.push((n, v)));
        out
    }

    fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(n.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
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
        // Lengths that overflow the buffer end the walk, never panic.
        for_each(&[1, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0], |_, _| {
            panic!("no pair")
        });
    }
}

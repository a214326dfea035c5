//! Reading a proxy-wasm serialized header map in place (the filter's `headers.rs` fetches it): a u32 count, then
//! (name length, value length) u32 pairs, then each name and value followed by a NUL.

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

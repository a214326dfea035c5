//! Reading a proxy-wasm serialized header map in place (see `glue::headers`): a u32 count, then
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

/// The (name, value) pairs, borrowed from `bytes`. A malformed buffer yields the pairs read
/// before the fault; a name that is not UTF-8 is skipped (Envoy's never are).
pub fn parse(bytes: &[u8]) -> Vec<(&str, &[u8])> {
    let mut pairs = Vec::new();
    for_each(bytes, |name, value| {
        if let Ok(name) = std::str::from_utf8(name) {
            pairs.push((name, value));
        }
    });
    pairs
}

#[cfg(test)]
mod tests {
    use super::{for_each, parse};

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
        let pairs = parse(&bytes);
        let want: Vec<(&str, &[u8])> = map.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert_eq!(pairs, want);
        assert!(parse(&[]).is_empty());
        // Truncated: the pairs before the cut.
        assert_eq!(parse(&bytes[..bytes.len() - 12]).len(), 1);
        assert!(parse(&[9, 0, 0, 0]).is_empty());
        let mut seen = Vec::new();
        for_each(&bytes, |n, v| seen.push((n, v)));
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], (&b"x-user-id"[..], &b"u-1"[..]));
        let mut cut = 0;
        for_each(&bytes[..bytes.len() - 12], |_, _| cut += 1);
        assert_eq!(cut, 1);
        // Lengths that overflow the buffer end the walk, never panic.
        for_each(&[1, 0, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0], |_, _| {
            panic!("no pair")
        });
    }
}

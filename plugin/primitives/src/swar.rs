//! Byte searches eight bytes per step (SIMD within a register): the request path scans headers
//! such as `cookie`, `user-agent` and `:path`, and the config's JSON parser its strings, where a
//! byte-at-a-time loop costs ~10-15 wasm instructions per byte.

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `byte` in every lane.
#[inline]
pub fn splat(byte: u8) -> u64 {
    LOW * u64::from(byte)
}

/// Eight bytes as a little-endian word: lane `i` is `bytes[i]`.
#[inline]
pub fn word(bytes: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*bytes)
}

/// The high bit of every zero lane of `x` is set; the lowest set bit is exactly the first zero
/// lane, higher ones may be false (a borrow from a zero lane can mark a 0x01 lane after it).
#[inline]
pub fn zero_lanes(x: u64) -> u64 {
    x.wrapping_sub(LOW) & !x & HIGH
}

/// The high bit of every lane of `x` below `bound` (at most 0x80) is set; as for `zero_lanes`,
/// only the lowest set bit is exact. Lanes of 0x80 and above are never marked.
#[inline]
pub fn lanes_below(x: u64, bound: u8) -> u64 {
    x.wrapping_sub(splat(bound)) & !x & HIGH
}

/// The lane of the lowest bit `zero_lanes` set.
#[inline]
pub fn first_lane(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Index of the first byte of `bytes` that `matches`, eight bytes a step: `marks` sets the high
/// bit of the lanes of a word that match (its lowest mark exact, as `zero_lanes` gives), and
/// `matches` tests the bytes of the last, partial word.
#[inline]
pub fn position(
    bytes: &[u8],
    marks: impl Fn(u64) -> u64,
    matches: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let found = marks(chunk.first_chunk::<8>().map_or(0, word));
        if found != 0 {
            return Some(at + first_lane(found));
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| matches(c))
        .map(|i| at + i)
}

/// The first `Some` that `found` gives for a position of `bytes` whose byte, with the bits of
/// `fold` set, equals `byte` with them set (0x20 folds ASCII case): positions in order, eight
/// bytes a step. `found` also sees a few positions that do not match, so it checks its own.
#[inline]
pub fn find_map_candidates<T>(
    bytes: &[u8],
    byte: u8,
    fold: u8,
    mut found: impl FnMut(usize) -> Option<T>,
) -> Option<T> {
    let fold_word = splat(fold);
    let pattern = splat(byte | fold);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let x = (chunk.first_chunk::<8>().map_or(0, word) | fold_word) ^ pattern;
        // Every match is a zero lane, and a few other lanes may be marked.
        let mut zero = zero_lanes(x);
        while zero != 0 {
            if let Some(hit) = found(at + first_lane(zero)) {
                return Some(hit);
            }
            zero &= zero - 1;
        }
        at += 8;
    }
    let tail = bytes.get(at..).unwrap_or_default();
    (tail.iter().enumerate())
        .filter(|(_, b)| **b | fold == byte | fold)
        .find_map(|(i, _)| found(at + i))
}

/// Index of the first byte of `bytes` equal to `a` or `b`.
#[inline]
pub fn find_either(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (splat(a), splat(b));
    // Each mask's lowest bit is exact, so the lowest of both is the first match.
    position(
        bytes,
        |x| zero_lanes(x ^ pa) | zero_lanes(x ^ pb),
        |c| c == a || c == b,
    )
}

/// Index of the first `needle` in `bytes`.
#[inline]
pub fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    find_either(bytes, needle, needle)
}

/// `x` with its ASCII upper-case lanes lower-cased; every other lane (bytes of 0x80 and above
/// too) unchanged. Each lane's low seven bits plus an offset stay below 0x100, so no lane
/// carries into the next.
#[inline]
pub fn ascii_lower(x: u64) -> u64 {
    let low7 = x & !HIGH;
    let from_a = low7.wrapping_add(splat(0x80 - b'A'));
    let past_z = low7.wrapping_add(splat(0x80 - b'Z' - 1));
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

/// `a.eq_ignore_ascii_case(b)`, eight bytes a step: route authorities, and text conditions with
/// `ignore_case`, compare a request's header this way.
#[inline(never)]
pub fn eq_ignore_ascii_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let lower_eq = |x: u64, y: u64| ascii_lower(x) == ascii_lower(y);
    match (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(&a_last), Some(&b_last)) => {
            // Whole words, then the last eight bytes (overlapping the words before them).
            let whole = a.chunks_exact(8).zip(b.chunks_exact(8));
            whole.into_iter().all(|(x, y)| {
                let (x, y) = (x.first_chunk::<8>(), y.first_chunk::<8>());
                x.zip(y).is_some_and(|(x, y)| lower_eq(word(x), word(y)))
            }) && lower_eq(word(&a_last), word(&b_last))
        }
        _ => match (a.first_chunk::<4>(), b.first_chunk::<4>()) {
            // Four to seven bytes: the first four and the last four, as one word.
            (Some(a_first), Some(b_first)) => {
                let (Some(a_last), Some(b_last)) = (a.last_chunk::<4>(), b.last_chunk::<4>())
                else {
                    return false;
                };
                let pair = |first: &[u8; 4], last: &[u8; 4]| {
                    u64::from(u32::from_le_bytes(*first))
                        | u64::from(u32::from_le_bytes(*last)) << 32
                };
                lower_eq(pair(a_first, a_last), pair(b_first, b_last))
            }
            _ => a.eq_ignore_ascii_case(b),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_at_every_offset() {
        let text = b"abc;defg?ijklm#op;qrstuvwxyz;0123456789;\x80\x81\x00\x01#";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let slice = &text[start..end];
                for needle in [b';', b'a', b'9', 0x80, 0, 1, b'#'] {
                    assert_eq!(
                        find_byte(slice, needle),
                        slice.iter().position(|b| *b == needle),
                        "{start}..{end} {needle}"
                    );
                }
                assert_eq!(
                    find_either(slice, b'?', b'#'),
                    slice.iter().position(|b| *b == b'?' || *b == b'#'),
                    "{start}..{end}"
                );
            }
        }
        // Bytes next to the needle's value do not count; a zero lane's borrow does not either.
        assert_eq!(
            find_byte(&[0x3a, 0x3c, 0xbb, 0x3b, 0x3b, 0, 0, 0], b';'),
            Some(3)
        );
        assert_eq!(find_byte(&[0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 1], 1), Some(0));
        assert_eq!(find_byte(&[0x00, 0x01, 0x00, 0, 0, 0, 0, 0], 1), Some(1));
    }

    #[test]
    fn ascii_lower_changes_only_upper_case_letters() {
        for byte in 0..=255u8 {
            for lane in 0..8 {
                let x = splat(b'q') & !(0xff << (8 * lane)) | u64::from(byte) << (8 * lane);
                let want = splat(b'q') & !(0xff << (8 * lane))
                    | u64::from(byte.to_ascii_lowercase()) << (8 * lane);
                assert_eq!(ascii_lower(x), want, "{byte:#x} in lane {lane}");
            }
        }
    }

    #[test]
    fn eq_ignore_ascii_case_agrees_with_std() {
        let texts: [&[u8]; 12] = [
            b"www.acme-shop.example",
            b"WWW.Acme-Shop.EXAMPLE",
            b"www.acme-shop.examplf",
            b"xww.acme-shop.example",
            b"DE",
            b"de",
            b"d@",
            b"Mobile",
            b"mobilE",
            b"mobil\xc3",
            b"\xc3\x89t\xc3\xa9",
            b"\xc3\xa9t\xc3\xa9",
        ];
        let mut cut = Vec::new();
        for a in texts {
            for b in texts {
                for len in 0..=a.len().min(b.len()) {
                    let (a, b) = (&a[..len], &b[..len]);
                    assert_eq!(
                        eq_ignore_ascii_case(a, b),
                        a.eq_ignore_ascii_case(b),
                        "{a:?} {b:?}"
                    );
                }
                assert_eq!(
                    eq_ignore_ascii_case(a, b),
                    a.eq_ignore_ascii_case(b),
                    "{a:?} {b:?}"
                );
            }
        }
        // Every length, with the one difference at every place, in either case.
        for len in 1..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let upper = a.to_ascii_uppercase();
            assert!(eq_ignore_ascii_case(&a, &upper), "{len}");
            for at in 0..len {
                cut.clone_from(&upper);
                cut[at] ^= 0x01;
                assert!(!eq_ignore_ascii_case(&a, &cut), "{len} {at}");
                cut[at] = b'@' + (cut[at] & 0x1f) - 1;
                assert_eq!(
                    eq_ignore_ascii_case(&a, &cut),
                    a.eq_ignore_ascii_case(&cut),
                    "{len} {at}"
                );
            }
        }
    }

    #[test]
    fn find_map_candidates_offers_every_match_in_order() {
        let text = b"Sluice sLuice; s=1; S=2; xs ss\x93s";
        for start in 0..text.len() {
            let slice = &text[start..];
            for (byte, fold) in [(b's', 0), (b's', 0x20), (b';', 0), (b'=', 0), (0x93, 0)] {
                let mut offered = Vec::new();
                let none: Option<()> = find_map_candidates(slice, byte, fold, |at| {
                    offered.push(at);
                    None
                });
                assert_eq!(none, None);
                let want: Vec<usize> = (0..slice.len())
                    .filter(|&i| slice[i] | fold == byte | fold)
                    .collect();
                // A superset of the matches, in order, each offered once.
                assert!(offered.windows(2).all(|w| w[0] < w[1]), "{offered:?}");
                assert!(
                    want.iter().all(|i| offered.contains(i)),
                    "{start} {byte}: {offered:?}"
                );
                // The first `Some` is the answer.
                let first = find_map_candidates(slice, byte, fold, |at| {
                    (slice[at] | fold == byte | fold).then_some(at)
                });
                assert_eq!(first, want.first().copied());
            }
        }
    }
}

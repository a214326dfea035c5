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
}

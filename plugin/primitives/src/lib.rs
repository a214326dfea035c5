//! Small parsers and a hash shared by the Sluice filter and its Unleash
//! evaluator. Written here rather than pulled from crates so the .wasm stays
//! small; each module is one job with its own tests.
pub mod baggage;
pub mod base64url;
pub mod cidr;
pub mod duration;
pub mod float_text;
pub mod json;
mod murmur3;
pub mod names;
pub mod order;
pub mod pool;
pub mod quoted;
pub mod semver;
pub mod sha256;
pub mod swar;
pub mod time;

pub use murmur3::{murmur3_x86_32, murmur3_x86_32_parts, KeyBlocks, Murmur3, Murmur3x4};

/// Byte-slice equality a word at a time, inlined where the request path compares header names
/// (`==` on slices is a call to `memcmp`).
#[inline]
pub fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && compare_bytes(a, b) == 0
}

/// `memcmp` over two slices of the same length, eight bytes at a time: the sign of the first
/// differing byte (compared unsigned), 0 when equal. The filter installs it as the module's
/// `memcmp` (wasi-libc's is a byte loop, and string `==` and ordering call it), so it must not
/// compare slices itself.
#[inline]
pub fn compare_bytes(a: &[u8], b: &[u8]) -> i32 {
    let mut x = a.chunks_exact(8);
    let mut y = b.chunks_exact(8);
    for (p, q) in (&mut x).zip(&mut y) {
        let p8 = u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
        let q8 = u64::from_le_bytes([q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]]);
        if p8 != q8 {
            return first_difference(p, q);
        }
    }
    first_difference(x.remainder(), y.remainder())
}

#[inline]
fn first_difference(a: &[u8], b: &[u8]) -> i32 {
    for (p, q) in a.iter().zip(b) {
        if p != q {
            return i32::from(*p) - i32::from(*q);
        }
    }
    0
}

#[cfg(test)]
mod compare_bytes_tests {
    use super::compare_bytes;

    #[test]
    fn orders_like_memcmp() {
        // Equal prefixes of every length up to three words, then one byte apart in each
        // direction, including bytes above 0x7f (compared unsigned).
        for len in 0..24 {
            let a: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(compare_bytes(&a, &a.clone()), 0, "len {len}");
            for at in 0..len {
                for (from, to) in [(0x10u8, 0x11u8), (0x7f, 0x80), (0x00, 0xff)] {
                    let (mut lo, mut hi) = (a.clone(), a.clone());
                    lo[at] = from;
                    hi[at] = to;
                    // A later difference must not matter.
                    if at + 1 < len {
                        lo[at + 1] = 0xff;
                        hi[at + 1] = 0x00;
                    }
                    let expect = i32::from(from) - i32::from(to);
                    assert_eq!(compare_bytes(&lo, &hi), expect, "len {len} at {at}");
                    assert_eq!(compare_bytes(&hi, &lo), -expect, "len {len} at {at}");
                    assert_eq!(compare_bytes(&lo, &hi) < 0, lo < hi);
                }
            }
        }
    }
}

#[cfg(test)]
mod bytes_eq_tests {
    use super::bytes_eq;

    #[test]
    fn equal_exactly_when_the_slices_are() {
        let text = b"x-user-id: abcdefghijklmnopq";
        for i in 0..text.len() {
            for j in i..text.len() {
                let a = &text[i..j];
                let copy = a.to_vec();
                assert!(bytes_eq(a, &copy));
                let mut other = copy.clone();
                if let Some(last) = other.last_mut() {
                    *last ^= 1;
                    assert!(!bytes_eq(a, &other));
                }
            }
        }
        assert!(!bytes_eq(b"abc", b"abcd"));
        assert!(bytes_eq(b"", b""));
    }
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// murmur3 x86_32, the variant Unleash and most flag SDKs use.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    Murmur3::new(seed).write(data).finish()
}

/// murmur3 x86_32 of the concatenation of `parts`, without building it.
pub fn murmur3_x86_32_parts(parts: &[&[u8]], seed: u32) -> u32 {
    parts
        .iter()
        .fold(Murmur3::new(seed), |h, part| h.write(part))
        .finish()
}

/// murmur3 x86_32 fed in pieces. It is `Copy`, so a constant prefix can be
/// hashed once and resumed per key: Unleash hashes `"{groupId}:{userId}"` on
/// every evaluation, and only the user id changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Murmur3 {
    h: u32,
    /// Bytes short of a 4-byte block, little-endian, and how many.
    carry: u32,
    carried: u32,
    len: u32,
}

impl Murmur3 {
    pub fn new(seed: u32) -> Murmur3 {
        Murmur3 {
            h: seed,
            carry: 0,
            carried: 0,
            len: 0,
        }
    }

    #[inline]
    pub fn write(mut self, mut data: &[u8]) -> Murmur3 {
        // The reference folds in the length modulo 2^32.
        self.len = self.len.wrapping_add(data.len() as u32);
        if self.carried > 0 {
            let need = (4 - self.carried) as usize;
            let (head, rest) = data.split_at(need.min(data.len()));
            for &byte in head {
                self.carry |= u32::from(byte) << (8 * self.carried);
                self.carried += 1;
            }
            if self.carried < 4 {
                return self;
            }
            self.h = mix_block(self.h, self.carry);
            self.carry = 0;
            self.carried = 0;
            data = rest;
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            self.h = mix_block(self.h, k);
        }
        for &byte in blocks.remainder() {
            self.carry |= u32::from(byte) << (8 * self.carried);
            self.carried += 1;
        }
        self
    }

    /// `self.write(key).finish()` without the per-byte path. The 0–3 bytes the prefix carried
    /// and the key's first bytes make the first block; every later block is one unaligned
    /// load at its offset in the key, and the last 0–3 bytes are the top of the key's last
    /// word, so nothing is shifted across blocks and no buffer is filled.
    pub fn finish_with(self, key: &[u8]) -> u32 {
        // `carried` is below 4 (`write` mixes every full block).
        let carried = (self.carried & 3) as usize;
        let (Some(first), Some(rest)) = (key.first_chunk::<4>(), key.get(4 - carried..)) else {
            return self.write(key).finish();
        };
        let mut h = mix_block(
            self.h,
            self.carry | (u32::from_le_bytes(*first) << (8 * carried)),
        );
        let mut blocks = rest.chunks_exact(4);
        for w in &mut blocks {
            h = mix_block(h, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
        let left = blocks.remainder().len();
        Murmur3 {
            h,
            carry: last_word(key, left),
            carried: left as u32,
            len: self.len.wrapping_add(key.len() as u32),
        }
        .finish()
    }

    /// The bytes this state holds short of a block (0–3): prefixes that hold the same number
    /// see a key cut into the same blocks (`KeyBlocks`).
    pub fn carried(&self) -> u32 {
        self.carried
    }

    #[inline]
    pub fn finish(self) -> u32 {
        let mut h = self.h;
        if self.carried > 0 {
            h ^= mix_k(self.carry);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// A key cut into the blocks that follow a prefix carrying `carried` bytes: one request's key
/// is the same under every salt, so this is done once per alignment instead of once per salt.
#[derive(Debug, Clone, Copy)]
pub struct KeyBlocks<'k> {
    /// The key's first `4 - carried` bytes (all of them when shorter), shifted above the
    /// carried bytes.
    first: u32,
    /// `first` and the carried bytes make a whole block; otherwise they are the tail.
    first_is_block: bool,
    /// The whole blocks after the first, through `mix_k`.
    middle: &'k [u32],
    /// The last 0–3 bytes, through `mix_k` (0 when there are none: mixing 0 changes nothing).
    tail: u32,
    len: u32,
}

impl<'k> KeyBlocks<'k> {
    /// Cuts `key` for prefixes carrying `carried` bytes, its middle blocks mixed into `mixed`
    /// (a buffer kept by the caller). Words are read whole where the key has four bytes
    /// (`first_word`, `last_word`), as in `Murmur3::finish_with`.
    pub fn new(key: &[u8], carried: u32, mixed: &'k mut Vec<u32>) -> KeyBlocks<'k> {
        let need = 4 - (carried & 3) as usize;
        let rest = key.get(need..).unwrap_or_default();
        let (middle, tail) = rest.split_at(rest.len() & !3);
        mixed.clear();
        mixed.extend(
            middle
                .chunks_exact(4)
                .map(|w| mix_k(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))),
        );
        KeyBlocks {
            // Bytes past the first `need` shift out of the word.
            first: first_word(key) << (8 * (carried & 3)),
            first_is_block: key.len() >= need,
            middle: mixed,
            tail: mix_k(last_word(key, tail.len())),
            len: key.len() as u32,
        }
    }
}

/// The first four bytes of `key` as a little-endian word (all of them when shorter).
#[inline]
fn first_word(key: &[u8]) -> u32 {
    match key.first_chunk::<4>() {
        Some(w) => u32::from_le_bytes(*w),
        None => le_word(key),
    }
}

/// The last `n` (0–3) bytes of `key` as a little-endian word.
#[inline]
fn last_word(key: &[u8], n: usize) -> u32 {
    match key.last_chunk::<4>() {
        Some(_) if n == 0 => 0,
        Some(w) => u32::from_le_bytes(*w) >> (8 * (4 - n)),
        None => le_word(key.get(key.len().saturating_sub(n)..).unwrap_or_default()),
    }
}

/// Four prefixes that carry the same number of bytes, resumed side by side with one key: the
/// per-salt part of `finish_with` (the first block, which holds the prefix's carried bytes, the
/// chain of `h` over the key's blocks, the length and the final mix), four lanes at a time.
#[derive(Debug, Clone, Copy)]
pub struct Murmur3x4 {
    h: Lanes,
    carry: Lanes,
    len: Lanes,
}

impl Murmur3x4 {
    /// The four prefixes must carry the same number of bytes (`Murmur3::carried`).
    pub fn new(prefixes: [Murmur3; 4]) -> Murmur3x4 {
        Murmur3x4 {
            h: Lanes::new(prefixes.map(|p| p.h)),
            carry: Lanes::new(prefixes.map(|p| p.carry)),
            len: Lanes::new(prefixes.map(|p| p.len)),
        }
    }

    /// Each lane's `finish_with(key)`, given `key` cut for the lanes' `carried`.
    #[inline]
    pub fn finish_with(&self, key: &KeyBlocks) -> [u32; 4] {
        let first = mix_k4(self.carry.or(Lanes::splat(key.first)));
        let mut h = self.h;
        if key.first_is_block {
            h = chain4(h, first);
            for &k in key.middle {
                h = chain4(h, Lanes::splat(k));
            }
            h = h.xor(Lanes::splat(key.tail));
        } else {
            // Prefix and key together are shorter than a block: all of it is the tail.
            h = h.xor(first);
        }
        h = h.xor(self.len.add(Lanes::splat(key.len)));
        fmix4(h).to_array()
    }
}

/// The block mix before it enters `h`.
#[inline]
fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// Up to four bytes as a little-endian word.
#[inline]
fn le_word(bytes: &[u8]) -> u32 {
    bytes.iter().rev().fold(0, |w, &b| (w << 8) | u32::from(b))
}

#[inline]
fn mix_k4(k: Lanes) -> Lanes {
    k.mul(C1).rotl(15).mul(C2)
}

/// `h` after one mixed block, per lane.
#[inline]
fn chain4(h: Lanes, k: Lanes) -> Lanes {
    h.xor(k).rotl(13).mul(5).add(Lanes::splat(0xe654_6b64))
}

#[inline]
fn fmix4(h: Lanes) -> Lanes {
    let h = h.xor(h.shr(16)).mul(0x85eb_ca6b);
    let h = h.xor(h.shr(13)).mul(0xc2b2_ae35);
    h.xor(h.shr(16))
}

/// Four u32 lanes: wasm SIMD128 where the module is built with it, plain arrays elsewhere (the
/// readable reference; tests run it natively against the scalar hash).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
struct Lanes(core::arch::wasm32::v128);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes {
    #[inline]
    fn new(v: [u32; 4]) -> Lanes {
        Lanes(core::arch::wasm32::u32x4(v[0], v[1], v[2], v[3]))
    }
    #[inline]
    fn splat(x: u32) -> Lanes {
        Lanes(core::arch::wasm32::u32x4_splat(x))
    }
    #[inline]
    fn or(self, o: Lanes) -> Lanes {
        Lanes(core::arch::wasm32::v128_or(self.0, o.0))
    }
    #[inline]
    fn xor(self, o: Lanes) -> Lanes {
        Lanes(core::arch::wasm32::v128_xor(self.0, o.0))
    }
    #[inline]
    fn add(self, o: Lanes) -> Lanes {
        Lanes(core::arch::wasm32::u32x4_add(self.0, o.0))
    }
    #[inline]
    fn mul(self, m: u32) -> Lanes {
        Lanes(core::arch::wasm32::u32x4_mul(
            self.0,
            core::arch::wasm32::u32x4_splat(m),
        ))
    }
    #[inline]
    fn shr(self, n: u32) -> Lanes {
        Lanes(core::arch::wasm32::u32x4_shr(self.0, n))
    }
    #[inline]
    fn rotl(self, n: u32) -> Lanes {
        use core::arch::wasm32::{u32x4_shl, u32x4_shr, v128_or};
        Lanes(v128_or(u32x4_shl(self.0, n), u32x4_shr(self.0, 32 - n)))
    }
    #[inline]
    fn to_array(self) -> [u32; 4] {
        use core::arch::wasm32::u32x4_extract_lane;
        [
            u32x4_extract_lane::<0>(self.0),
            u32x4_extract_lane::<1>(self.0),
            u32x4_extract_lane::<2>(self.0),
            u32x4_extract_lane::<3>(self.0),
        ]
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Clone, Copy)]
struct Lanes([u32; 4]);

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Lanes {
    fn new(v: [u32; 4]) -> Lanes {
        Lanes(v)
    }
    fn splat(x: u32) -> Lanes {
        Lanes([x; 4])
    }
    fn zip(self, o: Lanes, f: impl Fn(u32, u32) -> u32) -> Lanes {
        let (a, b) = (self.0, o.0);
        Lanes([f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])])
    }
    fn or(self, o: Lanes) -> Lanes {
        self.zip(o, |a, b| a | b)
    }
    fn xor(self, o: Lanes) -> Lanes {
        self.zip(o, |a, b| a ^ b)
    }
    fn add(self, o: Lanes) -> Lanes {
        self.zip(o, u32::wrapping_add)
    }
    fn mul(self, m: u32) -> Lanes {
        Lanes(self.0.map(|a| a.wrapping_mul(m)))
    }
    fn shr(self, n: u32) -> Lanes {
        Lanes(self.0.map(|a| a >> n))
    }
    fn rotl(self, n: u32) -> Lanes {
        Lanes(self.0.map(|a| a.rotate_left(n)))
    }
    fn to_array(self) -> [u32; 4] {
        self.0
    }
}

impl core::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.to_array().fmt(f)
    }
}

#[inline]
fn mix_block(h: u32, k: u32) -> u32 {
    (h ^ mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[cfg(test)]
mod tests {
    use super::{murmur3_x86_32, murmur3_x86_32_parts, KeyBlocks, Murmur3, Murmur3x4};

    /// Pseudo-random bytes (xorshift), so the test needs no crate.
    fn bytes(seed: &mut u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                *seed as u8
            })
            .collect()
    }

    #[test]
    fn four_lanes_hash_like_finish_with() {
        let mut seed = 0x1234_5678;
        for key_len in 0..=64 {
            let key = bytes(&mut seed, key_len);
            for carried in 0..4 {
                // Four random prefixes of lengths 0..40 that carry `carried` bytes.
                let prefixes = [0, 1, 2, 3].map(|lane| {
                    let len = 4 * ((key_len + lane * 3) % 10) + carried;
                    let text = bytes(&mut seed, len);
                    (text.clone(), Murmur3::new(0).write(&text))
                });
                let mut mixed = Vec::new();
                let blocks = KeyBlocks::new(&key, carried as u32, &mut mixed);
                let four = Murmur3x4::new(prefixes.clone().map(|(_, m)| m));
                let got = four.finish_with(&blocks);
                for (lane, (text, prefix)) in prefixes.iter().enumerate() {
                    let joined = [&text[..], &key[..]].concat();
                    assert_eq!(got[lane], murmur3_x86_32(&joined, 0), "{key_len} {carried}");
                    assert_eq!(got[lane], prefix.finish_with(&key));
                }
            }
        }
    }

    #[test]
    fn matches_reference_vectors() {
        // Vectors from the reference implementation (SMHasher).
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn finish_with_hashes_like_write_then_finish() {
        let text = b"The quick brown fox jumps over the lazy dog, twice: the quick brown fox";
        for split in 0..text.len() {
            let prefix = Murmur3::new(0).write(&text[..split]);
            for end in split..text.len() {
                let key = &text[split..end];
                assert_eq!(
                    prefix.finish_with(key),
                    prefix.write(key).finish(),
                    "{split} {end}"
                );
            }
        }
    }

    #[test]
    fn parts_hash_like_their_concatenation() {
        let text = b"The quick brown fox jumps over the lazy dog";
        for seed in [0, 1, 86_028_157] {
            let whole = murmur3_x86_32(text, seed);
            for a in 0..text.len() {
                for b in a..text.len() {
                    let parts: [&[u8]; 3] = [&text[..a], &text[a..b], &text[b..]];
                    assert_eq!(murmur3_x86_32_parts(&parts, seed), whole, "{a} {b}");
                }
            }
        }
        assert_eq!(murmur3_x86_32_parts(&[], 0), 0);
        let prefix = Murmur3::new(86_028_157).write(b"feature.17").write(b":");
        assert_eq!(
            prefix.write(b"user-42").finish(),
            murmur3_x86_32(b"feature.17:user-42", 86_028_157)
        );
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
    }
}

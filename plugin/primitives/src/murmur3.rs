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
        let last = key.last_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        let tail = if left > 0 {
            last >> (8 * (4 - left))
        } else {
            0
        };
        Murmur3 {
            h,
            carry: tail,
            carried: left as u32,
            len: self.len.wrapping_add(key.len() as u32),
        }
        .finish()
    }

    #[inline]
    pub fn finish(self) -> u32 {
        let mut h = self.h;
        if self.carried > 0 {
            h ^= self.carry.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

#[inline]
fn mix_block(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[cfg(test)]
mod tests {
    use super::{murmur3_x86_32, murmur3_x86_32_parts, Murmur3};

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

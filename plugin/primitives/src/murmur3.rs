const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// murmur3 x86_32, the variant Unleash and most flag SDKs use.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    murmur3_x86_32_parts(&[data], seed)
}

fn mix_block(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

fn finish(mut h: u32, tail: &[u8], len: usize) -> u32 {
    let mut k: u32 = 0;
    for (i, byte) in tail.iter().enumerate() {
        k ^= u32::from(*byte) << (8 * i);
    }
    if !tail.is_empty() {
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    // The reference folds in the length modulo 2^32.
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// murmur3 x86_32 of the concatenation of `parts`, without building it:
/// Unleash hashes `"{groupId}:{userId}"` on every evaluation, and this keeps
/// that free of allocation.
pub fn murmur3_x86_32_parts(parts: &[&[u8]], seed: u32) -> u32 {
    let mut h = seed;
    let mut pending = [0u8; 4];
    let mut filled = 0usize;
    let mut len = 0usize;
    for part in parts {
        len += part.len();
        let mut rest: &[u8] = part;
        if filled > 0 {
            let take = (4 - filled).min(rest.len());
            pending[filled..filled + take].copy_from_slice(&rest[..take]);
            filled += take;
            rest = &rest[take..];
            if filled < 4 {
                continue;
            }
            h = mix_block(h, u32::from_le_bytes(pending));
        }
        let mut blocks = rest.chunks_exact(4);
        for block in &mut blocks {
            h = mix_block(
                h,
                u32::from_le_bytes([block[0], block[1], block[2], block[3]]),
            );
        }
        let tail = blocks.remainder();
        pending[..tail.len()].copy_from_slice(tail);
        filled = tail.len();
    }
    finish(h, &pending[..filled], len)
}

#[cfg(test)]
mod tests {
    use super::{murmur3_x86_32, murmur3_x86_32_parts};

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
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
    }
}

//! Bucketing: a user's stable position in [0, 10 000) for one salt.
//!
//! murmur3 x86_32 (seed 0) of `salt:key`, modulo 10 000, so a bucket is one
//! 0.01% step. The same function runs natively, in the .wasm and in any tool,
//! so a user lands in the same bucket wherever it is computed.

/// Number of buckets: 10 000 gives 0.01% granularity.
pub const BUCKETS: u32 = 10_000;

/// murmur3 x86_32, the variant Unleash and most flag SDKs use.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    let mut k: u32 = 0;
    for (i, byte) in tail.iter().enumerate() {
        k ^= u32::from(*byte) << (8 * i);
    }
    if !tail.is_empty() {
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The bucket of `key` under `salt`: murmur3(`salt:key`) mod 10 000.
/// Hashes in place through a small stack buffer when it fits, so the common
/// case allocates nothing.
pub fn bucket(salt: &str, key: &str) -> u32 {
    let len = salt.len() + 1 + key.len();
    let mut stack = [0u8; 256];
    if len <= stack.len() {
        stack[..salt.len()].copy_from_slice(salt.as_bytes());
        stack[salt.len()] = b':';
        stack[salt.len() + 1..len].copy_from_slice(key.as_bytes());
        murmur3_x86_32(&stack[..len], 0) % BUCKETS
    } else {
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(salt.as_bytes());
        joined.push(b':');
        joined.extend_from_slice(key.as_bytes());
        murmur3_x86_32(&joined, 0) % BUCKETS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        // Vectors from the reference implementation (SMHasher) and Unleash's tests.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
        assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
    }

    #[test]
    fn long_keys_hash_like_short_ones() {
        let long_key = "k".repeat(400);
        let joined = format!("salt:{long_key}");
        assert_eq!(bucket("salt", &long_key), murmur3_x86_32(joined.as_bytes(), 0) % BUCKETS);
    }
}

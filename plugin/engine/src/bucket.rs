//! Bucketing: a user's stable position in [0, 10 000) for one salt.
//!
//! murmur3 x86_32 (seed 0) of `salt:key`, modulo 10 000, so a bucket is one
//! 0.01% step. The same function runs natively, in the .wasm and in any tool,
//! so a user lands in the same bucket wherever it is computed.

pub use sluice_primitives::murmur3_x86_32;
use sluice_primitives::Murmur3;
use std::ops::Deref;

/// Number of buckets: 10 000 gives 0.01% granularity.
pub const BUCKETS: u32 = 10_000;

/// A bucket for a request without identity: not sticky, but spread like a
/// real key and independent between salts.
#[inline(never)]
pub fn random_bucket(salt: &str, entropy: u64) -> u32 {
    let seed = (entropy as u32) ^ ((entropy >> 32) as u32);
    murmur3_x86_32(salt.as_bytes(), seed) % BUCKETS
}

/// The bucket of `key` under `salt`: murmur3(`salt:key`) mod 10 000.
/// Hashes in place through a small stack buffer when it fits, so the common
/// case allocates nothing.
pub fn bucket(salt: &str, key: &[u8]) -> u32 {
    let len = salt.len() + 1 + key.len();
    let mut stack = [0u8; 256];
    if len <= stack.len() {
        stack[..salt.len()].copy_from_slice(salt.as_bytes());
        stack[salt.len()] = b':';
        stack[salt.len() + 1..len].copy_from_slice(key);
        murmur3_x86_32(&stack[..len], 0) % BUCKETS
    } else {
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(salt.as_bytes());
        joined.push(b':');
        joined.extend_from_slice(key);
        murmur3_x86_32(&joined, 0) % BUCKETS
    }
}

/// A salt with `salt:` already hashed: a request's bucket hashes only the key.
#[derive(Debug, Clone)]
pub struct Salt {
    text: String,
    prefix: Murmur3,
    /// Its place in the plan's `SaltTable`, when it has one (`NO_SLOT` otherwise).
    slot: u32,
}

const NO_SLOT: u32 = u32::MAX;

impl Salt {
    pub fn new(text: String) -> Salt {
        let prefix = Murmur3::new(0).write(text.as_bytes()).write(b":");
        Salt {
            text,
            prefix,
            slot: NO_SLOT,
        }
    }

    /// The murmur3 state after `salt:`.
    pub fn prefix(&self) -> Murmur3 {
        self.prefix
    }

    /// Where the plan's `SaltTable` keeps this salt's hash of a request's key (past the end
    /// of any batch when it has no slot).
    pub fn slot_index(&self) -> usize {
        self.slot as usize
    }

    pub(crate) fn set_slot(&mut self, slot: u32) {
        self.slot = slot;
    }

    /// `bucket(self, key)`, from the precomputed prefix.
    #[inline(never)]
    pub fn bucket(&self, key: &[u8]) -> u32 {
        self.prefix.finish_with(key) % BUCKETS
    }
}

impl Deref for Salt {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_hash_like_short_ones() {
        let long_key = "k".repeat(400);
        let joined = format!("salt:{long_key}");
        assert_eq!(
            bucket("salt", long_key.as_bytes()),
            murmur3_x86_32(joined.as_bytes(), 0) % BUCKETS
        );
    }

    #[test]
    fn a_salt_buckets_like_the_joined_text() {
        for salt in ["", "a", "abc", "abcd", "checkout", "new-search.ramp"] {
            let s = Salt::new(salt.to_string());
            for key in ["", "u", "user-1", "user-00004711", "0123456789abcdef0123"] {
                assert_eq!(
                    s.bucket(key.as_bytes()),
                    bucket(salt, key.as_bytes()),
                    "{salt}:{key}"
                );
            }
        }
    }
}

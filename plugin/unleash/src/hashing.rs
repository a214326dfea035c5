//! Unleash's bucketing: murmur3 x86_32 of `"{group}:{id}"`, normalised to
//! `1..=modulus`. Rollouts use seed 0 and modulus 100; variants use
//! [`VARIANT_SEED`] and the sum of the variant weights.

use sluice_primitives::Murmur3;

/// The seed Unleash hashes variant stickiness with, so a user's variant does
/// not correlate with whether their rollout bucket is in.
pub const VARIANT_SEED: u32 = 86_028_157;

/// `murmur3("{group}:{id}", seed) % modulus + 1`; 0 only for a zero modulus.
pub fn normalized_hash(group: &str, id: &str, modulus: u32, seed: u32) -> u32 {
    HashGroup::new(group, seed).bucket(id, modulus)
}

/// A group with `"{group}:"` already hashed, so a bucket costs only the
/// id's bytes (a few nanoseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashGroup(Murmur3);

impl HashGroup {
    pub(crate) fn new(group: &str, seed: u32) -> HashGroup {
        HashGroup(Murmur3::new(seed).write(group.as_bytes()).write(b":"))
    }

    /// `1..=modulus`; 0 only for a zero modulus.
    pub(crate) fn bucket(&self, id: &str, modulus: u32) -> u32 {
        let hash = self.0.write(id.as_bytes()).finish();
        hash.checked_rem(modulus).map_or(0, |r| r + 1)
    }
}

/// The rollout bucket of `id` in `group`, 1..=100.
pub fn rollout_bucket(group: &str, id: &str) -> u32 {
    normalized_hash(group, id, 100, 0)
}

/// A random draw normalised like a hash: `1..=modulus` (0 for a zero modulus).
pub(crate) fn random_bucket(draw: u32, modulus: u32) -> u32 {
    draw.checked_rem(modulus).map_or(0, |r| r + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_buckets_match_the_sdks() {
        // The cross-SDK vectors from unleash-client-node's tests.
        assert_eq!(rollout_bucket("gr1", "123"), 73);
        assert_eq!(rollout_bucket("groupX", "999"), 25);
    }

    #[test]
    fn rollout_buckets_agree_with_the_specification_cases() {
        // 03-gradual-rollout-user-id: 50% of group AB12A has user 122, not 155.
        assert!(rollout_bucket("AB12A", "122") <= 50);
        assert!(rollout_bucket("AB12A", "155") > 50);
        // 10-flexible-rollout: 10% of its group has 174 and not 499.
        assert!(rollout_bucket("Feature.flexibleRollout.10", "174") <= 10);
        assert!(rollout_bucket("Feature.flexibleRollout.10", "499") > 10);
    }

    #[test]
    fn variant_hash_uses_its_own_seed() {
        // 08-variants: three variants of weight 33 (total 99) in
        // Feature.Variants.C: user 232 lands in the first third, 607 in the
        // second, 656 in the last.
        let bucket = |user| normalized_hash("Feature.Variants.C", user, 99, VARIANT_SEED);
        assert!((1..=33).contains(&bucket("232")));
        assert!((34..=66).contains(&bucket("607")));
        assert!((67..=99).contains(&bucket("656")));
        assert_ne!(
            normalized_hash("g", "u", 100, 0),
            normalized_hash("g", "u", 100, VARIANT_SEED)
        );
    }

    #[test]
    fn zero_modulus_is_not_a_panic() {
        assert_eq!(normalized_hash("g", "u", 0, 0), 0);
        assert_eq!(random_bucket(7, 0), 0);
        assert_eq!(random_bucket(7, 5), 3);
    }
}

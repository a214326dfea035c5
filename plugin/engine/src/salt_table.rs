//! Every flag's sticky buckets for one request, hashed together.
//!
//! A request's key is the same under every flag's salt; only the salt's pre-hashed prefix differs.
//! Prefixes that carry the same number of bytes past their last block see the key cut into the
//! same blocks, so the key is cut once per alignment (`KeyBlocks`) and the per-salt rest runs four
//! salts at a time (`Murmur3x4`, wasm SIMD128 lanes). The table is built with the
//! plan; a batch's hashes are computed when a flag first needs one of them, and kept in
//! `Buckets`, which the caller keeps between requests.
use crate::bucket::{Salt, BUCKETS};
use crate::plan::{FlagPlan, Serve};
use sluice_primitives::{KeyBlocks, Murmur3, Murmur3x4};

/// The flags' salts in batches of prefixes, four to a lane group. Batch `4 * order + carried`
/// holds the salts of flags with `KeyPlan::session_first == order` (a request may have different
/// user and session keys) whose prefix carries `carried` bytes (`Murmur3::carried`). A salt's
/// slot is its lane in its batch.
#[derive(Debug, Default)]
pub struct SaltTable {
    batches: [Vec<Murmur3x4>; 8],
}

impl SaltTable {
    /// A slot for each salt an enabled flag can hash with: the rollout salt of a flag with a
    /// rollout rule, the ramp salt of a flag with a ramp. Sets the salts' slots.
    #[inline(never)]
    pub fn new(flags: &mut [FlagPlan]) -> SaltTable {
        let mut prefixes: [Vec<Murmur3>; 8] = Default::default();
        for flag in flags.iter_mut().filter(|f| f.enabled) {
            let session_first = flag.key.session_first;
            let rolls_out = flag
                .rules
                .iter()
                .any(|r| matches!(r.serve, Serve::Rollout(_)));
            if rolls_out {
                add_salt(&mut prefixes, session_first, &mut flag.key.salt);
            }
            if let Some(ramp) = &mut flag.ramp {
                add_salt(&mut prefixes, session_first, &mut ramp.salt);
            }
        }
        SaltTable {
            batches: prefixes.map(|aligned| lane_groups(&aligned)),
        }
    }
}

/// The batch of a salt hashed with the `session_first` identity.
#[inline]
fn batch_of(session_first: bool, salt: &Salt) -> usize {
    (usize::from(session_first) << 2) | (salt.prefix().carried() & 3) as usize
}

/// Appends `salt`'s prefix to its batch; its slot is its place there.
fn add_salt(batches: &mut [Vec<Murmur3>; 8], session_first: bool, salt: &mut Salt) {
    let batch = &mut batches[batch_of(session_first, salt)];
    salt.set_slot(batch.len() as u32);
    batch.push(salt.prefix());
}

/// `prefixes` (all carrying the same number of bytes) four to a lane group; a short last group
/// repeats its first prefix, whose hash nobody reads.
#[inline(never)]
fn lane_groups(prefixes: &[Murmur3]) -> Vec<Murmur3x4> {
    prefixes
        .chunks(4)
        .filter_map(|four| {
            let first = *four.first()?;
            let lanes = [0, 1, 2, 3].map(|lane| four.get(lane).copied().unwrap_or(first));
            Some(Murmur3x4::new(lanes))
        })
        .collect()
}

/// One request's hashes of its key under the table's salts (murmur3 of `salt:key`, per slot).
/// Kept between requests: after the first, nothing is allocated.
#[derive(Debug, Default, Clone)]
pub struct Buckets {
    /// Bit `b`: `hashes[b]` are this request's.
    ready: u8,
    /// Per batch of the table, per lane group.
    hashes: [Vec<[u32; 4]>; 8],
}

impl Buckets {
    /// Forgets the last request's hashes.
    pub fn clear(&mut self) {
        self.ready = 0;
    }

    /// The bucket of `key` under `salt`, `key` being this request's identity for flags with this
    /// `session_first` (the same for all of them). Salts outside the table hash on their own.
    #[inline]
    pub fn bucket(
        &mut self,
        table: &SaltTable,
        session_first: bool,
        salt: &Salt,
        key: &[u8],
    ) -> u32 {
        let batch = batch_of(session_first, salt);
        if self.ready & (1 << batch) == 0 {
            self.fill(table, batch, key);
        }
        let slot = salt.slot_index();
        match self.hashes[batch].get(slot >> 2) {
            Some(four) => four[slot & 3] % BUCKETS,
            None => salt.bucket(key),
        }
    }

    /// Hashes `key` under every salt of `batch`, once per request.
    #[inline(never)]
    fn fill(&mut self, table: &SaltTable, batch: usize, key: &[u8]) {
        let (groups, carried) = (&table.batches[batch & 7], (batch & 3) as u32);
        let key = KeyBlocks::new(key, carried);
        hash_batch(groups, key, &mut self.hashes[batch & 7]);
        self.ready |= 1 << batch;
    }
}

/// murmur3 of `salt:key` for every lane of `groups`, into `out`.
#[inline(never)]
fn hash_batch(groups: &[Murmur3x4], key: KeyBlocks, out: &mut Vec<[u32; 4]>) {
    out.clear();
    out.extend(groups.iter().map(|four| four.finish_with(&key)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::bucket;

    #[test]
    fn batched_buckets_match_one_at_a_time() {
        let text = "abcdefghij".repeat(4);
        let mut salts: Vec<Salt> = (0..=40).map(|n| Salt::new(text[..n].to_string())).collect();
        let mut prefixes: [Vec<Murmur3>; 8] = Default::default();
        for (n, salt) in salts.iter_mut().enumerate() {
            add_salt(&mut prefixes, n % 3 == 0, salt);
        }
        let table = SaltTable {
            batches: prefixes.map(|aligned| lane_groups(&aligned)),
        };
        let keys = "user-00004711:0123456789abcdef0123456789abcdef0123456789abcdef01".repeat(2);
        let mut buckets = Buckets::default();
        for len in 0..=64 {
            let key = &keys.as_bytes()[len..2 * len];
            buckets.clear();
            for (n, salt) in salts.iter().enumerate() {
                let got = buckets.bucket(&table, n % 3 == 0, salt, key);
                assert_eq!(got, bucket(salt, key), "{}:{len}", &**salt);
            }
        }
        // A salt outside the table hashes on its own.
        let outside = Salt::new("outside".to_string());
        assert_eq!(
            buckets.bucket(&table, false, &outside, b"user-1"),
            bucket("outside", b"user-1")
        );
    }
}

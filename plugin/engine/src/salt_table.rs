//! Every flag's sticky buckets for one request, hashed together.
//!
//! A request's key is the same under every flag's salt; only the salt's pre-hashed prefix differs.
//! Prefixes that carry the same number of bytes past their last block see the key cut into the
//! same blocks, so the key is cut once per alignment (`KeyBlocks`) and the per-salt rest runs four
//! salts at a time (`Murmur3x4`, wasm SIMD128 lanes). The table is built with the plan; an
//! identity's hashes are computed when a flag first needs one of them, and kept in `Buckets`,
//! which the caller keeps between requests.
use crate::bucket::{Salt, BUCKETS};
use crate::plan::{FlagPlan, Serve};
use sluice_primitives::{KeyBlocks, Murmur3, Murmur3x4};

/// Fewer salts of one alignment than a whole lane group hash one at a time: cutting the key and
/// setting up the lanes costs about what one to three single hashes do (bench-host: batches from
/// 4 salts took flags.json −146 and 10 flags −513 instructions against 8; from 1, demo.json
/// +813).
const MIN_BATCH: u32 = 4;

/// The flags' salt prefixes, by identity order (`KeyPlan::session_first`: a request may have
/// different user and session keys) and by the bytes they carry (`Murmur3::carried`), four to a
/// lane group. A salt's slot is lane `slot % 4` of group `slot / 4` of its order's groups, the
/// alignments one after the other.
#[derive(Debug, Default)]
pub struct SaltTable {
    orders: [[Vec<Murmur3x4>; 4]; 2],
    /// Per identity order: it has no batch.
    unbatched: [bool; 2],
}

impl SaltTable {
    /// A slot for each salt an enabled flag can hash with (the rollout salt of a flag with a
    /// rollout rule, the ramp salt of a flag with a ramp) in alignments of `MIN_BATCH` salts or
    /// more. Sets the salts' slots.
    #[inline(never)]
    pub fn new(flags: &mut [FlagPlan]) -> SaltTable {
        let mut salts: Vec<(usize, &mut Salt)> = flags.iter_mut().flat_map(hashed_salts).collect();
        SaltTable::of(&mut salts)
    }

    /// The table of `(identity order, salt)`s.
    #[inline(never)]
    fn of(salts: &mut [(usize, &mut Salt)]) -> SaltTable {
        let counts = salts_per_batch(salts);
        let mut next = first_slots(&counts);
        let mut prefixes: [[Vec<Murmur3>; 4]; 2] = Default::default();
        for (order, salt) in salts.iter_mut() {
            let (order, carried) = (*order & 1, aligned(salt));
            if counts[order][carried] >= MIN_BATCH {
                salt.set_slot(next[order][carried]);
                next[order][carried] += 1;
                prefixes[order][carried].push(salt.prefix());
            }
        }
        let orders = prefixes.map(|by_carried| by_carried.map(|aligned| lane_groups(&aligned)));
        SaltTable {
            unbatched: orders
                .each_ref()
                .map(|by_carried| by_carried.iter().all(Vec::is_empty)),
            orders,
        }
    }
}

/// How many salts each identity order has of each alignment.
#[inline(never)]
fn salts_per_batch(salts: &[(usize, &mut Salt)]) -> [[u32; 4]; 2] {
    let mut counts = [[0u32; 4]; 2];
    for (order, salt) in salts {
        counts[order & 1][aligned(salt)] += 1;
    }
    counts
}

/// Each alignment's first slot: the batched alignments follow each other, each starting a lane
/// group.
#[inline(never)]
fn first_slots(counts: &[[u32; 4]; 2]) -> [[u32; 4]; 2] {
    counts.map(|by_carried| {
        let mut start = 0;
        by_carried.map(|count| {
            let first = start;
            if count >= MIN_BATCH {
                start += count.next_multiple_of(4);
            }
            first
        })
    })
}

/// The salts `flag` can hash with, with its identity order.
fn hashed_salts(flag: &mut FlagPlan) -> impl Iterator<Item = (usize, &mut Salt)> {
    let order = usize::from(flag.key.session_first);
    let rolls_out = flag
        .rules
        .iter()
        .any(|r| matches!(r.serve, Serve::Rollout(_)));
    let rollout = (flag.enabled && rolls_out).then_some(&mut flag.key.salt);
    let ramp = match &mut flag.ramp {
        Some(ramp) if flag.enabled => Some(&mut ramp.salt),
        _ => None,
    };
    rollout
        .into_iter()
        .chain(ramp)
        .map(move |salt| (order, salt))
}

/// The bytes `salt`'s prefix carries, as an index.
fn aligned(salt: &Salt) -> usize {
    (salt.prefix().carried() & 3) as usize
}

/// `prefixes` (all carrying the same number of bytes) four to a lane group, the last group
/// padded with the first prefix (a hash nobody reads).
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

/// The most mixed key blocks `Buckets` keeps between requests (a 1 KiB key): a longer key, which
/// only a client sending an absurd identity makes, does not leave its buffer behind in the VM.
const KEPT_BLOCKS: usize = 256;

/// One request's hashes of its key under the table's salts (murmur3 of `salt:key`, per slot).
/// Kept between requests: after the first, nothing is allocated.
#[derive(Debug, Default, Clone)]
pub struct Buckets {
    /// Per identity order: `hashes` are this request's.
    ready: [bool; 2],
    /// Per identity order, per slot.
    hashes: [Vec<u32>; 2],
    /// The key's middle blocks, mixed (`KeyBlocks`).
    mixed: Vec<u32>,
}

impl Buckets {
    /// Forgets the last request's hashes. An identity order without batches is ready as it is:
    /// its salts hash one at a time.
    pub fn clear(&mut self, table: &SaltTable) {
        self.ready = table.unbatched;
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
        let order = usize::from(session_first);
        if !self.ready[order] {
            self.fill(table, order, key);
        }
        let slot = salt.slot_index();
        match self.hashes[order].get(slot) {
            Some(hash) => hash % BUCKETS,
            None => salt.bucket(key),
        }
    }

    /// Hashes `key` under every salt of identity order `order`, once per request.
    #[inline(never)]
    fn fill(&mut self, table: &SaltTable, order: usize, key: &[u8]) {
        let (Some(by_carried), Some(out), Some(ready)) = (
            table.orders.get(order),
            self.hashes.get_mut(order),
            self.ready.get_mut(order),
        ) else {
            return;
        };
        // Every slot is written below: the buffer is zeroed only when its length changes (a
        // new table), not per request (a fill costs as much as the hashes it makes room for).
        let len = 4 * by_carried.iter().map(Vec::len).sum::<usize>();
        if out.len() != len {
            out.clear();
            out.resize(len, 0);
        }
        let mut slots = out.chunks_exact_mut(4);
        for (carried, groups) in (0..4).zip(by_carried) {
            if !groups.is_empty() {
                let cut = KeyBlocks::new(key, carried, &mut self.mixed);
                hash_groups(groups, cut, &mut slots);
            }
        }
        if self.mixed.capacity() > KEPT_BLOCKS {
            self.mixed = Vec::new();
        }
        *ready = true;
    }
}

/// The hashes of `groups` with `key`, into the next lane groups of `slots`.
#[inline(never)]
fn hash_groups(groups: &[Murmur3x4], key: KeyBlocks, slots: &mut std::slice::ChunksExactMut<u32>) {
    for (four, lanes) in groups.iter().zip(slots) {
        lanes.copy_from_slice(&four.finish_with(&key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::bucket;

    #[test]
    fn batched_buckets_match_one_at_a_time() {
        // Salts of every length 1..=41, three of each, over both identity orders: every
        // alignment of each order has a batch.
        let text = "abcdefghij".repeat(4);
        let mut salts: Vec<Salt> = (0..=40)
            .flat_map(|n| ["x", "y", "z"].map(|v| Salt::new(format!("{v}{}", &text[..n]))))
            .collect();
        let table = SaltTable::of(
            &mut salts
                .iter_mut()
                .enumerate()
                .map(|(n, salt)| (usize::from(n % 3 == 0), salt))
                .collect::<Vec<_>>(),
        );
        for by_carried in &table.orders {
            assert!(by_carried.iter().all(|groups| groups.len() >= 2));
        }
        let keys = "user-00004711:0123456789abcdef0123456789abcdef0123456789abcdef01".repeat(2);
        let mut buckets = Buckets::default();
        for len in 0..=64 {
            let key = &keys.as_bytes()[len..2 * len];
            buckets.clear(&table);
            for (n, salt) in salts.iter().enumerate() {
                let got = buckets.bucket(&table, n % 3 == 0, salt, key);
                assert_eq!(got, bucket(salt, key), "{}:{len}", &**salt);
            }
        }
        // A key of 64 KiB hashes like any other, and its blocks' buffer is not kept.
        let long = "k".repeat(65_536);
        buckets.clear(&table);
        assert_eq!(
            buckets.bucket(&table, false, &salts[1], long.as_bytes()),
            bucket(&salts[1], long.as_bytes())
        );
        assert!(buckets.mixed.capacity() <= KEPT_BLOCKS);
        // A salt outside the table hashes on its own.
        let outside = Salt::new("outside".to_string());
        assert_eq!(
            buckets.bucket(&table, false, &outside, b"user-1"),
            bucket("outside", b"user-1")
        );
    }
}

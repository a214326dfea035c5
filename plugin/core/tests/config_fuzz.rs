//! A pushed config can be anything: mutated versions of every example must be
//! accepted or rejected with an error, never panic (a panic in `on_configure`
//! would trap the VM instead of rejecting the config with its reason).
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::panic::catch_unwind;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replacement tokens that reach deep into validation rather than breaking
/// the JSON on the first byte.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "100.5",
    "1e309",
    "\"\"",
    "\"x\"",
    "null",
    "true",
    "[]",
    "{}",
    "\"10.0.0.0/99\"",
    "\"1.2\"",
    "\"2026-13-40T99:00:00Z\"",
    "\"5x\"",
    "\"a\\r\\nb\"",
    "\"*.\"",
    "\"\\u0000\"",
];

#[test]
fn mutated_configs_are_rejected_or_accepted_but_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut examples: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 6);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut accepted, mut rejected) = (0, 0);
    for path in &examples {
        let original = std::fs::read_to_string(path).unwrap();
        for _ in 0..400 {
            let mut text = original.clone();
            for _ in 0..1 + rng.below(3) {
                // Replace a JSON scalar-ish span (after a `:` or `,` or `[`) by a token.
                let starts: Vec<usize> = text
                    .match_indices([':', ',', '['])
                    .map(|(i, _)| i + 1)
                    .collect();
                let at = starts[rng.below(starts.len())];
                let end = text[at..]
                    .find([',', '}', ']'])
                    .map_or(text.len(), |e| at + e);
                text.replace_range(at..end, TOKENS[rng.below(TOKENS.len())]);
            }
            let outcome = catch_unwind(|| sluice_core::compile::load(text.as_bytes()).map(|_| ()));
            match outcome {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(err)) => {
                    assert!(!err.path.is_empty() && !err.reason.is_empty(), "{err:?}");
                    rejected += 1;
                }
                Err(_) => panic!(
                    "compile panicked on a mutation of {}:\n{text}",
                    path.display()
                ),
            }
        }
    }
    println!("{accepted} mutated configs accepted, {rejected} rejected with a reason");
    assert!(rejected > accepted, "mutations should mostly be invalid");
}

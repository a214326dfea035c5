//! The canary guard's state: a sliding window of response counts and latency
//! histograms for the stable and canary versions of one route, shared by all
//! worker VMs through shared data (merged with compare-and-swap), and the
//! verdict it supports. Pure: the glue moves the bytes.
use crate::plan::GuardPlan;
use crate::sequential::{Batch, Evidence, EFFECTS};
use crate::telemetry::{LATENCY_BOUNDS_MS, LATENCY_BUCKETS};
use sluice_primitives::float_text::{Fixed, Plain};

/// The window is kept as this many slots, so it slides in tenths.
pub const SLOTS: usize = 10;
pub const STABLE: usize = 0;
pub const CANARY: usize = 1;

/// Responses of one version: how many, how many failed, how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub total: u32,
    pub errors: u32,
    /// Errors plus responses slower than the sequential guard's `slow`.
    pub bad: u32,
    pub latency: [u32; LATENCY_BUCKETS],
}

impl Default for Side {
    #[inline(never)]
    fn default() -> Self {
        Side {
            total: 0,
            errors: 0,
            bad: 0,
            latency: [0; LATENCY_BUCKETS],
        }
    }
}

impl Side {
    #[inline(never)]
    pub fn record(&mut self, error: bool, slow: bool, latency_bucket: Option<usize>) {
        self.total = self.total.saturating_add(1);
        self.errors = self.errors.saturating_add(u32::from(error));
        self.bad = self.bad.saturating_add(u32::from(error || slow));
        if let Some(b) = latency_bucket.and_then(|b| self.latency.get_mut(b)) {
            *b = b.saturating_add(1);
        }
    }

    #[inline(never)]
    fn add(&mut self, other: &Side) {
        self.total = self.total.saturating_add(other.total);
        self.errors = self.errors.saturating_add(other.errors);
        self.bad = self.bad.saturating_add(other.bad);
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a = a.saturating_add(*b);
        }
    }

    /// Upper bound (ms) of the bucket holding the 99th percentile.
    #[inline(never)]
    pub fn p99_ms(&self) -> Option<u32> {
        let samples: u64 = self.latency.iter().map(|c| u64::from(*c)).sum();
        if samples == 0 {
            return None;
        }
        let rank = (samples * 99).div_ceil(100);
        let mut seen = 0u64;
        for (i, count) in self.latency.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return Some(
                    LATENCY_BOUNDS_MS
                        .get(i)
                        .copied()
                        .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2),
                );
            }
        }
        None
    }

    #[inline(never)]
    pub fn error_rate_bp(&self) -> u32 {
        if self.total == 0 {
            0
        } else {
            (u64::from(self.errors) * 10_000 / u64::from(self.total)) as u32
        }
    }
}

/// What one worker saw since its last merge.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub sides: [Side; 2],
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.sides.iter().all(|s| s.total == 0)
    }

    /// This delta as one batch of the sequential test.
    #[inline(never)]
    pub fn batch(&self) -> Batch {
        let [stable, canary] = &self.sides;
        Batch {
            canary_total: canary.total.into(),
            canary_bad: canary.bad.into(),
            stable_total: stable.total.into(),
            stable_bad: stable.bad.into(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Which slot-length interval since the epoch this slot holds.
    epoch: u64,
    sides: [Side; 2],
}

/// The shared state of one guard.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Window {
    slots: [Slot; SLOTS],
    /// The sequential test's evidence since the guard started (every delta is one batch).
    pub evidence: Evidence,
    pub tripped: bool,
    /// Canary weight (buckets) when tripped with `pause`.
    pub paused_weight: u32,
    pub reason: String,
}

const FORMAT: u8 = 2;
const SIDE_WORDS: usize = 3 + LATENCY_BUCKETS;

impl Window {
    #[inline(never)]
    pub fn add(&mut self, delta: &Delta, now_ms: i64, window_ms: u64) {
        let epoch = slot_epoch(now_ms, window_ms);
        let slot = &mut self.slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                sides: Default::default(),
            };
        }
        for (s, d) in slot.sides.iter_mut().zip(&delta.sides) {
            s.add(d);
        }
        self.evidence.add(&delta.batch());
    }

    /// Both versions' responses within the window ending now.
    #[inline(never)]
    pub fn totals(&self, now_ms: i64, window_ms: u64) -> [Side; 2] {
        let current = slot_epoch(now_ms, window_ms);
        let mut sides = [Side::default(); 2];
        for slot in &self.slots {
            if slot.epoch + (SLOTS as u64) > current && slot.epoch <= current {
                for (t, s) in sides.iter_mut().zip(&slot.sides) {
                    t.add(s);
                }
            }
        }
        sides
    }

    /// Why the canary must stop, if it must.
    #[inline(never)]
    pub fn judge(&self, guard: &GuardPlan, now_ms: i64) -> Option<String> {
        if let Some(seq) = &guard.sequential {
            return self.judge_sequential(seq);
        }
        let [stable, canary] = self.totals(now_ms, guard.window_ms);
        if u64::from(canary.total) < guard.min_requests {
            return None;
        }
        if let Some(max) = guard.max_error_rate_bp {
            let rate = canary.error_rate_bp();
            if rate > max {
                return Some(format!(
                    "canary error rate {}.{:02}% ({} of {} responses in {}s) is above {}.{:02}%",
                    rate / 100,
                    rate % 100,
                    canary.errors,
                    canary.total,
                    guard.window_ms / 1000,
                    max / 100,
                    max % 100
                ));
            }
        }
        if let (Some(ratio), Some(c99), Some(s99)) =
            (guard.max_p99_ratio, canary.p99_ms(), stable.p99_ms())
        {
            if u64::from(stable.total) >= guard.min_requests
                && f64::from(c99) > f64::from(s99.max(1)) * ratio
            {
                return Some(format!(
                    "canary p99 {c99}ms is above {}x stable's {s99}ms ({} canary, {} stable responses in {}s)",
                    Plain(ratio),
                    canary.total,
                    stable.total,
                    guard.window_ms / 1000
                ));
            }
        }
        None
    }

    /// The sequential test's verdict on everything since the guard started.
    #[inline(never)]
    fn judge_sequential(&self, seq: &crate::plan::SequentialPlan) -> Option<String> {
        let e = &self.evidence;
        if !e.rejects(seq.alpha) {
            return None;
        }
        let what = if seq.slow_ms.is_some() {
            "bad (error or slow)"
        } else {
            "error"
        };
        let pct = |bad: u64, total: u64| {
            if total == 0 {
                0.0
            } else {
                bad as f64 * 100.0 / total as f64
            }
        };
        Some(format!(
            "canary {what} rate {}% ({} of {}) is significantly above stable's {}% ({} of {}): sequential test e-value {} >= 1/alpha = {} (alpha {})",
            Fixed::<2>(pct(e.canary_bad, e.canary_total)),
            e.canary_bad,
            e.canary_total,
            Fixed::<2>(pct(e.stable_bad, e.stable_total)),
            e.stable_bad,
            e.stable_total,
            Fixed::<1>(e.e_value()),
            Fixed::<0>(1.0 / seq.alpha),
            Plain(seq.alpha)
        ))
    }

    #[inline(never)]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + SLOTS * (8 + 2 * SIDE_WORDS * 4) + 8 * (EFFECTS.len() + 4) + self.reason.len(),
        );
        out.push(FORMAT);
        out.push(u8::from(self.tripped));
        out.extend_from_slice(&self.paused_weight.to_le_bytes());
        for slot in &self.slots {
            out.extend_from_slice(&slot.epoch.to_le_bytes());
            for side in &slot.sides {
                out.extend_from_slice(&side.total.to_le_bytes());
                out.extend_from_slice(&side.errors.to_le_bytes());
                out.extend_from_slice(&side.bad.to_le_bytes());
                for c in &side.latency {
                    out.extend_from_slice(&c.to_le_bytes());
                }
            }
        }
        let e = &self.evidence;
        for l in &e.log_lr {
            out.extend_from_slice(&l.to_le_bytes());
        }
        for n in [e.canary_total, e.canary_bad, e.stable_total, e.stable_bad] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(self.reason.as_bytes());
        out
    }

    /// `None` for bytes this version did not write (then start afresh).
    #[inline(never)]
    pub fn decode(bytes: &[u8]) -> Option<Window> {
        let mut r = Reader { bytes, at: 0 };
        if r.u8()? != FORMAT {
            return None;
        }
        let mut w = Window {
            tripped: r.u8()? == 1,
            paused_weight: r.u32()?,
            ..Window::default()
        };
        for slot in w.slots.iter_mut() {
            r.slot(slot)?;
        }
        r.evidence(&mut w.evidence)?;
        w.reason = String::from_utf8_lossy(&bytes[r.at..]).into_owned();
        Some(w)
    }
}

fn slot_epoch(now_ms: i64, window_ms: u64) -> u64 {
    let slot_ms = (window_ms / SLOTS as u64).max(1);
    (now_ms.max(0) as u64) / slot_ms
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// One slot of a window, as `Window::encode` wrote it.
    #[inline(never)]
    fn slot(&mut self, slot: &mut Slot) -> Option<()> {
        slot.epoch = self.u64()?;
        for side in slot.sides.iter_mut() {
            side.total = self.u32()?;
            side.errors = self.u32()?;
            side.bad = self.u32()?;
            for c in side.latency.iter_mut() {
                *c = self.u32()?;
            }
        }
        Some(())
    }

    /// The sequential test's evidence, as `Window::encode` wrote it.
    #[inline(never)]
    fn evidence(&mut self, e: &mut Evidence) -> Option<()> {
        for l in e.log_lr.iter_mut() {
            *l = f64::from_le_bytes(self.take::<8>()?);
        }
        for n in [
            &mut e.canary_total,
            &mut e.canary_bad,
            &mut e.stable_total,
            &mut e.stable_bad,
        ] {
            *n = self.u64()?;
        }
        Some(())
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let chunk = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        chunk.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: Option<u32>, ratio: Option<f64>, min: u64) -> GuardPlan {
        GuardPlan {
            max_error_rate_bp: rate,
            max_p99_ratio: ratio,
            window_ms: 10_000,
            min_requests: min,
            count_local_replies: false,
            pause: false,
            sequential: None,
            webhook: None,
        }
    }

    fn delta(canary: (u32, u32), stable: (u32, u32), canary_ms: u64, stable_ms: u64) -> Delta {
        let mut d = Delta::default();
        for i in 0..canary.0 {
            d.sides[CANARY].record(
                i < canary.1,
                false,
                Some(crate::telemetry::latency_bucket(canary_ms)),
            );
        }
        for i in 0..stable.0 {
            d.sides[STABLE].record(
                i < stable.1,
                false,
                Some(crate::telemetry::latency_bucket(stable_ms)),
            );
        }
        d
    }

    #[test]
    fn trips_on_error_rate_only_with_enough_requests() {
        let g = plan(Some(500), None, 50);
        let mut w = Window::default();
        w.add(&delta((40, 8), (400, 0), 5, 5), 1_000, g.window_ms);
        assert_eq!(w.judge(&g, 1_000), None, "40 requests < min 50");
        w.add(&delta((20, 2), (200, 0), 5, 5), 2_000, g.window_ms);
        let reason = w.judge(&g, 2_000).expect("60 requests, 16.66% errors");
        assert!(
            reason.contains("16.66%") && reason.contains("10 of 60"),
            "{reason}"
        );
    }

    #[test]
    fn old_slots_slide_out_of_the_window() {
        let g = plan(Some(500), None, 10);
        let mut w = Window::default();
        w.add(&delta((100, 50), (0, 0), 5, 5), 1_000, g.window_ms);
        assert!(w.judge(&g, 1_000).is_some());
        assert!(
            w.judge(&g, 12_000).is_none(),
            "errors 11s ago are outside a 10s window"
        );
        w.add(&delta((100, 0), (0, 0), 5, 5), 12_000, g.window_ms);
        assert_eq!(w.totals(12_000, g.window_ms)[CANARY].total, 100);
    }

    #[test]
    fn trips_on_slow_canary_relative_to_stable() {
        let g = plan(None, Some(2.0), 20);
        let mut w = Window::default();
        w.add(&delta((50, 0), (500, 0), 40, 10), 1_000, g.window_ms);
        let reason = w.judge(&g, 1_000).expect("p99 50ms vs 10ms");
        assert!(
            reason.contains("p99 50ms") && reason.contains("10ms"),
            "{reason}"
        );
        let mut healthy = Window::default();
        healthy.add(&delta((50, 0), (500, 0), 12, 10), 1_000, g.window_ms);
        assert_eq!(healthy.judge(&g, 1_000), None);
    }

    #[test]
    fn survives_encoding_and_rejects_foreign_bytes() {
        let mut w = Window::default();
        w.add(&delta((7, 1), (9, 0), 3, 4), 5_000, 10_000);
        w.tripped = true;
        w.paused_weight = 2500;
        w.reason = "because".into();
        assert_eq!(Window::decode(&w.encode()), Some(w));
        assert_eq!(Window::decode(b"junk"), None);
        assert_eq!(Window::decode(&[]), None);
    }

    #[test]
    fn sequential_guard_trips_on_evidence_not_on_one_bad_second() {
        let mut g = plan(None, None, 50);
        g.sequential = Some(crate::plan::SequentialPlan {
            alpha: 0.05,
            slow_ms: None,
        });
        let mut w = Window::default();
        // One unlucky second: 2 of 10 canary requests fail (20%, above any sane threshold),
        // stable 1 of 90: chance under equal rates is about 3%, not enough for alpha 5%.
        w.add(&delta((10, 2), (90, 1), 5, 5), 1_000, g.window_ms);
        assert_eq!(w.judge(&g, 1_000), None, "e = {}", w.evidence.e_value());
        // Then a sustained 5% vs 1%: 20 more seconds.
        for s in 2..22 {
            w.add(&delta((100, 5), (900, 9), 5, 5), s * 1_000, g.window_ms);
        }
        let reason = w.judge(&g, 21_000).expect("5x the error rate for 20s");
        assert!(
            reason.contains("102 of 2010") && reason.contains("alpha 0.05"),
            "{reason}"
        );
        let copy = Window::decode(&w.encode()).expect("own bytes");
        assert_eq!(copy.evidence, w.evidence);
    }
}

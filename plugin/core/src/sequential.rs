//! The sequential guard's test: is the canary's bad-response rate higher than stable's? An
//! anytime-valid test, so the guard may look after every tick, forever, and still trips a healthy
//! canary with probability at most α.
//!
//! Model (after Lindon, Sanden & Shirikian, "Rapid Regression Detection in Software Deployments
//! through Sequential Testing", KDD 2022, which treats canary and stable counts as Poisson
//! processes and tests their rate ratio): the counts arrive in batches (one per worker merge).
//! Within a batch of `n_c` canary and `n_s` stable responses of which `k` were bad, under the
//! null hypothesis (canary no worse than stable) the canary's share `x_c` of the `k` bad ones is
//! at most Hypergeometric(n_c + n_s, n_c, k); for an error-rate ratio θ the alternative is the
//! Binomial(k, θ·n_c / (θ·n_c + n_s)). The likelihood ratio of a batch is
//!
//! ```text
//!     LR_θ = θ^x_c · ((n_c + n_s) / (θ·n_c + n_s))^k
//! ```
//!
//! and its expectation under the null is at most 1: exactly 1 under the binomial, and at most 1
//! under the hypergeometric, which is smaller in convex order (Hoeffding 1963, Theorem 4; θ^x is
//! convex). So the product over batches is a nonnegative supermartingale for every θ ≥ 1, and
//! so is any fixed mixture of them (Robbins' method of mixtures). Ville's inequality then bounds
//! the chance that the mixture *ever* reaches 1/α by α: tripping at `e ≥ 1/α` is a level-α test
//! however often it is checked. The mixture puts equal weight on the ratios in `EFFECTS`, so it
//! detects a 1.25× regression given enough data and a 5× one fast.
//!
//! The batch boundaries depend only on time and worker, never on the outcomes, which the
//! argument needs. A canary better than stable (θ < 1) only makes every term smaller.

/// Error-rate ratios (canary / stable) the mixture bets on, each with equal weight.
pub const EFFECTS: [f64; 6] = [1.25, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Everything the test has seen since the guard started: the log-likelihood ratio per effect,
/// and plain totals for the trip message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Evidence {
    pub log_lr: [f64; EFFECTS.len()],
    pub canary_total: u64,
    pub canary_bad: u64,
    pub stable_total: u64,
    pub stable_bad: u64,
}

/// One batch: responses and bad responses per side.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub canary_total: u64,
    pub canary_bad: u64,
    pub stable_total: u64,
    pub stable_bad: u64,
}

impl Evidence {
    #[inline(never)]
    pub fn add(&mut self, b: &Batch) {
        self.canary_total += b.canary_total;
        self.canary_bad += b.canary_bad;
        self.stable_total += b.stable_total;
        self.stable_bad += b.stable_bad;
        let (nc, ns) = (b.canary_total as f64, b.stable_total as f64);
        let k = (b.canary_bad + b.stable_bad) as f64;
        // A batch with one side empty says nothing about the ratio (its LR is 1).
        if nc == 0.0 || ns == 0.0 || k == 0.0 {
            return;
        }
        let xc = b.canary_bad as f64;
        for (l, theta) in self.log_lr.iter_mut().zip(EFFECTS) {
            *l += xc * theta.ln() + k * ((nc + ns) / (theta * nc + ns)).ln();
        }
    }

    /// The e-value: the mixture's likelihood ratio (1 before any evidence).
    #[inline(never)]
    pub fn e_value(&self) -> f64 {
        let max = self
            .log_lr
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return if max > 0.0 { f64::INFINITY } else { 0.0 };
        }
        let sum: f64 = self.log_lr.iter().map(|l| (l - max).exp()).sum();
        (max + (sum / EFFECTS.len() as f64).ln()).exp()
    }

    /// Whether the canary is worse at false-alarm bound `alpha`.
    pub fn rejects(&self, alpha: f64) -> bool {
        self.e_value() >= 1.0 / alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(nc: u64, xc: u64, ns: u64, xs: u64) -> Batch {
        Batch {
            canary_total: nc,
            canary_bad: xc,
            stable_total: ns,
            stable_bad: xs,
        }
    }

    #[test]
    fn no_evidence_is_an_e_value_of_one() {
        let mut e = Evidence::default();
        assert_eq!(e.e_value(), 1.0);
        e.add(&batch(100, 3, 0, 0));
        e.add(&batch(0, 0, 100, 9));
        assert_eq!(e.e_value(), 1.0, "one-sided batches carry no evidence");
        assert_eq!(e.canary_total, 100);
        assert_eq!(e.stable_bad, 9);
    }

    #[test]
    fn one_batch_matches_the_formula() {
        let mut e = Evidence::default();
        e.add(&batch(100, 6, 900, 4));
        // k = 10, theta = 2: 2^6 * (1000/1100)^10
        let expect_2 = 64.0 * (1000.0f64 / 1100.0).powi(10);
        assert!((e.log_lr[2].exp() - expect_2).abs() < 1e-9);
        let mean: f64 = EFFECTS
            .iter()
            .map(|t| t.powi(6) * (1000.0 / (t * 100.0 + 900.0)).powi(10))
            .sum::<f64>()
            / EFFECTS.len() as f64;
        assert!((e.e_value() - mean).abs() / mean < 1e-9);
    }

    #[test]
    fn a_worse_canary_is_rejected_an_equal_one_is_not() {
        let mut worse = Evidence::default();
        let mut equal = Evidence::default();
        for _ in 0..20 {
            // 10% canary traffic; stable 1% errors; canary 5% vs 1%.
            worse.add(&batch(100, 5, 900, 9));
            equal.add(&batch(100, 1, 900, 9));
        }
        assert!(worse.rejects(0.05), "e = {}", worse.e_value());
        assert!(!equal.rejects(0.05), "e = {}", equal.e_value());
        assert!(equal.e_value() < 1.0, "equal rates lose the bet");
    }

    #[test]
    fn a_better_canary_never_builds_evidence() {
        let mut e = Evidence::default();
        for _ in 0..100 {
            e.add(&batch(500, 0, 500, 10));
        }
        assert!(e.e_value() < 1e-6);
    }

    /// The expectation of each batch's likelihood ratio under the null is 1 (binomial): the
    /// property the guarantee rests on, checked by summing over every outcome.
    #[test]
    fn the_likelihood_ratio_is_fair_under_the_null() {
        let (nc, ns, k) = (30u64, 70u64, 8u64);
        let p0 = nc as f64 / (nc + ns) as f64;
        for (i, theta) in EFFECTS.iter().enumerate() {
            let mut expectation = 0.0;
            for xc in 0..=k {
                let mut e = Evidence::default();
                e.add(&batch(nc, xc, ns, k - xc));
                let choose = (0..xc).fold(1.0, |acc, j| acc * (k - j) as f64 / (j + 1) as f64);
                let p = choose * p0.powi(xc as i32) * (1.0 - p0).powi((k - xc) as i32);
                expectation += p * e.log_lr[i].exp();
            }
            assert!(
                (expectation - 1.0).abs() < 1e-9,
                "theta {theta}: {expectation}"
            );
        }
    }
}

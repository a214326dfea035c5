//! `sluice analyze`'s reading and arithmetic: Envoy stats text (Prometheus or JSON) parsed into
//! counters and histograms, summed over proxies, differenced against an earlier sample, and the
//! tests that say whether a variant or a canary is significantly worse.
//!
//! Methods: rates (errors, conversions) by the two-proportion z-test with pooled variance and
//! Wilson score intervals; latency by the Mann-Whitney U test on the histogram buckets (each
//! bucket a group of ties, variance tie-corrected), with p50/p99 interpolated within buckets;
//! Holm's step-down correction over every comparison of one experiment or canary.
use std::collections::BTreeMap;

/// One bucketed histogram: upper bounds (the last may be infinite) and cumulative counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<f64>,
}

impl Histogram {
    pub fn count(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// Per-bucket counts.
    pub fn counts(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.cumulative
            .iter()
            .map(|c| {
                let n = c - prev;
                prev = *c;
                n
            })
            .collect()
    }

    /// The `q` quantile, linearly interpolated within its bucket; `None` without samples. In the
    /// open last bucket, its lower bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = 0.0;
        let mut prev = 0.0;
        for (bound, cum) in self.bounds.iter().zip(&self.cumulative) {
            if *cum >= rank && *cum > prev {
                if !bound.is_finite() {
                    return Some(lower);
                }
                let share = (rank - prev) / (cum - prev);
                return Some(lower + (bound - lower) * share.clamp(0.0, 1.0));
            }
            lower = *bound;
            prev = *cum;
        }
        Some(lower)
    }
}

/// Counters (and gauges) and histograms of one or more proxies, by Prometheus name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub counters: BTreeMap<String, f64>,
    pub histograms: BTreeMap<String, Histogram>,
}

/// A stat name as Envoy's Prometheus output spells it: `envoy_` + the name with every character
/// other than a letter, digit or `_` replaced by `_`.
pub fn prometheus_name(envoy_name: &str) -> String {
    let mut out = String::from("envoy_");
    out.extend(envoy_name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// Parses `/stats/prometheus` or `/stats?format=json` output (told apart by the first
/// character). `source` names the input in errors.
pub fn parse(text: &str, source: &str) -> Result<Sample, String> {
    if text.trim_start().starts_with('{') {
        parse_json(text, source)
    } else {
        parse_prometheus(text, source)
    }
}

fn parse_json(text: &str, source: &str) -> Result<Sample, String> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("{source}: not valid JSON stats ({e}); truncated?"))?;
    let stats = doc.get("stats").and_then(|s| s.as_array()).ok_or_else(|| {
        format!("{source}: JSON without a `stats` list: not Envoy's /stats?format=json")
    })?;
    let mut sample = Sample::default();
    for entry in stats {
        let (Some(name), Some(value)) = (
            entry.get("name").and_then(|n| n.as_str()),
            entry.get("value"),
        ) else {
            // Histograms come as {"histograms": ...}: quantiles only, no buckets.
            continue;
        };
        let value = value
            .as_f64()
            .ok_or_else(|| format!("{source}: stat `{name}` has a non-numeric value {value}"))?;
        if sample
            .counters
            .insert(prometheus_name(name), value)
            .is_some()
        {
            return Err(format!("{source}: stat `{name}` appears twice"));
        }
    }
    Ok(sample)
}

fn parse_prometheus(text: &str, source: &str) -> Result<Sample, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(format!(
            "{source}: the last line has no line end: truncated output?"
        ));
    }
    let mut sample = Sample::default();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{source}:{}", i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("{}: `{line}` is not `name value`", at()))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("{}: `{v}` is not a number", at()))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .strip_suffix('}')
                    .ok_or_else(|| format!("{}: unclosed `{{` in `{series}`", at()))?;
                (name, labels)
            }
            None => (series, ""),
        };
        // Envoy exports its custom stat namespaces (wasm's `wasmcustom.`) without the `envoy_`
        // prefix and without the namespace: `sluice_…`; older releases wrote
        // `envoy_wasmcustom_sluice_…`. One spelling here.
        let prefixed;
        let name = if name.starts_with("sluice_") {
            prefixed = format!("envoy_wasmcustom_{name}");
            prefixed.as_str()
        } else {
            name
        };
        // Series differ by their labels (Envoy's own stats carry e.g. `envoy_cluster_name`);
        // Sluice's have none besides a histogram's `le`.
        let other: Vec<&str> = labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("le="))
            .collect();
        let key = |name: &str| {
            if other.is_empty() {
                name.to_string()
            } else {
                format!("{name}{{{}}}", other.join(","))
            }
        };
        if let Some(base) = name.strip_suffix("_bucket") {
            let le = labels
                .split(',')
                .find_map(|l| l.trim().strip_prefix("le=\""))
                .and_then(|l| l.strip_suffix('"'))
                .ok_or_else(|| format!("{}: bucket `{series}` without `le`", at()))?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse()
                    .map_err(|_| format!("{}: bucket bound `{le}` is not a number", at()))?
            };
            buckets.entry(key(base)).or_default().push((bound, value));
            continue;
        }
        if sample.counters.insert(key(name), value).is_some() {
            return Err(format!(
                "{}: `{series}` appears twice (two proxies in one file? give them as separate sources)",
                at()
            ));
        }
    }
    for (name, mut points) in buckets {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if points.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(format!(
                "{source}: histogram `{name}` has cumulative buckets that decrease: corrupt output"
            ));
        }
        if points.last().is_none_or(|p| p.0.is_finite()) {
            return Err(format!(
                "{source}: histogram `{name}` has no `+Inf` bucket: truncated output?"
            ));
        }
        sample.histograms.insert(
            name,
            Histogram {
                bounds: points.iter().map(|p| p.0).collect(),
                cumulative: points.iter().map(|p| p.1).collect(),
            },
        );
    }
    Ok(sample)
}

impl Sample {
    /// Adds another proxy's stats.
    pub fn add(&mut self, other: &Sample) -> Result<(), String> {
        for (name, v) in &other.counters {
            *self.counters.entry(name.clone()).or_default() += v;
        }
        for (name, h) in &other.histograms {
            match self.histograms.get_mut(name) {
                None => {
                    self.histograms.insert(name.clone(), h.clone());
                }
                Some(mine) if mine.bounds == h.bounds => {
                    for (a, b) in mine.cumulative.iter_mut().zip(&h.cumulative) {
                        *a += b;
                    }
                }
                Some(_) => {
                    return Err(format!(
                        "histogram `{name}` has different buckets in different sources"
                    ))
                }
            }
        }
        Ok(())
    }

    /// What happened between `earlier` and this sample of the same proxy; a counter that went
    /// backwards (a restart) is an error, not a negative count.
    pub fn since(&self, earlier: &Sample, what: &str) -> Result<Sample, String> {
        let backwards = |name: &str| {
            format!(
                "`{name}` went backwards between the earlier sample and {what}: \
                 Envoy restarted (or a different proxy)? no verdict from these samples"
            )
        };
        let mut out = Sample::default();
        for (name, v) in &self.counters {
            let before = earlier.counters.get(name).copied().unwrap_or(0.0);
            if *v < before {
                return Err(backwards(name));
            }
            out.counters.insert(name.clone(), v - before);
        }
        for (name, h) in &self.histograms {
            let mut d = h.clone();
            if let Some(before) = earlier.histograms.get(name) {
                if before.bounds != h.bounds {
                    return Err(format!("histogram `{name}` changed its buckets in {what}"));
                }
                for (a, b) in d.cumulative.iter_mut().zip(&before.cumulative) {
                    if *a < *b {
                        return Err(backwards(name));
                    }
                    *a -= b;
                }
            }
            out.histograms.insert(name.clone(), d);
        }
        Ok(out)
    }
}

/// Standard normal upper tail, P(Z > z), from erfc (W. J. Cody's rational approximations are
/// overkill here; this one, Numerical Recipes' erfcc, has relative error below 1.2e-7).
pub fn normal_sf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erfc = if x >= 0.0 { y } else { 2.0 - y };
    erfc / 2.0
}

/// Wilson score interval for `x` successes of `n` at 95 %.
pub fn wilson(x: f64, n: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let z = 1.959_963_985;
    let p = x / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// A test's outcome: the statistic's sign says the direction (positive: `b` higher than `a`),
/// `p` is two-sided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub z: f64,
    pub p: f64,
}

/// Two-proportion z-test, pooled: is `xb/nb` different from `xa/na`?
pub fn two_proportions(xa: f64, na: f64, xb: f64, nb: f64) -> Option<Test> {
    if na <= 0.0 || nb <= 0.0 {
        return None;
    }
    let pooled = (xa + xb) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se <= 0.0 {
        return Some(Test { z: 0.0, p: 1.0 });
    }
    let z = (xb / nb - xa / na) / se;
    Some(Test {
        z,
        p: (2.0 * normal_sf(z.abs())).min(1.0),
    })
}

/// Mann-Whitney U on two histograms with the same buckets (each bucket a group of ties),
/// normal approximation with tie correction. Positive `z`: `b` tends to be larger (slower).
pub fn mann_whitney(a: &Histogram, b: &Histogram) -> Option<Test> {
    if a.bounds != b.bounds {
        return None;
    }
    let (ca, cb) = (a.counts(), b.counts());
    let (na, nb) = (a.count(), b.count());
    let n = na + nb;
    if na <= 0.0 || nb <= 0.0 || n < 2.0 {
        return None;
    }
    // U_b: pairs where b's sample is larger, ties counted half.
    let mut below_a = 0.0;
    let mut u = 0.0;
    let mut ties = 0.0;
    for (x, y) in ca.iter().zip(&cb) {
        u += y * (below_a + x / 2.0);
        below_a += x;
        let t = x + y;
        ties += t * t * t - t;
    }
    let mean = na * nb / 2.0;
    let var = na * nb / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(Test { z: 0.0, p: 1.0 });
    }
    let z = (u - mean) / var.sqrt();
    Some(Test {
        z,
        p: (2.0 * normal_sf(z.abs())).min(1.0),
    })
}

/// Holm's step-down adjustment of `p` values (same order out as in).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_tables() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.0) - 0.841_344_75).abs() < 1e-6);
        assert!((normal_sf(3.0) - 0.001_349_9).abs() < 1e-6);
    }

    #[test]
    fn two_proportions_matches_a_hand_computation() {
        // 10/1000 vs 25/1000: pooled 0.0175, se = sqrt(.0175*.9825*.002) = 0.005864, z = 2.558
        let t = two_proportions(10.0, 1000.0, 25.0, 1000.0).unwrap();
        assert!((t.z - 2.558).abs() < 0.002, "{t:?}");
        assert!((t.p - 0.0105).abs() < 0.0005, "{t:?}");
        assert_eq!(two_proportions(0.0, 0.0, 1.0, 5.0), None);
        assert_eq!(two_proportions(0.0, 10.0, 0.0, 10.0).unwrap().p, 1.0);
    }

    #[test]
    fn wilson_interval_of_a_known_case() {
        // 5 of 50: Wilson 95% [0.0435, 0.2136]
        let (lo, hi) = wilson(5.0, 50.0).unwrap();
        assert!(
            (lo - 0.0435).abs() < 5e-4 && (hi - 0.2136).abs() < 5e-4,
            "{lo} {hi}"
        );
    }

    #[test]
    fn holm_adjusts_step_down_and_keeps_order() {
        let adj = holm(&[0.01, 0.04, 0.03]);
        assert_eq!(adj, vec![0.03, 0.06, 0.06]);
    }

    fn hist(counts: &[f64]) -> Histogram {
        let bounds = vec![1.0, 5.0, 10.0, 50.0, f64::INFINITY];
        let mut cum = 0.0;
        Histogram {
            bounds,
            cumulative: counts
                .iter()
                .map(|c| {
                    cum += c;
                    cum
                })
                .collect(),
        }
    }

    #[test]
    fn mann_whitney_on_buckets() {
        let fast = hist(&[0.0, 100.0, 0.0, 0.0, 0.0]);
        let slow = hist(&[0.0, 0.0, 0.0, 100.0, 0.0]);
        let t = mann_whitney(&fast, &slow).unwrap();
        assert!(t.z > 10.0 && t.p < 1e-10, "{t:?}");
        let same = mann_whitney(&fast, &fast).unwrap();
        assert!(same.z.abs() < 1e-9 && same.p > 0.99, "{same:?}");
        // One slow sample in 4 each side, otherwise equal: U = n1 n2 / 2 exactly.
        let a = hist(&[1.0, 2.0, 0.0, 1.0, 0.0]);
        assert!(mann_whitney(&a, &a).unwrap().z.abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = hist(&[0.0, 50.0, 50.0, 0.0, 0.0]);
        assert_eq!(h.quantile(0.5), Some(5.0));
        assert_eq!(h.quantile(0.75), Some(7.5));
        assert_eq!(hist(&[0.0, 0.0, 0.0, 0.0, 3.0]).quantile(0.99), Some(50.0));
        assert_eq!(hist(&[0.0; 5]).quantile(0.5), None);
    }

    #[test]
    fn prometheus_text_is_parsed_and_bad_text_refused() {
        let text = "# TYPE envoy_x counter\nenvoy_x 3\nenvoy_h_bucket{le=\"1\"} 1\nenvoy_h_bucket{le=\"+Inf\"} 4\nenvoy_h_sum 9\nenvoy_h_count 4\n";
        let s = parse(text, "a").unwrap();
        assert_eq!(s.counters["envoy_x"], 3.0);
        assert_eq!(s.histograms["envoy_h"].cumulative, vec![1.0, 4.0]);
        let err = parse(&text[..text.len() - 5], "a").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let custom = parse("sluice_flag_f_on_evaluations{} 4\n", "a").unwrap();
        assert_eq!(
            custom.counters["envoy_wasmcustom_sluice_flag_f_on_evaluations"],
            4.0
        );
        let labelled = parse("envoy_c{cluster=\"a\"} 1\nenvoy_c{cluster=\"b\"} 2\n", "a").unwrap();
        assert_eq!(labelled.counters["envoy_c{cluster=\"b\"}"], 2.0);
        let err = parse("envoy_x 3\nenvoy_x 4\n", "a").unwrap_err();
        assert!(err.contains("a:2: `envoy_x` appears twice"), "{err}");
        let err = parse("envoy_x three\n", "a").unwrap_err();
        assert!(err.contains("a:1: `three` is not a number"), "{err}");
        let err = parse(
            "envoy_h_bucket{le=\"1\"} 4\nenvoy_h_bucket{le=\"+Inf\"} 2\n",
            "a",
        )
        .unwrap_err();
        assert!(err.contains("decrease"), "{err}");
    }

    #[test]
    fn json_stats_use_prometheus_names() {
        let s = parse(
            r#"{"stats": [{"name": "wasmcustom.sluice.flag.f.on.evaluations", "value": 7}, {"histograms": {}}]}"#,
            "j",
        )
        .unwrap();
        assert_eq!(
            s.counters["envoy_wasmcustom_sluice_flag_f_on_evaluations"],
            7.0
        );
        assert!(parse(r#"{"stats": [{"name": "a", "va"#, "j")
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn backwards_counters_are_an_error() {
        let before = parse("envoy_x 10\n", "old").unwrap();
        let after = parse("envoy_x 4\n", "new").unwrap();
        let err = after.since(&before, "new").unwrap_err();
        assert!(
            err.contains("went backwards") && err.contains("restarted"),
            "{err}"
        );
        let later = parse("envoy_x 15\n", "new").unwrap();
        assert_eq!(
            later.since(&before, "new").unwrap().counters["envoy_x"],
            5.0
        );
    }
}

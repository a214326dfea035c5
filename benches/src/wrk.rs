//! Reading `wrk --latency` output.

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
    /// Non-2xx/3xx responses plus socket errors: a run with any is suspect.
    pub errors: u64,
}

/// Parses wrk's report (run with `--latency`).
pub fn parse(output: &str) -> Result<WrkResult, String> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut errors = 0;
    for line in output.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => rps = value.parse::<f64>().ok(),
            ["50%", value] => p50 = duration_us(value),
            ["99%", value] => p99 = duration_us(value),
            [count, "requests", "in", ..] => requests = count.parse::<u64>().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    match (rps, p50, p99, requests) {
        (Some(requests_per_sec), Some(p50_us), Some(p99_us), Some(requests)) => Ok(WrkResult {
            requests_per_sec,
            p50_us,
            p99_us,
            requests,
            errors,
        }),
        _ => Err(format!("cannot read wrk output:\n{output}")),
    }
}

/// `420.00us`, `1.23ms`, `2.00s` → microseconds.
fn duration_us(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// The median (mean of the two middle values for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:10000/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   475.11us  120.33us   5.12ms   90.12%
    Req/Sec    21.05k     1.02k   23.11k    70.00%
  Latency Distribution
     50%  420.00us
     75%  510.00us
     90%  620.00us
     99%    1.23ms
  209512 requests in 10.00s, 25.17MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  20951.20
Transfer/sec:      2.52MB
";

    #[test]
    fn reads_a_latency_report() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.requests_per_sec, 20951.20);
        assert_eq!(r.p50_us, 420.0);
        assert_eq!(r.p99_us, 1230.0);
        assert_eq!(r.requests, 209_512);
        assert_eq!(r.errors, 6);
        assert!(parse("garbage").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}

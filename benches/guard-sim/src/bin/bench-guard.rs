//! `make bench-guard`: the guard simulation (see the `sluice_guard_sim` lib) — false alarms on a
//! healthy canary, time to trip on a bad one at high and low traffic, and detection time against
//! fleet size — printed as Markdown tables. `--seeds N` (default 1000) rollouts per scenario.
use sluice_guard_sim::{
    default_guards, run_many, summarize, GuardUnderTest, Scenario, Summary, Users,
};
use std::time::Instant;

fn main() {
    let mut seeds = 1000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--seeds", Some(n)) if n > 0 => seeds = n,
            _ => {
                eprintln!("usage: bench-guard [--seeds N]  (N > 0, default 1000)");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = run(seeds) {
        eprintln!("bench-guard: {e}");
        std::process::exit(1);
    }
}

fn secs(t: Option<f64>) -> String {
    match t {
        None => "never".into(),
        Some(s) if s >= 120.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{s:.0} s"),
    }
}

fn scenario(rate: u32, canary_error: f64, horizon_s: u32, proxies: usize) -> Scenario {
    Scenario {
        rate,
        canary_weight: 10.0,
        stable_error: 0.01,
        canary_error,
        horizon_s,
        proxies,
        users: Users::Random,
    }
}

fn share(s: &Summary) -> String {
    format!(
        "{} of {} ({:.1}%)",
        s.tripped,
        s.runs,
        s.tripped as f64 * 100.0 / s.runs as f64
    )
}

fn run(seeds: u64) -> Result<(), String> {
    let guards = default_guards();
    let started = Instant::now();
    println!(
        "Canary at 10% of the traffic, stable 1% errors, guards checked every second; {seeds} seeded \
         rollouts per row (one proxy with one worker).\n"
    );
    println!("| scenario | guard | tripped | time to trip: median | p95 |");
    println!("| --- | --- | --- | --- | --- |");
    let rows: [(&str, Scenario); 4] = [
        (
            "(a) healthy canary (1% errors), 100 req/s, 10 min",
            scenario(100, 0.01, 600, 1),
        ),
        (
            "(a) healthy canary (1% errors), 10 req/s, 60 min",
            scenario(10, 0.01, 3600, 1),
        ),
        (
            "(b) canary at 5% errors, 1,000 req/s, up to 10 min",
            scenario(1000, 0.05, 600, 1),
        ),
        (
            "(c) canary at 5% errors, 10 req/s, up to 60 min",
            scenario(10, 0.05, 3600, 1),
        ),
    ];
    for (what, s) in rows {
        let (first, _) = run_many(&s, &guards, 0..seeds)?;
        for (g, times) in guards.iter().zip(&first) {
            let s = summarize(&g.label, times);
            println!(
                "| {what} | {} | {} | {} | {} |",
                s.label,
                share(&s),
                secs(s.median_s),
                secs(s.p95_s)
            );
        }
    }
    let fleet_seeds = seeds.min(200);
    let mut fleet_guards = guards.clone();
    fleet_guards.insert(
        1,
        GuardUnderTest {
            label: "sequential, alpha 0.001".into(),
            guard: serde_json::json!({"method": "sequential", "alpha": 0.001}),
        },
    );
    println!(
        "\nFleet view: 1,000 req/s spread evenly over N proxies, each deciding alone (no shared \
         state between proxies), 10 min; {fleet_seeds} seeds per row. Healthy: canary at 1% errors, \
         the share of rollouts where at least one proxy tripped. Bad: canary at 5% errors.\n"
    );
    println!(
        "| proxies | guard | healthy: some proxy tripped | bad: first proxy trips, median | p95 \
         | bad: every proxy tripped, median | p95 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for n in [1usize, 10, 50] {
        let (healthy, _) = run_many(&scenario(1000, 0.01, 600, n), &fleet_guards, 0..fleet_seeds)?;
        let (first, all) = run_many(&scenario(1000, 0.05, 600, n), &fleet_guards, 0..fleet_seeds)?;
        for (k, g) in fleet_guards.iter().enumerate() {
            let h = summarize(&g.label, &healthy[k]);
            let f = summarize(&g.label, &first[k]);
            let a = summarize(&g.label, &all[k]);
            println!(
                "| {n} | {} | {} | {} | {} | {} | {} |",
                g.label,
                share(&h),
                secs(f.median_s),
                secs(f.p95_s),
                secs(a.median_s),
                secs(a.p95_s)
            );
        }
    }
    eprintln!("bench-guard: {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

//! `sluice-demo-chain [--users N]`: rollouts across services, shown. Starts edge -> a -> b -> c
//! (three Envoys with Sluice, apps that forward only `baggage`), sends N users (default 10,000)
//! while rotating the signing key, then clients that forge tokens, baggage and route headers, and
//! prints what every hop decided and whether the answers agreed. Stops everything at the end.
use std::process::ExitCode;

use sluice_e2e::chain::{rotation, run_scenario, Chain};
use sluice_e2e::paths;

fn main() -> ExitCode {
    let mut users = 10_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<usize>())) {
            ("--users", Some(Ok(n))) if n > 0 => users = n,
            _ => {
                eprintln!("usage: sluice-demo-chain [--users N]");
                return ExitCode::from(2);
            }
        }
    }
    let chain = match Chain::start(&paths::sluice_wasm(), &rotation()[0], "demo-chain") {
        Ok(chain) => chain,
        Err(e) => {
            eprintln!("cannot start the chain: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("edge, a-outbound and b-outbound Envoys up; sending {users} users...");
    let report = run_scenario(&chain, users, 600);
    print!("{}", report.table());
    for line in report
        .inconsistent
        .iter()
        .chain(&report.forged_honoured)
        .chain(&report.failed)
        .take(5)
    {
        println!("  {line}");
    }
    let clean = report.inconsistent.is_empty()
        && report.forged_honoured.is_empty()
        && report.failed.is_empty();
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

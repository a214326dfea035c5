//! `sluice`: the operator CLI. Checks a config before a push, shows what a request gets and why,
//! simulates users over time through the real filter module, and shows what a push would change.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cmd;
mod common;

use common::Report;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

const HELP: &str = "\
sluice: check, explain and simulate Sluice configs before a push

USAGE: sluice COMMAND [OPTIONS]   (sluice COMMAND --help for each command's options)

COMMANDS:
  check CONFIG        validate (natively; --wasm: through the filter module too), warn on
                      likely mistakes; errors as FILE:LINE:COL: PATH: REASON
  eval CONFIG         one request: each decision with its reason, routes that did not match
  explain CONFIG      one request, step by step: every rule, pin, override, schedule and
                      rollout bucket in order
  simulate CONFIG     users over time through the filter module (.wasm in wasmtime), with
                      upstreams that fail or lag per version; shares, stickiness, moves per round
  diff OLD NEW        what a push from OLD to NEW changes: per flag and route, the share of
                      users that moves from which variant or version to which
  analyze --config CONFIG SOURCE...
                      experiments and canaries judged from Envoy's stats (admin URL or file,
                      several proxies summed): rates, latency, goals, significance (exit 1:
                      a variant or canary is significantly worse)

Every command takes --json (one JSON document on stdout) and -h/--help.
The filter module built with this binary is embedded; --wasm PATH picks another build.

EXIT STATUS: 0 ok, 1 config rejected (or warnings with check --strict), 2 usage or runtime error
";

fn run(args: Vec<OsString>) -> anyhow::Result<Option<Report>> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        anyhow::bail!("missing COMMAND (see sluice --help)");
    };
    let rest: Vec<OsString> = args.collect();
    let command = command.to_string_lossy().into_owned();
    match command.as_str() {
        "-h" | "--help" | "help" => {
            print_out(HELP);
            Ok(None)
        }
        "check" => cmd::check::run(rest),
        "eval" => cmd::eval::run(rest, false),
        "explain" => cmd::eval::run(rest, true),
        "simulate" => cmd::simulate::run(rest),
        "diff" => cmd::diff::run(rest),
        "analyze" => cmd::analyze::run(rest),
        other => anyhow::bail!(
            "unknown command {other:?}: use check, eval, explain, simulate, diff or analyze (see sluice --help)"
        ),
    }
}

/// Writes to stdout; a closed pipe (`sluice ... | head`) is not an error.
fn print_out(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(_) => false,
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(args) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => {
            if !report.stderr.is_empty() {
                let _ = std::io::stderr().write_all(report.stderr.as_bytes());
            }
            print_out(&report.stdout);
            ExitCode::from(report.code)
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::from(2)
        }
    }
}

//! `sluice check CONFIG`: validate natively, optionally through the module; lint.
use crate::common::{self, Report};
use anyhow::{anyhow, Result};
use serde_json::json;
use sluice_host::{Host, LogLevel};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

const HELP: &str = "\
sluice check CONFIG [--wasm [PATH.wasm]] [--strict] [--json]

Validates CONFIG with Sluice's own compiler (no module needed) and warns about likely
mistakes. Errors go to stderr as FILE:LINE:COL: PATH: REASON (exit 1); warnings as
FILE:LINE:COL: warning: PATH: MESSAGE.

OPTIONS:
  --wasm [PATH.wasm]   also load CONFIG into the filter module (the embedded one, or PATH)
                       in the wasmtime host, as Envoy would
  --strict             warnings fail the check too (exit 1)
  --json               {\"ok\", \"errors\": [...], \"warnings\": [...]} on stdout
  -h, --help           this help
";

pub fn run(args: Vec<OsString>) -> Result<Option<Report>> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let (mut config, mut wasm, mut strict, mut as_json) = (None::<PathBuf>, None, false, false);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                crate::print_out(HELP);
                return Ok(None);
            }
            Long("wasm") => {
                // An optional value: the next argument when it names a .wasm file.
                let mut raw = parser.raw_args()?;
                let path = raw.next_if(|a| a.to_str().is_some_and(|s| s.ends_with(".wasm")));
                wasm = Some(path.map(PathBuf::from));
            }
            Long("strict") => strict = true,
            Long("json") => as_json = true,
            Value(v) if config.is_none() => config = Some(v.into()),
            _ => return Err(common::unexpected(common_arg(arg), "check")),
        }
    }
    let config = config.ok_or_else(|| anyhow!("missing CONFIG (see sluice check --help)"))?;
    let text =
        std::fs::read(&config).map_err(|e| anyhow!("cannot read {}: {e}", config.display()))?;
    let file = config.display().to_string();
    let mut report = Report::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let plan = match common::compile(&text) {
        Ok(plan) => Some(plan),
        Err(e) => {
            let (line, column, text_line) = common::config_error(&file, &text, &e);
            let _ = writeln!(report.stderr, "{text_line}");
            errors.push(json!({"file": file, "line": line, "column": column,
                "path": e.path, "reason": e.reason}));
            None
        }
    };
    if plan.is_some() {
        if let Ok(root) = sluice_primitives::json::parse(&text) {
            for w in sluice_cli::lint::lint(&root) {
                let (line, column) = sluice_primitives::json::line_column(&text, w.offset);
                let _ = writeln!(
                    report.stderr,
                    "{file}:{line}:{column}: warning: {}: {}",
                    w.path, w.message
                );
                warnings.push(json!({"file": file, "line": line, "column": column,
                    "path": w.path, "message": w.message}));
            }
        }
    }
    let mut module = None;
    if let (Some(path), true) = (&wasm, errors.is_empty()) {
        let bytes = common::module_bytes(path.as_ref())?;
        let (_host, rejected) = Host::builder_from_bytes(&bytes)
            .plugin_config(&text)
            .log_level(LogLevel::Warn)
            .start()?;
        let which = path
            .as_ref()
            .map_or("the embedded module".to_string(), |p| {
                p.display().to_string()
            });
        if let Some(rejected) = rejected {
            let logs: Vec<String> = rejected.logs.iter().map(|l| l.message.clone()).collect();
            let _ = writeln!(
                report.stderr,
                "{file}: rejected by {which}: {}",
                if logs.is_empty() {
                    "(it logged nothing)".to_string()
                } else {
                    logs.join("; ")
                }
            );
            errors.push(json!({"file": file, "module": which, "reason": logs.join("; ")}));
        } else {
            module = Some(which);
        }
    }
    let failed = !errors.is_empty() || (strict && !warnings.is_empty());
    report.code = u8::from(failed);
    if as_json {
        let value = json!({"ok": !failed, "file": file, "errors": errors,
            "warnings": warnings, "module": module});
        report.stdout = Report::json(&value).stdout;
    } else if errors.is_empty() {
        let plan_summary = plan
            .as_ref()
            .map(|p| format!("{} flag(s), {} route(s)", p.flags.len(), p.routes.len()))
            .unwrap_or_default();
        let _ = write!(report.stdout, "{file}: ");
        let _ = write!(
            report.stdout,
            "{}",
            if failed { "warnings (--strict)" } else { "ok" }
        );
        let _ = write!(report.stdout, ": {plan_summary}");
        if !warnings.is_empty() {
            let _ = write!(report.stdout, ", {} warning(s)", warnings.len());
        }
        if let Some(which) = module {
            let _ = write!(report.stdout, "; loaded by {which}");
        }
        report.stdout.push('\n');
    }
    Ok(Some(report))
}

fn common_arg(arg: lexopt::Arg) -> common::Arg {
    match arg {
        lexopt::Arg::Short(c) => common::Arg::Opt(format!("-{c}")),
        lexopt::Arg::Long(l) => common::Arg::Opt(format!("--{l}")),
        lexopt::Arg::Value(v) => common::Arg::Value(v),
    }
}

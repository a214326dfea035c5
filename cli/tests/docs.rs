//! Every console transcript in the docs is what the tools print today: each
//! ```` ```console ```` block of README.md, examples/README.md and docs/*.md is
//! run, command by command, and its output compared line by line.
//!
//! Commands run with `sh` from `tests/docs/` (which holds the `live.json` and
//! `next.json` the docs diff, and a link to `examples/`), with this build's
//! `sluice` first on `PATH` and stderr merged into stdout. `$ echo $?` checks the
//! previous command's exit code. A transcript that needs a running system (Envoy,
//! a registry) belongs in a ```` ```text ```` or ```` ```sh ```` block instead.
use std::path::{Path, PathBuf};
use std::process::Command;

struct Step {
    file: String,
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("examples/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The steps of every console block in `path`.
fn steps(path: &Path) -> Vec<Step> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
    let mut steps: Vec<Step> = Vec::new();
    let mut indent: Option<usize> = None;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        match indent {
            None => {
                if trimmed.starts_with("```console") {
                    indent = Some(line.len() - trimmed.len());
                }
            }
            Some(_) if trimmed.starts_with("```") => indent = None,
            Some(width) => {
                let line = line.get(width..).unwrap_or(trimmed);
                if let Some(command) = line.strip_prefix("$ ") {
                    let mut command = command.to_string();
                    while command.ends_with('\\') {
                        command.pop();
                        let (_, next) = lines.next().expect("a continued command goes on");
                        command.push_str(next.trim_start());
                    }
                    steps.push(Step {
                        file: file.clone(),
                        line: n + 1,
                        command,
                        expected: Vec::new(),
                    });
                } else {
                    let step = steps.last_mut().unwrap_or_else(|| {
                        panic!("{file}:{}: output before any `$ ` command", n + 1)
                    });
                    step.expected.push(line.trim_end().to_string());
                }
            }
        }
    }
    steps
}

#[test]
fn documented_commands_print_what_the_docs_show() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/docs");
    let mut failures = String::new();
    let mut ran = 0;
    for document in documents() {
        let mut status = None;
        for step in steps(&document) {
            let actual: Vec<String> = if step.command == "echo $?" {
                vec![status.map_or("none".to_string(), |s: i32| s.to_string())]
            } else {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec 2>&1\n{}", step.command))
                    .current_dir(&dir)
                    .env("PATH", &path)
                    .output()
                    .unwrap();
                status = out.status.code();
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|l| l.trim_end().to_string())
                    .collect()
            };
            ran += 1;
            if actual != step.expected {
                failures.push_str(&format!(
                    "\n{}:{}: `{}` printed\n{}\n  but the docs show\n{}\n",
                    step.file,
                    step.line,
                    step.command,
                    actual.join("\n"),
                    step.expected.join("\n")
                ));
            }
        }
    }
    assert!(ran >= 5, "only {ran} documented commands found");
    assert!(failures.is_empty(), "{failures}");
}

//! `sluice-render TEMPLATE [-o OUT] NAME=VALUE... NAME=@FILE...`
//!
//! Fills the `{{NAME}}` placeholders of an Envoy config template in `envoy/` (for Docker, or to
//! run Envoy by hand). `NAME=@FILE` puts FILE's content as one quoted string (how a JSON config
//! becomes `{{CONFIG_JSON}}`). Fails, naming them, if placeholders are left without a value.
use std::process::ExitCode;

use sluice_e2e::template::{self, Vars};

const USAGE: &str = "usage: sluice-render TEMPLATE [-o OUT] NAME=VALUE... NAME=@FILE...";

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut template_path = None;
    let mut out = None;
    let mut vars = Vars::new();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return Ok(());
        } else if arg == "-o" {
            out = Some(args.next().ok_or("-o needs a file")?);
        } else if let Some((name, value)) = arg.split_once('=') {
            let value = match value.strip_prefix('@') {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{name}=@{path}: {e}"))?;
                    template::yaml_string(&text)
                }
                None => value.to_string(),
            };
            vars.insert(name.to_string(), value);
        } else if template_path.is_none() {
            template_path = Some(arg);
        } else {
            return Err(format!("unexpected argument {arg}\n{USAGE}"));
        }
    }
    let template_path = template_path.ok_or(USAGE)?;
    let text = std::fs::read_to_string(&template_path)
        .map_err(|e| format!("cannot read {template_path}: {e}"))?;
    let rendered = template::render(&text, &vars).map_err(|e| format!("{template_path}: {e}"))?;
    match out {
        Some(path) => {
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, rendered).map_err(|e| format!("cannot write {path}: {e}"))
        }
        None => {
            print!("{rendered}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice-render: {message}");
            ExitCode::FAILURE
        }
    }
}

//! `sluice-echo --listen 127.0.0.1:0 --version v2 [--port-file F] [--fail-rate 0.1] [--delay-ms N]`
//!
//! Runs one echo upstream until killed. It prints `sluice-echo <version> listening on <addr>` on
//! stdout once bound, and with `--port-file` also writes the bound port (atomically) to that file,
//! so scripts can start it on a free port (`:0`) and read the port back.
use std::process::ExitCode;
use std::time::Duration;

use sluice_echo::{EchoOptions, EchoServer};

const USAGE: &str = "usage: sluice-echo --version NAME [--listen ADDR] [--port-file FILE] \
[--fail-rate RATE] [--delay-ms MS]

  --version NAME     version this instance answers with (x-echo-version, \"version\" in the body)
  --listen ADDR      address to bind (default 127.0.0.1:0, a free port)
  --port-file FILE   write the bound port to FILE once listening
  --fail-rate RATE   answer this share of requests (0..1) with 503, deterministically
  --delay-ms MS      wait MS milliseconds before each response";

struct Args {
    listen: String,
    version: String,
    port_file: Option<String>,
    fail_rate: f64,
    delay_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:0".to_string(),
        version: String::new(),
        port_file: None,
        fail_rate: 0.0,
        delay_ms: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?,
            "--version" => args.version = value()?,
            "--port-file" => args.port_file = Some(value()?),
            "--fail-rate" => {
                let v = value()?;
                args.fail_rate = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("--fail-rate {v}: expected a number in 0..1"))?;
            }
            "--delay-ms" => {
                let v = value()?;
                args.delay_ms = v
                    .parse()
                    .map_err(|_| format!("--delay-ms {v}: expected milliseconds"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.version.is_empty() {
        return Err("--version is required".to_string());
    }
    Ok(args)
}

fn write_port_file(path: &str, port: u16) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp.{}", std::process::id());
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, path)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("sluice-echo: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let options = EchoOptions::new(&args.version)
        .fail_rate(args.fail_rate)
        .delay(Duration::from_millis(args.delay_ms));
    let server = match EchoServer::start(&args.listen, options) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("sluice-echo: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.port_file {
        if let Err(err) = write_port_file(path, server.port()) {
            eprintln!("sluice-echo: cannot write {path}: {err}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "sluice-echo {} listening on {}",
        server.version(),
        server.addr()
    );
    server.wait();
    ExitCode::SUCCESS
}

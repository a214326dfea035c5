//! The `sluice-echo` binary as the demo and the load runs start it: free port, port file, version.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, failed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn binary_reports_its_port_and_answers_as_its_version() {
    let dir = std::env::temp_dir().join(format!("sluice-echo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice-echo"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--version",
            "v2",
            "--fail-rate",
            "0.5",
        ])
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        line.starts_with("sluice-echo v2 listening on 127.0.0.1:"),
        "{line}"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while !port_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let from_file: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(from_file, port);

    // --fail-rate 0.5: every second request is a 503, deterministically.
    let (head, body) = get(port, "/a?b=c");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("x-echo-version: v2"), "{head}");
    assert!(
        body.contains(r#""version":"v2""#) && body.contains(r#""path":"/a?b=c""#),
        "{body}"
    );
    let (head, _) = get(port, "/");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binary_rejects_bad_arguments_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-echo"))
        .args(["--version", "v1", "--fail-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--fail-rate 2: expected a number in 0..1"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: sluice-echo"), "{stderr}");
}

//! `make demo` as a first-time user sees it: the `sluice-demo` binary, with fewer users. It prints
//! where requests went per route, the flag variants the services received, a stickiness check that
//! finds nobody on two versions, and stops everything it started, also on Ctrl-C.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_e2e::{paths, HttpClient};

const DEMO: &str = env!("CARGO_BIN_EXE_sluice-demo");

/// Fails with the command that provides what the demo needs (never skips).
fn prerequisites() {
    let _ = paths::sluice_wasm();
    let _ = paths::envoy_binary();
}

/// Rows of the table under the line that starts with `title`: first cell → (users, requests).
fn table(output: &str, title: &str) -> BTreeMap<String, (usize, usize)> {
    let mut lines = output.lines().skip_while(|l| !l.starts_with(title));
    assert!(lines.next().is_some(), "no {title:?} table in:\n{output}");
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("users") && header.contains("requests"),
        "{header}"
    );
    let number = |cell: &str| cell.replace(',', "").parse::<usize>().unwrap();
    lines
        .take_while(|l| l.starts_with("  ") && !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells.len(), 5, "row {l:?}");
            (cells[0].to_string(), (number(cells[1]), number(cells[3])))
        })
        .collect()
}

fn users(rows: &BTreeMap<String, (usize, usize)>, value: &str) -> usize {
    rows.get(value).map_or(0, |(users, _)| *users)
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Envoy pid and listener address from the demo's first line
/// (`Sluice demo: Envoy 1.40.0 (pid 123, 2 workers) on http://127.0.0.1:4567, ...`).
fn envoy_of(first_line: &str) -> (u32, std::net::SocketAddr) {
    let pid = first_line
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no Envoy pid in {first_line:?}"));
    let addr = first_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no Envoy address in {first_line:?}"));
    (pid, addr)
}

#[test]
fn demo_prints_where_requests_went_and_every_user_stays_put() {
    prerequisites();
    let started = Instant::now();
    let output = Command::new(DEMO)
        .args(["--users", "200", "--name", "demo-test"])
        .stdin(Stdio::null())
        .output()
        .expect("run sluice-demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sluice-demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.starts_with("Sluice demo: Envoy 1.40.0"), "{stdout}");
    assert!(
        stdout.contains("sending 600 requests from 200 simulated users"),
        "{stdout}"
    );

    // Routes: where requests went, by the backend that answered.
    let reviews = table(&stdout, "route reviews");
    assert_eq!(
        users(&reviews, "v1") + users(&reviews, "v2"),
        200,
        "{stdout}"
    );
    let v2 = users(&reviews, "v2");
    assert!(
        (8..=32).contains(&v2),
        "10% canary: {v2} of 200 users on v2\n{stdout}"
    );
    assert_eq!(
        reviews["v1"].1 + reviews["v2"].1,
        400,
        "two reviews requests per user"
    );
    let ratings = table(&stdout, "route ratings");
    // Blue is active; only the previewers (`x-preview: 1`, every 50th user) see green.
    assert_eq!(users(&ratings, "blue"), 196, "{stdout}");
    assert_eq!(users(&ratings, "green"), 4, "{stdout}");

    // Flags: the variants the services received.
    let checkout = table(&stdout, "flag checkout");
    let on = users(&checkout, "on");
    assert!(
        (70..=130).contains(&on),
        "checkout 50%: {on} of 200\n{stdout}"
    );
    let theme = table(&stdout, "flag theme");
    assert_eq!(theme.keys().count(), 3, "{stdout}");
    assert_eq!(theme.values().map(|(u, _)| u).sum::<usize>(), 200);
    let new_search = table(&stdout, "flag new-search");
    assert_eq!(new_search.values().map(|(_, r)| r).sum::<usize>(), 600);

    // Stickiness: nobody saw two versions of a service or two variants of a flag.
    let sticky: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("stickiness"))
        .skip(1)
        .take_while(|l| l.starts_with("  route") || l.starts_with("  flag"))
        .collect();
    assert_eq!(sticky.len(), 5, "2 routes + 3 flags:\n{stdout}");
    for line in sticky {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[2], "0", "{line}");
        assert_eq!(cells.last(), Some(&"ok"), "{line}");
    }
    assert!(
        stdout
            .contains("every request reached the version Sluice wrote into its route header: yes"),
        "{stdout}"
    );
    assert!(stdout.contains("600 requests in"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("stopped Envoy and 4 backends"),
        "{stdout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the short demo took {:?}",
        started.elapsed()
    );
}

/// A demo running in the background, its stdout read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        prerequisites();
        let mut child = Command::new(DEMO)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sluice-demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads until a line starts with `prefix` (15 s at most).
    fn wait_line(&mut self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.seen.iter().any(|l| l.trim_start().starts_with(prefix)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    let mut err = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!("no line {prefix:?} from the demo:\n{}\n{err}", self.text());
                }
            }
        }
    }

    fn text(&self) -> String {
        self.seen.join("\n")
    }

    /// Ctrl-C: SIGINT to the demo; its exit status once it has exited (10 s at most), and every
    /// line it printed.
    fn interrupt(mut self) -> (ExitStatus, Vec<String>) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let status = wait_exit(&mut self.child, Duration::from_secs(10));
        // The reader thread ends with the demo's stdout.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let status = status.unwrap_or_else(|| panic!("the demo ignored Ctrl-C:\n{}", self.text()));
        (status, self.seen)
    }
}

/// Envoy's process is gone and its listener refuses connections.
fn assert_stopped(envoy_pid: u32, addr: std::net::SocketAddr) {
    let proc_dir = format!("/proc/{envoy_pid}");
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(5), || !Path::new(&proc_dir).exists()),
        "Envoy {envoy_pid} still runs after the demo exited"
    );
    assert!(
        HttpClient::new(addr).get("/", &[]).is_err(),
        "Envoy's listener {addr} still answers"
    );
}

#[test]
fn ctrl_c_stops_envoy_and_the_backends() {
    let mut demo = Running::start(&["--users", "20", "--serve", "--name", "demo-ctrl-c"]);
    demo.wait_line("Ctrl-C stops it");
    let (envoy_pid, addr) = envoy_of(&demo.seen[0]);
    assert!(
        Path::new(&format!("/proc/{envoy_pid}")).exists(),
        "Envoy {envoy_pid} is running"
    );

    // While it serves, Envoy answers with Sluice's decision, like the printed curl commands show.
    let reply = HttpClient::new(addr)
        .get("/reviews/1", &[("x-user-id", "alice")])
        .expect("request through the demo's Envoy");
    assert_eq!(reply.status, 200);
    let echo = reply.echo().expect("an echo backend answered");
    assert!(echo.header("x-sluice-flags").is_some(), "{echo:?}");

    let (status, lines) = demo.interrupt();
    // With --serve, Ctrl-C is the normal way out: the status is that of the checks (0).
    assert!(status.success(), "{status}: {}", lines.join("\n"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stopped Envoy and 4 backends"),
        "{}",
        lines.join("\n")
    );
    assert_stopped(envoy_pid, addr);
}

#[test]
fn ctrl_c_while_requests_are_sent_stops_everything_too() {
    // Enough users that the traffic is still running when Ctrl-C comes.
    let mut demo = Running::start(&["--users", "100000", "--name", "demo-ctrl-c-traffic"]);
    demo.wait_line("sending");
    let (envoy_pid, addr) = envoy_of(&demo.seen[0]);
    let (status, lines) = demo.interrupt();
    let text = lines.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted: stopping"), "{text}");
    assert!(
        !text.contains("stickiness"),
        "no report after Ctrl-C: {text}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("stopped Envoy and 4 backends"),
        "{text}"
    );
    assert_stopped(envoy_pid, addr);
}

//! A real Envoy process for one test: started on free loopback ports, ready when admin `/ready`
//! says LIVE, stopped on drop, its log kept (and printed when the test fails).
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::HttpClient;
use crate::paths;
use crate::template::{self, Vars};

/// How many log lines a failing test prints (the whole log stays in the file).
const LOG_TAIL_LINES: usize = 150;

/// How to run Envoy.
#[derive(Clone, Debug)]
pub struct EnvoyOptions {
    /// Worker threads (`--concurrency`); one VM per worker. Default 1.
    pub concurrency: u32,
    /// `-l` (default `info`).
    pub log_level: String,
    /// `--component-log-level` (e.g. `wasm:debug`), if any.
    pub component_log_level: Option<String>,
    /// Name of the run directory under `target/e2e/` (default: the test's name).
    pub name: Option<String>,
    /// Files written into the run directory before Envoy starts (e.g. the ECDS file), name →
    /// contents; contents may use `{{DIR}}`.
    pub files: Vec<(String, String)>,
    /// How long to wait for LIVE.
    pub startup_timeout: Duration,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            log_level: "info".to_string(),
            component_log_level: None,
            name: None,
            files: Vec::new(),
            startup_timeout: Duration::from_secs(30),
        }
    }
}

impl EnvoyOptions {
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_level = Some(levels.to_string());
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Writes `contents` to `<run dir>/<name>` before start.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.to_string(), contents.to_string()));
        self
    }
}

/// Envoy did not start (or a harness step failed); carries Envoy's log.
#[derive(Debug)]
pub struct EnvoyError {
    pub message: String,
    /// How Envoy exited, if it did.
    pub exit: Option<ExitStatus>,
    /// Envoy's whole log.
    pub log: String,
    pub log_path: PathBuf,
}

impl fmt::Display for EnvoyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        if let Some(exit) = self.exit {
            writeln!(f, "envoy exited: {exit}")?;
        }
        writeln!(f, "--- tail of {} ---", self.log_path.display())?;
        write!(f, "{}", tail(&self.log, LOG_TAIL_LINES))
    }
}

impl std::error::Error for EnvoyError {}

/// A running Envoy; dropping it stops the process.
pub struct Envoy {
    child: Option<Child>,
    dir: PathBuf,
    log_path: PathBuf,
    admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
}

/// Run directory names taken by this test process.
static USED_DIRS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

impl Envoy {
    /// Starts Envoy with `config_yaml` and default options (one worker).
    ///
    /// The harness fills `{{LISTEN_ADDRESS}}` with 127.0.0.1, `{{LISTEN_PORT}}` and
    /// `{{ADMIN_PORT}}` with 0 (Envoy binds free ports, read back afterwards) and `{{DIR}}` with the
    /// run directory; every other placeholder must be filled already.
    ///
    /// # Panics
    /// When the Envoy binary is missing (with the command that installs it).
    pub fn start(config_yaml: &str) -> Result<Envoy, EnvoyError> {
        Envoy::start_with(config_yaml, EnvoyOptions::default())
    }

    /// Starts Envoy with `config_yaml` and `options`; see [`Envoy::start`].
    ///
    /// # Panics
    /// When the Envoy binary is missing (with the command that installs it).
    pub fn start_with(config_yaml: &str, options: EnvoyOptions) -> Result<Envoy, EnvoyError> {
        let binary = paths::envoy_binary();
        let dir = run_dir(options.name.as_deref());
        let log_path = dir.join("envoy.log");
        let fail = |message: String| EnvoyError {
            message,
            exit: None,
            log: String::new(),
            log_path: log_path.clone(),
        };
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;

        let mut vars = Vars::new();
        vars.insert("LISTEN_ADDRESS".into(), "127.0.0.1".into());
        vars.insert("LISTEN_PORT".into(), "0".into());
        vars.insert("ADMIN_PORT".into(), "0".into());
        vars.insert("DIR".into(), dir.display().to_string());
        for (name, contents) in &options.files {
            let contents = template::fill(contents, &vars);
            write_atomic(&dir.join(name), &contents)
                .map_err(|e| fail(format!("cannot write {name}: {e}")))?;
        }
        let config =
            template::render(config_yaml, &vars).map_err(|e| fail(format!("envoy config: {e}")))?;
        let config_path = dir.join("envoy.yaml");
        fs::write(&config_path, config).map_err(|e| fail(format!("cannot write config: {e}")))?;

        let admin_path = dir.join("admin.addr");
        let log_file =
            fs::File::create(&log_path).map_err(|e| fail(format!("cannot create log: {e}")))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| fail(format!("cannot open log: {e}")))?;
        let mut command = Command::new(&binary);
        command
            .arg("-c")
            .arg(&config_path)
            .arg("--concurrency")
            .arg(options.concurrency.to_string())
            // A base id nobody uses: several Envoys (tests, a demo) can run side by side.
            .arg("--use-dynamic-base-id")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("-l")
            .arg(&options.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        if let Some(levels) = &options.component_log_level {
            command.arg("--component-log-level").arg(levels);
        }
        let child = command
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;

        let mut envoy = Envoy {
            child: Some(child),
            dir,
            log_path,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: BTreeMap::new(),
        };
        envoy.wait_ready(&admin_path, options.startup_timeout)?;
        Ok(envoy)
    }

    fn error(&mut self, message: String) -> EnvoyError {
        let exit = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        EnvoyError {
            message,
            exit,
            log: self.log(),
            log_path: self.log_path.clone(),
        }
    }

    fn wait_ready(&mut self, admin_path: &Path, timeout: Duration) -> Result<(), EnvoyError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(EnvoyError {
                        message: "envoy exited during startup".to_string(),
                        exit: Some(status),
                        log: self.log(),
                        log_path: self.log_path.clone(),
                    });
                }
            }
            if self.admin.port() == 0 {
                if let Some(addr) = fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|text| text.trim().parse::<SocketAddr>().ok())
                {
                    self.admin = addr;
                }
            }
            if self.admin.port() != 0 {
                if let Ok(response) = self.admin_client().get("/ready", &[]) {
                    if response.status == 200 && response.text().trim() == "LIVE" {
                        break;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(self.error(format!("envoy not LIVE after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let listeners = self
            .admin_get("/listeners?format=json")
            .and_then(|text| parse_listeners(&text));
        match listeners {
            Ok(listeners) => {
                self.listeners = listeners;
                Ok(())
            }
            Err(message) => Err(self.error(format!("cannot read listeners: {message}"))),
        }
    }

    /// The run directory (`target/e2e/<name>/`): config, log, ECDS files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file (kept after the test).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the log contains `needle`; returns whether it did within `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        crate::wait_until(timeout, || self.log().contains(needle))
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The address of the listener named `name` in the config.
    ///
    /// # Panics
    /// When there is no such listener.
    pub fn listener(&self, name: &str) -> SocketAddr {
        match self.listeners.get(name) {
            Some(addr) => *addr,
            None => panic!(
                "no listener {name:?}; listeners: {:?}",
                self.listeners.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// The address of the (first) listener.
    ///
    /// # Panics
    /// When the config has no listener.
    pub fn addr(&self) -> SocketAddr {
        match self.listeners.values().next() {
            Some(addr) => *addr,
            None => panic!("envoy has no listener"),
        }
    }

    /// A keep-alive client to the (first) listener.
    pub fn client(&self) -> HttpClient {
        HttpClient::new(self.addr())
    }

    fn admin_client(&self) -> HttpClient {
        HttpClient::new(self.admin).with_timeout(Duration::from_secs(5))
    }

    /// GET an admin endpoint; the body, or why it failed.
    pub fn admin_get(&self, path: &str) -> Result<String, String> {
        let response = self
            .admin_client()
            .get(path, &[])
            .map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("{path}: status {}", response.status));
        }
        Ok(response.text())
    }

    /// Every stat of admin `/stats` (text format) with a plain value: counters, gauges and text
    /// readouts (histograms are left out), name → value as printed.
    pub fn stats(&self) -> BTreeMap<String, String> {
        let text = self.admin_get("/stats").unwrap_or_default();
        parse_stats(&text)
    }

    /// One counter or gauge, if it exists.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats().get(name)?.parse().ok()
    }

    /// A text readout (e.g. `extension_config_discovery.http_filter.sluice.version_text`).
    pub fn text_stat(&self, name: &str) -> Option<String> {
        let stats = self.stats();
        Some(stats.get(name)?.trim_matches('"').to_string())
    }

    /// Admin `/stats?format=json`, parsed.
    pub fn stats_json(&self) -> Result<Value, String> {
        let text = self.admin_get("/stats?format=json")?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// Writes `contents` to `<run dir>/<name>` atomically (temporary file, then rename): how to
    /// replace a file Envoy watches, e.g. to push an ECDS config.
    pub fn write_file(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.join(name);
        write_atomic(&path, contents)?;
        Ok(path)
    }

    /// The process id, while Envoy runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Envoy's version number (`1.40.0`), from admin `/server_info`.
    pub fn version(&self) -> Option<String> {
        let info: Value = serde_json::from_str(&self.admin_get("/server_info").ok()?).ok()?;
        // "version": "<commit>/1.40.0/Clean/RELEASE/BoringSSL"
        let full = info.get("version")?.as_str()?;
        Some(full.split('/').nth(1).unwrap_or(full).to_string())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops Envoy (admin `/quitquitquit`, then kill after 5 s) and returns its log.
    pub fn stop(mut self) -> String {
        self.shutdown();
        self.log()
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.admin.port() != 0 {
            let _ = self
                .admin_client()
                .request("POST", "/quitquitquit", &[], &[]);
        }
        let exited = crate::wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- the test failed; tail of Envoy's log {} ---\n{}\n--- end of Envoy's log ---",
                self.log_path.display(),
                tail(&self.log(), LOG_TAIL_LINES)
            );
        }
    }
}

/// `target/e2e/<name>-<n>`: named after the test (libtest names the test thread after it).
fn run_dir(name: Option<&str>) -> PathBuf {
    let base = match name {
        Some(name) => name.to_string(),
        None => std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .unwrap_or("envoy")
            .to_string(),
    };
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // One directory per Envoy: a second Envoy in the same test gets `<name>-2`, and so on.
    let mut used = USED_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    let mut dir_name = safe.clone();
    let mut n = 1;
    while used.contains(&dir_name) {
        n += 1;
        dir_name = format!("{safe}-{n}");
    }
    used.insert(dir_name.clone());
    paths::target_dir().join("e2e").join(dir_name)
}

fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

fn parse_listeners(text: &str) -> Result<BTreeMap<String, SocketAddr>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut listeners = BTreeMap::new();
    for status in json["listener_statuses"].as_array().into_iter().flatten() {
        let name = status["name"].as_str().unwrap_or_default().to_string();
        let socket = &status["local_address"]["socket_address"];
        let (Some(address), Some(port)) =
            (socket["address"].as_str(), socket["port_value"].as_u64())
        else {
            continue;
        };
        let addr: SocketAddr = format!("{address}:{port}")
            .parse()
            .map_err(|e| format!("listener {name}: {e}"))?;
        listeners.insert(name, addr);
    }
    if listeners.is_empty() {
        return Err(format!("no listener in {text}"));
    }
    Ok(listeners)
}

fn parse_stats(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            // Histograms print "P0(...)" summaries or "No recorded values".
            if value.starts_with("P0(") || value.contains("No recorded values") {
                return None;
            }
            Some((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[... {start} earlier lines]\n"));
    }
    out.push_str(&all[start..].join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_text() {
        let text = "cluster.a.upstream_rq_200: 12\nx.version_text: \"3\"\nh: P0(nan,1) P25(nan,2)\nh2: No recorded values\n";
        let stats = parse_stats(text);
        assert_eq!(
            stats.get("cluster.a.upstream_rq_200").map(String::as_str),
            Some("12")
        );
        assert_eq!(
            stats.get("x.version_text").map(String::as_str),
            Some("\"3\"")
        );
        assert!(!stats.contains_key("h") && !stats.contains_key("h2"));
    }
}

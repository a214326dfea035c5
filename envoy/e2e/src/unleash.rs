//! A live Unleash for the tests: PostgreSQL (Debian's `postgresql`, `initdb` into a temp dir, run
//! as the `postgres` user when the tests run as root) and npm `unleash-server` (in
//! build/unleash-server), both on free loopback ports, both stopped when their guard drops.
//! `make setup-unleash` installs what is missing; a missing part fails the test and says so.
//!
//! The server starts with one admin API token; everything else (client tokens, segments, flags)
//! goes through Unleash's admin API, as a team would do it.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::paths::workspace_root;
use crate::HttpClient;

/// The admin token the server is started with.
pub const ADMIN_TOKEN: &str = "*:*.sluice-e2e-admin";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest PostgreSQL server binaries Debian installed (`/usr/lib/postgresql/<major>/bin`).
fn postgres_bin() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    match majors.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server not found in /usr/lib/postgresql: run `make setup-unleash` \
             (apt-get install postgresql)"
        ),
    }
}

/// A PostgreSQL cluster in a temp dir, as a non-root user.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl Postgres {
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// initdb, start on a free port (loopback, socket in the dir), create the database.
    pub fn start() -> Postgres {
        let bin = postgres_bin();
        let as_postgres = is_root();
        let dir =
            std::env::temp_dir().join(format!("sluice-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        if as_postgres {
            // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown {} to postgres", dir.display());
        }
        let pg = Postgres {
            dir,
            bin,
            as_postgres,
            port: free_port(),
            user: "sluice".into(),
            database: "unleash".into(),
        };
        let data = pg.dir.join("data");
        let data = data.to_str().expect("utf-8 temp path");
        pg.run(
            "initdb",
            &[
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                &pg.user,
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("postgres.log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &options,
                "-l",
                log.to_str().unwrap_or("log"),
                "-w",
                "start",
            ],
        );
        let port = pg.port.to_string();
        pg.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", &pg.user, &pg.database],
        );
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `unleash-server` on a free loopback port over a [`Postgres`].
pub struct Unleash {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    db: (u16, String, String),
}

fn server_dir() -> PathBuf {
    let dir = workspace_root().join("build/unleash-server/node_modules");
    if !dir.join("unleash-server").is_dir() {
        panic!(
            "npm unleash-server not found in {}: run `make setup-unleash`",
            dir.display()
        );
    }
    dir
}

impl Unleash {
    /// Starts the server and waits for `/health`; returns it and how long that took.
    pub fn start(pg: &Postgres, log_dir: &Path) -> (Unleash, Duration) {
        let mut unleash = Unleash {
            child: None,
            port: free_port(),
            log: log_dir.join("unleash.log"),
            db: (pg.port, pg.user.clone(), pg.database.clone()),
        };
        let took = unleash.restart();
        (unleash, took)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts (again) on the same port and database; how long until `/health` answered.
    pub fn restart(&mut self) -> Duration {
        assert!(self.child.is_none(), "already running");
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("unleash log file");
        let child = Command::new("node")
            .arg(workspace_root().join("envoy/e2e/unleash/server.js"))
            .env("NODE_PATH", server_dir())
            .env("UNLEASH_DB_PORT", self.db.0.to_string())
            .env("UNLEASH_DB_USER", &self.db.1)
            .env("UNLEASH_DB_NAME", &self.db.2)
            .env("UNLEASH_PORT", self.port.to_string())
            .env("UNLEASH_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node is needed for the live Unleash (apt-get install nodejs)");
        self.child = Some(child);
        let mut client = HttpClient::new(self.addr()).with_timeout(Duration::from_secs(2));
        let healthy = crate::wait_until(
            Duration::from_secs(90),
            || matches!(client.get("/health", &[]), Ok(r) if r.status == 200),
        );
        assert!(
            healthy,
            "Unleash did not become healthy:\n{}",
            self.log_text()
        );
        started.elapsed()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let exited = crate::wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One admin API call with the admin token; the JSON answer (`Null` when empty).
    ///
    /// # Panics
    /// When Unleash answers outside 2xx, with the status and the answer.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        match self.try_admin(method, path, body) {
            Ok(value) => value,
            Err((status, text)) => panic!(
                "{method} {path} {}: HTTP {status} {text}",
                body.map(Value::to_string).unwrap_or_default()
            ),
        }
    }

    /// The same, with a non-2xx answer returned as its status and text (e.g. a 404 for an
    /// application Unleash has not written yet).
    pub fn try_admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, (u16, String)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut client = HttpClient::new(self.addr()).with_timeout(Duration::from_secs(10));
        let response = client
            .request(
                method,
                path,
                &[
                    ("authorization", ADMIN_TOKEN),
                    ("content-type", "application/json"),
                    ("accept", "application/json"),
                ],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if !(200..300).contains(&response.status) {
            return Err((response.status, response.text()));
        }
        Ok(response.json().unwrap_or(Value::Null))
    }

    /// The ETag Unleash gives the features it serves now (what a polling client holds).
    pub fn client_features_etag(&self, token: &str) -> Option<String> {
        let mut client = HttpClient::new(self.addr()).with_timeout(Duration::from_secs(10));
        let response = client
            .get("/api/client/features", &[("authorization", token)])
            .expect("client features");
        assert_eq!(response.status, 200, "{}", response.text());
        response.header("etag").map(str::to_string)
    }

    /// `GET /api/client/features` as a polling client holding `etag` asks for it: `None` while
    /// Unleash answers 304 Not Modified (it has not yet published a change to such clients,
    /// which can lag an unconditional read by its revision check).
    pub fn client_features_since(&self, token: &str, etag: Option<&str>) -> Option<Value> {
        let mut client = HttpClient::new(self.addr()).with_timeout(Duration::from_secs(10));
        let mut headers = vec![("authorization", token)];
        if let Some(etag) = etag {
            headers.push(("if-none-match", etag));
        }
        let response = client
            .get("/api/client/features", &headers)
            .expect("client features");
        if response.status == 304 {
            return None;
        }
        assert_eq!(response.status, 200, "{}", response.text());
        Some(response.json().expect("client features JSON"))
    }

    /// `GET /api/client/features` with a client token, as an SDK sees it.
    pub fn client_features(&self, token: &str) -> Value {
        let mut client = HttpClient::new(self.addr()).with_timeout(Duration::from_secs(10));
        let response = client
            .get("/api/client/features", &[("authorization", token)])
            .expect("client features");
        assert_eq!(response.status, 200, "{}", response.text());
        response.json().expect("client features JSON")
    }
}

impl Drop for Unleash {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Tools the end-to-end tests share: finding a tool on PATH (or failing
//! with how to install it), plain HTTP GETs, and a real Prometheus server
//! scraping the gateway.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Gateway, TempDir, free_port, split_response};

/// Upper bound for any wait on Prometheus (start-up, first scrape, ...).
pub const LONG_WAIT: Duration = Duration::from_secs(30);

/// What to do when a tool is missing.
pub const INSTALL_HINT: &str = "run tests/e2e/install.sh to install the end-to-end test tools";

/// The absolute path of `name` on `PATH`; fails the test when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if let Ok(meta) = candidate.metadata() {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate;
            }
        }
    }
    panic!("`{name}` not found on PATH: {INSTALL_HINT}");
}

/// `GET path` as plain HTTP/1.0 over a fresh connection: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let (status, _, body) = split_response(&String::from_utf8_lossy(&buf));
    Ok((status, body))
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server scraping one target, killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Debian's `prometheus` with a private config and TSDB, scraping
    /// `target` every second with `honor_labels: true` under job
    /// `push-gateway`, and waits until `/-/ready` answers 200.
    pub fn start(target: SocketAddr) -> Prometheus {
        Self::start_with_scrape_configs(&format!(
            "  - job_name: push-gateway\n    honor_labels: true\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ))
    }

    /// Like `start`, with `scrape_configs` (YAML list items, indented by
    /// two spaces) as the config's scrape jobs, every 1 s.
    pub fn start_with_scrape_configs(scrape_configs: &str) -> Prometheus {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Self::start_at(addr, scrape_configs, &[])
    }

    /// A Prometheus that scrapes nothing and takes remote writes on
    /// `/api/v1/write`, listening on `addr`.
    pub fn start_receiver(addr: SocketAddr) -> Prometheus {
        Self::start_at(addr, "", &["--web.enable-remote-write-receiver"])
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn start_at(addr: SocketAddr, scrape_configs: &str, args: &[&str]) -> Prometheus {
        let bin = require_tool("prometheus");
        let dir = TempDir::new("prom");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:{}{scrape_configs}",
                if scrape_configs.is_empty() {
                    " []\n"
                } else {
                    "\n"
                }
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(&bin)
            .args(args)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut prom = Prometheus { child, addr, dir };
        let deadline = Instant::now() + LONG_WAIT;
        loop {
            if let Ok(Some(status)) = prom.child.try_wait() {
                panic!(
                    "prometheus exited during start-up: {status}\n{}",
                    prom.log()
                );
            }
            if matches!(http_get(prom.addr, "/-/ready"), Ok((200, _))) {
                return prom;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after {LONG_WAIT:?}\n{}",
                prom.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The body of `GET /api/v1/<path>`; fails the test on an error status.
    pub fn api(&self, path: &str) -> String {
        match http_get(self.addr, &format!("/api/v1/{path}")) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!(
                "prometheus /api/v1/{path}: HTTP {status}: {body}\n{}",
                self.log()
            ),
            Err(e) => panic!("prometheus /api/v1/{path}: {e}\n{}", self.log()),
        }
    }

    /// The JSON answer of the instant query `promql`.
    pub fn query(&self, promql: &str) -> String {
        self.api(&format!("query?query={}", url_encode(promql)))
    }

    /// Polls `query(promql)` until `pred` holds; fails after `LONG_WAIT`
    /// with the last answer and the gateway's page. `tick` runs before
    /// every try.
    pub fn query_until(
        &self,
        gw: &Gateway,
        promql: &str,
        what: &str,
        mut tick: impl FnMut(),
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + LONG_WAIT;
        loop {
            tick();
            let answer = self.query(promql);
            if pred(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {LONG_WAIT:?} waiting for {what}; last answer to `{promql}`:\n{answer}\n\
                 targets:\n{}\n{}\n--- gateway page:\n{}",
                self.api("targets"),
                self.log(),
                gw.scrape()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The tail of Prometheus' own log, for failure messages.
    pub fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- prometheus log (tail):\n{tail}")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished command's status and output, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

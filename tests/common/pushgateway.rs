//! The reference: Debian's Prometheus Pushgateway
//! (`/usr/bin/prometheus-pushgateway`, from tests/e2e/install.sh), started
//! on a free loopback port with persistence off (`--persistence.file=`),
//! and killed by its PID on drop. Its log goes to a file in a private
//! directory, for failure messages.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::tools::{LONG_WAIT, http_get, require_tool};
use super::{TempDir, free_port};

/// A running Pushgateway, killed on drop.
pub struct Pushgateway {
    child: Child,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Pushgateway {
    /// Starts it and waits until `/-/ready` answers 200. A port taken
    /// between the probe and its bind makes it exit: another is tried.
    pub fn start() -> Pushgateway {
        let bin = require_tool("prometheus-pushgateway");
        for _ in 0..3 {
            let dir = TempDir::new("pushgateway");
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(dir.path().join("pushgateway.log")).unwrap();
            let child = Command::new(&bin)
                .arg(format!("--web.listen-address={addr}"))
                .arg("--persistence.file=")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut pgw = Pushgateway { child, addr, dir };
            let deadline = Instant::now() + LONG_WAIT;
            loop {
                if let Ok(Some(_)) = pgw.child.try_wait() {
                    break; // exited (port taken?): try another port
                }
                if matches!(http_get(addr, "/-/ready"), Ok((200, _))) {
                    return pgw;
                }
                assert!(
                    Instant::now() < deadline,
                    "prometheus-pushgateway not ready on {addr} after {LONG_WAIT:?}\n{}",
                    pgw.log()
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        panic!("prometheus-pushgateway could not listen on a free loopback port (3 tries)");
    }

    /// The body of `GET /metrics`.
    pub fn scrape(&self) -> String {
        match http_get(self.addr, "/metrics") {
            Ok((200, body)) => body,
            other => panic!(
                "scraping the Pushgateway on {}: {other:?}\n{}",
                self.addr,
                self.log()
            ),
        }
    }

    /// The tail of its log, for failure messages.
    pub fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("pushgateway.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- Pushgateway log (tail):\n{tail}")
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

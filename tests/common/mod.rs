//! Test harness: starts the real `push-gateway` binary on a temporary
//! socket and a free loopback port, and talks to it over real sockets.
//!
//! Under `make cross-test` the test binary itself runs under qemu-user and
//! cannot exec an aarch64 binary directly, so the gateway is started through
//! the runner named by `PUSH_GATEWAY_TEST_RUNNER` when it is set. The
//! binary is this build's `push-gateway`, or `PUSH_GATEWAY_TEST_BIN` when
//! set: `make cross-test BUILD=tiny` runs the tests against the nightly
//! size-first build, which cannot build the test harness itself.
#![allow(dead_code)]

pub mod clients;
pub mod page;
pub mod protobuf;
pub mod pushgateway;
pub mod tools;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for the gateway to come up or a condition to hold.
pub const WAIT: Duration = Duration::from_secs(10);

/// A time bound for the machine the gateway runs on: ten times longer
/// under an emulator (`PUSH_GATEWAY_TEST_RUNNER`), where everything is
/// slower. Bounds here are behaviour (nobody waits for ever), not speed.
pub fn scaled(d: Duration) -> Duration {
    match std::env::var("PUSH_GATEWAY_TEST_RUNNER") {
        Ok(r) if !r.is_empty() => d * 10,
        _ => d,
    }
}

/// A private temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pg-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway binary, wrapped in the cross runner if one is configured.
/// The gateway binary the tests start: `PUSH_GATEWAY_TEST_BIN`, or this
/// build's own.
pub fn gateway_bin() -> PathBuf {
    match std::env::var_os("PUSH_GATEWAY_TEST_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_push-gateway")),
    }
}

pub fn gateway_command() -> Command {
    let bin = gateway_bin();
    match std::env::var("PUSH_GATEWAY_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut cmd = Command::new(runner);
            cmd.arg(bin);
            cmd
        }
        _ => Command::new(bin),
    }
}

/// A running gateway, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub socket: PathBuf,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Gateway {
    /// Starts the gateway with `--socket` and `--listen` set to private
    /// values plus `extra` flags, and waits until both accept connections.
    /// Its own metrics are left off the page, so tests see only theirs.
    pub fn start(extra: &[&str]) -> Gateway {
        let mut args = vec!["--no-self-metrics"];
        args.extend_from_slice(extra);
        Self::start_with(&args, |_| {})
    }

    /// Like `start`, with the gateway's own metrics on the page.
    pub fn start_full(extra: &[&str]) -> Gateway {
        Self::start_with(extra, |_| {})
    }

    /// Like `start`, letting the caller adjust the command (env, stdio).
    pub fn start_with(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Gateway {
        let dir = TempDir::new("gw");
        let socket = dir.path().join("push.sock");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = gateway_command();
        cmd.arg("--socket")
            .arg(&socket)
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("error".into()),
            )
            .stdin(Stdio::null());
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn push-gateway");
        let mut gw = Gateway {
            child,
            socket,
            addr,
            dir,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("push-gateway exited during start-up: {status}");
            }
            if UnixStream::connect(&self.socket).is_ok() && TcpStream::connect(self.addr).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "push-gateway did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a stream connection to the push socket.
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(scaled(WAIT))).unwrap();
        s
    }

    /// Writes `lines` on a fresh connection and closes it, then waits until
    /// the gateway has read everything (it answers nothing on success, so
    /// wait for its EOF after our shutdown).
    pub fn push(&self, lines: &str) -> String {
        let mut s = self.connect();
        s.write_all(lines.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    }

    /// `GET path` over TCP with `Connection: close`: (status, headers, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    }

    /// The body of `GET /metrics`.
    pub fn scrape(&self) -> String {
        let (status, _, body) = self.get("/metrics");
        assert_eq!(status, 200);
        body
    }

    /// Polls `/metrics` until `pred` holds, panicking after `WAIT`.
    pub fn scrape_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let page = self.scrape();
            if pred(&page) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last page:\n{page}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a raw request, reads until EOF, splits status, headers and body.
pub fn http_request(addr: SocketAddr, raw: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(scaled(WAIT))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    split_response(&String::from_utf8_lossy(&buf))
}

/// Splits one HTTP response into (status, header block, body).
pub fn split_response(text: &str) -> (u16, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The value of the sample line that starts with `series ` in `page`.
pub fn value_of(page: &str, series: &str) -> Option<String> {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map(str::to_string)
}

/// Runs curl against the gateway's socket; returns (status, body).
pub fn curl(gw: &Gateway, args: &[&str], stdin: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-S",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--unix-socket",
    ])
    .arg(&gw.socket)
    .args(args)
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect(
        "curl is needed for these tests: run tests/e2e/install.sh (or apt-get install curl)",
    );
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    (code, body.to_string())
}

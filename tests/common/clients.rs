//! The client programs of the end-to-end tests (tests/e2e/clients/) and
//! what runs them: a bounded process runner, the socat bridge from a
//! loopback port to the gateway's push socket (the clients speak TCP), and
//! the Go client program, built once per test that uses it; and where
//! tests/e2e/install.sh put the Python and Node client libraries.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::tools::{INSTALL_HINT, LONG_WAIT, describe, require_tool};
use super::{Gateway, TempDir, WAIT, free_port};

/// Upper bound for the one Go build per test run: a cold build compiles
/// client_golang and its protobuf dependencies (about 10 s on an idle core).
pub const GO_BUILD_WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Tools and processes

/// Where the client programs live.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients")
}

/// What a finished process printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it and failing the test after `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}: {INSTALL_HINT}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}, killed\n--- stdout:\n{}\n--- stderr:\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Runs a client to completion; fails the test (with its output) unless it
/// exits 0.
pub fn run_client(cmd: Command, what: &str) {
    let out = run_bounded(cmd, LONG_WAIT, what);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// socat bridge: loopback TCP port -> the gateway's push socket

/// `socat TCP-LISTEN:<port>,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:<socket>`,
/// killed on drop.
pub struct Bridge {
    child: Child,
    pub port: u16,
}

impl Bridge {
    /// Starts socat on a free port and waits until it accepts connections.
    pub fn start(socket: &Path) -> Bridge {
        let socat = require_tool("socat");
        // The free port may be taken between the probe and socat's bind:
        // then socat exits at once and another port is tried.
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&socat)
                .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                .arg(format!("UNIX-CONNECT:{}", socket.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", socat.display()));
            let mut bridge = Bridge { child, port };
            let deadline = Instant::now() + WAIT;
            loop {
                if let Ok(Some(_)) = bridge.child.try_wait() {
                    break; // exited: try another port
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return bridge;
                }
                assert!(
                    Instant::now() < deadline,
                    "socat did not accept on 127.0.0.1:{port} within {WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("socat could not listen on a free loopback port (3 tries)");
    }

    /// `HOST:PORT` for the clients.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Go client program, built once for the test that uses it.
pub struct GoPusher {
    dir: TempDir,
}

impl GoPusher {
    /// Builds `tests/e2e/clients/go_pusher` in GOPATH mode against Debian's
    /// packaged client_golang (`/usr/share/gocode`).
    pub fn build() -> GoPusher {
        let go = require_tool("go");
        let gopath = Path::new("/usr/share/gocode");
        let push_pkg = gopath.join("src/github.com/prometheus/client_golang/prometheus/push");
        assert!(
            push_pkg.join("push.go").is_file(),
            "{} is missing (Debian package golang-github-prometheus-client-golang-dev): {INSTALL_HINT}",
            push_pkg.display()
        );
        let dir = TempDir::new("go-pusher");
        let mut cmd = Command::new(&go);
        cmd.current_dir(clients_dir().join("go_pusher"))
            .args(["build", "-o"])
            .arg(dir.path().join("go_pusher"))
            .arg(".")
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "0");
        let out = run_bounded(cmd, GO_BUILD_WAIT, "go build go_pusher");
        assert!(
            out.status.success(),
            "go build of tests/e2e/clients/go_pusher failed ({}):\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        GoPusher { dir }
    }

    /// The built program, to add arguments to.
    pub fn command(&self) -> Command {
        Command::new(self.dir.path().join("go_pusher"))
    }

    /// Runs `go_pusher <step> <bridge>` (protobuf); fails the test unless
    /// it exits 0.
    pub fn run(&self, bridge: &Bridge, gw: &Gateway, step: &str) {
        let mut cmd = self.command();
        cmd.arg(step).arg(bridge.addr());
        let out = run_bounded(cmd, LONG_WAIT, &format!("go_pusher {step}"));
        assert!(
            out.status.success(),
            "go_pusher {step} failed ({}):\n{}{}\n--- page:\n{}",
            out.status,
            out.stdout,
            out.stderr,
            gw.scrape()
        );
    }
}

/// The build directory tests/e2e/install.sh installs the client libraries
/// under: `$CARGO_TARGET_DIR` (relative to the repository when relative),
/// else `target/` in the repository.
pub fn build_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// The Python of the virtual environment install.sh makes for the client
/// tests (`<build dir>/e2e-venv`, from the system `/usr/bin/python3`, with
/// the newest `prometheus_client` and `python-snappy`), checked to import
/// them; fails the test with what to run when it does not.
pub fn client_python() -> PathBuf {
    let python = build_dir().join("e2e-venv/bin/python");
    let out = Command::new(&python)
        .args(["-c", "import prometheus_client, snappy"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "{} lacks prometheus_client or python-snappy: {INSTALL_HINT}\n{}",
            python.display(),
            describe(&out)
        ),
        Err(e) => panic!("{}: {e}: {INSTALL_HINT}", python.display()),
    }
}

/// The `node_modules` install.sh fills for the client tests
/// (`<build dir>/e2e-node`, with the newest `prom-client`), for
/// `NODE_PATH`; fails the test with what to run when it is missing.
pub fn client_node_modules() -> PathBuf {
    let dir = build_dir().join("e2e-node/node_modules");
    assert!(
        dir.join("prom-client/package.json").is_file(),
        "{} has no prom-client: {INSTALL_HINT}",
        dir.display()
    );
    dir
}

//! README's examples, run as a newcomer pastes them right after `make run`.
//!
//! Every fenced block whose info string ends in ` run` (` ```sh run`,
//! ` ```python run`, ` ```console run`) is extracted from README.md (never
//! copied here) and run in order against one gateway started with the
//! flags `make -n run` prints, on a private socket and port substituted for
//! `/tmp/push-gateway.sock` and `127.0.0.1:9091` (and a private port for
//! the socat bridge's `9092`). The HTML comments right above a block say
//! what it must change on the page (`<!-- check: page has TEXT -->`,
//! `page lacks TEXT`, `listening HOST:PORT`); README's "Runnable examples"
//! section documents the marks for whoever adds an example.
//!
//! Also here: `make help` and `make unit`, the other first commands.
//!
//! Tools: make, sh, socat, curl, nc, go with Debian's client_golang, and a
//! Python with prometheus_client (`$PYTHON`, else the virtual environment
//! tests/e2e/install.sh makes under the build directory, else `python3`),
//! as tests/e2e/install.sh installs them. A missing tool fails the test.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tools::require_tool;
use common::*;

/// One runnable block of README.
#[derive(Debug)]
struct Example {
    /// README line of the opening fence, for messages.
    line: usize,
    lang: String,
    body: String,
    checks: Vec<String>,
}

/// The runnable blocks of `readme`, with the check comments above each.
fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut checks: Vec<String> = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(rest) = line
            .trim()
            .strip_prefix("<!-- check:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            checks.push(rest.trim().to_string());
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                checks.clear();
            }
            continue;
        };
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let words: Vec<&str> = info.split_whitespace().collect();
        if words.len() == 2 && words[1] == "run" {
            out.push(Example {
                line: n + 1,
                lang: words[0].to_string(),
                body,
                checks: std::mem::take(&mut checks),
            });
        } else {
            assert!(
                checks.is_empty(),
                "README.md:{}: checks above a block not marked ` run`",
                n + 1
            );
        }
    }
    out
}

/// The Python that runs README's `python` blocks: `$PYTHON`, else the
/// client virtual environment under the build directory (install.sh makes
/// it from the system Python), else `python3` on PATH.
fn readme_python() -> String {
    if let Some(p) = std::env::var_os("PYTHON").filter(|p| !p.is_empty()) {
        return p.to_string_lossy().into_owned();
    }
    let build = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => repo().join(d),
        _ => repo().join("target"),
    };
    let venv = build.join("e2e-venv/bin/python");
    if venv.is_file() {
        return venv.display().to_string();
    }
    "python3".into()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The gateway's flags in `make run`, with our socket and address.
fn make_run_flags(socket: &Path, listen: SocketAddr) -> Vec<String> {
    let make = require_tool("make");
    let out = Command::new(make)
        .current_dir(repo())
        .args(["-s", "-n", "run", "CARGO=cargo"])
        .arg(format!("SOCKET={}", socket.display()))
        .arg(format!("LISTEN={listen}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "make -n run: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("cargo run"))
        .unwrap_or_else(|| panic!("no `cargo run` in make -n run:\n{text}"));
    let (_, flags) = line
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("no ` -- ` before the flags in: {line}"));
    flags.split_whitespace().map(str::to_string).collect()
}

/// Processes a block left behind (the socat bridge), by process group.
struct Groups(Vec<u32>);

impl Drop for Groups {
    fn drop(&mut self) {
        for pgid in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

struct Env {
    gw: Child,
    socket: PathBuf,
    addr: SocketAddr,
    bridge: u16,
    python: String,
    dir: TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.gw.kill();
        let _ = self.gw.wait();
    }
}

impl Env {
    fn substitute(&self, text: &str) -> String {
        text.replace("/tmp/push-gateway.sock", &self.socket.display().to_string())
            .replace("127.0.0.1:9091", &self.addr.to_string())
            .replace("9092", &self.bridge.to_string())
    }

    fn page(&self) -> String {
        let (status, _, body) = http_request(
            self.addr,
            "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        body
    }

    /// Runs `program args` in its own process group, output to a file (a
    /// background child keeps no pipe of ours open); (status, output).
    fn run(
        &self,
        groups: &mut Groups,
        program: &str,
        args: &[&str],
        wait: Duration,
    ) -> (bool, String) {
        let log = self.dir.path().join(format!("out-{}", groups.0.len()));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(program)
            .args(args)
            .current_dir(repo())
            .env("PUSH_GATEWAY_SOCKET", &self.socket)
            .env("PUSH_GATEWAY_ADDRESS", format!("127.0.0.1:{}", self.bridge))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        groups.0.push(child.id());
        let deadline = Instant::now() + wait;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{program} {args:?} still running after {wait:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    fn check(&self, ex: &Example, check: &str) {
        let deadline = Instant::now() + scaled(WAIT);
        let holds = |page: &str| -> bool {
            if let Some(text) = check.strip_prefix("page has ") {
                page.contains(text)
            } else if let Some(text) = check.strip_prefix("page lacks ") {
                !page.contains(text)
            } else if let Some(addr) = check.strip_prefix("listening ") {
                let addr = self.substitute(addr);
                TcpStream::connect(addr.as_str()).is_ok()
            } else {
                panic!("README.md:{}: unknown check {check:?}", ex.line)
            }
        };
        loop {
            let page = self.page();
            if holds(&page) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "README.md:{}: the example did not make `{check}` true;\n{}\npage:\n{page}",
                ex.line,
                ex.body
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs each `$ ` line and checks the lines shown after it appear in
    /// order in its output (`...` stands for any lines).
    fn console(&self, groups: &mut Groups, ex: &Example) {
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        for line in self.substitute(&ex.body).lines() {
            if let Some(cmd) = line.strip_prefix("$ ") {
                blocks.push((cmd.to_string(), Vec::new()));
            } else if let Some((_, want)) = blocks.last_mut() {
                want.push(line.to_string());
            }
        }
        for (cmd, want) in blocks {
            let (ok, out) = self.run(groups, "sh", &["-e", "-c", &cmd], WAIT * 6);
            assert!(ok, "README.md:{}: `{cmd}` failed:\n{out}", ex.line);
            let mut got = out.lines();
            for w in want.iter().filter(|w| *w != "...") {
                assert!(
                    got.any(|g| g == w),
                    "README.md:{}: `{cmd}` did not print {w:?} where README shows it; it printed:\n{out}",
                    ex.line
                );
            }
        }
    }
}

#[test]
fn every_runnable_readme_example_works_after_make_run() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(
        examples.len() >= 10,
        "only {} runnable examples found in README.md",
        examples.len()
    );
    for tool in ["sh", "socat", "curl", "nc", "go"] {
        require_tool(tool);
    }
    let python = readme_python();
    let probe = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{python} lacks prometheus_client: run tests/e2e/install.sh (or set PYTHON): {probe:?}"
    );

    let dir = TempDir::new("readme");
    let socket = dir.path().join("push-gateway.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let flags = make_run_flags(&socket, addr);
    let gw = gateway_command()
        .args(&flags)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut env = Env {
        gw,
        socket,
        addr,
        bridge: free_port(),
        python,
        dir,
    };
    let deadline = Instant::now() + scaled(WAIT);
    while std::os::unix::net::UnixStream::connect(&env.socket).is_err()
        || TcpStream::connect(env.addr).is_err()
    {
        if let Ok(Some(s)) = env.gw.try_wait() {
            panic!("the gateway with make run's flags {flags:?} exited: {s}");
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut groups = Groups(Vec::new());
    for ex in &examples {
        let body = env.substitute(&ex.body);
        // `go run` builds client_golang first: minutes on a loaded machine.
        let wait = scaled(WAIT * 30);
        match ex.lang.as_str() {
            "console" => {
                env.console(&mut groups, ex);
                continue;
            }
            "sh" => {
                let (ok, out) = env.run(&mut groups, "sh", &["-e", "-c", &body], wait);
                assert!(
                    ok,
                    "README.md:{}: this example failed:\n{body}\n{out}",
                    ex.line
                );
            }
            "python" => {
                let python = env.python.clone();
                let (ok, out) = env.run(&mut groups, &python, &["-c", &body], wait);
                assert!(
                    ok,
                    "README.md:{}: this example failed:\n{body}\n{out}",
                    ex.line
                );
            }
            other => panic!("README.md:{}: no way to run a ```{other} block", ex.line),
        }
        assert!(
            !ex.checks.is_empty(),
            "README.md:{}: a runnable example needs a `<!-- check: ... -->` above it saying what it changes",
            ex.line
        );
        for check in &ex.checks {
            env.check(ex, check);
        }
    }
    drop(groups);
    env.gw.kill().unwrap();
}

/// The extractor itself: marks, checks and unmarked blocks.
#[test]
fn the_extractor_takes_only_marked_blocks_with_their_checks() {
    let text = "intro\n<!-- check: page has a 1 -->\n<!-- check: page lacks b -->\n```sh run\nprintf 'a 1\\n'\n```\n\n```sh\nnot run\n```\n```console run\n$ true\n```\n";
    let ex = examples(text);
    assert_eq!(ex.len(), 2, "{ex:?}");
    assert_eq!(ex[0].lang, "sh");
    assert_eq!(ex[0].body, "printf 'a 1\\n'\n");
    assert_eq!(ex[0].checks, ["page has a 1", "page lacks b"]);
    assert_eq!(ex[1].lang, "console");
    assert!(ex[1].checks.is_empty());
}

#[test]
fn make_help_lists_each_target_once_and_make_unit_runs_only_unit_tests() {
    let make = require_tool("make");
    let out = Command::new(&make)
        .current_dir(repo())
        .args(["-s", "help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for target in [
        "run", "help", "build", "deps", "lint", "unit", "e2e", "test", "bench", "fuzz", "soak",
        "clean",
    ] {
        let lines: Vec<&str> = help
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(target))
            .collect();
        assert_eq!(lines.len(), 1, "make help, target {target}:\n{help}");
        assert!(lines[0].split_whitespace().count() > 3, "{}", lines[0]);
    }
    let out = Command::new(&make)
        .current_dir(repo())
        .args(["-s", "-n", "unit", "CARGO=cargo"])
        .output()
        .unwrap();
    let unit = String::from_utf8_lossy(&out.stdout);
    assert!(
        unit.contains("cargo test --lib --bins") && !unit.contains("--test "),
        "make unit runs: {unit}"
    );
}

//! The systemd files in `systemd/`, checked with systemd's own tools and run
//! the way systemd would run them:
//!
//! - `units_pass_systemd_analyze_verify`: `systemd-analyze verify` on the
//!   socket and service units prints nothing (any warning fails the test).
//! - `service_sandbox_exposure_stays_low`: `systemd-analyze security
//!   --offline` rates the service's sandbox 2.0 or better.
//! - `units_agree_with_each_other`: socket path and group, user, binary and
//!   settings file are the same in every file and in systemd/README.md.
//! - `sysusers_creates_the_user_and_group`: `systemd-sysusers --dry-run`.
//! - `env_file_lists_every_setting`: every `PUSH_GATEWAY_*` variable the
//!   binary's `--help` names is in push-gateway.env with its default, and
//!   vice versa, and the gateway starts with all of them uncommented.
//! - `sandbox_allows_what_the_gateway_does`: the gateway's system calls,
//!   traced with strace while it serves (socket-activated, and creating its
//!   own socket with --socket-group), all pass the service's
//!   `SystemCallFilter=`, its sockets' families `RestrictAddressFamilies=`,
//!   and it never asks for writable-executable memory
//!   (`MemoryDenyWriteExecute=`).
//! - `socket_activation_with_the_units_layout`: the gateway started by
//!   `systemd-socket-activate` with the sockets of push-gateway.socket in
//!   their order and with their names, as systemd passes them: it takes
//!   pushes and scrapes on them, sends READY=1 to NOTIFY_SOCKET, exits 0 on
//!   SIGTERM and leaves the inherited socket file in place.
//!
//! The tools come from Debian's `systemd` and `strace` packages; a missing
//! tool fails the test, it never skips.

mod common;
use common::tools::require_tool;
use common::*;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVICE: &str = "push-gateway.service";
const SOCKET: &str = "push-gateway.socket";
const INSTALLED_BINARY: &str = "/usr/local/bin/push-gateway";

/// The project's `systemd/` directory.
fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

fn read(name: &str) -> String {
    let path = systemd_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Values of `key=` lines in a unit file, in order (comments skipped).
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    match unit_values(unit, key)[..] {
        [v] => v,
        ref vs => panic!("expected one {key}= line, found {vs:?}"),
    }
}

/// Copies the socket and service units into a temporary directory, the
/// service's `ExecStart=` pointing at the binary built for this test run
/// (verify checks that the program exists).
fn units_in_temp_dir() -> TempDir {
    let dir = TempDir::new("units");
    let service = read(SERVICE);
    let exec = format!("ExecStart={INSTALLED_BINARY}");
    assert!(
        service.lines().any(|l| l == exec),
        "{SERVICE} should have `{exec}`"
    );
    let service = service.replace(
        &exec,
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_push-gateway")),
    );
    std::fs::write(dir.path().join(SERVICE), service).unwrap();
    std::fs::write(dir.path().join(SOCKET), read(SOCKET)).unwrap();
    dir
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let analyze = require_tool("systemd-analyze");
    let dir = units_in_temp_dir();
    let out = run(Command::new(&analyze)
        .arg("verify")
        .arg(dir.path().join(SOCKET))
        .arg(dir.path().join(SERVICE))
        .current_dir(dir.path())
        .env("SYSTEMD_LOG_COLOR", "0")
        .env_remove("SYSTEMD_UNIT_PATH"));
    let text = output_text(&out);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify must pass without a word; it said ({}):\n{text}",
        out.status
    );
}

#[test]
fn service_sandbox_exposure_stays_low() {
    let analyze = require_tool("systemd-analyze");
    let dir = units_in_temp_dir();
    let out = run(Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(dir.path().join(SERVICE))
        .current_dir(dir.path())
        .env("SYSTEMD_COLORS", "0"));
    let text = output_text(&out);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for push-gateway.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in the output:\n{text}"));
    assert!(
        exposure <= 2.0,
        "the service's sandbox got weaker: exposure {exposure} (was 1.4); \
         systemd-analyze security says:\n{text}"
    );
}

#[test]
fn units_agree_with_each_other() {
    let socket = read(SOCKET);
    let service = read(SERVICE);
    let sysusers = read("push-gateway.sysusers");
    let readme = read("README.md");

    // The socket unit: push socket first, then the scrape port.
    assert_eq!(
        unit_values(&socket, "ListenStream"),
        ["/run/push-gateway.sock", "9091"],
        "push-gateway.socket: ListenStream= lines changed; update README.md and this test"
    );
    assert_eq!(unit_value(&socket, "SocketMode"), "0660");
    assert_eq!(unit_value(&socket, "WantedBy"), "sockets.target");

    // The service: notify, its settings file, the same user and group.
    assert_eq!(unit_value(&service, "Type"), "notify");
    assert_eq!(
        unit_value(&service, "ExecStart"),
        INSTALLED_BINARY,
        "settings come from the environment, not from arguments"
    );
    assert_eq!(
        unit_value(&service, "EnvironmentFile"),
        "-/etc/default/push-gateway"
    );
    assert_eq!(unit_value(&service, "Requires"), SOCKET);
    assert_eq!(unit_value(&service, "MemoryMax"), "16M");
    // The snapshot's directory is the service's state directory.
    assert_eq!(unit_value(&service, "StateDirectory"), "push-gateway");
    let env = read("push-gateway.env");
    assert!(
        env.contains("#PUSH_GATEWAY_PERSISTENCE_FILE=/var/lib/push-gateway/"),
        "push-gateway.env: the snapshot goes in StateDirectory="
    );

    // sysusers: `u NAME ID GECOS HOME SHELL` creates NAME and its group.
    let user = sysusers
        .lines()
        .find(|l| l.starts_with("u "))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("push-gateway.sysusers creates a user");
    assert_eq!(unit_value(&service, "User"), user);
    assert_eq!(unit_value(&service, "Group"), user);
    assert_eq!(
        unit_value(&socket, "SocketGroup"),
        user,
        "pushers join the user's group, which owns the socket"
    );

    // The install steps name the same files.
    for needle in [
        "/etc/sysusers.d/push-gateway.conf",
        "/etc/default/push-gateway",
        "/etc/systemd/system/",
        INSTALLED_BINARY,
        "systemctl enable --now push-gateway.socket",
        "usermod -aG push-gateway",
        "/run/push-gateway.sock",
        "curl -s http://127.0.0.1:9091/metrics",
    ] {
        assert!(
            readme.contains(needle),
            "systemd/README.md lacks {needle:?}"
        );
    }
}

#[test]
fn sysusers_creates_the_user_and_group() {
    let sysusers = require_tool("systemd-sysusers");
    let root = TempDir::new("sysusers-root");
    let out = run(Command::new(&sysusers)
        .arg("--dry-run")
        .arg(format!("--root={}", root.path().display()))
        .arg(systemd_dir().join("push-gateway.sysusers")));
    let text = output_text(&out);
    assert!(out.status.success(), "systemd-sysusers failed:\n{text}");
    assert!(
        text.contains("Creating group 'push-gateway'")
            && text.contains("Creating user 'push-gateway'"),
        "systemd-sysusers should create user and group push-gateway:\n{text}"
    );
    for line in text.lines() {
        assert!(
            line.starts_with("Creating ") || line.starts_with("Would write "),
            "unexpected systemd-sysusers output {line:?} in:\n{text}"
        );
    }
}

/// `PUSH_GATEWAY_*` variables named by `push-gateway --help` (`[env: X=]`),
/// each with the default the help shows (`[default: V]`), if any.
fn variables_in_help() -> Vec<(String, Option<String>)> {
    let mut cmd = gateway_command();
    cmd.arg("--help");
    // A variable set here would show up in the help as `[env: X=value]`.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PUSH_GATEWAY_") {
            cmd.env_remove(k);
        }
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "--help failed: {}", output_text(&out));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let vars: Vec<(String, Option<String>)> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|chunk| {
            let (name, rest) = chunk.split_once("=]")?;
            let default = rest
                .trim_start()
                .strip_prefix("[default: ")
                .and_then(|d| d.split_once(']'))
                .map(|(d, _)| d.to_string());
            Some((name.to_string(), default))
        })
        .collect();
    assert!(
        vars.len() >= 8 && vars.iter().all(|(v, _)| v.starts_with("PUSH_GATEWAY_")),
        "unexpected variables in --help: {vars:?}\n{help}"
    );
    vars
}

/// `(name, value)` of the commented-out `#NAME=VALUE` lines of the env file.
fn env_file_entries() -> Vec<(String, String)> {
    read("push-gateway.env")
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_file_lists_every_setting() {
    let known = variables_in_help();
    let entries = env_file_entries();
    for (var, default) in &known {
        let shown = entries.iter().find(|(k, _)| k == var).map(|(_, v)| v);
        let Some(shown) = shown else {
            panic!("systemd/push-gateway.env lacks `#{var}=...` (the binary knows it)");
        };
        if let Some(default) = default {
            assert_eq!(
                shown, default,
                "systemd/push-gateway.env shows {var}={shown}, the default is {default}"
            );
        }
    }
    for (name, _) in &entries {
        assert!(
            known.iter().any(|(k, _)| k == name) || name == "RUST_LOG",
            "systemd/push-gateway.env names {name}, which the binary does not know"
        );
    }

    // Every value shown is accepted: start the gateway with all of them,
    // the socket and address made private to this test (--socket and
    // --listen from the harness win over the variables) and the group one
    // that exists here.
    let probe = TempDir::new("gid");
    let file = probe.path().join("f");
    std::fs::write(&file, "").unwrap();
    let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&file).unwrap());
    let gw = Gateway::start_with(&[], |cmd| {
        for (k, v) in &entries {
            if k == "PUSH_GATEWAY_SCRAPE_AUTH_FILE" || k == "PUSH_GATEWAY_REMOTE_WRITE_AUTH_FILE" {
                // A path, not a setting: the file is the operator's to make
                // (tests/startup.rs and tests/hostile.rs use real ones).
                continue;
            }
            let v = match k.as_str() {
                "PUSH_GATEWAY_SOCKET_GROUP" => gid.to_string(),
                // /var/lib/push-gateway is the service's; here a private one.
                "PUSH_GATEWAY_PERSISTENCE_FILE" => {
                    probe.path().join("cache.snapshot").display().to_string()
                }
                "RUST_LOG" => "error".to_string(),
                _ => v.clone(),
            };
            cmd.env(k, v);
        }
    });
    assert_eq!(gw.push("env_file_check 1\n"), "");
    let page = gw.scrape_until("the pushed series", |p| p.contains("env_file_check 1"));
    assert!(
        page.contains("push_gateway_"),
        "self-metrics are on by default:\n{page}"
    );
}

/// Connects to the Unix socket `path`, retrying until it listens: the file
/// appears at bind(), a moment before listen(). The first connection is the
/// one that makes systemd-socket-activate start the gateway.
fn connect_when_listening(path: &Path) -> UnixStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{} does not accept connections: {e}",
                path.display()
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A started process, killed on drop if it still runs (a failed test
/// leaves nothing behind). Under strace (`trace` names its output), the
/// processes it still traces are killed first: killing strace alone would
/// let them run on.
struct Guard {
    child: std::process::Child,
    trace: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(trace) = &self.trace {
            let tracer = format!("TracerPid:\t{}", self.child.id());
            let text = std::fs::read_to_string(trace).unwrap_or_default();
            let pids: BTreeSet<&str> = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                .collect();
            for pid in pids {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                if status.is_ok_and(|s| s.lines().any(|l| l == tracer)) {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn socket_activation_with_the_units_layout() {
    let activate = require_tool("systemd-socket-activate");
    let dir = TempDir::new("activate");
    let push_path = dir.path().join("push.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    // The socket unit's ListenStream= lines, in order, made private: the
    // Unix path and the TCP port.
    let socket_unit = read(SOCKET);
    let listen: Vec<String> = unit_values(&socket_unit, "ListenStream")
        .into_iter()
        .map(|l| {
            if l.starts_with('/') {
                push_path.display().to_string()
            } else {
                addr.to_string()
            }
        })
        .collect();
    // systemd names every fd of a socket unit FileDescriptorName=, or else
    // the unit's name.
    let fdname = unit_values(&socket_unit, "FileDescriptorName")
        .first()
        .map_or(SOCKET.to_string(), |s| s.to_string());
    let names = vec![fdname; listen.len()].join(":");

    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();

    let gateway = gateway_command();
    let mut cmd = Command::new(activate);
    for l in &listen {
        cmd.arg(format!("--listen={l}"));
    }
    let log = dir.path().join("log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = cmd
        .arg(format!("--fdname={names}"))
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .arg("--setenv=RUST_LOG=info")
        // The gateway, through the cross runner if there is one (it execs
        // in place, so LISTEN_PID still matches).
        .arg(gateway.get_program())
        .args(gateway.get_args())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("spawn systemd-socket-activate");
    let mut guard = Guard { child, trace: None };
    let child = &mut guard.child;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The first push starts the gateway, as systemd would.
    let mut s = connect_when_listening(&push_path);
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"# TYPE activated gauge\nactivated{by=\"socket\"} 1\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert_eq!(reply, "", "push rejected; log:\n{}", log_text());

    let mut buf = [0u8; 256];
    let n = notify
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no READY=1 on NOTIFY_SOCKET: {e}; log:\n{}", log_text()));
    let state = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        state.lines().any(|l| l == "READY=1"),
        "expected READY=1, got {state:?}"
    );

    // Scrapes come through the inherited TCP listener.
    let mut t = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("scrape port {addr}: {e}; log:\n{}", log_text()));
    t.set_read_timeout(Some(WAIT)).unwrap();
    t.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    t.read_to_string(&mut page).unwrap();
    assert!(
        page.contains("activated{by=\"socket\"} 1"),
        "the pushed series is not on the page:\n{page}\nlog:\n{}",
        log_text()
    );

    // `systemctl stop`: SIGTERM, exit 0, the socket file stays (systemd's).
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within {WAIT:?} of SIGTERM; log:\n{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        exit.code(),
        Some(0),
        "exit after SIGTERM; log:\n{}",
        log_text()
    );
    assert!(
        push_path.exists(),
        "the gateway removed the socket file it inherited; log:\n{}",
        log_text()
    );
}

/// Waits for `child` to exit after SIGTERM; its exit code.
fn terminate(child: &mut std::process::Child, log: &dyn Fn() -> String) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within {WAIT:?} of SIGTERM; log:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A restart under socket activation restores the snapshot the stop
/// wrote: the gateway started by the first connection to a new socket
/// (as systemd starts it after `systemctl restart`, or after a crash)
/// serves what the previous one held.
#[test]
fn socket_activated_restart_restores_the_snapshot() {
    let activate = require_tool("systemd-socket-activate");
    let dir = TempDir::new("activate-restore");
    let snapshot = dir.path().join("cache.snapshot");
    let log = dir.path().join("log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let start = |push_path: &Path| {
        let addr = format!("127.0.0.1:{}", free_port());
        let gateway = gateway_command();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&activate)
            .arg(format!("--listen={}", push_path.display()))
            .arg(format!("--listen={addr}"))
            .arg("--setenv=RUST_LOG=info")
            .arg(format!(
                "--setenv=PUSH_GATEWAY_PERSISTENCE_FILE={}",
                snapshot.display()
            ))
            .arg(gateway.get_program())
            .args(gateway.get_args())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("spawn systemd-socket-activate");
        Guard { child, trace: None }
    };
    let talk = |push_path: &Path, request: &[u8]| {
        let mut s = connect_when_listening(push_path);
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    };

    let first = dir.path().join("push1.sock");
    let mut guard = start(&first);
    let reply = talk(&first, b"# TYPE kept gauge\nkept{by=\"socket\"} 1\n");
    assert_eq!(reply, "", "push rejected; log:\n{}", log_text());
    assert_eq!(terminate(&mut guard.child, &log_text), Some(0));
    assert!(
        snapshot.exists(),
        "no snapshot on stop; log:\n{}",
        log_text()
    );

    // The new instance gets new sockets: the old ones stay systemd's.
    let second = dir.path().join("push2.sock");
    let mut guard = start(&second);
    let page = talk(
        &second,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        page.contains("kept{by=\"socket\"} 1"),
        "not restored:\n{page}\nlog:\n{}",
        log_text()
    );
    assert!(log_text().contains("restored 1 series"), "{}", log_text());
    assert_eq!(terminate(&mut guard.child, &log_text), Some(0));
}

// ---------------------------------------------------------------------------
// The sandbox at run time

/// System call groups (`@name`) and their members, from `systemd-analyze
/// syscall-filter`: a group's members may be groups themselves.
fn syscall_groups(analyze: &Path) -> HashMap<String, Vec<String>> {
    let out = run(Command::new(analyze).arg("syscall-filter"));
    assert!(out.status.success(), "{}", output_text(&out));
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with('@') {
            let name = line.split_whitespace().next().unwrap().to_string();
            groups.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if !line.starts_with(' ') {
            current = None; // a blank line or a trailing comment section
        } else if let Some(group) = &current {
            let item = line.trim();
            if !item.is_empty() && !item.starts_with('#') {
                groups.get_mut(group).unwrap().push(item.to_string());
            }
        }
    }
    groups
}

fn expand(name: &str, groups: &HashMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
    match groups.get(name) {
        Some(members) => {
            for m in members {
                expand(m, groups, out);
            }
        }
        None if name.starts_with('@') => panic!("unknown system call group {name}"),
        None => {
            out.insert(name.to_string());
        }
    }
}

/// The system calls the unit's `SystemCallFilter=` lines allow: the first
/// is an allow list, later ones add to it, or take away with `~`.
fn allowed_syscalls(unit: &str, groups: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    let lines = unit_values(unit, "SystemCallFilter");
    assert!(
        lines.first().is_some_and(|l| !l.starts_with('~')),
        "expected an allow list first: {lines:?}"
    );
    for line in lines {
        let (deny, list) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let mut set = BTreeSet::new();
        for name in list.split_whitespace() {
            expand(name, groups, &mut set);
        }
        if deny {
            allowed.retain(|s| !set.contains(s));
        } else {
            allowed.extend(set);
        }
    }
    allowed
}

/// Pushes (stream with a bad line, HTTP PUT and DELETE) and scrapes on
/// both sockets: what the gateway does in service.
fn exercise(push_path: &Path, addr: SocketAddr, log: &str) {
    let talk = |request: &[u8]| -> String {
        let mut s = UnixStream::connect(push_path)
            .unwrap_or_else(|e| panic!("connect {}: {e}\n{log}", push_path.display()));
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    };
    let reply = talk(b"# TYPE traced gauge\ntraced{how=\"stream\"} 1\ntraced{ 2\n");
    assert!(reply.contains("error: line 3"), "{reply}");
    let body = "traced_http 3\n";
    let put = format!(
        "PUT /metrics/job/traced HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = talk(put.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 2"), "{reply}");
    let reply = talk(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        reply
            .lines()
            .any(|l| l.starts_with("traced_http{") && l.ends_with("job=\"traced\"} 3")),
        "{reply}"
    );
    let reply = talk(b"DELETE /metrics/job/traced HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 2"), "{reply}");
    let (status, _, page) = http_request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(page.contains("traced{how=\"stream\"} 1"), "{page}");
}

/// Runs `cmd` (the gateway, directly or behind systemd-socket-activate)
/// under `strace -f`, exercises it, stops it with SIGTERM; the trace from
/// the gateway's `execve` on.
fn trace_gateway(
    strace: &Path,
    cmd: &[&std::ffi::OsStr],
    push_path: &Path,
    addr: SocketAddr,
) -> String {
    let dir = push_path.parent().unwrap();
    let trace_path = dir.join("trace");
    let log_path = dir.join("log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(strace)
        .args(["-f", "-qq", "-o"])
        .arg(&trace_path)
        .args(cmd)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("spawn strace");
    let mut guard = Guard {
        child,
        trace: Some(trace_path.clone()),
    };
    let child = &mut guard.child;
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + WAIT;
    loop {
        // Socket-activated, the first connection starts the gateway.
        if UnixStream::connect(push_path).is_ok() && TcpStream::connect(addr).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited during start-up: {status}\n{}", log());
        }
        assert!(Instant::now() < deadline, "no start-up:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    exercise(push_path, addr, &log());

    // SIGTERM to the gateway: the process that exec'd its binary.
    let bin = env!("CARGO_BIN_EXE_push-gateway");
    let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
    let pid = trace
        .lines()
        .find(|l| l.contains(&format!("execve(\"{bin}\"")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no execve of {bin} in the trace:\n{trace}"))
        .to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit after SIGTERM:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(exit.code(), Some(0), "under strace:\n{}", log());
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let start = trace.find(&format!("execve(\"{bin}\"")).unwrap();
    trace[start..].to_string()
}

/// `(system call, line)` for each call in an `strace -f` log: lines are
/// `PID name(args) = ret` or `PID name(args <unfinished ...>`.
fn syscalls(trace: &str) -> Vec<(&str, &str)> {
    trace
        .lines()
        .filter_map(|l| {
            let rest = l.split_once(' ').map_or(l, |(_, r)| r).trim_start();
            let (name, _) = rest.split_once('(')?;
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            ok.then_some((name, l))
        })
        .collect()
}

#[test]
fn sandbox_allows_what_the_gateway_does() {
    if std::env::var("PUSH_GATEWAY_TEST_RUNNER").is_ok_and(|r| !r.is_empty()) {
        // Under an emulator strace would see the emulator's calls; the
        // filter is for the native binary (SystemCallArchitectures=native).
        eprintln!("sandbox_allows_what_the_gateway_does: checked on native builds only");
        return;
    }
    let analyze = require_tool("systemd-analyze");
    let strace = require_tool("strace");
    let activate = require_tool("systemd-socket-activate");
    let service = read(SERVICE);
    let groups = syscall_groups(&analyze);
    let allowed = allowed_syscalls(&service, &groups);
    let families: Vec<&str> = unit_value(&service, "RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(unit_value(&service, "MemoryDenyWriteExecute"), "yes");
    let bin = std::ffi::OsStr::new(env!("CARGO_BIN_EXE_push-gateway"));

    // Socket-activated, as under push-gateway.socket.
    let dir = TempDir::new("traced-activated");
    let push_path = dir.path().join("push.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listen_unix = format!("--listen={}", push_path.display());
    let listen_tcp = format!("--listen={addr}");
    let snapshot = dir.path().join("cache.snapshot");
    let activated = trace_gateway(
        &strace,
        &[
            activate.as_os_str(),
            listen_unix.as_ref(),
            listen_tcp.as_ref(),
            "--setenv=RUST_LOG=info".as_ref(),
            bin,
            // The snapshot written on stop: its system calls are traced too.
            "--persistence-file".as_ref(),
            snapshot.as_os_str(),
        ],
        &push_path,
        addr,
    );

    // Creating its own socket with a group (no socket unit).
    let dir2 = TempDir::new("traced-own");
    let push_path2 = dir2.path().join("push.sock");
    let addr2: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let probe = dir2.path().join("gid");
    std::fs::write(&probe, "").unwrap();
    let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&probe).unwrap()).to_string();
    let addr2_text = addr2.to_string();
    let own = trace_gateway(
        &strace,
        &[
            bin,
            "--socket".as_ref(),
            push_path2.as_os_str(),
            "--listen".as_ref(),
            addr2_text.as_ref(),
            "--socket-group".as_ref(),
            gid.as_ref(),
        ],
        &push_path2,
        addr2,
    );

    for (mode, trace) in [("socket-activated", &activated), ("own socket", &own)] {
        let calls = syscalls(trace);
        assert!(calls.len() > 20, "{mode}: too short a trace:\n{trace}");
        let denied: BTreeSet<&str> = calls
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !allowed.contains(*name))
            .collect();
        assert!(
            denied.is_empty(),
            "{mode}: the gateway uses system calls that SystemCallFilter= in {SERVICE} denies \
             (they would fail with EPERM under systemd): {denied:?}"
        );
        for (name, line) in &calls {
            if *name == "socket" {
                let family = line.split_once('(').unwrap().1.split(',').next().unwrap();
                assert!(
                    families.contains(&family),
                    "{mode}: socket family {family} is not in RestrictAddressFamilies=: {line}"
                );
            }
            let wx = (*name == "mmap" && line.contains("PROT_WRITE") && line.contains("PROT_EXEC"))
                || (matches!(*name, "mprotect" | "pkey_mprotect") && line.contains("PROT_EXEC"));
            assert!(!wx, "{mode}: MemoryDenyWriteExecute= forbids {line}");
        }
    }
}

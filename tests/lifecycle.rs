//! Life as a service: socket activation, readiness notification, graceful
//! shutdown on SIGTERM/SIGINT, the socket's group, and the gateway's own
//! metrics moving as things happen.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Sends `signal` (e.g. "TERM") to the child.
fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`; its exit code.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("push-gateway did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_under_load_exits_0_quickly_and_removes_the_socket() {
    let mut gw = Gateway::start(&[]);
    let socket = gw.socket.clone();
    let addr = gw.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (socket, stop) = (socket.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(mut s) = UnixStream::connect(&socket) {
                        let _ =
                            s.write_all(format!("load{{n=\"{i}\"}} 1\n").repeat(100).as_bytes());
                    }
                    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
                        let mut buf = [0u8; 512];
                        let _ = s.read(&mut buf);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    kill(&gw.child, "TERM");
    let code = wait_exit(&mut gw.child, Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(code, Some(0));
    assert!(!socket.exists(), "the socket file it created is removed");
    // A restart binds the same path again.
    let mut again = gateway_command()
        .args(["--no-self-metrics", "--socket", socket.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while UnixStream::connect(&socket).is_err() {
        assert!(again.try_wait().unwrap().is_none(), "restart failed");
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&again, "INT");
    assert_eq!(wait_exit(&mut again, Duration::from_secs(1)), Some(0));
    assert!(!socket.exists());
}

/// Regression: SIGHUP (a closing terminal, or a habitual "reload") ended
/// the gateway by its default action, leaving the socket file behind.
#[test]
fn sighup_is_logged_and_ignored_then_sigterm_still_cleans_up() {
    let logs = TempDir::new("hup-log");
    let log_path = logs.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut gw = Gateway::start_with(&["--no-self-metrics"], |cmd| {
        cmd.env("RUST_LOG", "info").stderr(log);
    });
    let socket = gw.socket.clone();
    for round in 1..=3 {
        kill(&gw.child, "HUP");
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.matches("SIGHUP ignored").count() >= round {
                break;
            }
            assert!(
                gw.child.try_wait().unwrap().is_none(),
                "SIGHUP ended the gateway:\n{text}"
            );
            assert!(Instant::now() < deadline, "no log line for SIGHUP:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gw.child.try_wait().unwrap().is_none(), "SIGHUP ended it");
        assert!(socket.exists(), "the socket is gone after SIGHUP");
        assert_eq!(gw.push(&format!("after_hup {round}\n")), "");
        assert_eq!(
            value_of(&gw.scrape(), "after_hup").as_deref(),
            Some(round.to_string().as_str())
        );
    }
    kill(&gw.child, "TERM");
    assert_eq!(wait_exit(&mut gw.child, Duration::from_secs(2)), Some(0));
    assert!(!socket.exists(), "SIGTERM removes the socket as before");
}

#[test]
fn a_response_in_flight_is_finished_on_shutdown() {
    let mut gw = Gateway::start(&["--cache-bytes", "4MiB"]);
    let lines: String = (0..30_000)
        .map(|i| format!("big{{n=\"{i}\"}} {i}\n"))
        .collect();
    gw.push(&lines);
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Read only the head, so most of the page waits in the gateway.
    let mut head = [0u8; 64];
    s.read_exact(&mut head).unwrap();
    kill(&gw.child, "TERM");
    let mut rest = Vec::new();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.ends_with("big{n=\"9999\"} 9999\n"),
        "truncated: ...{}",
        &text[text.len().saturating_sub(200)..]
    );
    assert_eq!(wait_exit(&mut gw.child, Duration::from_secs(2)), Some(0));
}

/// Starts the gateway as a service manager would: a Unix socket bound at
/// `path` and listening is passed as fd 3 with `LISTEN_FDS=1` and the
/// gateway's own pid in `LISTEN_PID`, plus a notify socket.
fn start_activated(path: &std::path::Path, notify: &std::path::Path, port: u16) -> Child {
    // Python binds the socket, moves it to fd 3 and execs in place, so the
    // pid it writes into LISTEN_PID is the gateway's.
    let script = "import os, socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        s.bind(sys.argv[1])\n\
        s.listen(64)\n\
        os.dup2(s.fileno(), 3) if s.fileno() != 3 else None\n\
        os.set_inheritable(3, True)\n\
        os.environ['LISTEN_FDS'] = '1'\n\
        os.environ['LISTEN_PID'] = str(os.getpid())\n\
        os.execv(sys.argv[2], sys.argv[2:])\n";
    let runner = std::env::var("PUSH_GATEWAY_TEST_RUNNER").unwrap_or_default();
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(path);
    if runner.is_empty() {
        cmd.arg(common::gateway_bin());
    } else {
        // qemu-user execs the program in place, keeping the pid.
        cmd.arg(which(&runner)).arg(common::gateway_bin());
    }
    cmd.args(["--no-self-metrics", "--socket", "/nonexistent/ignored.sock"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("NOTIFY_SOCKET", notify)
        .env("RUST_LOG", "error");
    cmd.spawn().expect("python3 starts the activated gateway")
}

fn which(program: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn socket_activation_and_readiness() {
    let dir = TempDir::new("activate");
    let path = dir.path().join("activated.sock");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let port = free_port();
    let mut child = start_activated(&path, &notify_path, port);
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 on NOTIFY_SOCKET");
    assert_eq!(&buf[..n], b"READY=1");
    // Pushes through the inherited socket are served.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"activated 1\n").unwrap();
    drop(s);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = http_request(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        if body.contains("activated 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&child, "TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(1)), Some(0));
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    // An inherited socket belongs to the service manager: left in place.
    assert!(path.exists());
}

#[test]
fn the_socket_group_is_set_at_creation() {
    let gw = Gateway::start(&["--socket-group", "daemon", "--socket-mode", "0660"]);
    let meta = std::fs::metadata(&gw.socket).unwrap();
    let daemon_gid = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("daemon:x:")
                .and_then(|r| r.split(':').next()?.parse::<u32>().ok())
        })
        .expect("a daemon group in /etc/group");
    assert_eq!(meta.gid(), daemon_gid);
    let out = gateway_command()
        .args(["--socket-group", "no-such-group-here", "--socket"])
        .arg(gw.dir.path().join("other.sock"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no group \"no-such-group-here\""));
}

fn metric(page: &str, series: &str) -> f64 {
    value_of(page, series)
        .unwrap_or_else(|| panic!("{series} missing from\n{page}"))
        .parse()
        .unwrap()
}

#[test]
fn self_metrics_move_as_things_happen() {
    let gw = Gateway::start_full(&["--cache-bytes", "2KiB", "--max-push-connections", "8"]);
    let page = gw.scrape();
    assert_eq!(metric(&page, "push_gateway_cache_budget_bytes"), 2048.0);
    assert!(
        page.contains("push_gateway_build_info{version=\""),
        "{page}"
    );
    let before_evictions = metric(&page, "push_gateway_evictions_total{reason=\"budget\"}");
    let scrapes = metric(&page, "push_gateway_scrapes_total");

    let reply = gw.push("ok_line 1\nbad line\nts 1 2\n");
    assert_eq!(reply.lines().count(), 2);
    for i in 0..60 {
        gw.push(&format!("fill{{n=\"{i}\"}} 1\n"));
    }
    let page = gw.scrape();
    assert!(metric(&page, "push_gateway_evictions_total{reason=\"budget\"}") > before_evictions);
    assert_eq!(
        metric(&page, "push_gateway_lines_rejected_total{reason=\"value\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &page,
            "push_gateway_lines_rejected_total{reason=\"timestamp\"}"
        ),
        1.0
    );
    assert!(metric(&page, "push_gateway_lines_total") >= 61.0);
    assert_eq!(metric(&page, "push_gateway_scrapes_total"), scrapes + 1.0);
    assert!(metric(&page, "push_gateway_cache_bytes") <= 2048.0);
    assert!(metric(&page, "push_gateway_series") > 0.0);
}

/// Regression: a signal sent as soon as the socket appeared killed the
/// process (default action) before its handlers were installed.
#[test]
fn regression_signal_right_after_the_socket_appears_exits_0() {
    for _ in 0..20 {
        let dir = TempDir::new("early-signal");
        let socket = dir.path().join("push.sock");
        let mut child = gateway_command()
            .args(["--socket", socket.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while !socket.exists() {
            assert!(Instant::now() < deadline, "socket never appeared");
            std::thread::yield_now();
        }
        kill(&child, "TERM");
        assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), Some(0));
    }
}

//! Start-up: flags, exit statuses and messages, and the push socket's file
//! (mode, stale files, never stealing a live socket).

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

/// Runs the gateway to completion (it must fail fast) and returns its output.
fn run_failing(args: &[&str]) -> Output {
    let mut child = gateway_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("push-gateway {args:?} kept running; it should have failed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_and_version() {
    let out = gateway_command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--socket",
        "--listen",
        "--cache-bytes",
        "--ttl",
        "--socket-mode",
        "--max-push-connections",
        "--max-scrape-connections",
        "--max-connections",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("PUSH_GATEWAY_CACHE_BYTES"), "{help}");
    let out = gateway_command().arg("-V").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("push-gateway "));
}

#[test]
fn invalid_values_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--cache-bytes", "lots"),
        ("--cache-bytes", "10"),
        ("--ttl", "soon"),
        ("--socket-mode", "999"),
        ("--max-connections", "0"),
        ("--max-push-connections", "0"),
        ("--max-scrape-connections", "65537"),
        ("--listen", "nowhere"),
    ] {
        let out = run_failing(&[flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&out).contains(flag), "{flag}: {}", stderr(&out));
    }
}

#[test]
fn flags_can_come_from_the_environment() {
    let gw = Gateway::start_with(&[], |cmd| {
        cmd.env("PUSH_GATEWAY_TTL", "300ms");
    });
    gw.push("env_ttl 1\n");
    gw.scrape_until("the 300ms TTL from the environment", |p| {
        !p.contains("env_ttl")
    });
    let bad = gateway_command()
        .env("PUSH_GATEWAY_CACHE_BYTES", "huge")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--cache-bytes"), "{}", stderr(&bad));
}

#[test]
fn the_socket_gets_the_requested_mode() {
    for (mode, want) in [("0660", 0o660), ("0600", 0o600), ("0666", 0o666)] {
        let gw = Gateway::start(&["--socket-mode", mode]);
        let meta = std::fs::metadata(&gw.socket).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, want, "{mode}");
        // No private bind directory is left behind.
        let leftovers = std::fs::read_dir(gw.dir.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}

#[test]
fn a_live_socket_is_never_stolen() {
    let gw = Gateway::start(&[]);
    let out = run_failing(&[
        "--socket",
        gw.socket.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is in use"), "{}", stderr(&out));
    // The first instance still works.
    gw.push("still_mine 1\n");
    assert!(gw.scrape().contains("still_mine 1"));
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = dir.path().join("push.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let port = free_port();
    let mut child = gateway_command()
        .args([
            "--socket",
            path.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while std::os::unix::net::UnixStream::connect(&path).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "gateway exited");
        assert!(std::time::Instant::now() < deadline, "never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_path_that_is_not_a_socket_is_refused() {
    let dir = TempDir::new("file");
    let path = dir.path().join("data.txt");
    std::fs::write(&path, "keep me").unwrap();
    let out = run_failing(&[
        "--socket",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a socket"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[test]
fn a_symlink_is_refused() {
    let dir = TempDir::new("link");
    let target = dir.path().join("target");
    let link = dir.path().join("push.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run_failing(&[
        "--socket",
        link.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a socket"), "{}", stderr(&out));
    assert!(!target.exists());
}

#[test]
fn a_directory_without_write_permission_is_a_clear_error() {
    let dir = TempDir::new("perm");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let socket = locked.join("push.sock");
    let args = [
        "--socket",
        socket.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    // Root may write anywhere: drop to nobody for this check.
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let out = if is_root {
        let runner = std::env::var("PUSH_GATEWAY_TEST_RUNNER").unwrap_or_default();
        let bin = common::gateway_bin();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        if !runner.is_empty() {
            cmd.arg(runner);
        }
        cmd.arg(bin).args(args).output().unwrap()
    } else {
        run_failing(&args)
    };
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("port");
    let socket = dir.path().join("push.sock");
    let out = run_failing(&["--socket", socket.to_str().unwrap(), "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("address in use"), "{}", stderr(&out));
}

/// Regression: a start-up failure after the push socket was created (here
/// the TCP port in use) left the socket file behind, and the error was
/// printed twice (once logged, once on stderr).
#[test]
fn a_failed_start_removes_its_socket_and_says_why_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("port-cleanup");
    let socket = dir.path().join("push.sock");
    for log in ["info", "error", "off"] {
        let mut child = gateway_command()
            .args(["--socket", socket.to_str().unwrap(), "--listen", &addr])
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "kept running");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "RUST_LOG={log}");
        let err = stderr(&out);
        assert_eq!(
            err.matches("address in use").count(),
            1,
            "RUST_LOG={log}: the error should be printed exactly once:\n{err}"
        );
        assert!(
            std::fs::symlink_metadata(&socket).is_err(),
            "RUST_LOG={log}: the socket file was left behind"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// A socket path of exactly `len` bytes in a fresh directory.
fn socket_path_of(dir: &TempDir, len: usize) -> std::path::PathBuf {
    let base = dir.path().as_os_str().len() + 1;
    assert!(len > base + 5, "the temporary directory is too long");
    let name = format!("{}.sock", "p".repeat(len - base - 5));
    let path = dir.path().join(name);
    assert_eq!(path.as_os_str().len(), len);
    path
}

/// Regression: the socket was bound under a staging name longer than the
/// final path, so paths near the `sun_path` limit failed to start.
#[test]
fn a_socket_path_of_107_bytes_works_and_108_is_a_clear_error() {
    let dir = TempDir::new("sun");
    let path = socket_path_of(&dir, 107);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = gateway_command()
        .args(["--no-self-metrics", "--socket", path.to_str().unwrap()])
        .args(["--listen", &addr])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let mut conn = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("a 107-byte socket path failed: {status}: {}", stderr(&out));
        }
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&path) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::io::{Read, Write};
    conn.write_all(b"long_path_ok 1\n").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "");
    let (status, _, body) = http_request(
        addr.parse().unwrap(),
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(body.contains("long_path_ok 1\n"), "{body}");
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    // Only the socket: no staging directory left next to it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    assert!(!path.exists(), "the socket is removed on exit");

    let too_long = socket_path_of(&dir, 108);
    let out = run_failing(&["--socket", too_long.to_str().unwrap(), "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is 108 bytes; Unix socket paths are at most 107 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A `/proc/PID/status` field of the gateway, in kB; `None` under a cross
/// runner, where /proc shows the emulator.
fn status_kib(gw: &Gateway, field: &str) -> Option<u64> {
    if std::env::var_os("PUSH_GATEWAY_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Regression: `--cache-bytes 1GiB`, as README writes the largest budget,
/// was refused (no GiB suffix); and 1024MiB mapped three times the budget
/// (3.1 GiB of VmSize), the renderer reserving twice the budget for the
/// page and room to sort the most series it could hold, up front.
#[test]
fn a_1gib_budget_is_accepted_and_maps_little_more_than_the_budget() {
    const BUDGET_KIB: u64 = 1 << 20;
    // The budget, a quarter of it for pages and sort order grown by use,
    // and the binary, its libraries and stacks (about 6 MB at 10 KiB).
    const VMSIZE_MAX_KIB: u64 = BUDGET_KIB + BUDGET_KIB / 4 + 64 * 1024;
    let gw = Gateway::start(&["--cache-bytes", "1GiB"]);
    let lines: String = (0..1000)
        .map(|i| format!("vm_probe{{n=\"{i}\"}} {i}\n"))
        .collect();
    assert_eq!(gw.push(&lines), "");
    let page = gw.scrape_until("the pushed series", |p| p.contains("vm_probe{n=\"999\"}"));
    assert!(page.contains("vm_probe{n=\"0\"} 0\n"));
    let (Some(size), Some(rss)) = (status_kib(&gw, "VmSize"), status_kib(&gw, "VmRSS")) else {
        return;
    };
    eprintln!("--cache-bytes 1GiB: VmSize {size} kB, VmRSS {rss} kB");
    assert!(
        size <= VMSIZE_MAX_KIB,
        "VmSize {size} kB at a 1 GiB budget; at most {VMSIZE_MAX_KIB} kB expected"
    );
    // Resident memory follows what is held: the 64 MiB hash index is not
    // written at start-up, so 1,000 series map at most a page of it each.
    const VMRSS_MAX_KIB: u64 = 24 * 1024;
    assert!(
        rss <= VMRSS_MAX_KIB,
        "VmRSS {rss} kB at a 1 GiB budget holding 1,000 series; at most {VMRSS_MAX_KIB} kB expected"
    );
}

/// A missing, empty, unreadable or malformed `--scrape-auth-file` is a
/// start-up error naming the flag and saying what the file must hold; the
/// secret itself is never printed. The variable works as the flag does.
#[test]
fn a_bad_scrape_auth_file_is_a_clear_start_up_error() {
    let dir = TempDir::new("authfile");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let missing = dir.path().join("missing").to_str().unwrap().to_string();
    let cases = [
        (missing.clone(), "cannot read"),
        (write("empty", ""), "empty"),
        (write("blank", " \n\n"), "empty"),
        (write("two", "hunter2\nhunter3\n"), "more than one line"),
        (write("nouser", ":hunter2\n"), "empty user name"),
        (write("spaces", "hunter 2\n"), "no spaces"),
        // A directory cannot be read as a file, even by root.
        (dir.path().to_str().unwrap().to_string(), "cannot read"),
    ];
    for (path, says) in &cases {
        let socket = dir.path().join("push.sock");
        let out = run_failing(&[
            "--socket",
            socket.to_str().unwrap(),
            "--scrape-auth-file",
            path,
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains("--scrape-auth-file"), "{path}: {err}");
        assert!(err.contains(says), "{path}: want {says:?} in: {err}");
        assert!(
            !err.contains("hunter"),
            "{path}: the secret was printed: {err}"
        );
        assert!(!socket.exists(), "{path}: a socket was created");
    }
    let out = gateway_command()
        .env("PUSH_GATEWAY_SCRAPE_AUTH_FILE", &missing)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--scrape-auth-file"),
        "{}",
        stderr(&out)
    );

    // From the environment, the credential is required on the TCP port.
    let token = write("token", "from-env\n");
    let gw = Gateway::start_with(&[], |cmd| {
        cmd.env("PUSH_GATEWAY_SCRAPE_AUTH_FILE", &token);
    });
    assert_eq!(gw.get("/metrics").0, 401);
    let (status, _, _) = http_request(
        gw.addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer from-env\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
}

#[test]
fn max_ttl_below_ttl_is_refused_naming_both_flags() {
    let out = run_failing(&["--ttl", "10m", "--max-ttl", "1m"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--max-ttl 1m is below --ttl 10m") && err.contains("raise --max-ttl"),
        "{err}"
    );
}

#[test]
fn a_duration_needs_its_unit_and_a_negative_one_names_the_flag() {
    for (flag, value) in [
        ("--ttl", "60"),
        ("--max-ttl", "3600"),
        ("--ttl", "-1"),
        ("--max-ttl", "-5m"),
    ] {
        let out = run_failing(&[flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("for '{flag}")) && err.contains("ms, s, m or h"),
            "{flag} {value}: {err}"
        );
    }
    let out = run_failing(&["--cache-bytes", "-1"]);
    assert!(
        stderr(&out).contains("for '--cache-bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sizes_take_exactly_the_documented_suffixes() {
    for value in ["10KB", "10K", "1GB", "2M", "4096B"] {
        let out = run_failing(&["--cache-bytes", value]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        assert!(
            stderr(&out).contains("KiB, MiB or GiB"),
            "{value}: {}",
            stderr(&out)
        );
    }
    let gw = Gateway::start(&["--cache-bytes", "16384", "--max-body-bytes", "2 KiB"]);
    gw.push("sized 1\n");
    gw.scrape_until("a push to a gateway sized in plain bytes", |p| {
        p.contains("sized 1")
    });
}

#[test]
fn a_bad_listen_address_says_the_expected_form() {
    for value in ["nowhere", "localhost:9091", "9091", "::1:9091"] {
        let out = run_failing(&["--listen", value]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = stderr(&out);
        assert!(
            err.contains("IP:PORT") && err.contains("[::1]:9091") && err.contains("host names"),
            "{value}: {err}"
        );
    }
}

#[test]
fn the_start_up_line_names_every_effective_limit() {
    let mut gw = Gateway::start_with(
        &["--ttl", "90s", "--max-ttl", "2h", "--cache-bytes", "64KiB"],
        |cmd| {
            cmd.env("RUST_LOG", "info").stderr(Stdio::piped());
        },
    );
    // The line is written just after the listeners are bound, so it can
    // come a little after the gateway answers (much later under
    // emulation): read until it arrives, with a watchdog, then stop.
    let err = gw.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(" started: ") => break l,
            Ok(l) => {
                log.push_str(&l);
                log.push('\n');
            }
            Err(_) => panic!("no start-up line in:\n{log}"),
        }
    };
    let _ = gw.child.kill();
    let _ = gw.child.wait();
    for part in [
        "cache 65536 bytes",
        "ttl 90s",
        "max ttl 2h",
        "max 64 push and 16 scrape connections",
        "max body 65536 bytes",
        "drain on scrape off",
        "persistence off",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
}

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
        let bin = env!("CARGO_BIN_EXE_push-gateway");
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

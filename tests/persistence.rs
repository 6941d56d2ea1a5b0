//! `--persistence-file` against the real binary: a restart after SIGTERM
//! serves the same page (push times included) and keeps what is left of
//! each TTL; SIGKILL at random moments leaves a snapshot that is a state
//! that was pushed; damaged, empty, foreign and other-version files are
//! moved aside and the gateway starts empty; a file from a larger budget
//! keeps the most recently written series; a read-only directory is
//! counted and logged while the gateway keeps serving; and a snapshot is
//! written only when the cache changed (counted by
//! `push_gateway_snapshot_writes_total`).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM, and the exit status 0 after it.
fn stop(gw: &mut Gateway) {
    kill(&gw.child, "TERM");
    let deadline = Instant::now() + scaled(WAIT);
    loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "exit after SIGTERM");
            return;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A gateway persisting to `file`, its log (at info) in `log`.
fn start(file: &Path, log: &Path, extra: &[&str]) -> Gateway {
    let mut args = vec![
        "--no-self-metrics",
        "--persistence-file",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    start_logged(&args, log)
}

fn start_logged(args: &[&str], log: &Path) -> Gateway {
    let log = std::fs::File::create(log).unwrap();
    Gateway::start_with(args, |cmd| {
        cmd.env("RUST_LOG", "info").stderr(log);
    })
}

/// An HTTP request over the push socket; the status code.
fn http(gw: &Gateway, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    let mut s = gw.connect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    split_response(&reply).0
}

fn sample_lines(page: &str) -> Vec<&str> {
    page.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn a_restart_after_sigterm_serves_the_same_page() {
    let state = TempDir::new("persist-restart");
    let file = state.path().join("cache.snapshot");
    let log = state.path().join("log");
    let ttl = ["--ttl", "1h", "--max-ttl", "48h"];
    let mut gw = start(&file, &log, &ttl);
    // Streamed, with two TTLs and HELP/TYPE.
    let stream = "# HELP temp_celsius Temperature.\n# TYPE temp_celsius gauge\n\
                  temp_celsius{room=\"kitchen\"} 21.5\n# TTL 30m\njobs_done_total 7\n";
    assert_eq!(gw.push(stream), "");
    // Pushed over HTTP with a TTL of their own.
    let body = "# TYPE backup_last_success_seconds gauge\nbackup_last_success_seconds 1.7e9\n";
    let put = |gw: &Gateway, path, headers| http(gw, "PUT", path, headers, body);
    assert_eq!(put(&gw, "/metrics/job/backup", "Push-TTL: 25h\r\n"), 200);
    assert_eq!(put(&gw, "/metrics/job/other/instance/x", ""), 200);
    let before = gw.scrape();
    assert!(before.contains("push_time_seconds{instance=\"x\",job=\"other\"}"));
    // A drain series, pushed after the scrape (which would have drained it).
    let drain = "# TYPE delivered_once gauge\ndelivered_once 1\n";
    let code = http(
        &gw,
        "PUT",
        "/metrics/job/once",
        "Push-Drain: true\r\n",
        drain,
    );
    assert_eq!(code, 200);
    stop(&mut gw);
    assert!(file.exists(), "no snapshot after SIGTERM");

    let mut gw = start(&file, &log, &ttl);
    // The log line is written before the first request is served.
    let restored = gw.scrape();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("restored 5 series (3 groups)"),
        "{log_text}"
    );
    assert!(
        restored.contains("delivered_once{instance=\"\",job=\"once\"} 1"),
        "the drain series comes back once:\n{restored}"
    );
    // Without the drain group's lines, exactly the page before the stop.
    let without: String = restored
        .lines()
        .filter(|l| !l.contains("delivered_once") && !l.contains("job=\"once\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without, before);
    // That scrape delivered it: drained, and the next snapshot knows.
    stop(&mut gw);
    let gw = start(&file, &log, &ttl);
    assert_eq!(gw.scrape(), before);
}

#[test]
fn what_is_left_of_a_ttl_survives_a_restart() {
    let state = TempDir::new("persist-ttl");
    let file = state.path().join("cache.snapshot");
    let log = state.path().join("log");
    let mut gw = start(&file, &log, &["--ttl", "1h"]);
    let pushed = Instant::now();
    let ttl = Duration::from_secs(4);
    assert_eq!(gw.push("# TTL 4s\nshort_lived 1\nlong_lived 2\n"), "");
    assert_eq!(gw.push("# TTL 1h\nlong_lived 2\n"), "");
    stop(&mut gw);
    // Down for a while: a TTL started again at the restart would hold the
    // series until `restarted + 4 s`, well after `pushed + 4 s`.
    std::thread::sleep(Duration::from_secs(2));
    let restarted = Instant::now();
    let gw = start(&file, &log, &["--ttl", "1h"]);
    gw.scrape_until("the short TTL to run out", |p| !p.contains("short_lived"));
    let gone = Instant::now();
    assert!(
        gone < restarted + ttl,
        "short_lived stayed {:?} after the restart: its TTL started again",
        gone - restarted
    );
    assert!(gone >= pushed + ttl, "expired early");
    assert!(gw.scrape().contains("long_lived 2"));
}

/// The state a step pushes: the group `job="crash"` with `step % 5 + 1`
/// series, each of value `step`.
fn step_body(step: u64) -> String {
    let mut body = String::from("# TYPE crash_step gauge\n");
    for k in 0..step % 5 + 1 {
        body.push_str(&format!("crash_step{{k=\"{k}\"}} {step}\n"));
    }
    body
}

/// The step the page's group holds, checking it is whole: `None` if the
/// page holds no such group.
fn restored_step(page: &str) -> Option<u64> {
    let values: Vec<u64> = sample_lines(page)
        .into_iter()
        .filter(|l| l.starts_with("crash_step{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    let step = *values.first()?;
    assert!(
        values.iter().all(|&v| v == step) && values.len() as u64 == step % 5 + 1,
        "a torn state on the page:\n{page}"
    );
    Some(step)
}

#[test]
fn sigkill_at_random_moments_leaves_a_state_that_was_pushed() {
    let state = TempDir::new("persist-kill");
    let file = state.path().join("cache.snapshot");
    let log = state.path().join("log");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut step = 0u64;
    let mut restored = None;
    for round in 0..5 {
        // A snapshot at every change: the kill can come at any point of one.
        let gw = start(
            &file,
            &log,
            &["--ttl", "1h", "--persistence-interval", "1ms"],
        );
        let page = gw.scrape();
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(!log_text.contains("unusable"), "round {round}: {log_text}");
        let now = restored_step(&page);
        // Never older than the state restored before: each snapshot
        // follows the one it replaces.
        assert!(now >= restored, "round {round}: {now:?} after {restored:?}");
        assert!(now.is_none_or(|s| s <= step), "a step never pushed");
        eprintln!("round {round}: restored step {now:?} of {step} pushed");
        restored = now;
        let mut gw = gw;
        let socket = gw.socket.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let first = step + 1;
        let pusher = std::thread::spawn(move || {
            let mut sent = first - 1;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let body = step_body(sent + 1);
                let req = format!(
                    "PUT /metrics/job/crash HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let Ok(mut s) = UnixStream::connect(&socket) else {
                    break;
                };
                sent += 1;
                if s.write_all(req.as_bytes()).is_err() {
                    break;
                }
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
            }
            sent
        });
        std::thread::sleep(Duration::from_millis(30 + next() % 300));
        let _ = gw.child.kill();
        let _ = gw.child.wait();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        step = pusher.join().unwrap();
        assert!(step >= first, "round {round}: no push got through");
    }
    let gw = start(&file, &log, &["--ttl", "1h"]);
    let last = restored_step(&gw.scrape());
    assert!(
        last >= restored && last.is_some(),
        "nothing was ever restored"
    );
    let tmp = PathBuf::from(format!("{}.tmp", file.display()));
    assert!(!tmp.exists(), "a temporary file left behind is removed");
    assert!(!PathBuf::from(format!("{}.corrupt", file.display())).exists());
}

/// A valid snapshot of a few series, written by the gateway.
fn good_snapshot(dir: &Path) -> Vec<u8> {
    let file = dir.join("good.snapshot");
    let mut gw = start(&file, &dir.join("good.log"), &[]);
    assert_eq!(gw.push("kept_a 1\nkept_b 2\n"), "");
    stop(&mut gw);
    std::fs::read(&file).unwrap()
}

#[test]
fn a_damaged_file_is_moved_aside_and_the_gateway_starts_empty() {
    let state = TempDir::new("persist-bad");
    let good = good_snapshot(state.path());
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let mut version = good.clone();
    version[8] = 99;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("truncated", good[..good.len() - 7].to_vec(), "checksum"),
        ("bit-flipped", flipped, "checksum"),
        ("empty", Vec::new(), "empty"),
        (
            "foreign",
            b"# TYPE x gauge\nx 1\n".to_vec(),
            "not a push-gateway snapshot",
        ),
        ("other version", version, "version 99"),
    ];
    for (what, bytes, reason) in cases {
        let file = state.path().join("cache.snapshot");
        let aside = state.path().join("cache.snapshot.corrupt");
        std::fs::write(&file, &bytes).unwrap();
        let log = state.path().join("log");
        let mut gw = start(&file, &log, &[]);
        assert_eq!(sample_lines(&gw.scrape()), Vec::<&str>::new(), "{what}");
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(
            log_text.contains("unusable") && log_text.contains(reason),
            "{what}: {log_text}"
        );
        assert_eq!(std::fs::read(&aside).unwrap(), bytes, "{what}: moved aside");
        assert!(!file.exists(), "{what}");
        // It serves and saves as ever.
        assert_eq!(gw.push("after 1\n"), "");
        stop(&mut gw);
        let mut gw = start(&file, &log, &[]);
        assert!(gw.scrape().contains("after 1"), "{what}");
        stop(&mut gw);
        std::fs::remove_file(&file).unwrap();
    }
    // The good file, for contrast.
    let file = state.path().join("cache.snapshot");
    std::fs::write(&file, &good).unwrap();
    let gw = start(&file, &state.path().join("log"), &[]);
    let page = gw.scrape();
    assert!(
        page.contains("kept_a 1") && page.contains("kept_b 2"),
        "{page}"
    );
}

#[test]
fn a_snapshot_of_a_larger_budget_keeps_the_most_recent_series() {
    let state = TempDir::new("persist-budget");
    let file = state.path().join("cache.snapshot");
    let log = state.path().join("log");
    let mut gw = start(&file, &log, &["--cache-bytes", "64KiB"]);
    let lines: String = (0..300)
        .map(|i| format!("s{{n=\"{i:03}\"}} {i}\n"))
        .collect();
    assert_eq!(gw.push(&lines), "");
    assert_eq!(sample_lines(&gw.scrape()).len(), 300);
    stop(&mut gw);
    let gw = start(&file, &log, &["--cache-bytes", "4KiB"]);
    let page = gw.scrape();
    let kept: Vec<u32> = sample_lines(&page)
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(!kept.is_empty() && kept.len() < 300, "{page}");
    let first = 300 - kept.len() as u32;
    assert_eq!(kept, (first..300).collect::<Vec<_>>(), "the last written");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains(&format!("{first} did not fit in 4096 bytes")),
        "{log_text}"
    );
}

fn self_metric(page: &str, name: &str) -> u64 {
    value_of(page, name)
        .unwrap_or_else(|| panic!("no {name}:\n{page}"))
        .parse()
        .unwrap()
}

#[test]
fn a_snapshot_is_written_only_when_the_cache_changed() {
    let state = TempDir::new("persist-writes");
    let file = state.path().join("cache.snapshot");
    let file_arg = file.to_str().unwrap();
    let args = [
        "--persistence-file",
        file_arg,
        "--persistence-interval",
        "200ms",
        "--ttl",
        "1h",
    ];
    let log = state.path().join("log");
    let mut gw = start_logged(&args, &log);
    let writes = |gw: &Gateway| self_metric(&gw.scrape(), "push_gateway_snapshot_writes_total");
    assert_eq!(gw.push("changed 1\n"), "");
    let page = gw.scrape_until("the first snapshot", |p| {
        value_of(p, "push_gateway_snapshot_writes_total").as_deref() == Some("1")
    });
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(
        self_metric(&page, "push_gateway_snapshot_bytes_total"),
        size
    );
    // Five intervals of scrapes alone: nothing to write.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(1) {
        assert_eq!(writes(&gw), 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gw.push("changed 2\n"), "");
    gw.scrape_until("the second snapshot", |p| {
        value_of(p, "push_gateway_snapshot_writes_total").as_deref() == Some("2")
    });
    let inode = std::fs::metadata(&file).unwrap().ino();
    // Unchanged since the last snapshot: the stop writes nothing either,
    // nor does a restart that changes nothing.
    stop(&mut gw);
    assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
    let mut gw = start_logged(&args, &log);
    assert!(gw.scrape().contains("changed 2"));
    assert_eq!(writes(&gw), 0);
    stop(&mut gw);
    assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
    assert_eq!(
        self_metric(&page, "push_gateway_snapshot_failures_total"),
        0
    );
}

#[test]
fn a_read_only_directory_is_counted_and_the_gateway_keeps_serving() {
    let state = TempDir::new("persist-ro");
    let good = good_snapshot(state.path());
    let locked = state.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let file = locked.join("cache.snapshot");
    std::fs::write(&file, &good).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root may write anywhere: the gateway runs as nobody for this check,
    // with a socket directory nobody may write to.
    let run = TempDir::new("persist-ro-run");
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = run.path().join("push.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let gateway = gateway_command();
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(gateway.get_program())
            .args(gateway.get_args());
        c
    } else {
        gateway
    };
    let log = run.path().join("log");
    cmd.args(["--socket", socket.to_str().unwrap(), "--listen", &addr])
        .args(["--persistence-file", file.to_str().unwrap()])
        .args(["--persistence-interval", "100ms"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut gw = Gateway {
        child: cmd.spawn().unwrap(),
        socket,
        addr: addr.parse().unwrap(),
        dir: run,
    };
    let deadline = Instant::now() + scaled(WAIT);
    while UnixStream::connect(&gw.socket).is_err() {
        assert!(Instant::now() < deadline, "no start-up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Read: restored.
    let page = gw.scrape_until("the restored series", |p| p.contains("kept_a 1"));
    assert_eq!(
        self_metric(&page, "push_gateway_snapshot_failures_total"),
        0
    );
    assert_eq!(gw.push("new 1\n"), "");
    let page = gw.scrape_until("a failed write", |p| {
        value_of(p, "push_gateway_snapshot_failures_total").is_some_and(|v| v != "0")
    });
    assert_eq!(self_metric(&page, "push_gateway_snapshot_writes_total"), 0);
    assert!(page.contains("new 1"), "it keeps serving");
    stop(&mut gw);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "the old snapshot stays"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("cannot write the snapshot")
            && log_text.contains("the previous one stays"),
        "{log_text}"
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

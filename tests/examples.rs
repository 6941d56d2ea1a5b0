//! The pushers and configs in `examples/`, each run for real against the
//! real gateway, and the page checked for what they pushed:
//!
//! - `push_sh_with_socat_and_nc`: examples/push.sh, both clients, lines from
//!   arguments and from stdin, and a bad line's error reply.
//! - `host_metrics_sh_once`: examples/host-metrics.sh --once over a made-up
//!   /proc (exact values) with socat, and over the real one with nc; the
//!   page passes `promtool check metrics`.
//! - `push_python_through_socat_bridge`: examples/push_python.py with
//!   prometheus_client's push_to_gateway, through the socat TCP bridge the
//!   example describes; then its --delete.
//! - `push_rs_example`: examples/push.rs, compiled with rustc (std only).
//! - `prometheus_yml_scrapes_the_gateway`: examples/prometheus.yml passes
//!   `promtool check config` as it is, then a real Prometheus runs it (the
//!   target swapped for the test gateway): pushed job/instance labels are
//!   kept (honor_labels), and every alert rule evaluates; every
//!   push_gateway_* metric the rules name is on the gateway's page.
//!
//! Tools (socat, nc, prometheus_client in install.sh's venv, promtool, prometheus)
//! come from tests/e2e/install.sh; a missing one fails the test, it never
//! skips.

mod common;
use common::clients::client_python;
use common::tools::*;
use common::*;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for waits on Prometheus (start-up, first scrape, rules).
const PROM_WAIT: Duration = Duration::from_secs(30);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs `cmd` with `stdin` as its input, at most `WAIT`; its output.
fn run_with_input(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let pid = child.id().to_string();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let deadline = Instant::now() + WAIT;
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{cmd:?} ran longer than {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap().unwrap()
}

fn run(cmd: &mut Command) -> Output {
    run_with_input(cmd, "")
}

/// The value of the one sample of `name` whose labels include every
/// `label="value"` of `labels`, in any order.
fn sample_value(page: &str, name: &str, labels: &[&str]) -> Option<String> {
    page.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (label_set, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let have: Vec<&str> = label_set.split(',').collect();
        labels
            .iter()
            .all(|l| have.contains(l))
            .then(|| value.to_string())
    })
}

// ---------------------------------------------------------------------------
// examples/push.sh

#[test]
fn push_sh_with_socat_and_nc() {
    let sh = require_tool("sh");
    require_tool("socat");
    require_tool("nc");
    let gw = Gateway::start(&[]);
    let script = example("push.sh");
    let push = |args: &[&str], stdin: &str| {
        run_with_input(
            Command::new(&sh)
                .arg(&script)
                .args(args)
                .env("PUSH_GATEWAY_SOCKET", &gw.socket),
            stdin,
        )
    };

    let out = push(
        &[
            "--socat",
            "# TYPE example_door_open gauge",
            "example_door_open{door=\"front\"} 1",
        ],
        "",
    );
    assert!(out.status.success(), "push.sh --socat: {}", describe(&out));
    let out = push(&["--nc"], "example_door_open{door=\"back\"} 0\n");
    assert!(out.status.success(), "push.sh --nc: {}", describe(&out));
    // The default client (socat here), lines from stdin.
    let out = push(&[], "example_jobs_done_total{queue=\"mail\"} 42\n");
    assert!(out.status.success(), "push.sh: {}", describe(&out));

    let page = gw.scrape_until("the three pushes", |p| {
        p.contains("example_jobs_done_total") && p.contains("door=\"back\"")
    });
    assert_eq!(
        value_of(&page, "example_door_open{door=\"front\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        value_of(&page, "example_door_open{door=\"back\"}").as_deref(),
        Some("0")
    );
    assert_eq!(
        value_of(&page, "example_jobs_done_total{queue=\"mail\"}").as_deref(),
        Some("42")
    );
    assert!(page.contains("# TYPE example_door_open gauge"), "{page}");

    // A bad line: the good one is kept, the reply shown, exit status 1.
    for client in ["--socat", "--nc"] {
        let out = push(&[client, "example_good 7", "example_bad{ 1"], "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{client}: {}", describe(&out));
        assert!(
            stderr.contains("error: line 2:"),
            "{client}: the gateway's reply should be shown: {}",
            describe(&out)
        );
    }
    let page = gw.scrape();
    assert_eq!(value_of(&page, "example_good").as_deref(), Some("7"));

    // No gateway there: a clear failure.
    let out = run(Command::new(&sh)
        .arg(&script)
        .arg("example_x 1")
        .env("PUSH_GATEWAY_SOCKET", gw.dir.path().join("nothing.sock")));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

// ---------------------------------------------------------------------------
// examples/host-metrics.sh

const FAKE_MEMINFO: &str = "\
MemTotal:         123456 kB
MemFree:           23456 kB
MemAvailable:      65432 kB
Buffers:            1024 kB
Cached:             4096 kB
SwapCached:            0 kB
Active:            12345 kB
SwapTotal:          2048 kB
SwapFree:           1024 kB
HugePages_Total:       0
";

#[test]
fn host_metrics_sh_once() {
    let sh = require_tool("sh");
    require_tool("socat");
    require_tool("nc");
    let promtool = require_tool("promtool");
    let gw = Gateway::start(&[]);
    let script = example("host-metrics.sh");

    // A made-up /proc, so every value is known.
    let proc_dir = TempDir::new("proc");
    std::fs::write(
        proc_dir.path().join("loadavg"),
        "0.25 0.50 1.75 2/345 6789\n",
    )
    .unwrap();
    std::fs::write(proc_dir.path().join("meminfo"), FAKE_MEMINFO).unwrap();
    std::fs::write(
        proc_dir.path().join("stat"),
        "cpu  1 2 3 4\nintr 5\nbtime 1700000000\nprocesses 9\n",
    )
    .unwrap();

    let started = Instant::now();
    let out = run(Command::new(&sh)
        .arg(&script)
        .args(["--once", "--socat"])
        .env("PUSH_GATEWAY_SOCKET", &gw.socket)
        .env("HOST_METRICS_PROC", proc_dir.path()));
    assert!(out.status.success(), "host-metrics.sh: {}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "--once should not wait for the interval"
    );

    let page = gw.scrape_until("host metrics", |p| p.contains("node_boot_time_seconds"));
    let expect = [
        ("node_load1", "0.25"),
        ("node_load5", "0.50"),
        ("node_load15", "1.75"),
        ("node_memory_MemTotal_bytes", "126418944"),
        ("node_memory_MemFree_bytes", "24018944"),
        ("node_memory_MemAvailable_bytes", "67002368"),
        ("node_memory_Buffers_bytes", "1048576"),
        ("node_memory_Cached_bytes", "4194304"),
        ("node_memory_SwapTotal_bytes", "2097152"),
        ("node_memory_SwapFree_bytes", "1048576"),
        ("node_boot_time_seconds", "1700000000"),
    ];
    for (name, want) in expect {
        let got = sample_value(&page, name, &[]);
        // The gateway may normalise the number's spelling (0.50 -> 0.5).
        let same = got
            .as_deref()
            .and_then(|g| g.parse::<f64>().ok())
            .is_some_and(|g| g == want.parse::<f64>().unwrap());
        assert!(same, "{name}: want {want}, got {got:?}; page:\n{page}");
        assert!(
            page.contains(&format!("# TYPE {name} gauge"))
                && page.contains(&format!("# HELP {name} ")),
            "{name} lacks HELP/TYPE:\n{page}"
        );
    }
    assert!(
        !page.contains("SwapCached"),
        "only the listed meminfo fields:\n{page}"
    );
    // Disk usage of / from df: sizes are the real ones, so only their sanity.
    let size = sample_value(&page, "node_filesystem_size_bytes", &["mountpoint=\"/\""]);
    let avail = sample_value(&page, "node_filesystem_avail_bytes", &["mountpoint=\"/\""]);
    let free = sample_value(&page, "node_filesystem_free_bytes", &["mountpoint=\"/\""]);
    let num = |v: &Option<String>| -> f64 {
        v.as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no file system sample for /:\n{page}"))
    };
    let (size, avail, free) = (num(&size), num(&avail), num(&free));
    assert!(
        size > 0.0 && avail <= free && free <= size,
        "implausible df figures: size {size}, free {free}, avail {avail}"
    );

    // Prometheus' linter: node_exporter's own meminfo names are camelCase
    // (node_memory_MemTotal_bytes), which it flags; nothing else may be.
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        assert!(
            line.starts_with("node_memory_") && line.ends_with("not 'camelCase'"),
            "promtool check metrics: {line}\npage:\n{page}"
        );
    }

    // The real /proc and df, pushed with nc, on a fresh gateway.
    let gw = Gateway::start(&[]);
    let out = run(Command::new(&sh)
        .arg(&script)
        .args(["--once", "--nc", "--mount", "/", "--mount", "/"])
        .env("PUSH_GATEWAY_SOCKET", &gw.socket));
    assert!(
        out.status.success(),
        "host-metrics.sh --nc: {}",
        describe(&out)
    );
    let page = gw.scrape_until("host metrics", |p| {
        p.contains("node_filesystem_avail_bytes")
    });
    for name in [
        "node_load1",
        "node_memory_MemTotal_bytes",
        "node_boot_time_seconds",
    ] {
        assert!(
            sample_value(&page, name, &[]).is_some(),
            "{name} missing:\n{page}"
        );
    }
    assert_eq!(
        page.matches("node_filesystem_size_bytes{").count(),
        1,
        "/ named twice is reported once:\n{page}"
    );

    // --once with no gateway: status 1, the reason on stderr.
    let out = run(Command::new(&sh)
        .arg(&script)
        .arg("--once")
        .env("PUSH_GATEWAY_SOCKET", gw.dir.path().join("nothing.sock")));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("push to"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// examples/push_python.py

/// A process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `addr` accepts TCP connections.
fn wait_for_port(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process for {addr} exited: {status}");
        }
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn push_python_through_socat_bridge() {
    let socat = require_tool("socat");
    // The virtual environment tests/e2e/install.sh makes, with the newest
    // prometheus_client: what a user of a stock Debian would set up.
    let python = client_python();
    let gw = Gateway::start(&[]);

    // The bridge, as the example's docstring has it, on a free port.
    let bridge: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(&socat)
        .arg(format!(
            "TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr",
            bridge.port()
        ))
        .arg(format!("UNIX-CONNECT:{}", gw.socket.display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn socat");
    wait_for_port(bridge, &mut child);
    let _bridge = Killed(child);

    let script = example("push_python.py");
    // Address as an argument, with an instance in the grouping key.
    let out = run(Command::new(&python)
        .arg(&script)
        .arg(bridge.to_string())
        .args([
            "--job",
            "example-batch",
            "--instance",
            "box1",
            "--records",
            "17",
        ]));
    assert!(out.status.success(), "push_python.py: {}", describe(&out));
    // Address from the environment, default job.
    let out = run(Command::new(&python)
        .arg(&script)
        .env("PUSH_GATEWAY_ADDRESS", bridge.to_string()));
    assert!(out.status.success(), "push_python.py: {}", describe(&out));

    let page = gw.scrape_until("both groups", |p| {
        p.contains("job=\"example-batch\"") && p.contains("job=\"example_batch\"")
    });
    let records = "example_job_records_processed_total";
    assert_eq!(
        sample_value(
            &page,
            records,
            &["job=\"example-batch\"", "instance=\"box1\""]
        )
        .as_deref(),
        Some("17"),
        "{page}"
    );
    assert_eq!(
        sample_value(&page, records, &["job=\"example_batch\""]).as_deref(),
        Some("42"),
        "{page}"
    );
    let last = sample_value(
        &page,
        "example_job_last_success_seconds",
        &["job=\"example-batch\""],
    )
    .and_then(|v| v.parse::<f64>().ok())
    .unwrap_or_else(|| panic!("no last-success time:\n{page}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 60.0, "last success {last}, now {now}");
    assert!(
        !page.contains("_created"),
        "the example turns *_created series off:\n{page}"
    );

    // --delete drops its group, the other stays.
    let out = run(Command::new(&python)
        .arg(&script)
        .arg(bridge.to_string())
        .args(["--job", "example-batch", "--instance", "box1", "--delete"]));
    assert!(
        out.status.success(),
        "push_python.py --delete: {}",
        describe(&out)
    );
    let page = gw.scrape_until("the deleted group gone", |p| !p.contains("example-batch"));
    assert!(page.contains("job=\"example_batch\""), "{page}");

    // No bridge: status 1 and a message, no traceback.
    let out = run(Command::new(&python)
        .arg(&script)
        .arg(format!("127.0.0.1:{}", free_port())));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Traceback"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// examples/push.rs

#[test]
fn push_rs_example() {
    // Built straight from its source: it uses std only, and `cargo test
    // --test examples` does not build examples.
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let dir = TempDir::new("push-rs");
    let bin = dir.path().join("push");
    let out = run(Command::new(&rustc)
        .args(["--edition", "2024", "--crate-name", "push", "-o"])
        .arg(&bin)
        .arg(example("push.rs")));
    assert!(
        out.status.success(),
        "rustc examples/push.rs: {}",
        describe(&out)
    );

    let gw = Gateway::start(&[]);
    // Lines as arguments, socket from --socket.
    let out = run(Command::new(&bin).arg("--socket").arg(&gw.socket).args([
        "# TYPE example_rs_temp_celsius gauge",
        "example_rs_temp_celsius{room=\"kitchen\"} 21.5",
    ]));
    assert!(out.status.success(), "push: {}", describe(&out));
    // Lines from stdin (the last without a newline), socket from the env.
    let out = run_with_input(
        Command::new(&bin).env("PUSH_GATEWAY_SOCKET", &gw.socket),
        "example_rs_a 1\nexample_rs_b{x=\"y\"} 2",
    );
    assert!(out.status.success(), "push < stdin: {}", describe(&out));

    let page = gw.scrape_until("the pushes", |p| p.contains("example_rs_b"));
    assert_eq!(
        value_of(&page, "example_rs_temp_celsius{room=\"kitchen\"}").as_deref(),
        Some("21.5")
    );
    assert!(
        page.contains("# TYPE example_rs_temp_celsius gauge"),
        "{page}"
    );
    assert_eq!(value_of(&page, "example_rs_a").as_deref(), Some("1"));
    assert_eq!(
        value_of(&page, "example_rs_b{x=\"y\"}").as_deref(),
        Some("2")
    );

    // A bad line: its reply on stderr, status 1, the good line kept.
    let out = run(Command::new(&bin)
        .arg("--socket")
        .arg(&gw.socket)
        .args(["example_rs_c 3", "example_rs_bad{ 4"]));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: line 2:"),
        "{}",
        describe(&out)
    );
    let page = gw.scrape_until("example_rs_c", |p| p.contains("example_rs_c"));
    assert_eq!(value_of(&page, "example_rs_c").as_deref(), Some("3"));

    // No gateway: status 2.
    let out = run(Command::new(&bin)
        .arg("--socket")
        .arg(gw.dir.path().join("nothing.sock"))
        .arg("x 1"));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

// ---------------------------------------------------------------------------
// examples/prometheus.yml and push-gateway.rules.yml

/// Copies prometheus.yml and its rule file into `dir`, the example targets
/// replaced by `target` and the intervals shortened when `target` is given.
fn config_copy(dir: &Path, target: Option<SocketAddr>) -> PathBuf {
    let mut config = std::fs::read_to_string(example("prometheus.yml")).unwrap();
    if let Some(target) = target {
        let mut out = String::new();
        let mut replaced = false;
        for line in config.lines() {
            let t = line.trim_start();
            if t.starts_with("- edge-box-") {
                if !replaced {
                    let indent = &line[..line.len() - t.len()];
                    out.push_str(&format!("{indent}- '{target}'\n"));
                    replaced = true;
                }
                continue;
            }
            let line = match t {
                "scrape_interval: 15s" | "evaluation_interval: 15s" => line.replace("15s", "1s"),
                "scrape_timeout: 10s" => line.replace("10s", "1s"),
                _ => line.to_string(),
            };
            out.push_str(&line);
            out.push('\n');
        }
        assert!(
            replaced,
            "no `- edge-box-...` target in examples/prometheus.yml"
        );
        config = out;
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    std::fs::copy(
        example("push-gateway.rules.yml"),
        dir.join("push-gateway.rules.yml"),
    )
    .unwrap();
    path
}

#[test]
fn prometheus_yml_scrapes_the_gateway() {
    let promtool = require_tool("promtool");
    let prometheus = require_tool("prometheus");

    // As shipped (promtool also checks the rule file it names).
    let out = run(Command::new(&promtool)
        .args(["check", "config"])
        .arg(example("prometheus.yml")));
    assert!(
        out.status.success(),
        "promtool check config: {}",
        describe(&out)
    );
    let text = describe(&out);
    assert!(text.contains("1 rule files found"), "{text}");
    let out = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(example("push-gateway.rules.yml")));
    assert!(
        out.status.success(),
        "promtool check rules: {}",
        describe(&out)
    );

    // With its own metrics on the page, as deployed, remote write's
    // included (to a port where nothing listens: its families show anyway).
    let url = format!("http://127.0.0.1:{}/api/v1/write", common::free_port());
    let gw = Gateway::start_with(&["--remote-write-url", &url], |_| {});

    // The rules name only metrics the gateway has.
    let rules = std::fs::read_to_string(example("push-gateway.rules.yml")).unwrap();
    let page = gw.scrape();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("push_gateway_") {
            assert!(
                page.contains(&format!("# TYPE {word} ")),
                "push-gateway.rules.yml names {word}, which is not on the page:\n{page}"
            );
        }
    }

    // A real Prometheus with the example config, scraping the test gateway.
    let dir = TempDir::new("prom-example");
    let config = config_copy(dir.path(), Some(gw.addr));
    let out = run(Command::new(&promtool)
        .args(["check", "config"])
        .arg(&config));
    assert!(out.status.success(), "edited copy: {}", describe(&out));

    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log_path = dir.path().join("prometheus.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn prometheus");
    let mut prom = Killed(child);
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };

    // Poll until `pred(answer)`, pushing first each time so the series
    // never reach their TTL.
    let poll = |what: &str, path: &str, pred: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + PROM_WAIT;
        loop {
            assert_eq!(
                gw.push(
                    "example_prom_value{job=\"nightly-backup\",instance=\"box1\"} 7\n\
                     example_prom_unlabelled 5\n"
                ),
                ""
            );
            let answer = match http_get(web, path) {
                Ok((200, body)) => body,
                Ok((status, body)) => format!("HTTP {status}: {body}"),
                Err(e) => format!("{e}"),
            };
            if pred(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer to {path}:\n{answer}\nprometheus log:\n{}",
                log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let query = |promql: &str| format!("/api/v1/query?query={}", url_encode(promql));

    if let Ok(Some(status)) = prom.0.try_wait() {
        panic!("prometheus exited: {status}\n{}", log_tail());
    }
    // honor_labels: the pushed job/instance win.
    let answer = poll(
        "the pushed series with its own labels",
        &query("example_prom_value"),
        &|a| a.contains(r#","7"]"#),
    );
    assert!(
        answer.contains(r#""job":"nightly-backup""#) && answer.contains(r#""instance":"box1""#),
        "pushed job/instance labels should be kept:\n{answer}"
    );
    assert!(
        !answer.contains("exported_job"),
        "honor_labels is off:\n{answer}"
    );
    // A series pushed without them gets the scrape's.
    let answer = poll(
        "the unlabelled series",
        &query("example_prom_unlabelled"),
        &|a| a.contains(r#","5"]"#),
    );
    assert!(
        answer.contains(r#""job":"push-gateway""#) && answer.contains(r#""site":"plant-a""#),
        "an unlabelled series gets the scrape's job and target labels:\n{answer}"
    );
    // The rule file is loaded and every rule evaluates without error.
    let answer = poll("6 evaluated rules", "/api/v1/rules", &|a| {
        a.matches(r#""health":"ok""#).count() == 6
    });
    for alert in [
        "PushGatewayDown",
        "PushGatewayRejectingPushes",
        "PushGatewayCacheTooSmall",
        "PushGatewayRefusingConnections",
        "PushGatewayNotForwarding",
        "PushGatewayForwardingFailures",
    ] {
        assert!(answer.contains(alert), "{alert} not loaded:\n{answer}");
    }
    // Its receiver refuses every request: the failures rule sees them.
    poll("the forwarding failures alert", "/api/v1/rules", &|a| {
        a.contains(r#""alertname":"PushGatewayForwardingFailures""#)
    });
    drop(prom);
}

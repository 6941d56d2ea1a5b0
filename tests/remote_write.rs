//! Remote write against real receivers started here on loopback: Debian's
//! Prometheus (`--web.enable-remote-write-receiver`) and VictoriaMetrics,
//! queried over their HTTP APIs; a receiver that is down and comes back;
//! small receivers in the test for 4xx, 5xx and one that never answers;
//! and the README's TLS terminator recipe (socat with a certificate made
//! by openssl here).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tools::{LONG_WAIT, Prometheus, http_get, require_tool, url_encode};
use common::{Gateway, TempDir, curl, free_port, value_of};

fn addr(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// A gateway with its own metrics on, writing to `url` every second.
fn gateway(url: &str, extra: &[&str]) -> Gateway {
    gateway_every("1s", url, extra)
}

fn gateway_every(interval: &str, url: &str, extra: &[&str]) -> Gateway {
    let mut args = vec![
        "--remote-write-url",
        url,
        "--remote-write-interval",
        interval,
        "--remote-write-label",
        "box=edge-1",
    ];
    args.extend_from_slice(extra);
    Gateway::start_full(&args)
}

/// A counter of the gateway's own page, 0 when absent.
fn counter(gw: &Gateway, series: &str) -> f64 {
    value_of(&gw.scrape(), series).map_or(0.0, |v| v.parse().unwrap())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG_WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {LONG_WAIT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn push_group(gw: &Gateway) {
    let (status, body) = curl(
        gw,
        &[
            "-X",
            "PUT",
            "--data-binary",
            "@-",
            "http://gw/metrics/job/j/instance/i",
        ],
        Some("# TYPE rw_pushed gauge\nrw_pushed 7\n"),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn prometheus_gets_every_label_and_a_staleness_marker() {
    let prom = Prometheus::start_receiver(addr(free_port()));
    let url = format!("http://{}/api/v1/write", prom.addr());
    let gw = gateway(&url, &[]);
    gw.push("# TTL 3s\nrw_temp{room=\"a b\\\"c\"} 21.5\n");
    push_group(&gw);
    let answer = prom.query_until(
        &gw,
        "rw_temp",
        "the streamed series",
        || {},
        |a| a.contains("21.5"),
    );
    for label in [
        r#""__name__":"rw_temp""#,
        r#""room":"a b\"c""#,
        r#""box":"edge-1""#,
    ] {
        assert!(answer.contains(label), "{label} missing: {answer}");
    }
    let answer = prom.query_until(
        &gw,
        "rw_pushed",
        "the pushed group",
        || {},
        |a| a.contains("\"7\""),
    );
    for label in [r#""job":"j""#, r#""instance":"i""#, r#""box":"edge-1""#] {
        assert!(answer.contains(label), "{label} missing: {answer}");
    }
    prom.query_until(
        &gw,
        "push_time_seconds{job=\"j\"}",
        "the push time",
        || {},
        |a| a.contains("push_time_seconds"),
    );
    prom.query_until(
        &gw,
        "push_gateway_remote_write_requests_total{box=\"edge-1\"}",
        "the gateway's own metrics",
        || {},
        |a| a.contains("requests_total"),
    );
    // The TTL passes: the next request ends the series, well before
    // Prometheus' five-minute lookback would.
    prom.query_until(
        &gw,
        "rw_temp",
        "rw_temp to turn stale",
        || {},
        |a| a.contains(r#""result":[]"#),
    );
    assert!(
        prom.query("rw_pushed").contains("\"7\""),
        "the pushed group went stale too"
    );
    assert!(counter(&gw, "push_gateway_remote_write_samples_total") > 0.0);
    assert!(counter(&gw, "push_gateway_remote_write_bytes_total") > 0.0);
    assert!(
        counter(
            &gw,
            "push_gateway_remote_write_last_success_timestamp_seconds"
        ) > 1e9
    );
}

/// VictoriaMetrics single-node on a free port, killed on drop.
struct Victoria {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Victoria {
    fn start() -> Victoria {
        let bin = require_tool("victoria-metrics");
        let dir = TempDir::new("vm");
        let addr = addr(free_port());
        let log = std::fs::File::create(dir.path().join("vm.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr={addr}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            // Answer queries with what just arrived.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let vm = Victoria {
            child,
            addr,
            _dir: dir,
        };
        wait_for("victoria-metrics to start", || {
            matches!(http_get(addr, "/health"), Ok((200, _)))
        });
        vm
    }

    fn query(&self, promql: &str) -> String {
        let (status, body) = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", url_encode(promql)),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn victoria_metrics_gets_every_label_and_a_staleness_marker() {
    let vm = Victoria::start();
    let url = format!("http://{}/api/v1/write", vm.addr);
    let gw = gateway(&url, &["--remote-write-label", "site=north"]);
    // It flushes what arrived to searchable storage every few seconds.
    gw.push("# TTL 12s\nrw_temp{room=\"a\"} 21.5\n");
    push_group(&gw);
    let mut answer = String::new();
    wait_for("rw_temp in victoria-metrics", || {
        answer = vm.query("rw_temp");
        answer.contains("21.5")
    });
    for label in [r#""room":"a""#, r#""box":"edge-1""#, r#""site":"north""#] {
        assert!(answer.contains(label), "{label} missing: {answer}");
    }
    wait_for("rw_pushed in victoria-metrics", || {
        answer = vm.query("rw_pushed");
        answer.contains(r#""job":"j""#) && answer.contains(r#""instance":"i""#)
    });
    wait_for("rw_temp to turn stale in victoria-metrics", || {
        answer = vm.query("rw_temp");
        answer.contains(r#""result":[]"#)
    });
}

#[test]
fn a_receiver_down_for_a_while_gets_the_current_state_when_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let gw = gateway(&url, &["--ttl", "1h"]);
    gw.push("rw_state 1\n");
    let refused = "push_gateway_remote_write_failures_total{reason=\"connect\"}";
    wait_for("refused connections over several intervals", || {
        counter(&gw, refused) >= 4.0
    });
    gw.push("rw_state 2\n");
    let prom = Prometheus::start_receiver(addr(port));
    prom.query_until(
        &gw,
        "rw_state",
        "the current state",
        || {},
        |a| a.contains("\"2\""),
    );
    // Nothing of the time it was down was queued: it got one sample per
    // accepted request (a retry within an interval may still carry the
    // state of that interval), none for the intervals that failed.
    let answer = prom.query("count_over_time(rw_state[10m])");
    let samples: f64 = answer.rsplit('"').nth(1).unwrap().parse().unwrap();
    let requests = counter(&gw, "push_gateway_remote_write_requests_total");
    assert!(
        samples <= requests,
        "{samples} samples for {requests} requests: {answer}"
    );
    assert!(counter(&gw, "push_gateway_remote_write_retries_total") > 0.0);
}

/// What a test receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A receiver answering every request with `answer`, on its own thread;
/// each request it read goes into the list.
fn answering(answer: &'static str) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    log.lock().unwrap().push(Seen { head, body });
                    if conn.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_4xx_is_dropped_and_not_retried_and_the_request_is_as_specified() {
    let (receiver, seen) =
        answering("HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad request");
    let dir = TempDir::new("rw-auth");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let url = format!("http://{receiver}/api/v1/write");
    let gw = gateway(&url, &["--remote-write-auth-file", token.to_str().unwrap()]);
    gw.push("rw_x 1\n");
    let rejected = "push_gateway_remote_write_failures_total{reason=\"rejected\"}";
    wait_for("three rejected requests", || counter(&gw, rejected) >= 3.0);
    let page = gw.scrape();
    let rejected = value_of(&page, rejected).unwrap().parse::<usize>().unwrap();
    let got = seen.lock().unwrap().clone();
    // One request per interval, each sent once: none retried.
    assert!(
        got.len() <= rejected + 1,
        "{} requests for {rejected} rejections",
        got.len()
    );
    assert_eq!(
        value_of(&page, "push_gateway_remote_write_retries_total").as_deref(),
        Some("0")
    );
    assert_eq!(
        value_of(&page, "push_gateway_remote_write_requests_total").as_deref(),
        Some("0")
    );
    let first = &got[0];
    for header in [
        "POST /api/v1/write HTTP/1.1",
        "Content-Encoding: snappy",
        "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
        "User-Agent: push-gateway/",
        "Authorization: Bearer s3cret",
        &format!("Host: {receiver}"),
    ] {
        assert!(
            first.head.contains(header),
            "{header} missing:\n{}",
            first.head
        );
    }
    // A snappy block (not framed) of a WriteRequest holding rw_x.
    let body = snap::raw::Decoder::new()
        .decompress_vec(&first.body)
        .unwrap();
    assert_eq!(body[0], 0x0a, "not a WriteRequest's first time series");
    assert!(body.windows(4).any(|w| w == b"rw_x"));
    // Kept alive: later requests came on the first connection (the
    // receiver answers with a length, so nothing closes it).
    assert!(got.len() >= 3);
}

#[test]
fn a_5xx_is_retried_with_backoff() {
    let (receiver, seen) = answering(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n",
    );
    let url = format!("http://{receiver}/api/v1/write");
    let gw = gateway_every("10s", &url, &[]);
    wait_for("three retries", || {
        counter(&gw, "push_gateway_remote_write_retries_total") >= 3.0
    });
    // Within one interval: the same request sent again, not a new one.
    assert!(seen.lock().unwrap().len() >= 4);
    assert!(
        counter(
            &gw,
            "push_gateway_remote_write_failures_total{reason=\"server_error\"}"
        ) >= 4.0
    );
}

/// A receiver that accepts connections and never answers.
fn silent() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, done) = (Arc::clone(&accepted), Arc::clone(&stop));
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming() {
            if done.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(conn) = conn {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(conn);
            }
        }
    });
    (addr, accepted, stop)
}

#[test]
fn a_receiver_that_never_answers_does_not_stop_scrapes() {
    let (receiver, accepted, stop) = silent();
    let url = format!("http://{receiver}/api/v1/write");
    let gw = gateway(&url, &[]);
    gw.push("rw_x 1\n");
    wait_for("a request to the silent receiver", || {
        accepted.load(Ordering::SeqCst) >= 1
    });
    // Scrape throughout two timeouts (the interval): every one answered.
    let mut times = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let start = Instant::now();
        let page = gw.scrape();
        times.push(start.elapsed());
        assert!(page.contains("rw_x 1"));
    }
    let timeouts = "push_gateway_remote_write_failures_total{reason=\"timeout\"}";
    wait_for("a timed-out request", || counter(&gw, timeouts) >= 1.0);
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(receiver);
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    eprintln!(
        "scrapes while the receiver never answers: {} scrapes, p50 {:?}, p99 {:?}, max {:?}",
        times.len(),
        p(0.5),
        p(0.99),
        times[times.len() - 1]
    );
}

#[test]
fn https_through_a_local_tls_terminator() {
    let dir = TempDir::new("rw-tls");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = Command::new(require_tool("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req failed");
    let prom = Prometheus::start_receiver(addr(free_port()));
    let socat = require_tool("socat");
    // The HTTPS receiver: TLS in front of Prometheus (as a hosted
    // endpoint would be).
    let https = free_port();
    let server = Command::new(&socat)
        .arg(format!(
            "OPENSSL-LISTEN:{https},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            cert.display(),
            key.display()
        ))
        .arg(format!("TCP:{}", prom.addr()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Killed(server);
    // README's recipe: the local terminator the gateway writes to, which
    // checks the receiver's certificate.
    let local = free_port();
    let terminator = Command::new(&socat)
        .arg(format!("TCP-LISTEN:{local},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!(
            "OPENSSL:localhost:{https},cafile={}",
            cert.display()
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _terminator = Killed(terminator);
    let gw = gateway(&format!("http://127.0.0.1:{local}/api/v1/write"), &[]);
    gw.push("rw_tls 3\n");
    let answer = prom.query_until(
        &gw,
        "rw_tls",
        "rw_tls through TLS",
        || {},
        |a| a.contains("\"3\""),
    );
    assert!(answer.contains(r#""box":"edge-1""#), "{answer}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! Long runs: memory must not grow over a month of pushing and scraping.
//!
//! One workload drives the gateway through its sockets: streamed lines,
//! HTTP pushes (`PUT`, keep-alive, small bodies) on the push socket,
//! scrapes, and connections that come and go. It runs once to warm up,
//! then many times more; what the gateway holds after the warm-up and after
//! the whole run must be the same:
//!
//! * the heap, counted by a global allocator around the gateway run
//!   in-process (as in `tests/heap.rs`): exactly equal;
//! * the resident memory (`VmRSS`) of the real binary: within
//!   [`RSS_TOLERANCE_KB`].
//!
//! The full run is 1,000,000 stream lines, 100,000 HTTP pushes, 10,000
//! scrapes and 1,000 connect/disconnect cycles after the warm-up: about
//! 30 s in a debug build (10 s in release) on a 2-core x86_64 machine, and
//! far longer under qemu-user (`make cross-test`). So the full run is
//! `#[ignore]`d here and run in release by `make long-run` (heap and RSS)
//! and `make rss-native` (RSS of the static x86_64 musl binary); plain
//! `cargo test` runs a tenth of it (a few seconds).
//!
//! Environment: `PUSH_GATEWAY_LONG_RUN_BIN` names the binary whose RSS is
//! measured (default: this build's `push-gateway`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::{TempDir, free_port};
use push_gateway::config::Config;

// ------------------------------------------------------------- allocator

/// Counters per in-process gateway, so that tests may run side by side.
const SLOTS: usize = 4;

struct Counting;

thread_local! {
    /// Which slot this thread's allocations count in; 0 for none.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

static LIVE_BYTES: [AtomicIsize; SLOTS] = [const { AtomicIsize::new(0) }; SLOTS];
static PEAK_BYTES: [AtomicIsize; SLOTS] = [const { AtomicIsize::new(0) }; SLOTS];

fn count(delta: isize) {
    let slot = SLOT.try_with(Cell::get).unwrap_or(0);
    if slot != 0 {
        let live = LIVE_BYTES[slot].fetch_add(delta, Ordering::SeqCst) + delta;
        PEAK_BYTES[slot].fetch_max(live, Ordering::SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts, without allocating.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// -------------------------------------------------------------- workload

/// How much one round of the workload does.
#[derive(Clone, Copy)]
struct Round {
    /// Stream lines, half on a connection kept open for the whole run and
    /// half on a fresh connection per round.
    lines: usize,
    /// HTTP pushes on the push socket, keep-alive; every 100th on a fresh
    /// connection with `Connection: close`, every 50th a `DELETE`.
    http_pushes: usize,
    /// `GET /metrics` over TCP, keep-alive; every 10th on a fresh
    /// connection.
    scrapes: usize,
    /// Connections opened and dropped: bare, or with a partial line or
    /// request, on either listener.
    cycles: usize,
}

/// A hundredth of the full run. The warm-up is one such round.
const ROUND: Round = Round {
    lines: 10_000,
    http_pushes: 1_000,
    scrapes: 100,
    cycles: 10,
};

/// Rounds after the warm-up: the full run, and what plain `cargo test` does.
const FULL_ROUNDS: usize = 100;
const SHORT_ROUNDS: usize = 10;

/// Most that `VmRSS` after the run may exceed `VmRSS` after the warm-up.
const RSS_TOLERANCE_KB: u64 = 64;

/// A read or write that takes longer fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the gateway under test listens.
struct Target {
    socket: PathBuf,
    addr: SocketAddr,
}

/// Connections the workload keeps open for the whole run, as long-lived
/// pushers and Prometheus do.
struct Clients {
    stream: UnixStream,
    /// Stream lines sent on `stream` so far (the gateway numbers them).
    stream_lines: usize,
    http: HttpClient,
    scraper: HttpClient,
}

impl Clients {
    fn connect(target: &Target) -> Clients {
        let stream = UnixStream::connect(&target.socket).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Clients {
            stream,
            stream_lines: 0,
            http: HttpClient::unix(&target.socket),
            scraper: HttpClient::tcp(target.addr),
        }
    }
}

/// One HTTP/1.1 connection, reading each response by its Content-Length.
struct HttpClient {
    conn: Box<dyn ReadWrite>,
    buf: Vec<u8>,
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

impl HttpClient {
    fn unix(socket: &Path) -> HttpClient {
        let s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        HttpClient {
            conn: Box::new(s),
            buf: Vec::new(),
        }
    }

    fn tcp(addr: SocketAddr) -> HttpClient {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        HttpClient {
            conn: Box::new(s),
            buf: Vec::new(),
        }
    }

    /// Sends `request`, returns the status and the body of the response.
    fn call(&mut self, request: &[u8]) -> (u16, Vec<u8>) {
        self.conn.write_all(request).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.conn.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before a response head");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while self.buf.len() < head_end + length {
            let n = self.conn.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed inside a response body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        (status, body)
    }
}

fn put_request(path: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: text/plain; version=0.0.4\r\n\
         Content-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// Lines `first..first + n` of the stream: counters and gauges over many
/// more series than the default budget holds, so the cache evicts all the
/// time, with HELP and TYPE every 500 lines.
fn stream_lines(first: usize, n: usize) -> String {
    let mut text = String::with_capacity(n * 64);
    for i in first..first + n {
        if i.is_multiple_of(500) {
            text.push_str(
                "# HELP long_stream_total Lines streamed by the long run.\n\
                 # TYPE long_stream_total counter\n# TYPE long_level gauge\n",
            );
        }
        let series = i % 1500;
        if i.is_multiple_of(3) {
            text.push_str(&format!(
                "long_level{{sensor=\"s{}\",unit=\"celsius\"}} {}.{}\n",
                series % 200,
                i % 90,
                i % 10
            ));
        } else {
            text.push_str(&format!(
                "long_stream_total{{pusher=\"p{}\",series=\"{series}\"}} {i}\n",
                series % 32
            ));
        }
    }
    text
}

/// One round of every kind of traffic; returns when the gateway has
/// answered or read all of it.
fn round(target: &Target, clients: &mut Clients, round: Round, n: usize) {
    let first = n * round.lines;
    let kept = round.lines / 2;

    // Half of the lines on the long-lived stream connection, then a line the
    // gateway rejects: its error reply shows that everything before it was
    // applied.
    let mut text = stream_lines(first, kept);
    text.push_str("long_barrier 1 2\n");
    clients.stream.write_all(text.as_bytes()).unwrap();
    clients.stream_lines += text.lines().count();
    let expected = format!("error: line {}:", clients.stream_lines);
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n") {
        let n = clients.stream.read(&mut byte).unwrap();
        assert!(n > 0, "stream connection closed");
        reply.push(byte[0]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with(&expected),
        "{reply:?}, expected {expected}"
    );

    // The other half on a connection that writes once and closes.
    let mut s = UnixStream::connect(&target.socket).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(stream_lines(first + kept, round.lines - kept).as_bytes())
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "", "stream push rejected");

    for i in 0..round.http_pushes {
        let k = n * round.http_pushes + i;
        let path = format!("/metrics/job/long/instance/i{}", k % 40);
        if k % 50 == 49 {
            let request = format!("DELETE {path} HTTP/1.1\r\nHost: gateway\r\n\r\n");
            let (status, _) = clients.http.call(request.as_bytes());
            assert_eq!(status, 202);
            continue;
        }
        let body = format!(
            "# TYPE long_http_jobs gauge\nlong_http_jobs{{state=\"queued\"}} {}\n\
             long_http_jobs{{state=\"done\"}} {k}\n",
            k % 7
        );
        let (status, body) = if k.is_multiple_of(100) {
            HttpClient::unix(&target.socket).call(&put_request(&path, &body, true))
        } else {
            clients.http.call(&put_request(&path, &body, false))
        };
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    for i in 0..round.scrapes {
        let (status, page) = if i.is_multiple_of(10) {
            HttpClient::tcp(target.addr)
                .call(b"GET /metrics HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        } else {
            clients
                .scraper
                .call(b"GET /metrics HTTP/1.1\r\nHost: gateway\r\n\r\n")
        };
        assert_eq!(status, 200);
        assert!(
            page.windows(5).any(|w| w == b"long_"),
            "page without any pushed series"
        );
    }

    for i in 0..round.cycles {
        match i % 4 {
            0 => drop(UnixStream::connect(&target.socket).unwrap()),
            1 => drop(TcpStream::connect(target.addr).unwrap()),
            2 => {
                let mut s = UnixStream::connect(&target.socket).unwrap();
                let _ = s.write_all(b"long_cut{half=\"a line");
            }
            _ => {
                let mut s = TcpStream::connect(target.addr).unwrap();
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gat");
            }
        }
    }
}

/// Runs the warm-up round, calls `warm`, runs `rounds` more, calls `after`.
/// The long-lived connections of each part are closed before the call, so
/// that both figures are of the same state: no client connected. (A
/// connection's own buffers are bounded, but they grow within their bounds
/// as counter values get longer, and are freed when it closes.)
fn run_workload(target: &Target, rounds: usize, warm: impl FnOnce(), after: impl FnOnce()) {
    let started = Instant::now();
    let mut clients = Clients::connect(target);
    round(target, &mut clients, ROUND, 0);
    drop(clients);
    warm();
    let warmed = Instant::now();
    let mut clients = Clients::connect(target);
    for n in 1..=rounds {
        round(target, &mut clients, ROUND, n);
    }
    drop(clients);
    let secs = warmed.elapsed().as_secs_f64();
    after();
    eprintln!(
        "long run: warm-up {:.1} s; then {} lines, {} HTTP pushes, {} scrapes, \
         {} connect/disconnect cycles in {secs:.1} s",
        (warmed - started).as_secs_f64(),
        rounds * ROUND.lines,
        rounds * ROUND.http_pushes,
        rounds * ROUND.scrapes,
        rounds * ROUND.cycles,
    );
}

// ---------------------------------------------------------- heap, in-process

/// Waits until the gateway's heap stops moving (closed connections freed)
/// and returns it.
fn settled_heap(slot: usize) -> isize {
    let mut last = LIVE_BYTES[slot].load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = LIVE_BYTES[slot].load(Ordering::SeqCst);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

fn heap_stays_flat(slot: usize, rounds: usize) {
    let dir = TempDir::new("long-heap");
    let socket = dir.path().join("push.sock");
    let config = Config::with_defaults(socket.clone());
    let push_listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    push_listener.set_nonblocking(true).unwrap();
    let scrape_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    scrape_listener.set_nonblocking(true).unwrap();
    let addr = scrape_listener.local_addr().unwrap();
    let cache_bytes = config.cache_bytes;
    let budgets = (config.max_push_connections, config.max_scrape_connections);
    std::thread::spawn(move || {
        SLOT.with(|s| s.set(slot));
        let _ = push_gateway::event_loop::run(
            mio::net::UnixListener::from_std(push_listener),
            mio::net::TcpListener::from_std(scrape_listener),
            &config,
        );
    });
    let target = Target { socket, addr };
    let warm = Cell::new(0);
    let after = Cell::new(0);
    run_workload(
        &target,
        rounds,
        || warm.set(settled_heap(slot)),
        || after.set(settled_heap(slot)),
    );
    let (warm, after) = (warm.get(), after.get());
    let peak = PEAK_BYTES[slot].load(Ordering::SeqCst) as usize;
    let bound =
        push_gateway::limits::worst_case_heap_bytes(cache_bytes, budgets.0, budgets.1, cache_bytes);
    eprintln!("long run heap: after warm-up {warm} B, after the run {after} B, peak {peak} B");
    assert_eq!(
        after, warm,
        "heap after warm-up {warm} B, after the run {after} B"
    );
    assert!(
        peak <= bound,
        "peak {peak} B above the documented bound {bound} B"
    );
}

#[test]
fn heap_is_the_same_after_warm_up_and_after_a_tenth_of_the_long_run() {
    heap_stays_flat(1, SHORT_ROUNDS);
}

#[test]
#[ignore = "1,000,000 lines: 30 s in a debug build, minutes under qemu; `make long-run` runs it in release"]
fn heap_is_the_same_after_warm_up_and_after_the_long_run() {
    heap_stays_flat(2, FULL_ROUNDS);
}

// ------------------------------------------------------------ RSS, real binary

/// `VmRSS` and `VmHWM` of a process, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Waits until the gateway's RSS stops moving and returns (VmRSS, VmHWM).
fn settled_rss(pid: u32) -> (u64, u64) {
    let mut last = rss_kb(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = rss_kb(pid);
        if now.0 == last.0 || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
#[ignore = "the full run against the real binary: `make long-run` or `make rss-native` (static musl build)"]
fn rss_is_the_same_after_warm_up_and_after_the_long_run() {
    if std::env::var_os("PUSH_GATEWAY_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        eprintln!("skipped: under a cross runner /proc shows the emulator's memory");
        return;
    }
    let bin = std::env::var_os("PUSH_GATEWAY_LONG_RUN_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_push-gateway")),
        PathBuf::from,
    );
    let dir = TempDir::new("long-rss");
    let socket = dir.path().join("push.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = std::process::Command::new(&bin)
        .arg("--socket")
        .arg(&socket)
        .arg("--listen")
        .arg(addr.to_string())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let deadline = Instant::now() + common::WAIT;
    while UnixStream::connect(&socket).is_err() || TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the gateway exited");
        assert!(Instant::now() < deadline, "the gateway did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id();
    let idle = rss_kb(pid).0;
    let target = Target { socket, addr };
    let warm = Cell::new((0, 0));
    let after = Cell::new((0, 0));
    run_workload(
        &target,
        FULL_ROUNDS,
        || warm.set(settled_rss(pid)),
        || after.set(settled_rss(pid)),
    );
    let _ = child.kill();
    let _ = child.wait();
    let ((warm, warm_hwm), (after, hwm)) = (warm.get(), after.get());
    eprintln!(
        "long run RSS of {}: idle {idle} kB; after warm-up VmRSS {warm} kB (VmHWM {warm_hwm} kB); \
         after the run VmRSS {after} kB, VmHWM {hwm} kB",
        bin.display()
    );
    assert!(
        after <= warm + RSS_TOLERANCE_KB,
        "VmRSS grew from {warm} kB after warm-up to {after} kB after the run \
         (tolerance {RSS_TOLERANCE_KB} kB)"
    );
}

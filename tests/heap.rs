//! The heap does not grow with pushes: the cache's memory is reserved at
//! start-up, and the whole gateway, run in-process with a counting global
//! allocator, returns to the same heap after any amount of pushing,
//! scraping, churn and bad input. A scrape, once the renderer's buffers
//! are warm, allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use push_gateway::cache::{Cache, Family};
use push_gateway::config::Config;
use push_gateway::exposition::MetricType;
use push_gateway::render::Renderer;
use push_gateway::self_metrics::{self, Stats};

struct Counting;

thread_local! {
    /// Whether this thread's heap is the gateway's (counted globally).
    /// Whose heap this thread's allocations are: a gateway's slot in
    /// `LIVE_BYTES` plus one, or 0 for none.
    static TRACKED: Cell<usize> = const { Cell::new(0) };
    /// Allocations made by this thread while `COUNT_LOCAL` is set.
    static LOCAL_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static COUNT_LOCAL: Cell<bool> = const { Cell::new(false) };
}

/// The gateways the tests run at once, each counted on its own.
const CARRY_GATEWAY: usize = 0;
const LONG_RUN_GATEWAY: usize = 1;
static LIVE_BYTES: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];
static PEAK_BYTES: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];

/// The slot of the gateway running on this thread, if one is.
fn tracked() -> Option<usize> {
    TRACKED.try_with(Cell::get).unwrap_or(0).checked_sub(1)
}

fn count(slot: usize, delta: isize) {
    let live = LIVE_BYTES[slot].fetch_add(delta, Ordering::SeqCst) + delta;
    PEAK_BYTES[slot].fetch_max(live, Ordering::SeqCst);
}

fn count_local() {
    if COUNT_LOCAL.try_with(Cell::get).unwrap_or(false) {
        let _ = LOCAL_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts, without allocating.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_local();
        if let Some(slot) = tracked() {
            count(slot, layout.size() as isize);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(slot) = tracked() {
            count(slot, -(layout.size() as isize));
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_local();
        if let Some(slot) = tracked() {
            count(slot, new_size as isize - layout.size() as isize);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn the_cache_never_allocates_after_start_up() {
    let mut cache = Cache::new(10 * 1024);
    let mut key = Vec::with_capacity(256);
    COUNT_LOCAL.with(|t| t.set(true));
    let before = LOCAL_ALLOCATIONS.with(Cell::get);
    for i in 0..200_000u64 {
        key.clear();
        write!(&mut key, "flood{{n=\"{}\"}}", i % 5000).unwrap();
        let help = if i % 7 == 0 { Some("a flood") } else { None };
        let family = Family {
            name: "flood",
            kind: MetricType::Gauge,
            help,
        };
        cache.set(&family, &key, i as f64, i / 10, 1000).unwrap();
        if i % 1000 == 0 {
            cache.expire(i / 10);
        }
        assert!(cache.used() <= cache.capacity());
    }
    let after = LOCAL_ALLOCATIONS.with(Cell::get);
    COUNT_LOCAL.with(|t| t.set(false));
    assert_eq!(after, before, "the cache allocated while storing");
    assert!(cache.stats.evicted_budget > 0);
}

#[test]
fn scrapes_allocate_nothing_once_warm() {
    let mut cache = Cache::new(64 * 1024);
    let family = Family {
        name: "warm",
        kind: MetricType::Gauge,
        help: Some("Warm."),
    };
    let key = |n: u64| format!("warm{{n=\"{n}\"}}").into_bytes();
    let keys: Vec<Vec<u8>> = (0..100).map(key).collect();
    for (n, k) in keys.iter().enumerate() {
        cache.set(&family, k, n as f64, 0, 1000).unwrap();
    }
    let mut renderer = Renderer::new(&cache);
    let mut stats = Stats::default();
    let held = renderer.page(&cache);
    let _ = renderer.tail(|out| self_metrics::write(out, &stats, &cache));
    drop(held);
    COUNT_LOCAL.with(|t| t.set(true));
    let before = LOCAL_ALLOCATIONS.with(Cell::get);
    for i in 0..1000u64 {
        if i % 10 == 0 {
            let k = &keys[(i / 10) as usize % keys.len()];
            cache.set(&family, k, i as f64 / 3.0, 0, 1000).unwrap();
        }
        stats.scrapes += 1;
        let page = renderer.page(&cache);
        let tail = renderer.tail(|out| self_metrics::write(out, &stats, &cache));
        assert!(!page.is_empty() && !tail.is_empty());
    }
    let after = LOCAL_ALLOCATIONS.with(Cell::get);
    COUNT_LOCAL.with(|t| t.set(false));
    assert_eq!(after, before, "a scrape allocated");
}

fn push(socket: &std::path::Path, text: &[u8]) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(text).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    page
}

/// A mixed workload: new and rewritten series past the budget, bad and
/// over-long lines, scrapes, and connections that come and go.
fn workload(socket: &std::path::Path, addr: std::net::SocketAddr, round: u32) {
    for batch in 0..20 {
        let mut text = String::from("# HELP churn_total Churn.\n# TYPE churn_total counter\n");
        for n in 0..100 {
            text.push_str(&format!(
                "churn_total{{round=\"{round}\",batch=\"{batch}\",n=\"{n}\"}} {n}\n"
            ));
        }
        text.push_str("bad line\nts 1 2\n");
        text.push_str(&"y".repeat(10_000));
        text.push_str("\nlast 1");
        push(socket, text.as_bytes());
        scrape(addr);
    }
    for _ in 0..20 {
        drop(UnixStream::connect(socket).unwrap());
        drop(std::net::TcpStream::connect(addr).unwrap());
    }
}

/// Waits until the server thread's heap stops moving and returns it.
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

/// Starts the gateway with the default flags on a thread whose heap is
/// counted in `slot`; returns its socket, scrape address and configuration.
fn start_gateway(slot: usize, name: &str) -> (std::path::PathBuf, std::net::SocketAddr, Config) {
    let dir = std::env::temp_dir().join(format!("pg-heap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("push.sock");
    let config = Config::with_defaults(socket.clone());
    let push_listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    push_listener.set_nonblocking(true).unwrap();
    let scrape_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    scrape_listener.set_nonblocking(true).unwrap();
    let addr = scrape_listener.local_addr().unwrap();
    let served = config.clone();
    std::thread::spawn(move || {
        TRACKED.with(|t| t.set(slot + 1));
        let _ = push_gateway::event_loop::run(
            mio::net::UnixListener::from_std(push_listener),
            mio::net::TcpListener::from_std(scrape_listener),
            &served,
        );
    });
    (socket, addr, config)
}

#[test]
fn a_stream_connection_waiting_for_a_newline_holds_only_its_partial_line() {
    let (socket, addr, config) = start_gateway(CARRY_GATEWAY, "carry");
    let pushers = config.max_push_connections - 8;
    // The family's first line, so that its name is known before counting.
    push(&socket, b"carried{n=\"warm\"} 0\n");
    let mut conns: Vec<UnixStream> = (0..pushers)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    scrape(addr);
    let before = settled_heap(CARRY_GATEWAY);
    // A line each, then the start of another: each connection now waits
    // for the rest of a line.
    for (n, c) in conns.iter_mut().enumerate() {
        write!(c, "carried{{n=\"{n}\"}} 1\ncarried{{n=\"{n}\"}} 2").unwrap();
    }
    let waiting = settled_heap(CARRY_GATEWAY);
    let per_connection = (waiting - before) / pushers as isize;
    // A buffer for a whole line (4 KiB) each, reserved on the first
    // partial line, was the transient peak of many quiet pushers.
    assert!(
        per_connection <= 128,
        "{per_connection} B held per connection for a 20-byte partial line"
    );
    for c in &mut conns {
        c.write_all(b"\n").unwrap();
    }
    drop(conns);
    // The lines complete in whatever order the gateway reads them.
    let last = format!("carried{{n=\"{}\"}} 2", pushers - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = scrape(addr);
    while !page.contains(&last) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        page = scrape(addr);
    }
    assert!(page.contains(&last), "{page}");
}

#[test]
fn the_gateway_heap_is_the_same_after_warm_up_and_after_a_long_run() {
    let (socket, addr, config) = start_gateway(LONG_RUN_GATEWAY, "long");
    let cache_bytes = config.cache_bytes as isize;
    let budgets = (config.max_push_connections, config.max_scrape_connections);
    workload(&socket, addr, 0);
    let warm = settled_heap(LONG_RUN_GATEWAY);
    // Start-up reserved the cache; nothing else of its size or more.
    assert!(warm >= cache_bytes, "{warm}");
    assert!(warm < cache_bytes + 256 * 1024, "{warm}");
    for round in 1..=5 {
        workload(&socket, addr, round);
    }
    let after = settled_heap(LONG_RUN_GATEWAY);
    assert_eq!(
        after, warm,
        "heap after warm-up {warm} B, after the run {after} B"
    );
    // The documented worst case bounds every moment of the run.
    let peak = PEAK_BYTES[LONG_RUN_GATEWAY].load(Ordering::SeqCst) as usize;
    let bound = push_gateway::limits::worst_case_heap_bytes(
        cache_bytes as usize,
        budgets.0,
        budgets.1,
        cache_bytes as usize,
    );
    assert!(
        peak <= bound,
        "peak {peak} B above the documented bound {bound} B"
    );
    let _ = std::fs::remove_dir_all(socket.parent().unwrap());
}

//! Arbitrary bytes through the push socket's HTTP path, in process:
//! `http::parse_request`, the body (Content-Length or
//! `http::decode_chunked`, with the body limit), `push::handle` on a small
//! cache that already holds streamed series and a pushed group, then the
//! page.
//!
//! Input: one byte choosing the cache budget (1 KiB to 17 KiB; the body
//! limit is the budget, as `--max-body-bytes` defaults to), one byte
//! choosing where a chunked body is split between two reads, then the
//! request.
//!
//! Checks:
//! * the request head: within `REQUEST_HEAD_MAX_BYTES` and the input, and
//!   parsing the head alone gives the same request; "need more" only
//!   below the head limit;
//! * a chunked body decodes to at most the limit, and to the same bytes
//!   whether it arrives in one read or two;
//! * after the push: `cache.check_invariants()`, `used() <= capacity()`,
//!   the page is valid exposition text (`check.rs`), and a fresh renderer
//!   writes the same page as the one that rendered before;
//! * a refused push changes nothing on the page but the group's
//!   `push_failure_time_seconds`;
//! * a successful push, repeated at the same instant, succeeds again and
//!   leaves the same page (counting paths, which add, excepted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_gateway::cache::Cache;
use push_gateway::http::{self, BodyFraming, Chunked, Method};
use push_gateway::ingest::{self, StreamContext};
use push_gateway::limits::REQUEST_HEAD_MAX_BYTES;
use push_gateway::push::{self, PushMethod, Scratch};
use push_gateway::render::{PUSH_FAILURE_TIME, Renderer};

const NOW: u64 = 5_000;
const TTL_MS: u64 = 60_000;
const UNIX_NOW: f64 = 1_700_000_000.25;

/// What the cache holds before the request: streamed series of a few
/// types and one pushed group, so that pushes meet owners, types and a
/// full budget.
const STREAMED: &str = "# TYPE up gauge\n\
    up{instance=\"\",job=\"streamed\"} 1\n\
    # HELP rpc_seconds RPC latency.\n\
    # TYPE rpc_seconds histogram\n\
    rpc_seconds_bucket{le=\"0.5\"} 2\n\
    rpc_seconds_bucket{le=\"+Inf\"} 3\n\
    rpc_seconds_sum 1.5\n\
    rpc_seconds_count 3\n";
const GROUP_PATH: &str = "/metrics/job/a/instance/i";
const GROUP_BODY: &[u8] = b"# TYPE jobs_total counter\njobs_total{q=\"x\"} 7\nlast 1.5e9\n";

/// Decodes a chunked body as a connection would, in one read or split
/// into two at `split`: `Some((body, bytes consumed))` once complete.
fn decode(input: &[u8], limit: usize, split: Option<usize>) -> Option<(Vec<u8>, usize)> {
    let mut state = Chunked::Size;
    let mut out = Vec::new();
    let first = split.unwrap_or(input.len()).min(input.len());
    let used = http::decode_chunked(&mut state, &input[..first], &mut out, limit);
    assert!(out.len() <= limit, "chunked body past its limit");
    let used = used.ok()?;
    assert!(used <= first);
    let mut consumed = used;
    if state != Chunked::Done && first < input.len() {
        let pending = &input[used..];
        let more = http::decode_chunked(&mut state, pending, &mut out, limit);
        assert!(out.len() <= limit, "chunked body past its limit");
        let more = more.ok()?;
        assert!(more <= pending.len());
        consumed += more;
    }
    (state == Chunked::Done).then_some((out, consumed))
}

fn page(renderer: &mut Renderer, cache: &Cache) -> Vec<u8> {
    renderer.render(cache, |_| {}).to_vec()
}

fn without_failure_times(page: &[u8]) -> Vec<&[u8]> {
    page.split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(PUSH_FAILURE_TIME.as_bytes()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let budget = 1024 + usize::from(data[0]) * 64;
    let split = usize::from(data[1]);
    let input = &data[2..];
    let _ = http::looks_like_http(input);

    let req = match http::parse_request(input) {
        Ok(Some(req)) => req,
        Ok(None) => {
            assert!(
                input.len() < REQUEST_HEAD_MAX_BYTES,
                "need more past the head limit"
            );
            return;
        }
        Err(e) => {
            // 4xx, or 501 (Transfer-Encoding) and 505 (version).
            assert!(matches!(e.status(), 400..=499 | 501 | 505), "{e:?}");
            let _ = e.to_string();
            return;
        }
    };
    assert!(req.head_len <= input.len() && req.head_len <= REQUEST_HEAD_MAX_BYTES);
    let head = http::parse_request(&input[..req.head_len])
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(head.method, req.method);
    assert_eq!((head.path, head.query), (req.path, req.query));
    assert_eq!((head.keep_alive, head.body), (req.keep_alive, req.body));
    assert_eq!(
        (head.expect_continue, head.protobuf, head.head_len),
        (req.expect_continue, req.protobuf, req.head_len)
    );

    let rest = &input[req.head_len..];
    let limit = budget;
    let body = match req.body {
        BodyFraming::None => Vec::new(),
        BodyFraming::Length(n) => {
            if n > limit as u64 || (rest.len() as u64) < n {
                return;
            }
            rest[..n as usize].to_vec()
        }
        BodyFraming::Chunked => {
            let whole = decode(rest, limit, None);
            let parts = decode(rest, limit, Some(split % (rest.len() + 1)));
            if let (Some(a), Some(b)) = (&whole, &parts) {
                assert_eq!(
                    a, b,
                    "a chunked body split in two reads decodes differently"
                );
            }
            match whole {
                Some((body, _)) => body,
                None => return,
            }
        }
    };
    let method = match req.method {
        Method::Put => PushMethod::Put,
        Method::Post => PushMethod::Post,
        Method::Delete => PushMethod::Delete,
        _ => return,
    };

    let mut cache = Cache::new(budget);
    let mut ctx = StreamContext::default();
    let mut key = ingest::key_buffer();
    for line in STREAMED.lines() {
        let _ = ingest::apply_line(&mut cache, &mut ctx, line.as_bytes(), 0, TTL_MS, &mut key);
    }
    let mut scratch = Scratch::default();
    let _ = push::handle(
        &mut cache,
        &mut scratch,
        PushMethod::Put,
        GROUP_PATH,
        GROUP_BODY,
        false,
        0,
        TTL_MS,
        UNIX_NOW - 10.0,
    );
    cache.check_invariants();
    let mut renderer = Renderer::new(&cache);
    let before = page(&mut renderer, &cache);

    let call = |cache: &mut Cache, scratch: &mut Scratch| {
        push::handle(
            cache,
            scratch,
            method,
            req.path,
            &body,
            req.protobuf,
            NOW,
            TTL_MS,
            UNIX_NOW,
        )
    };
    let groups_before = cache.group_count();
    let result = call(&mut cache, &mut scratch);
    cache.check_invariants();
    assert!(cache.used() <= cache.capacity());
    let after = page(&mut renderer, &cache);
    fuzz_check::assert_valid_page(&after);
    assert_eq!(
        page(&mut Renderer::new(&cache), &cache),
        after,
        "the renderer's kept order is stale"
    );
    match result {
        Err(e) => {
            assert!(matches!(e.status(), 400..=499), "{e:?}");
            let _ = (e.reason(), e.to_string());
            if cache.group_count() > groups_before {
                // As the Pushgateway does, a body that parsed but failed
                // its checks is recorded in a group created for it
                // (`push_time_seconds` 0), whose record may evict others.
                assert!(e.is_validation(req.protobuf), "{e:?} created a group");
                return;
            }
            assert_eq!(
                without_failure_times(&before),
                without_failure_times(&after),
                "a refused push ({e}) changed the page"
            );
        }
        Ok(status) => {
            assert!(matches!(status, 200 | 202), "{status}");
            if req.path.starts_with("/counter/") {
                return;
            }
            let again = call(&mut cache, &mut scratch);
            cache.check_invariants();
            assert!(
                again.is_ok(),
                "the same {method:?} that succeeded failed when repeated: {again:?}"
            );
            assert_eq!(
                page(&mut renderer, &cache),
                after,
                "repeating the same {method:?} changed the page"
            );
        }
    }
});

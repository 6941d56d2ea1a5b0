//! HTTP routing: what a parsed request head means and what it is answered.
//!
//! [`crate::conn`] frames requests and bodies; this module decides, for a
//! request head, whether it is a push (whose body the connection then
//! reads, and hands to [`finish_push`]) or a read answered at once (the
//! page, the index, health checks), and writes every response.
//!
//! # Memory
//! Nothing of its own: responses are written into the connection's outbox
//! (static texts and one-line error messages); the page and the gateway's
//! own metrics after it are shared with the renderer, not copied.

use crate::api;
use crate::auth;
use crate::conn::{Ctx, Outbox};
use crate::http::{self, BodyFraming, Method, Request};
use crate::ingest;
use crate::push::{self, PushMethod};
use crate::self_metrics;

/// A push whose head was accepted: what its body's push needs besides the
/// path and the body.
pub struct PushHead {
    pub method: PushMethod,
    pub protobuf: bool,
    pub encoding: http::Encoding,
    pub keep_alive: bool,
    pub ttl_ms: u64,
    pub drain: bool,
}

/// What the connection does after [`route`].
pub enum Routed {
    /// A push: read its body, then call [`finish_push`].
    Push(PushHead),
    /// Answered; `close` once the response is sent.
    Answered { close: bool },
}

/// What to answer: a static text, the page or a JSON API document.
enum Body {
    Text(&'static str),
    Page,
    ApiStatus,
    ApiMetrics,
}

const INDEX_HTML: &str = "<!doctype html>\n<html><head><title>push-gateway</title></head>\
<body><h1>push-gateway</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

const JSON: &str = "application/json";

const READ_ONLY: &str =
    "method not allowed: this port is read-only (GET and HEAD); push through the Unix socket\n";

/// Routes a request head: a push starts reading its body, anything else
/// is answered into `out`. `may_push` is false on the read-only TCP port.
pub fn route(out: &mut Outbox, req: &Request, may_push: bool, ctx: &mut Ctx) -> Routed {
    if may_push && push::is_push_path(req.path) {
        return push_head(out, req, ctx);
    }
    // Reads never carry a body worth reading: answer, and close if the
    // client sent one.
    let keep_alive = req.keep_alive && req.body == BodyFraming::None;
    // Before routing: without the credential, nothing is served (and
    // nothing drained) and nothing is learnt of the paths.
    if !may_push
        && let Some(a) = ctx.scrape_auth
        && a.refuses(req.path, req.authorization)
    {
        auth::write_unauthorized(&mut out.bytes, a, req.method == Method::Head, keep_alive);
        if ctx.warn.allow(ctx.now) {
            log::warn!(
                "refused a TCP request for {} without the scrape credential (401)",
                req.path
            );
        }
        return Routed::Answered { close: !keep_alive };
    }
    let (status, body, allow) = read_route(req, may_push);
    respond(out, req, status, body, allow, keep_alive, ctx);
    Routed::Answered { close: !keep_alive }
}

/// The head of a request to a push path: its method and push options.
fn push_head(out: &mut Outbox, req: &Request, ctx: &mut Ctx) -> Routed {
    let method = match req.method {
        Method::Put => PushMethod::Put,
        Method::Post => PushMethod::Post,
        Method::Patch => PushMethod::Patch,
        Method::Delete => PushMethod::Delete,
        other => {
            // A read of a push path is no push; any other method is one
            // that was refused.
            if !matches!(other, Method::Get | Method::Head) {
                ctx.stats.push_rejected("http");
            }
            let msg = "method not allowed: push with PUT, POST or PATCH, delete with DELETE\n";
            let allow = Some("PUT, POST, PATCH, DELETE");
            respond_text(out, req.method, 405, msg, false, allow);
            return Routed::Answered { close: true };
        }
    };
    let ttl_ms = match req.push_ttl {
        None => ctx.stream.ttl_ms,
        Some(text) => match ingest::parse_ttl(text, ctx.stream.max_ttl_ms) {
            Some(ms) => ms,
            None => {
                ctx.stats.push_rejected("ttl");
                let msg = format!(
                    "invalid Push-TTL {text:?}: use a duration with a unit, ms, s, m or h, from 1ms up to the limit in force, --max-ttl {}",
                    crate::config::format_duration(std::time::Duration::from_millis(
                        ctx.stream.max_ttl_ms
                    ))
                );
                fail(out, 400, &msg);
                return Routed::Answered { close: true };
            }
        },
    };
    let drain = match req.push_drain {
        None => ctx.stream.drain,
        Some(v) => v.eq_ignore_ascii_case("true") || v == "1",
    };
    Routed::Push(PushHead {
        method,
        protobuf: req.protobuf,
        encoding: req.encoding,
        keep_alive: req.keep_alive,
        ttl_ms,
        drain,
    })
}

/// Runs a push whose body has been read whole, and answers it.
pub fn finish_push(
    out: &mut Outbox,
    ctx: &mut Ctx,
    head: &PushHead,
    path: &str,
    query: &str,
    body: &[u8],
) {
    let req = push::Request {
        method: head.method,
        path,
        query,
        protobuf: head.protobuf,
        ttl_ms: head.ttl_ms,
        drain: head.drain,
    };
    let result = push::handle_request(ctx.cache, ctx.push, &req, body, ctx.now, ctx.unix_now);
    match result {
        Ok(status) => {
            if head.method == PushMethod::Delete || status == 202 {
                ctx.stats.deletes += 1;
            } else {
                ctx.stats.pushes_accepted += 1;
            }
            respond_text(out, Method::Put, status, "", head.keep_alive, None);
        }
        Err(e) => {
            ctx.stats.push_rejected(e.reason());
            if ctx.warn.allow(ctx.now) {
                log::warn!("push to {path}{query} rejected: {e}");
            }
            let msg = format!("{e}\n");
            respond_text(
                out,
                Method::Put,
                e.status(),
                &msg,
                head.keep_alive,
                e.allow(),
            );
        }
    }
}

/// Answers an error; the caller closes the connection after it.
pub fn fail(out: &mut Outbox, status: u16, message: &str) {
    let body = format!("{message}\n");
    respond_text(out, Method::Get, status, &body, false, None);
}

/// Writes a plain-text response (no body for HEAD).
fn respond_text(
    out: &mut Outbox,
    method: Method,
    status: u16,
    text: &str,
    keep_alive: bool,
    allow: Option<&str>,
) {
    http::write_head(
        &mut out.bytes,
        status,
        "text/plain; charset=utf-8",
        text.len(),
        keep_alive,
        allow,
    );
    if method != Method::Head {
        out.bytes.extend_from_slice(text.as_bytes());
    }
}

/// The answer to a request that is not a push.
fn read_route(req: &Request, may_push: bool) -> (u16, Body, Option<&'static str>) {
    let read_only = matches!(req.method, Method::Get | Method::Head);
    if !may_push && (push::is_push_path(req.path) || req.path.starts_with("/metrics/")) {
        return (405, Body::Text(READ_ONLY), Some("GET, HEAD"));
    }
    let page = match req.path {
        "/metrics" => Body::Page,
        "/" => Body::Text(INDEX_HTML),
        "/-/healthy" | "/-/ready" => Body::Text("OK\n"),
        "/api/v1/status" => Body::ApiStatus,
        "/api/v1/metrics" => Body::ApiMetrics,
        _ => {
            return (
                404,
                Body::Text("not found: the metrics are at /metrics\n"),
                None,
            );
        }
    };
    if read_only {
        return (200, page, None);
    }
    let text = if may_push {
        "method not allowed: this path answers GET and HEAD\n"
    } else {
        READ_ONLY
    };
    (405, Body::Text(text), Some("GET, HEAD"))
}

fn respond(
    out: &mut Outbox,
    req: &Request,
    status: u16,
    body: Body,
    allow: Option<&str>,
    keep_alive: bool,
    ctx: &mut Ctx,
) {
    let head_only = req.method == Method::Head;
    match body {
        Body::Page => {
            ctx.stats.scrapes += 1;
            let (cache, stats) = (&*ctx.cache, &*ctx.stats);
            let page = ctx.renderer.page(cache);
            let tail = ctx.self_metrics.then(|| {
                ctx.renderer
                    .tail(|out| self_metrics::write(out, stats, cache))
            });
            http::write_head(
                &mut out.bytes,
                status,
                http::METRICS_CONTENT_TYPE,
                page.len() + tail.as_ref().map_or(0, |t| t.len()),
                keep_alive,
                allow,
            );
            if !head_only {
                out.tail = tail;
                out.page = Some(page);
                let id = *ctx.next_page;
                if ctx.cache.mark_scraped(ctx.renderer.order(), id) {
                    out.drain_page = id;
                    *ctx.next_page = id.checked_add(1).unwrap_or(1);
                }
            }
        }
        Body::ApiStatus | Body::ApiMetrics => {
            let doc = match body {
                Body::ApiStatus => Ok(ctx.api.status()),
                _ => ctx.api.metrics(ctx.cache),
            };
            match doc {
                Ok(doc) => {
                    http::write_head(&mut out.bytes, status, JSON, doc.len(), keep_alive, allow);
                    if !head_only {
                        out.page = Some(doc);
                    }
                }
                Err(e) => {
                    let text = api::error_document(e);
                    let status = match e {
                        api::ApiError::TooLarge => 500,
                        api::ApiError::Busy => 503,
                    };
                    http::write_head(&mut out.bytes, status, JSON, text.len(), keep_alive, None);
                    if !head_only {
                        out.bytes.extend_from_slice(text.as_bytes());
                    }
                }
            }
        }
        Body::Text(text) => {
            let ctype = if text.starts_with('<') {
                "text/html; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            http::write_head(&mut out.bytes, status, ctype, text.len(), keep_alive, allow);
            if !head_only {
                out.bytes.extend_from_slice(text.as_bytes());
            }
        }
    }
}

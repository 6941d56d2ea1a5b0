//! HTTP/1.x framing: request heads parsed with httparse into a fixed array
//! of [`MAX_HEADERS`], and response heads written into a caller's buffer.
//!
//! Only what the gateway needs: method, path, query, version, keep-alive,
//! body framing (`Content-Length` or chunked) and `Expect: 100-continue`.
//! "Need more bytes" is `Ok(None)`. Memory: none beyond the caller's
//! buffers; a head over [`REQUEST_HEAD_MAX_BYTES`] is an error (431).

use std::fmt;
use std::io::Write as _;

use crate::limits::{MAX_HEADERS, REQUEST_HEAD_MAX_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Patch,
    Other,
}

impl Method {
    fn from_name(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head; the strings borrow from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    /// Path without the query string, still percent-encoded.
    pub path: &'a str,
    pub query: &'a str,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    pub body: BodyFraming,
    pub expect_continue: bool,
    /// Whether `Content-Type` names the delimited protobuf format.
    pub protobuf: bool,
    /// `Push-TTL`: the pushed group's (or counter's) TTL.
    pub push_ttl: Option<&'a str>,
    /// `Push-Drain`: whether the pushed series drain on scrape.
    pub push_drain: Option<&'a str>,
    /// `Authorization`: checked against `--scrape-auth-file` on TCP.
    pub authorization: Option<&'a str>,
    /// Bytes of the head, to advance the read buffer past it.
    pub head_len: usize,
}

/// A request that cannot be served; becomes an error response and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head is over [`REQUEST_HEAD_MAX_BYTES`] or has too many headers.
    HeadTooLarge,
    /// Not HTTP/1.x, or a malformed head.
    Malformed(&'static str),
    /// A body framing the gateway does not support.
    Framing(&'static str),
    /// A body over `--max-body-bytes`.
    BodyTooLarge,
    /// A compressed body (`Content-Encoding`), which the gateway does not
    /// decode.
    Encoding,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::Encoding => 415,
            HttpError::Malformed(_) | HttpError::Framing(_) => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => write!(
                f,
                "request head too large: at most {REQUEST_HEAD_MAX_BYTES} bytes and {MAX_HEADERS} headers; send fewer or shorter headers"
            ),
            HttpError::BodyTooLarge => f.write_str(
                "request body over the limit (--max-body-bytes, by default the cache budget): push less per request",
            ),
            HttpError::Encoding => f.write_str(
                "compressed bodies (Content-Encoding) are not supported: push uncompressed (e.g. without compression='gzip')",
            ),
            HttpError::Malformed(what) | HttpError::Framing(what) => f.write_str(what),
        }
    }
}

/// Parses a request head at the start of `buf`.
///
/// # Errors
/// [`HttpError`] when the head is malformed or over the limits.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request<'_>>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= REQUEST_HEAD_MAX_BYTES {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return Err(HttpError::Malformed(
                "unsupported HTTP version: use HTTP/1.0 or HTTP/1.1",
            ));
        }
        Err(_) => {
            return Err(HttpError::Malformed(
                "malformed HTTP request: check the request line and headers",
            ));
        }
    };
    if head_len > REQUEST_HEAD_MAX_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("malformed HTTP request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut keep_alive = version == 1;
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut protobuf = false;
    let mut push_ttl = None;
    let mut push_drain = None;
    let mut authorization = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = value.parse::<u64>().map_err(|_| {
                HttpError::Framing("invalid Content-Length: send a decimal byte count")
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Framing("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Err(HttpError::Framing(
                    "unsupported Transfer-Encoding: send the body plain or chunked",
                ));
            }
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            if !value.eq_ignore_ascii_case("identity") {
                return Err(HttpError::Encoding);
            }
        } else if h.name.eq_ignore_ascii_case("push-ttl") {
            push_ttl = Some(value);
        } else if h.name.eq_ignore_ascii_case("push-drain") {
            push_drain = Some(value);
        } else if h.name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value);
        } else if h.name.eq_ignore_ascii_case("content-type") {
            protobuf = crate::protobuf::is_protobuf(value);
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let body = match (chunked, length) {
        (true, Some(_)) => {
            return Err(HttpError::Framing(
                "both Content-Length and chunked Transfer-Encoding: send only one",
            ));
        }
        (true, None) => BodyFraming::Chunked,
        (false, Some(0) | None) => BodyFraming::None,
        (false, Some(n)) => BodyFraming::Length(n),
    };
    Ok(Some(Request {
        method: Method::from_name(method),
        path,
        query,
        keep_alive,
        body,
        expect_continue,
        protobuf,
        push_ttl,
        push_drain,
        authorization,
        head_len,
    }))
}

/// Where a chunked body's decoding stands between reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    Done,
}

/// The longest chunk-size or trailer line accepted.
const CHUNK_LINE_MAX_BYTES: usize = 1024;

/// Decodes as much of a chunked body from `input` as is complete, appending
/// data to `out` (never past `limit` bytes). Returns the bytes of `input`
/// consumed; the rest (an incomplete line) must be offered again with more.
///
/// # Errors
/// [`HttpError::BodyTooLarge`] past `limit`; [`HttpError::Framing`] for
/// malformed chunking.
pub fn decode_chunked(
    state: &mut Chunked,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, HttpError> {
    let bad = HttpError::Framing("malformed chunked body: check the chunk sizes and CRLFs");
    let mut at = 0;
    loop {
        let rest = &input[at..];
        match *state {
            Chunked::Done => return Ok(at),
            Chunked::Data(left) => {
                if rest.is_empty() {
                    return Ok(at);
                }
                let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                if out.len() + n > limit {
                    return Err(HttpError::BodyTooLarge);
                }
                out.extend_from_slice(&rest[..n]);
                at += n;
                let left = left - n as u64;
                *state = if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(left)
                };
            }
            Chunked::DataEnd => {
                if rest.len() < 2 {
                    return Ok(at);
                }
                if &rest[..2] != b"\r\n" {
                    return Err(bad);
                }
                at += 2;
                *state = Chunked::Size;
            }
            Chunked::Size | Chunked::Trailer => {
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    return if rest.len() > CHUNK_LINE_MAX_BYTES {
                        Err(bad)
                    } else {
                        Ok(at)
                    };
                };
                let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
                at += nl + 1;
                if *state == Chunked::Trailer {
                    if line.is_empty() {
                        *state = Chunked::Done;
                    }
                    continue;
                }
                let hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
                let hex = std::str::from_utf8(hex).map_err(|_| bad)?.trim();
                let size = u64::from_str_radix(hex, 16).map_err(|_| bad)?;
                if size > limit as u64 {
                    return Err(HttpError::BodyTooLarge);
                }
                *state = if size == 0 {
                    Chunked::Trailer
                } else {
                    Chunked::Data(size)
                };
            }
        }
    }
}

/// Whether `buf` starts like an HTTP request line (`METHOD /...` or a
/// prefix of one), as opposed to exposition text. `None`: too few bytes to
/// tell yet.
pub fn looks_like_http(buf: &[u8]) -> Option<bool> {
    let method_len = buf.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if method_len == buf.len() {
        // Only capitals so far: could still be either.
        return if method_len > 16 { Some(false) } else { None };
    }
    if method_len == 0 || buf[method_len] != b' ' {
        return Some(false);
    }
    match buf.get(method_len + 1) {
        None => None,
        Some(b'/') => Some(true),
        // An absolute-form target, e.g. `GET http://localhost/metrics`.
        Some(b'h') => Some(
            buf[method_len + 1..].starts_with(b"http")
                || b"http".starts_with(&buf[method_len + 1..]),
        ),
        Some(_) => Some(false),
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Content type of `/metrics` pages.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes a response head. `allow` adds an `Allow` header (for 405).
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    content_length: usize,
    keep_alive: bool,
    allow: Option<&str>,
) {
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n",
        reason(status)
    );
    if let Some(allow) = allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The interim response that lets a client waiting on
/// `Expect: 100-continue` send its body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scrape() {
        let raw = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nrest";
        let r = parse_request(raw).unwrap().unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!((r.path, r.query), ("/metrics", "x=1"));
        assert!(!r.keep_alive);
        assert_eq!(r.body, BodyFraming::None);
        assert_eq!(r.head_len, raw.len() - 4);
    }

    #[test]
    fn keep_alive_defaults_by_version() {
        let r = parse_request(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive);
        let r = parse_request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
        let r = parse_request(b"GET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(r.keep_alive);
    }

    #[test]
    fn every_split_of_a_request_is_partial_until_complete() {
        let raw =
            b"PUT /metrics/job/a HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
        for end in 0..raw.len() {
            assert!(parse_request(&raw[..end]).unwrap().is_none(), "{end}");
        }
        let r = parse_request(raw).unwrap().unwrap();
        assert_eq!(r.body, BodyFraming::Length(4));
        assert!(r.expect_continue);
    }

    #[test]
    fn errors() {
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(REQUEST_HEAD_MAX_BYTES)
        );
        assert_eq!(
            parse_request(big.as_bytes()).err(),
            Some(HttpError::HeadTooLarge)
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(many.as_bytes()).err(),
            Some(HttpError::HeadTooLarge)
        );
        for raw in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET\x01 / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        ] {
            assert_eq!(parse_request(raw).map(|_| ()).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn chunked_bodies_in_every_split() {
        let raw = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let want = b"Wikipedia in \r\n\r\nchunks.";
        for split in 0..raw.len() {
            let mut state = Chunked::Size;
            let mut out = Vec::new();
            let mut pending = raw[..split].to_vec();
            let used = decode_chunked(&mut state, &pending, &mut out, 1000).unwrap();
            pending.drain(..used);
            pending.extend_from_slice(&raw[split..]);
            let used = decode_chunked(&mut state, &pending, &mut out, 1000).unwrap();
            assert_eq!(state, Chunked::Done, "{split}");
            assert_eq!(out, want, "{split}");
            assert_eq!(&pending[used..], b"NEXT");
        }
    }

    #[test]
    fn chunked_errors() {
        let mut out = Vec::new();
        let mut state = Chunked::Size;
        assert_eq!(
            decode_chunked(&mut state, b"zz\r\n", &mut out, 100).map_err(|e| e.status()),
            Err(400)
        );
        let mut state = Chunked::Size;
        assert_eq!(
            decode_chunked(&mut state, b"ff\r\n", &mut out, 100),
            Err(HttpError::BodyTooLarge)
        );
        let mut state = Chunked::Size;
        assert_eq!(
            decode_chunked(&mut state, b"2\r\nabXY", &mut out, 100).map_err(|e| e.status()),
            Err(400)
        );
    }

    #[test]
    fn detection() {
        for (buf, want) in [
            (&b""[..], None),
            (b"PU", None),
            (b"PUT", None),
            (b"PUT ", None),
            (b"PUT /metrics", Some(true)),
            (b"GET http://x/metrics", Some(true)),
            (b"GET h", Some(true)),
            (b"up 1\n", Some(false)),
            (b"UP 1\n", Some(false)),
            (b"# TYPE", Some(false)),
            (b"Xyz 1", Some(false)),
        ] {
            assert_eq!(
                looks_like_http(buf),
                want,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}

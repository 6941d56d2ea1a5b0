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

/// A body's `Content-Encoding`, as the Pushgateway accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// Snappy's framing format (what `snappy.StreamCompressor` and Go's
    /// `snappy.NewWriter` write), not a raw snappy block.
    Snappy,
}

impl Encoding {
    /// The coding a `Content-Encoding` value names (case-insensitive;
    /// `identity` list members are dropped), or `None` for an unsupported
    /// one or more than one coding.
    fn from_header(value: &str) -> Option<Encoding> {
        let mut found = Encoding::Identity;
        for coding in value.split(',').map(|c| c.trim_matches([' ', '\t'])) {
            let this =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    Encoding::Gzip
                } else if coding.eq_ignore_ascii_case("snappy") {
                    Encoding::Snappy
                } else if coding.eq_ignore_ascii_case("identity") || coding.is_empty() {
                    continue;
                } else {
                    return None;
                };
            if found != Encoding::Identity {
                return None;
            }
            found = this;
        }
        Some(found)
    }
}

/// The origin-form of a request target: an absolute-form target
/// (`http://host/metrics`, as proxies send) without its scheme and host.
fn origin_form(target: &str) -> &str {
    let scheme = |s: &str| {
        target
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    };
    let after = if scheme("http://") {
        7
    } else if scheme("https://") {
        8
    } else {
        return target;
    };
    match target[after..].find(['/', '?']) {
        Some(at) if target.as_bytes()[after + at] == b'/' => &target[after + at..],
        // `http://host` or `http://host?q`: the path is `/`.
        _ => "/",
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
    /// `Content-Encoding` of the body.
    pub encoding: Encoding,
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
    /// A `Content-Encoding` the gateway does not decode.
    Encoding,
    /// A `Transfer-Encoding` other than chunked.
    TransferEncoding,
    /// Not HTTP/1.0 or HTTP/1.1.
    Version,
    /// An `Expect` other than `100-continue`.
    Expectation,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::Encoding => 415,
            HttpError::TransferEncoding => 501,
            HttpError::Version => 505,
            HttpError::Expectation => 417,
            HttpError::Malformed(_) | HttpError::Framing(_) => 400,
        }
    }
}

impl HttpError {
    /// The `reason` label of `push_gateway_pushes_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            HttpError::HeadTooLarge | HttpError::BodyTooLarge => "too_large",
            HttpError::Encoding => "encoding",
            _ => "http",
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
                "unsupported Content-Encoding: send the body as gzip, snappy (framed) or identity",
            ),
            HttpError::TransferEncoding => f.write_str(
                "unsupported Transfer-Encoding: send the body plain (Content-Length) or chunked",
            ),
            HttpError::Version => f.write_str("unsupported HTTP version: use HTTP/1.0 or HTTP/1.1"),
            HttpError::Expectation => f.write_str(
                "unsupported Expect: only 100-continue is understood; send no other expectation",
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
        // httparse says "version" of any third word; only an `HTTP/x.y`
        // there is an unsupported version, the rest is not HTTP at all.
        Err(httparse::Error::Version) if names_http_version(buf) => {
            return Err(HttpError::Version);
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
    let target = origin_form(target);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut keep_alive = version == 1;
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut protobuf = false;
    let mut encoding = Encoding::Identity;
    let mut hosts = 0;
    let mut push_ttl = None;
    let mut push_drain = None;
    let mut authorization = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 || h.value.iter().any(|&b| b <= b' ' || b == 0x7f) {
                return Err(HttpError::Malformed(
                    "bad Host header: send exactly one, with the host name (and port) only",
                ));
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only: no sign, no spaces inside, no list, no hex.
            let n = Some(value)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(HttpError::Framing(
                    "invalid Content-Length: send a decimal byte count",
                ))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Framing("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::TransferEncoding);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            encoding = Encoding::from_header(value).ok_or(HttpError::Encoding)?;
        } else if h.name.eq_ignore_ascii_case("push-ttl") {
            push_ttl = Some(value);
        } else if h.name.eq_ignore_ascii_case("push-drain") {
            push_drain = Some(value);
        } else if h.name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value);
        } else if h.name.eq_ignore_ascii_case("content-type") {
            protobuf = crate::protobuf::is_protobuf(value);
        } else if h.name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(HttpError::Expectation);
            }
            expect_continue = true;
        }
    }
    if version == 1 && hosts == 0 {
        return Err(HttpError::Malformed(
            "missing Host header: HTTP/1.1 requests must send one",
        ));
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
        encoding,
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
                // CRLF, or a bare LF as RFC 9112 lets recipients accept
                // (Go's reader, the Pushgateway's, does).
                match rest {
                    [] | [b'\r'] => return Ok(at),
                    [b'\n', ..] => at += 1,
                    [b'\r', b'\n', ..] => at += 2,
                    _ => return Err(bad),
                }
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
                let size = chunk_size(line).ok_or(bad)?;
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

/// Whether the request line's third word starts `HTTP/`.
fn names_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    line.split(|&b| b == b' ')
        .nth(2)
        .is_some_and(|v| v.starts_with(b"HTTP/"))
}

/// A chunk-size line's size: hex digits only (no sign, prefix or leading
/// space), then optionally whitespace and `;` extensions (RFC 9112
/// 7.1.1), which are ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = &line[digits..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if !rest.is_empty() && rest[0] != b';' {
        return None;
    }
    let hex = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// Whether `buf` starts like an HTTP request line, as opposed to
/// exposition text on the stream protocol; `None`: too few bytes to tell.
///
/// A request line starts `METHOD SP /` or `METHOD SP http(s)://`, with any
/// token as the method (so `put` or `FOO` get an HTTP error, not the line
/// protocol). Exposition lines never start like that: a sample is
/// `name{...} value` or `name value`, and a value never starts with `/`
/// or `h`; a comment starts with `#`, which is refused as a method.
pub fn looks_like_http(buf: &[u8]) -> Option<bool> {
    let method_len = buf.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len == buf.len() {
        // A token so far: could still be either.
        return if method_len > METHOD_MAX_BYTES {
            Some(false)
        } else {
            None
        };
    }
    if method_len == 0 || buf[0] == b'#' || buf[method_len] != b' ' {
        return Some(false);
    }
    let target = &buf[method_len + 1..];
    if target.first() == Some(&b'/') {
        return Some(true);
    }
    // An absolute-form target, e.g. `GET http://localhost/metrics`.
    let mut prefix = false;
    for scheme in [&b"http://"[..], b"https://"] {
        let n = target.len().min(scheme.len());
        if target[..n].eq_ignore_ascii_case(&scheme[..n]) {
            if n == scheme.len() {
                return Some(true);
            }
            prefix = true;
        }
    }
    if prefix { None } else { Some(false) }
}

/// Longest method the push socket's detection takes for HTTP; a longer
/// first word is exposition text.
pub const METHOD_MAX_BYTES: usize = 20;

/// Bytes [`looks_like_http`] may need to decide: a method of
/// [`METHOD_MAX_BYTES`], a space and `https://`.
pub const DETECT_MAX_BYTES: usize = METHOD_MAX_BYTES + 1 + 8;

/// RFC 9110's `tchar`: what a method name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
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
        let r = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
    }

    #[test]
    fn every_split_of_a_request_is_partial_until_complete() {
        let raw =
            b"PUT /metrics/job/a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
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
        for (raw, status) in [
            (&b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..], 505),
            (b"# TYPE kept counter\r\n\r\n", 400),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417),
            (b"GET\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
        ] {
            assert_eq!(
                parse_request(raw).map(|_| ()).unwrap_err().status(),
                status,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    fn status_of(raw: &str) -> Result<(), u16> {
        parse_request(raw.as_bytes())
            .map(|_| ())
            .map_err(|e| e.status())
    }

    #[test]
    fn host_is_required_once_in_http_1_1() {
        assert_eq!(status_of("PUT /metrics/job/a HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(status_of("PUT /metrics/job/a HTTP/1.0\r\n\r\n"), Ok(()));
        assert_eq!(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), Ok(()));
        assert_eq!(status_of("GET / HTTP/1.1\r\nhost: a:9091\r\n\r\n"), Ok(()));
        assert_eq!(
            status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(400)
        );
        assert_eq!(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), Err(400));
    }

    #[test]
    fn content_length_is_digits_only() {
        for (value, want) in [
            ("4", Ok(())),
            (" 4 ", Ok(())),
            ("04", Ok(())),
            ("+4", Err(400)),
            ("-4", Err(400)),
            ("0x4", Err(400)),
            ("4,4", Err(400)),
            ("4 4", Err(400)),
            ("", Err(400)),
            ("99999999999999999999999", Err(400)),
        ] {
            let raw = format!("PUT /m HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(status_of(&raw), want, "{value:?}");
        }
        let twice = "PUT /m HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(status_of(twice), Ok(()));
    }

    #[test]
    fn transfer_encodings_other_than_chunked_are_not_implemented() {
        for (value, want) in [
            ("chunked", Ok(())),
            ("Chunked", Ok(())),
            ("gzip", Err(501)),
            ("gzip, chunked", Err(501)),
            ("identity", Err(501)),
        ] {
            let raw = format!("PUT /m HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {value}\r\n\r\n");
            assert_eq!(status_of(&raw), want, "{value:?}");
        }
    }

    #[test]
    fn content_encodings() {
        for (value, want) in [
            ("gzip", Ok(Encoding::Gzip)),
            ("GZIP", Ok(Encoding::Gzip)),
            ("x-gzip", Ok(Encoding::Gzip)),
            ("snappy", Ok(Encoding::Snappy)),
            ("identity", Ok(Encoding::Identity)),
            ("gzip, identity", Ok(Encoding::Gzip)),
            ("deflate", Err(415)),
            ("br", Err(415)),
            ("gzip, gzip", Err(415)),
            ("gzip, snappy", Err(415)),
        ] {
            let raw = format!("PUT /m HTTP/1.1\r\nHost: a\r\nContent-Encoding: {value}\r\n\r\n");
            let got = parse_request(raw.as_bytes())
                .map(|r| r.map(|r| r.encoding))
                .map_err(|e| e.status());
            assert_eq!(got, want.map(Some), "{value:?}");
        }
    }

    #[test]
    fn absolute_form_targets_route_by_their_path() {
        for (target, path, query) in [
            ("http://host/metrics/job/x", "/metrics/job/x", ""),
            ("HTTP://host:9091/metrics?a=b", "/metrics", "a=b"),
            ("https://h/", "/", ""),
            ("http://host", "/", ""),
            ("/plain", "/plain", ""),
        ] {
            let raw = format!("PUT {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            let r = parse_request(raw.as_bytes()).unwrap().unwrap();
            assert_eq!((r.path, r.query), (path, query), "{target}");
        }
    }

    #[test]
    fn chunk_sizes_are_hex_digits_with_optional_extensions() {
        for (line, want) in [
            (&b"4"[..], Some(4)),
            (b"fF", Some(255)),
            (b"4;a=b", Some(4)),
            (b"4 ;a=b", Some(4)),
            (b"4\t; a=\"b c\"", Some(4)),
            (b"4 ", Some(4)),
            (b"0x4", None),
            (b"+4", None),
            (b" 4", None),
            (b"-4", None),
            (b"4 4", None),
            (b"4_0", None),
            (b"", None),
            (b"11112222333344445", None),
        ] {
            assert_eq!(
                chunk_size(line),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
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
        // A bare LF after the data is accepted, as Go accepts it.
        let mut state = Chunked::Size;
        out.clear();
        assert_eq!(
            decode_chunked(&mut state, b"2\nab\n0\n\n", &mut out, 100),
            Ok(8)
        );
        assert_eq!((state, &out[..]), (Chunked::Done, &b"ab"[..]));
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
            (b"GET HTTPS://x/", Some(true)),
            (b"GET h", None),
            (b"GET https:", None),
            (b"put /metrics/job/a", Some(true)),
            (b"FOO /metrics/job/a", Some(true)),
            (b"M-SEARCH * HTTP/1.1", Some(false)),
            (b"up 1\n", Some(false)),
            (b"UP 1\n", Some(false)),
            (b"up", None),
            (b"metric_name 1\n", Some(false)),
            (b"metric{a=\"b\"} 1\n", Some(false)),
            (b"metric +Inf\n", Some(false)),
            (b"metric hello\n", Some(false)),
            (b"# TYPE", Some(false)),
            (b"# /usr/bin/job wrote these\n", Some(false)),
            (b"Xyz 1", Some(false)),
            (b"a_very_long_metric_name_total 1", Some(false)),
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

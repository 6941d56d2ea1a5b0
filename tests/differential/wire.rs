//! Raw HTTP exchanges: bytes written on one connection (Unix socket or
//! TCP), the write side shut, and every response read until the server
//! closes; then the responses split into their status codes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one exchange may take before its answer counts as "no close".
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Target<'a> {
    Unix(&'a Path),
    Tcp(SocketAddr),
}

/// What came back on one connection.
pub struct Exchange {
    /// Final (non-1xx) status codes, in order.
    pub statuses: Vec<u16>,
    /// The body of each of those responses (chunking undone).
    pub bodies: Vec<Vec<u8>>,
    /// The first bytes of the reply, for messages.
    pub excerpt: String,
    /// The server did not close within [`EXCHANGE_TIMEOUT`].
    pub timed_out: bool,
}

/// Writes `bytes`, shuts the write side and reads until EOF.
pub fn exchange(target: &Target, bytes: &[u8]) -> Exchange {
    let reply = match target {
        Target::Unix(p) => match UnixStream::connect(p) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                let _ = s.write_all(bytes);
                let _ = s.shutdown(Shutdown::Write);
                read_all(&mut s)
            }
            Err(e) => (format!("connect failed: {e}").into_bytes(), false),
        },
        Target::Tcp(a) => match TcpStream::connect(a) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                let _ = s.set_nodelay(true);
                let _ = s.write_all(bytes);
                let _ = s.shutdown(Shutdown::Write);
                read_all(&mut s)
            }
            Err(e) => (format!("connect failed: {e}").into_bytes(), false),
        },
    };
    let (buf, timed_out) = reply;
    let excerpt: String = String::from_utf8_lossy(&buf[..buf.len().min(1000)]).into_owned();
    let (statuses, bodies) = responses(&buf);
    Exchange {
        statuses,
        bodies,
        excerpt,
        timed_out,
    }
}

fn read_all(s: &mut impl Read) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + EXCHANGE_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (buf, false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if Instant::now() > deadline {
                    return (buf, true);
                }
            }
            // A reset after the server's last response: what was read stands.
            Err(_) => return (buf, false),
        }
    }
}

/// The final status and body of every response in `buf`, skipping 1xx
/// interim responses. Bodies are framed by Content-Length or chunking; a
/// response head followed directly by another (HEAD) has an empty body.
pub fn responses(mut buf: &[u8]) -> (Vec<u16>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    while buf.starts_with(b"HTTP/") {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf = &buf[end + 4..];
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if (100..200).contains(&status) {
            continue;
        }
        out.push(status);
        bodies.push(Vec::new());
        let body = bodies.last_mut().unwrap();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        if buf.starts_with(b"HTTP/") {
            continue;
        }
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let Some(eol) = find(buf, b"\r\n") else {
                    return (out, bodies);
                };
                let size_text = String::from_utf8_lossy(&buf[..eol]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                buf = &buf[(eol + 2).min(buf.len())..];
                if size == 0 {
                    if let Some(e) = find(buf, b"\r\n") {
                        buf = &buf[e + 2..];
                    }
                    break;
                }
                body.extend_from_slice(&buf[..size.min(buf.len())]);
                buf = &buf[(size + 2).min(buf.len())..];
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.extend_from_slice(&buf[..n.min(buf.len())]);
            buf = &buf[n.min(buf.len())..];
        } else {
            // Delimited by the close.
            body.extend_from_slice(buf);
            break;
        }
    }
    (out, bodies)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

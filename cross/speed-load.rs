//! Load for `cross/speed.sh`: drives a running push-gateway through one hot
//! path, sequentially, so that the gateway's instruction count per
//! operation is repeatable.
//!
//! ```text
//! speed-load stream SOCKET N [DISTINCT]  N lines on 4 stream connections, over
//!                                        DISTINCT series (default 400)
//! speed-load http SOCKET N               N PUTs of 3 lines, one keep-alive connection
//! speed-load scrape ADDR N               N GET /metrics, one keep-alive connection
//! ```
//!
//! Every push and scrape is checked; stream connections are shut down and
//! read to EOF, so the gateway has applied every line when this returns.
//! std only: built with plain `rustc -O`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// Reads one response framed by Content-Length; returns its status.
fn response(s: &mut impl Read, buf: &mut Vec<u8>) -> u16 {
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
            let status = head[9..12].parse().expect("status");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            while buf.len() < p + 4 + length {
                let n = s.read(&mut chunk).expect("read");
                assert!(n > 0, "closed inside a body");
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..p + 4 + length);
            return status;
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: speed-load stream|http|scrape TARGET N [DISTINCT]");
        std::process::exit(2);
    }
    let n: usize = args[3].parse().expect("N");
    let target = &args[2];
    match args[1].as_str() {
        "stream" => {
            let distinct: usize = args.get(4).map_or(400, |d| d.parse().expect("DISTINCT"));
            let per = n / 4;
            for c in 0..4 {
                let mut text = String::with_capacity(per * 64);
                for i in 0..per {
                    let k = (c * per + i) % distinct;
                    text.push_str(&format!(
                        "speed_stream_total{{pusher=\"{}\",series=\"{k}\"}} {i}\n",
                        k % 32
                    ));
                }
                let mut s = UnixStream::connect(target).expect("connect");
                s.write_all(text.as_bytes()).expect("write");
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                let mut reply = String::new();
                s.read_to_string(&mut reply).expect("read");
                assert!(reply.is_empty(), "{reply}");
            }
        }
        "http" => {
            let mut s = UnixStream::connect(target).expect("connect");
            let mut buf = Vec::new();
            for i in 0..n {
                let body = format!(
                    "# TYPE speed_http gauge\nspeed_http{{k=\"a\"}} {i}\nspeed_http{{k=\"b\"}} {}\n",
                    i * 2
                );
                let request = format!(
                    "PUT /metrics/job/speed/instance/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    i % 40,
                    body.len()
                );
                s.write_all(request.as_bytes()).expect("write");
                assert_eq!(response(&mut s, &mut buf), 200);
            }
        }
        "scrape" => {
            let mut s = TcpStream::connect(target).expect("connect");
            let mut buf = Vec::new();
            for _ in 0..n {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .expect("write");
                assert_eq!(response(&mut s, &mut buf), 200);
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

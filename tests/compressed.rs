//! Compressed push bodies, sent by the real curl as clients send them:
//! `Content-Encoding: gzip` (Python `compression='gzip'`, Node prom-client)
//! and `snappy` in the framing format (Python `compression='snappy'`).
//! The decoded size counts against `--max-body-bytes` while decoding.

mod common;

use std::io::Write as _;
use std::process::Command;

use common::*;

const TEXT: &str = "# TYPE zipped counter\nzipped_total{a=\"b\"} 3\nplain 2.5\n";

/// `data` compressed by the real gzip tool.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is needed for these tests (apt-get install gzip)");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn snappy_framed(data: &[u8]) -> Vec<u8> {
    let mut w = snap::write::FrameEncoder::new(Vec::new());
    w.write_all(data).unwrap();
    w.into_inner().unwrap()
}

/// PUTs the file `body` with `headers` through curl; (status, reply).
fn put_file(
    gw: &Gateway,
    dir: &TempDir,
    path: &str,
    body: &[u8],
    headers: &[&str],
) -> (u16, String) {
    let file = dir.path().join("body");
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let url = format!("http://localhost{path}");
    let mut args = vec!["-X", "PUT", "--data-binary", &data];
    for h in headers {
        args.extend(["-H", h]);
    }
    args.push(&url);
    curl(gw, &args, None)
}

fn rejected(page: &str, reason: &str) -> String {
    value_of(
        page,
        &format!("push_gateway_pushes_rejected_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or_default()
}

#[test]
fn gzip_and_snappy_bodies_are_decoded() {
    let gw = Gateway::start(&[]);
    let dir = TempDir::new("compressed");
    for (job, body, headers) in [
        ("gz", gzip(TEXT.as_bytes()), vec!["Content-Encoding: gzip"]),
        (
            "gz_chunked",
            gzip(TEXT.as_bytes()),
            vec!["Content-Encoding: gzip", "Transfer-Encoding: chunked"],
        ),
        (
            "gz_members",
            [
                gzip(b"# TYPE zipped counter\n"),
                gzip(&TEXT.as_bytes()[22..]),
            ]
            .concat(),
            vec!["Content-Encoding: GZIP"],
        ),
        (
            "sz",
            snappy_framed(TEXT.as_bytes()),
            vec!["Content-Encoding: snappy"],
        ),
        (
            "sz_chunked",
            snappy_framed(TEXT.as_bytes()),
            vec!["Content-Encoding: snappy", "Transfer-Encoding: chunked"],
        ),
    ] {
        let (code, reply) = put_file(&gw, &dir, &format!("/metrics/job/{job}"), &body, &headers);
        assert_eq!(code, 200, "{job}: {reply}");
        let page = gw.scrape();
        for series in [
            format!("zipped_total{{a=\"b\",instance=\"\",job=\"{job}\"}} 3"),
            format!("plain{{instance=\"\",job=\"{job}\"}} 2.5"),
        ] {
            assert!(page.contains(&series), "{job}: {series} missing:\n{page}");
        }
    }
}

#[test]
fn a_decompression_bomb_gets_413_and_is_counted() {
    let limit = 64 * 1024;
    let gw = Gateway::start_full(&["--max-body-bytes", "64KiB", "--cache-bytes", "1MiB"]);
    let dir = TempDir::new("bomb");
    // 16 MiB of one line, a few KiB compressed: far under the limit as
    // sent (refused as too large before anything reads it as lines).
    let plain = "bomb 1\n".repeat(16 << 20 >> 3);
    for (body, encoding) in [
        (gzip(plain.as_bytes()), "gzip"),
        (snappy_framed(plain.as_bytes()), "snappy"),
    ] {
        assert!(body.len() < limit * 16, "{encoding}: {}", body.len());
        let header = format!("Content-Encoding: {encoding}");
        let (code, reply) = put_file(&gw, &dir, "/metrics/job/bomb", &body, &[&header]);
        assert_eq!(code, 413, "{encoding}: {reply}");
        assert!(reply.contains("--max-body-bytes"), "{reply}");
    }
    // Just under the limit decoded is fine.
    let mut fits = String::new();
    for i in 0.. {
        let line = format!("fits{{i=\"{i}\"}} 1\n");
        if fits.len() + line.len() > limit {
            break;
        }
        fits.push_str(&line);
    }
    let (code, reply) = put_file(
        &gw,
        &dir,
        "/metrics/job/fits",
        &gzip(fits.as_bytes()),
        &["Content-Encoding: gzip"],
    );
    assert_eq!(code, 200, "{reply}");
    let page = gw.scrape();
    assert_eq!(rejected(&page, "too_large"), "2", "{page}");
    assert!(!page.contains("bomb{"), "{page}");
}

#[test]
fn corrupt_and_unknown_encodings_are_refused_and_counted() {
    let gw = Gateway::start_full(&[]);
    let dir = TempDir::new("corrupt");
    let mut damaged = gzip(TEXT.as_bytes());
    let at = damaged.len() - 6;
    damaged[at] ^= 0xff;
    let raw_snappy = snap::raw::Encoder::new()
        .compress_vec(TEXT.as_bytes())
        .unwrap();
    for (body, header, want, says) in [
        (
            TEXT.as_bytes().to_vec(),
            "Content-Encoding: gzip",
            400,
            "not a gzip body",
        ),
        (damaged, "Content-Encoding: gzip", 400, "gzip"),
        (
            raw_snappy,
            "Content-Encoding: snappy",
            400,
            "framing format",
        ),
        (
            TEXT.as_bytes().to_vec(),
            "Content-Encoding: br",
            415,
            "gzip, snappy",
        ),
        (
            TEXT.as_bytes().to_vec(),
            "Content-Encoding: deflate",
            415,
            "gzip, snappy",
        ),
    ] {
        let (code, reply) = put_file(&gw, &dir, "/metrics/job/bad", &body, &[header]);
        assert_eq!(code, want, "{header}: {reply}");
        assert!(reply.contains(says), "{header}: {reply}");
    }
    let page = gw.scrape();
    assert_eq!(rejected(&page, "encoding"), "5", "{page}");
    assert!(!page.contains("job=\"bad\""), "{page}");
}

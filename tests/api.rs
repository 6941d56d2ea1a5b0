//! The JSON API (`/api/v1/status`, `/api/v1/metrics`) against the real
//! Prometheus Pushgateway: the same pushes go to both, and the documents
//! must be equal once push times are masked (compared with python3's json).

mod common;

use std::process::Command;

use common::pushgateway::Pushgateway;
use common::tools::{http_get, require_tool};
use common::*;

const GROUPS: [(&str, &str); 3] = [
    (
        "/metrics/job/every_type/instance/i1",
        "# HELP c_total A counter.\n# TYPE c_total counter\nc_total{a=\"x\"} 3\nc_total{a=\"y\\\"q\\\\\"} 4.5\n\
         # TYPE g gauge\ng -1e-05\n\
         # HELP s A summary.\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 10\ns_count 5\n\
         # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 2.5\nh_count 3\n\
         # HELP u Untyped, with a\\nnewline and <html> & \"quotes\".\nu{path=\"/a<b>\"} 1234567\n",
    ),
    ("/metrics/job/second/a@base64/Zm9v", "g2 1\nbig 1e+100\n"),
    ("/metrics/job/third", "# TYPE g gauge\ng 7\n"),
];

fn tcp_put(addr: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    let raw = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_request(addr, &raw).0
}

fn normalised(dir: &TempDir, name: &str, doc: &str) -> String {
    require_tool("python3");
    let file = dir.path().join(name);
    std::fs::write(&file, doc).unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/normalise.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn api_v1_metrics_has_the_pushgateways_shape() {
    let gw = Gateway::start(&[]);
    let pg = Pushgateway::start();
    for (path, body) in GROUPS {
        let url = format!("http://localhost{path}");
        let (code, reply) = curl(&gw, &["-X", "PUT", "--data-binary", "@-", &url], Some(body));
        assert_eq!(code, 200, "{path}: {reply}");
        assert_eq!(
            tcp_put(pg.addr, path, body),
            200,
            "{path} on the Pushgateway"
        );
    }
    // A failed push marks its group.
    let url = "http://localhost/metrics/job/third";
    let (code, _) = curl(
        &gw,
        &["-X", "PUT", "--data-binary", "@-", url],
        Some("g{a=\"1\"} 1 123\n"),
    );
    assert_eq!(code, 400);
    assert_eq!(
        tcp_put(pg.addr, "/metrics/job/third", "g{a=\"1\"} 1 123\n"),
        400
    );
    // Stream series belong to no group and are not listed.
    gw.push("streamed 1\n");

    let (status, head, ours) = gw.get("/api/v1/metrics");
    assert_eq!(status, 200, "{ours}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    // HTTP/1.0, so that the Pushgateway does not answer chunked.
    let (status, theirs) = http_get(pg.addr, "/api/v1/metrics").unwrap();
    assert_eq!(status, 200);
    let dir = TempDir::new("api");
    assert_eq!(
        normalised(&dir, "ours.json", &ours),
        normalised(&dir, "theirs.json", &theirs),
        "ours:\n{ours}\ntheirs:\n{theirs}"
    );
    // The same document on the push socket.
    let (code, on_socket) = curl(&gw, &["http://localhost/api/v1/metrics"], None);
    assert_eq!(code, 200);
    assert_eq!(
        normalised(&dir, "socket.json", &on_socket),
        normalised(&dir, "ours.json", &ours)
    );
}

#[test]
fn api_v1_status_has_the_pushgateways_shape() {
    let gw = Gateway::start(&[]);
    let (status, _, doc) = gw.get("/api/v1/status");
    assert_eq!(status, 200, "{doc}");
    let dir = TempDir::new("status");
    let file = dir.path().join("status.json");
    std::fs::write(&file, &doc).unwrap();
    let check = "import json,sys\n\
        d=json.load(open(sys.argv[1]))\n\
        assert d['status']=='success'\n\
        data=d['data']\n\
        assert sorted(data)==['build_information','flags','start_time'], data\n\
        assert data['build_information']['version'], data\n\
        assert data['flags']['ttl'] and data['flags']['cache-bytes'], data\n\
        assert data['start_time'].endswith('Z'), data\n";
    let out = Command::new(require_tool("python3"))
        .args(["-c", check])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, on_socket) = curl(&gw, &["http://localhost/api/v1/status"], None);
    assert_eq!((code, on_socket), (200, doc));
}

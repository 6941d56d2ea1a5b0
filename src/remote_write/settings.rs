//! The remote write flags read into checked values: the receiver's URL
//! (`--remote-write-url`, an IP address: names are not looked up), the labels added to every series
//! (`--remote-write-label`) and the checks between them. Memory: the
//! parsed values only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::encode::MAX_EXTRA_LABELS;
use crate::auth::ScrapeAuth;

/// Where requests go: `http://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written (a name, an IPv4 address, or an IPv6 one
    /// without its brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, as sent on the request line.
    pub path: String,
    /// The `Host` header: the URL's authority as written.
    pub authority: String,
    /// The receiver's address: host names are not looked up.
    pub addr: SocketAddr,
}

/// Everything the remote write client needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: Target,
    pub interval: Duration,
    /// `--remote-write-label`s, sorted by name.
    pub labels: Vec<(String, String)>,
    pub auth: Option<ScrapeAuth>,
}

impl Settings {
    /// Bytes the labels add to one encoded series at most (each `Label`
    /// message with its tags and lengths): the per-series term of
    /// [`crate::limits::remote_write_body_max_bytes`].
    pub fn label_bytes(&self) -> usize {
        self.labels
            .iter()
            .map(|(n, v)| n.len() + v.len() + 12)
            .sum()
    }
}

/// Parses `http://HOST[:PORT][/PATH]` (port 80 and path `/` by default).
///
/// # Errors
/// A message saying what is wrong and the form expected; `https://` is
/// refused with the way to reach an HTTPS receiver.
pub fn parse_url(s: &str) -> Result<Target, String> {
    let s = s.trim();
    let form = "use http://HOST:PORT/PATH, e.g. http://127.0.0.1:9090/api/v1/write";
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "{s:?}: push-gateway speaks plain HTTP; for an HTTPS receiver run a local TLS terminator (stunnel, or socat OPENSSL:) and point --remote-write-url at it, e.g. http://127.0.0.1:9443/api/v1/write (README: boxes behind NAT)"
        ));
    }
    let Some(rest) = lower.starts_with("http://").then(|| &s["http://".len()..]) else {
        return Err(format!("{s:?} is not an http:// URL: {form}"));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "{s:?}: a user or password in the URL would show in `ps`; put it in a file and give --remote-write-auth-file"
        ));
    }
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "{s:?}: spaces or control characters in the path: percent-encode them"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: an IPv6 address needs its closing ']': {form}"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{s:?}: {form}"))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?} has no host: {form}"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("{s:?}: {p:?} is not a port (1 to 65535): {form}")),
        },
    };
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if authority.starts_with('[') => {
            return Err(format!(
                "{s:?}: {host:?} between brackets is not an IPv6 address"
            ));
        }
        Err(_) if host.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => {
            return Err(format!(
                "{s:?}: {host:?} is a host name, and push-gateway looks up none (a lookup would hold up pushes and scrapes): give the receiver's IP address, or let a local forwarder connect to the name (stunnel or socat, as for TLS: README, boxes behind NAT)"
            ));
        }
    };
    Ok(Target {
        host: host.to_string(),
        port,
        path,
        authority: authority.to_string(),
        addr: SocketAddr::new(ip, port),
    })
}

/// Parses `NAME=VALUE`: a Prometheus label name not starting with `__`
/// (reserved for Prometheus), and any value.
///
/// # Errors
/// A message saying what is wrong with the name or the form.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!("{s:?} is not NAME=VALUE, e.g. box=edge-17"));
    };
    let valid = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if name.is_empty() || !valid {
        return Err(format!(
            "{name:?} is not a label name: use letters, digits and '_', not starting with a digit"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "{name:?}: names starting with __ are reserved for Prometheus"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "{s:?}: an empty value is no label to Prometheus; give a value"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The labels checked together: no name twice, at most
/// [`MAX_EXTRA_LABELS`]; returned sorted by name.
///
/// # Errors
/// A message naming the repeated label or the count.
pub fn check_labels(mut labels: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
    if labels.len() > MAX_EXTRA_LABELS {
        return Err(format!(
            "{} --remote-write-label flags: at most {MAX_EXTRA_LABELS}",
            labels.len()
        ));
    }
    // By name, in place (a library sort costs kilobytes of code per type).
    for i in 1..labels.len() {
        let mut j = i;
        while j > 0 && labels[j - 1].0 > labels[j].0 {
            labels.swap(j - 1, j);
            j -= 1;
        }
    }
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "--remote-write-label {} is given twice: keep one",
            w[0].0
        ));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9090, "/api/v1/write")
        );
        assert_eq!(t.addr, "127.0.0.1:9090".parse().unwrap());
        let t = parse_url("HTTP://10.0.0.7:8428?extra_label=a=b").unwrap();
        assert_eq!((t.port, t.path.as_str()), (8428, "/?extra_label=a=b"));
        let t = parse_url("http://[::1]:19291/api/v1/push").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("::1", "[::1]:19291")
        );
        assert_eq!(
            parse_url("http://localhost").unwrap().addr,
            "127.0.0.1:80".parse().unwrap()
        );
        for (bad, says) in [
            ("https://x/api", "TLS terminator"),
            ("ftp://x", "http://HOST:PORT/PATH"),
            ("http://:80/", "no host"),
            ("http://127.0.0.1:0/", "not a port"),
            ("http://127.0.0.1:99999/", "not a port"),
            ("http://u:p@x/", "--remote-write-auth-file"),
            ("http://[::1/", "closing"),
            ("http://[x]:1/", "IPv6"),
            ("http://127.0.0.1/a b", "percent-encode"),
            ("http://mimir.example/api/v1/push", "host name"),
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("box=edge=1"),
            Ok(("box".into(), "edge=1".into()))
        );
        for bad in ["box", "=x", "1a=x", "a-b=x", "__name__=x", "a="] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
        let l = |n: &str| (n.to_string(), "v".to_string());
        assert_eq!(check_labels(vec![l("b"), l("a")]), Ok(vec![l("a"), l("b")]));
        assert!(
            check_labels(vec![l("a"), l("a")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(check_labels(vec![l("a"); MAX_EXTRA_LABELS + 1]).is_err());
    }
}

//! The scraped pages, parsed into what Prometheus sees: one record per
//! sample (family, type, help, sample name, label set, value), with both
//! gateways' own metrics left out and push times masked.

/// The group every case's barrier push goes to; left off the pages.
pub const BARRIER_JOB: &str = "differential_barrier";

/// Name prefixes of the gateways' own metrics (samples without a `job`
/// label only: a pushed `go_foo` always has one).
const OWN_PREFIXES: &[&str] = &[
    "go_",
    "process_",
    "pushgateway_",
    "promhttp_",
    "push_gateway_",
];

/// One page as a sorted multiset of rendered records.
pub fn normalise(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut family = String::new();
    let mut ftype = String::from("untyped");
    let mut help: Option<String> = None;
    let mut push_help = Vec::new();
    // HELP and TYPE may come in either order; a new name starts a family.
    for line in page.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            start_family(name, &mut family, &mut ftype, &mut help);
            help = Some(unescape_help(text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap_or((rest, ""));
            start_family(name, &mut family, &mut ftype, &mut help);
            ftype = t.trim().to_string();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else {
            out.push(format!("unparsable line: {line}"));
            continue;
        };
        let job = labels
            .iter()
            .find(|(n, _)| n == "job")
            .map(|(_, v)| v.as_str());
        if job == Some(BARRIER_JOB) {
            continue;
        }
        if job.is_none() && OWN_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let owned = name == family
            || (matches!(ftype.as_str(), "histogram" | "summary" | "gaugehistogram")
                && ["_bucket", "_sum", "_count", "_gcount", "_gsum"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family.as_str())));
        let (fam, ty, hp) = if owned {
            (family.as_str(), ftype.as_str(), help.clone())
        } else {
            (name.as_str(), "untyped", None)
        };
        // Push times: only whether they are set (not 0) is compared.
        let value = match fam {
            "push_time_seconds" | "push_failure_time_seconds" if value == "0e0" => "0".into(),
            "push_time_seconds" | "push_failure_time_seconds" => "<set>".into(),
            _ => value,
        };
        // The push-time HELP texts are compared once per page, not per
        // group, so a difference in them is one line, not one per group.
        let hp = match hp {
            Some(h) if matches!(fam, "push_time_seconds" | "push_failure_time_seconds") => {
                push_help.push(format!("{fam} has help {h:?}"));
                "(compared once)".into()
            }
            // An empty HELP is no HELP to Prometheus.
            Some(h) if !h.is_empty() => format!("{h:?}"),
            _ => "-".into(),
        };
        let ls: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        out.push(format!(
            "{fam} [{ty}, help {hp}] {name}{{{}}} {value}",
            ls.join(",")
        ));
    }
    push_help.sort();
    push_help.dedup();
    out.extend(push_help);
    out.sort();
    out
}

fn start_family(name: &str, family: &mut String, ftype: &mut String, help: &mut Option<String>) {
    if name != family {
        *family = name.to_string();
        *ftype = "untyped".into();
        *help = None;
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A sample's labels, sorted by name.
type Labels = Vec<(String, String)>;

/// `name{labels} value [timestamp]`: the name, the labels sorted by name,
/// and the value in one canonical form (timestamp appended as `@ts`).
fn parse_sample(line: &str) -> Option<(String, Labels, String)> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] != b'{' && b[i] != b' ' {
        i += 1;
    }
    let name = line[..i].to_string();
    let mut labels = Vec::new();
    if b.get(i) == Some(&b'{') {
        i += 1;
        loop {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            if b.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            let start = i;
            while i < b.len() && b[i] != b'=' {
                i += 1;
            }
            let lname = line.get(start..i)?.trim().to_string();
            i += 1;
            if b.get(i) != Some(&b'"') {
                return None;
            }
            i += 1;
            let mut value = Vec::new();
            loop {
                match b.get(i)? {
                    b'"' => break,
                    b'\\' => {
                        i += 1;
                        match b.get(i)? {
                            b'n' => value.push(b'\n'),
                            other => value.push(*other),
                        }
                    }
                    c => value.push(*c),
                }
                i += 1;
            }
            i += 1;
            labels.push((lname, String::from_utf8_lossy(&value).into_owned()));
            if b.get(i) == Some(&b',') {
                i += 1;
            }
        }
    }
    let mut rest = line.get(i..)?.split_whitespace();
    let value = canonical_value(rest.next()?);
    let value = match rest.next() {
        Some(ts) => format!("{value} @{ts}"),
        None => value,
    };
    labels.sort();
    Some((name, labels, value))
}

/// A sample value as one string: NaN (any sign) is `NaN`, infinities
/// `+Inf`/`-Inf`, others in Rust's shortest exponent form.
pub fn canonical_value(v: &str) -> String {
    match v {
        "+Inf" | "Inf" | "+inf" | "inf" => return "+Inf".into(),
        "-Inf" | "-inf" => return "-Inf".into(),
        _ => {}
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() && f > 0.0 => "+Inf".into(),
        Ok(f) if f.is_infinite() => "-Inf".into(),
        Ok(f) => format!("{f:e}"),
        Err(_) => format!("<unparsable value {v}>"),
    }
}

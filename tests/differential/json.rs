//! `GET /api/v1/metrics` answers compared by shape and content: the JSON
//! parsed, push times and time stamps masked, the barrier group left out,
//! arrays compared as multisets, then flattened to `path = value` lines.

use std::collections::BTreeMap;

use crate::page::BARRIER_JOB;

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

/// The answer as sorted `path = value` lines, or why it is not JSON.
pub fn normalise(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = match p.value() {
        Some(v) => v,
        None => {
            return vec![format!(
                "not JSON: {}",
                text.chars().take(200).collect::<String>()
            )];
        }
    };
    let value = mask(value, "");
    let mut out = Vec::new();
    flatten(&value, "", &mut out);
    out.sort();
    out
}

fn mask(v: Json, key: &str) -> Json {
    match v {
        Json::Obj(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let v = match (k.as_str(), v) {
                    ("time_stamp", _) => Json::Str("<time>".into()),
                    ("push_time_seconds" | "push_failure_time_seconds", v) => mask_push_time(v),
                    (_, v) => mask(v, &k),
                };
                out.insert(k, v);
            }
            Json::Obj(out)
        }
        Json::Arr(a) => {
            let mut items: Vec<Json> = a
                .into_iter()
                .filter(|g| !(key == "data" && is_barrier(g)))
                .map(|x| mask(x, ""))
                .collect();
            items.sort_by_key(render);
            Json::Arr(items)
        }
        other => other,
    }
}

fn is_barrier(group: &Json) -> bool {
    let Json::Obj(m) = group else { return false };
    let Some(Json::Obj(labels)) = m.get("labels") else {
        return false;
    };
    labels.get("job") == Some(&Json::Str(BARRIER_JOB.into()))
}

/// Only whether a push time is 0 is compared.
fn mask_push_time(v: Json) -> Json {
    match v {
        Json::Obj(m) => Json::Obj(
            m.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("time_stamp", _) => Json::Str("<time>".into()),
                        ("value", Json::Str(s)) if s == "0" => Json::Str("0".into()),
                        ("value", Json::Str(_)) => Json::Str("<set>".into()),
                        (_, v) => mask_push_time(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Json::Arr(a) => Json::Arr(a.into_iter().map(mask_push_time).collect()),
        other => other,
    }
}

fn render(v: &Json) -> String {
    let mut lines = Vec::new();
    flatten(v, "", &mut lines);
    lines.join("\n")
}

/// One line per leaf; array elements are numbered in their sorted order.
fn flatten(v: &Json, path: &str, out: &mut Vec<String>) {
    match v {
        Json::Obj(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(v, &format!("{path}.{k}"), out);
            }
        }
        Json::Arr(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, &format!("{path}[{i}]"), out);
            }
        }
        Json::Obj(_) => out.push(format!("{path} = {{}}")),
        Json::Arr(_) => out.push(format!("{path} = []")),
        Json::Null => out.push(format!("{path} = null")),
        Json::Bool(b) => out.push(format!("{path} = {b}")),
        Json::Num(n) => out.push(format!("{path} = {n}")),
        Json::Str(s) => out.push(format!("{path} = {s:?}")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn value(&mut self) -> Option<Json> {
        self.ws();
        let v = match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value()? else {
                        return None;
                    };
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(k, v);
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            break Json::Obj(m);
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            break Json::Arr(a);
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match *self.s.get(self.i)? {
                        b'"' => {
                            self.i += 1;
                            break;
                        }
                        b'\\' => {
                            self.i += 1;
                            match *self.s.get(self.i)? {
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'b' => out.push('\u{8}'),
                                b'f' => out.push('\u{c}'),
                                b'u' => {
                                    let hex =
                                        std::str::from_utf8(self.s.get(self.i + 1..self.i + 5)?)
                                            .ok()?;
                                    let c = u32::from_str_radix(hex, 16).ok()?;
                                    out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                                    self.i += 4;
                                }
                                c => out.push(c as char),
                            }
                            self.i += 1;
                        }
                        _ => {
                            // Copy one UTF-8 character.
                            let start = self.i;
                            self.i += 1;
                            while self.s.get(self.i).is_some_and(|b| b & 0xc0 == 0x80) {
                                self.i += 1;
                            }
                            out.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                        }
                    }
                }
                Json::Str(out)
            }
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                {
                    self.i += 1;
                }
                if start == self.i {
                    return None;
                }
                Json::Num(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
            }
        };
        Some(v)
    }
}

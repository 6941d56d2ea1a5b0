//! The scrape credential (`--scrape-auth-file`): who may read the TCP port;
//! and, in the same one-line form, the credential remote write sends
//! (`--remote-write-auth-file`).
//!
//! The file holds one line: `user:password` for HTTP basic auth, or else a
//! bearer token (a token never holds a `:`, RFC 6750, so a colon tells the
//! two apart). Whitespace around the line is dropped, as Prometheus does
//! with its `credentials_file` and `password_file`, so the same file can
//! serve both sides. When it is set, every request on the TCP port but the
//! health checks (`/-/healthy`, `/-/ready`, which reveal nothing and are
//! what probes call without credentials) must carry
//! `Authorization: Bearer TOKEN` or `Authorization: Basic BASE64`, or gets
//! `401` with a `WWW-Authenticate` challenge; so an unauthenticated scrape
//! in drain mode takes nothing away. The Unix socket is local and needs no
//! credential. The credential is compared in constant time.
//!
//! Memory: the expected credential (a line of at most
//! [`CREDENTIAL_MAX_BYTES`], base64-encoded for basic auth), read once at
//! start-up.

use std::fmt;
use std::path::Path;

use crate::limits::CREDENTIAL_MAX_BYTES;

/// The credential a TCP request must present.
#[derive(Clone, PartialEq, Eq)]
pub struct ScrapeAuth {
    scheme: Scheme,
    /// The token, or base64 of `user:password`: what follows the scheme in
    /// the `Authorization` header.
    expected: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Basic,
}

/// Never prints the secret (the configuration is logged in debug output).
impl fmt::Debug for ScrapeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScrapeAuth({:?}, <redacted>)", self.scheme)
    }
}

/// Reads the credential file of `flag` (`--scrape-auth-file`, or
/// `--remote-write-auth-file`, which holds the credential the gateway
/// sends, in the same form).
///
/// # Errors
/// A message saying what is wrong with the file and what to put in it,
/// naming `flag`.
pub fn load_for(path: &Path, flag: &str) -> Result<ScrapeAuth, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; give {flag} a readable file holding one line, a bearer token or user:password",
            path.display()
        )
    })?;
    parse(&text).map_err(|why| format!("{}: {why}", path.display()))
}

/// The credential in a file's contents.
///
/// # Errors
/// A message saying what the contents lack.
pub fn parse(text: &[u8]) -> Result<ScrapeAuth, String> {
    let line = text.trim_ascii();
    if line.is_empty() {
        return Err("empty: put one line in it, a bearer token or user:password".into());
    }
    if line.contains(&b'\n') {
        return Err(
            "more than one line: put one line in it, a bearer token or user:password".into(),
        );
    }
    if line.len() > CREDENTIAL_MAX_BYTES {
        return Err(format!(
            "the credential is {} bytes, more than {CREDENTIAL_MAX_BYTES}: use a shorter one",
            line.len()
        ));
    }
    if line.iter().any(|&b| b.is_ascii_control()) {
        return Err("control characters in the credential: use printable text".into());
    }
    if line.contains(&b':') {
        if line.starts_with(b":") {
            return Err(
                "user:password with an empty user name: put the user before the ':'".into(),
            );
        }
        Ok(ScrapeAuth {
            scheme: Scheme::Basic,
            expected: base64(line),
        })
    } else {
        if line.contains(&b' ') {
            return Err(
                "a bearer token holds no spaces (and a line with a ':' is user:password)".into(),
            );
        }
        Ok(ScrapeAuth {
            scheme: Scheme::Bearer,
            expected: line.to_vec(),
        })
    }
}

impl ScrapeAuth {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether an `Authorization` header value (if any) presents this
    /// credential. The scheme name is matched without regard to case (it
    /// is not secret); the credential itself in constant time.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.trim();
        let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
        let name = match self.scheme {
            Scheme::Bearer => "Bearer",
            Scheme::Basic => "Basic",
        };
        scheme.eq_ignore_ascii_case(name)
            && constant_time_eq(credential.trim_start().as_bytes(), &self.expected)
    }

    /// Whether a TCP request for `path` with this `Authorization` value is
    /// refused (answered 401).
    pub fn refuses(&self, path: &str, authorization: Option<&str>) -> bool {
        needs_credential(path) && !self.allows(authorization)
    }

    /// Appends the value of an `Authorization` header that presents this
    /// credential (what remote write sends).
    pub fn write_authorization(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.scheme {
            Scheme::Bearer => b"Bearer ",
            Scheme::Basic => b"Basic ",
        });
        out.extend_from_slice(&self.expected);
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(&self) -> &'static str {
        match self.scheme {
            Scheme::Bearer => "Bearer realm=\"push-gateway\"",
            Scheme::Basic => "Basic realm=\"push-gateway\", charset=\"UTF-8\"",
        }
    }
}

/// Whether a TCP request for `path` must present the credential: all but
/// the health checks.
pub fn needs_credential(path: &str) -> bool {
    !matches!(path, "/-/healthy" | "/-/ready")
}

/// The body of a 401.
pub const UNAUTHORIZED: &str = "unauthorized: this port needs the credential of --scrape-auth-file (Prometheus: authorization or basic_auth in the scrape config)\n";

/// Writes a whole 401 response: head with the challenge, and the body
/// unless `head_only`.
pub fn write_unauthorized(out: &mut Vec<u8>, auth: &ScrapeAuth, head_only: bool, keep_alive: bool) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        auth.challenge(),
        UNAUTHORIZED.len()
    );
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(UNAUTHORIZED.as_bytes());
    }
}

/// Whether `given` equals `expected`, taking time that depends only on
/// their lengths, never on where they first differ: a client timing
/// answers cannot find the secret byte by byte. The length of the secret
/// is not hidden (every byte of `expected` is always visited).
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        // Past the end of `given` the lengths differ, so `diff` is already
        // set; any byte will do.
        let g = given.get(i).copied().unwrap_or(0);
        diff |= g ^ e;
    }
    // Keeps the optimizer from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

/// Standard base64 with padding (RFC 4648), as HTTP basic auth sends it.
pub fn base64(input: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            // RFC 7617's example.
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(input.as_bytes()), want.as_bytes(), "{input:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("a", ""),
            ("", "a"),
            ("secret", "secret"),
            ("secreT", "secret"),
            ("secret", "secret\0"),
            ("secret\0", "secret"),
            ("secre", "secret"),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn the_file_holds_a_token_or_user_password() {
        let token = parse(b"s3cr3t-T0ken_.~+/=\n").unwrap();
        assert_eq!(token.scheme(), Scheme::Bearer);
        assert_eq!(token.expected, b"s3cr3t-T0ken_.~+/=");
        let basic = parse(b"  prometheus:pa ss:word \r\n").unwrap();
        assert_eq!(basic.scheme(), Scheme::Basic);
        assert_eq!(basic.expected, base64(b"prometheus:pa ss:word"));
        let empty_password = parse(b"prometheus:").unwrap();
        assert_eq!(empty_password.scheme(), Scheme::Basic);
        for bad in [
            &b""[..],
            b" \n\t\n",
            b"one\ntwo\n",
            b":password",
            b"two words",
            b"tab\tin",
            &[b'x'; CREDENTIAL_MAX_BYTES + 1],
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }

    #[test]
    fn headers_are_checked_by_scheme_and_credential() {
        let token = parse(b"tok").unwrap();
        let basic = parse(b"user:pw").unwrap();
        let user_pw = format!("Basic {}", String::from_utf8(base64(b"user:pw")).unwrap());
        for (auth, header, want) in [
            (&token, Some("Bearer tok"), true),
            (&token, Some("bearer tok"), true),
            (&token, Some("BEARER  tok "), true),
            (&token, Some("Bearer tok2"), false),
            (&token, Some("Bearer to"), false),
            (&token, Some("Bearer"), false),
            (&token, Some("Bearer "), false),
            (&token, Some("tok"), false),
            (&token, Some("Basic tok"), false),
            (&token, Some(""), false),
            (&token, None, false),
            (&basic, Some(user_pw.as_str()), true),
            (&basic, Some("Basic dXNlcjpwdw=="), true),
            (&basic, Some("basic dXNlcjpwdw=="), true),
            (&basic, Some("Basic dXNlcjpwdx=="), false),
            (&basic, Some("Bearer dXNlcjpwdw=="), false),
            (&basic, Some("Bearer user:pw"), false),
            (&basic, None, false),
        ] {
            assert_eq!(auth.allows(header), want, "{auth:?} with {header:?}");
        }
    }

    #[test]
    fn health_checks_stay_open_the_rest_needs_the_credential() {
        let token = parse(b"tok").unwrap();
        for path in ["/-/healthy", "/-/ready"] {
            assert!(!token.refuses(path, None), "{path}");
        }
        for path in [
            "/metrics",
            "/",
            "/nowhere",
            "/metrics/job/x",
            "/api/v1/status",
        ] {
            assert!(token.refuses(path, None), "{path}");
            assert!(!token.refuses(path, Some("Bearer tok")), "{path}");
        }
    }

    #[test]
    fn the_401_carries_the_challenge() {
        for (auth, challenge) in [
            (parse(b"tok").unwrap(), "Bearer realm=\"push-gateway\""),
            (
                parse(b"u:p").unwrap(),
                "Basic realm=\"push-gateway\", charset=\"UTF-8\"",
            ),
        ] {
            let mut out = Vec::new();
            write_unauthorized(&mut out, &auth, false, true);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
            assert!(
                text.contains(&format!("\r\nWWW-Authenticate: {challenge}\r\n")),
                "{text}"
            );
            assert!(text.ends_with(UNAUTHORIZED), "{text}");
            assert!(!text.contains("Connection: close"));
            let mut head = Vec::new();
            write_unauthorized(&mut head, &auth, true, false);
            let head = String::from_utf8(head).unwrap();
            assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
        }
    }
}

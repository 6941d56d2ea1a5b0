//! Command line and environment: raw flags become a checked [`Config`].
//!
//! Every flag can also be set with an environment variable
//! `PUSH_GATEWAY_<FLAG>` (for systemd `EnvironmentFile=`). Sizes take a
//! `KiB`/`MiB`/`GiB` suffix and durations `ms`/`s`/`m`/`h`; both are parsed with
//! nom. An invalid value makes clap exit with status 2 and a message naming
//! the flag. Holds no memory beyond the parsed values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use nom::Parser as _;
use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::{digit1, space0};
use nom::combinator::{all_consuming, map_res, opt, value};

use crate::auth::{self, ScrapeAuth};
use crate::limits;

/// Checked configuration used by the rest of the program.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    pub listen: SocketAddr,
    pub cache_bytes: usize,
    pub ttl: Duration,
    pub socket_mode: u32,
    pub max_connections: usize,
    /// Largest HTTP push body, in bytes.
    pub max_body_bytes: usize,
    /// Whether `/metrics` ends with the gateway's own metrics.
    pub self_metrics: bool,
    /// Group of the push socket file, by name or number.
    pub socket_group: Option<String>,
    /// Longest TTL a push may ask for (`Push-TTL`, `# TTL`).
    pub max_ttl: Duration,
    /// Series are removed once a scrape that included them is sent.
    pub drain_on_scrape: bool,
    /// The credential every TCP request but the health checks must carry.
    pub scrape_auth: Option<ScrapeAuth>,
}

impl Config {
    /// A configuration for tests and embedding: the defaults of the flags.
    pub fn with_defaults(socket: PathBuf) -> Config {
        let mut args = Args::parse_from(["push-gateway"]);
        args.socket = socket;
        args.into_config()
    }
}

/// Push-gateway: keeps pushed Prometheus metrics for a TTL in a fixed memory
/// budget and serves them for scraping.
#[derive(Parser, Debug)]
#[command(name = "push-gateway", version, about, long_about = None)]
pub struct Args {
    /// Unix socket that accepts pushes (lines of the text exposition format,
    /// or Pushgateway-style HTTP requests)
    #[arg(
        long,
        env = "PUSH_GATEWAY_SOCKET",
        default_value = "/run/push-gateway.sock"
    )]
    pub socket: PathBuf,

    /// TCP address serving /metrics (read-only)
    #[arg(long, env = "PUSH_GATEWAY_LISTEN", default_value = "0.0.0.0:9091")]
    pub listen: SocketAddr,

    /// Cache budget: plain bytes or with a KiB/MiB/GiB suffix (e.g. 10KiB,
    /// 2MiB; 1 KiB to 1 GiB)
    #[arg(long, env = "PUSH_GATEWAY_CACHE_BYTES", default_value = "10KiB", value_parser = parse_cache_bytes)]
    pub cache_bytes: usize,

    /// A series lives this long after its last write (e.g. 500ms, 60s, 5m, 1h)
    #[arg(long, env = "PUSH_GATEWAY_TTL", default_value = "60s", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// File mode of the push socket, in octal
    #[arg(long, env = "PUSH_GATEWAY_SOCKET_MODE", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Pushers and scrapers together; past it new connections are refused
    #[arg(long, env = "PUSH_GATEWAY_MAX_CONNECTIONS", default_value = "64", value_parser = parse_max_connections)]
    pub max_connections: usize,

    /// Largest HTTP push body (KiB/MiB/GiB suffixes); default: the cache budget,
    /// since a larger push cannot fit
    #[arg(long, env = "PUSH_GATEWAY_MAX_BODY_BYTES", value_parser = parse_size)]
    pub max_body_bytes: Option<usize>,

    /// Group owning the push socket (name or number), so that pushers of
    /// other users in that group can write to it
    #[arg(long, env = "PUSH_GATEWAY_SOCKET_GROUP")]
    pub socket_group: Option<String>,

    /// Longest TTL a push may ask for with `Push-TTL` or `# TTL`
    #[arg(long, env = "PUSH_GATEWAY_MAX_TTL", default_value = "24h", value_parser = parse_ttl)]
    pub max_ttl: Duration,

    /// Remove each series once a scrape that included it has been sent
    /// whole (each sample reaches one scraper once)
    #[arg(long, env = "PUSH_GATEWAY_DRAIN_ON_SCRAPE")]
    pub drain_on_scrape: bool,

    /// File with the credential scrapers must send on the TCP port: one
    /// line, `user:password` for basic auth or else a bearer token. Read
    /// at start-up; /-/healthy and /-/ready stay open
    #[arg(long, env = "PUSH_GATEWAY_SCRAPE_AUTH_FILE", value_name = "PATH", value_parser = parse_scrape_auth_file)]
    pub scrape_auth_file: Option<ScrapeAuth>,

    /// Leave the gateway's own push_gateway_* metrics off /metrics
    #[arg(long, env = "PUSH_GATEWAY_NO_SELF_METRICS")]
    pub no_self_metrics: bool,
}

impl Args {
    pub fn into_config(self) -> Config {
        Config {
            socket: self.socket,
            listen: self.listen,
            cache_bytes: self.cache_bytes,
            ttl: self.ttl,
            socket_mode: self.socket_mode,
            max_connections: self.max_connections,
            max_body_bytes: self.max_body_bytes.unwrap_or(self.cache_bytes),
            self_metrics: !self.no_self_metrics,
            socket_group: self.socket_group,
            max_ttl: self.max_ttl.max(self.ttl),
            drain_on_scrape: self.drain_on_scrape,
            scrape_auth: self.scrape_auth_file,
        }
    }
}

/// Parses `123`, `10KiB`, `2MiB`, `1GiB` (also `K`, `KB`, `M`, `MB`, `G`,
/// `GB`, all binary).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let unit = alt((
        value(1usize << 30, alt((tag("GiB"), tag("GB"), tag("G")))),
        value(1usize << 20, alt((tag("MiB"), tag("MB"), tag("M")))),
        value(1usize << 10, alt((tag("KiB"), tag("KB"), tag("K")))),
        value(1usize, alt((tag("B"), tag("")))),
    ));
    let number = map_res(digit1, str::parse::<usize>);
    let mut parser = all_consuming((number, space0, unit));
    let parsed: nom::IResult<&str, _> = parser.parse(s.trim());
    match parsed {
        Ok((_, (n, _, mult))) => n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s:?} is too large")),
        Err(_) => Err(format!(
            "{s:?} is not a size: use bytes or a KiB/MiB/GiB suffix, e.g. 10KiB"
        )),
    }
}

fn parse_cache_bytes(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if !(limits::CACHE_MIN_BYTES..=limits::CACHE_MAX_BYTES).contains(&n) {
        return Err(format!(
            "{n} bytes is out of range: use {} to {} bytes",
            limits::CACHE_MIN_BYTES,
            limits::CACHE_MAX_BYTES
        ));
    }
    Ok(n)
}

fn parse_scrape_auth_file(s: &str) -> Result<ScrapeAuth, String> {
    auth::load(std::path::Path::new(s))
}

/// Parses `500ms`, `60s`, `5m`, `1h` (a bare number is seconds).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let unit = alt((
        value(1u64, tag("ms")),
        value(1000u64, tag("s")),
        value(60_000u64, tag("m")),
        value(3_600_000u64, tag("h")),
        value(1000u64, tag("")),
    ));
    let number = map_res(digit1, str::parse::<u64>);
    let mut parser = all_consuming((number, space0, unit));
    let parsed: nom::IResult<&str, _> = parser.parse(s.trim());
    match parsed {
        Ok((_, (n, _, mult))) => n
            .checked_mul(mult)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{s:?} is too long")),
        Err(_) => Err(format!(
            "{s:?} is not a duration: use a number with ms, s, m or h, e.g. 60s"
        )),
    }
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    // Deadlines are kept in milliseconds; a year is far beyond any use and
    // keeps every sum of `now + ttl` from overflowing.
    if d.is_zero() || d > Duration::from_secs(366 * 24 * 3600) {
        return Err(format!("{s:?} is out of range: use 1ms to 8784h"));
    }
    Ok(d)
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let mut parser = all_consuming((opt(tag("0o")), nom::character::complete::oct_digit1));
    let parsed: nom::IResult<&str, _> = parser.parse(s.trim());
    match parsed {
        Ok((_, (_, digits))) => match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o777 => Ok(m),
            _ => Err(format!("{s:?} is out of range: use 0000 to 0777")),
        },
        Err(_) => Err(format!("{s:?} is not an octal file mode, e.g. 0660")),
    }
}

fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=limits::CONNECTIONS_MAX).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a connection count: use 1 to {}",
            limits::CONNECTIONS_MAX
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (input, want) in [
            ("10KiB", Some(10240)),
            ("2MiB", Some(2 << 20)),
            ("4096", Some(4096)),
            ("1 KiB", Some(1024)),
            ("3K", Some(3072)),
            ("12B", Some(12)),
            ("KiB", None),
            ("-1", None),
            ("1.5KiB", None),
            ("1GiB", Some(1 << 30)),
            ("2G", Some(2 << 30)),
            ("1 GB", Some(1 << 30)),
            ("1.5GiB", None),
            ("1TiB", None),
            ("99999999999999999999MiB", None),
        ] {
            assert_eq!(parse_size(input).ok(), want, "{input}");
        }
    }

    #[test]
    fn durations() {
        for (input, want) in [
            ("60s", Some(60_000)),
            ("500ms", Some(500)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("7", Some(7000)),
            ("1d", None),
            ("s", None),
        ] {
            assert_eq!(
                parse_duration(input).ok().map(|d| d.as_millis() as u64),
                want,
                "{input}"
            );
        }
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("9000h").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("7777").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn limits_of_counts_and_cache() {
        assert!(parse_max_connections("0").is_err());
        assert_eq!(parse_max_connections("64"), Ok(64));
        assert!(parse_cache_bytes("10").is_err());
        assert_eq!(parse_cache_bytes("10KiB"), Ok(10240));
        // README's largest budget, in its own words.
        assert_eq!(parse_cache_bytes("1GiB"), Ok(limits::CACHE_MAX_BYTES));
        assert!(parse_cache_bytes("2GiB").is_err());
    }
}

//! Command line and environment: raw flags become a checked [`Config`].
//!
//! Every flag can also be set with an environment variable
//! `PUSH_GATEWAY_<FLAG>` (for systemd `EnvironmentFile=`). Sizes are bytes
//! or take a `KiB`/`MiB`/`GiB` suffix; durations always take a unit,
//! `ms`/`s`/`m`/`h` (a bare number is refused: seconds or milliseconds
//! would be a guess). Both are parsed with nom. An invalid value makes clap
//! exit with status 2 and a message naming the flag and the expected form.
//! Holds no memory beyond the parsed values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{FromArgMatches, Parser};
use nom::Parser as _;
use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::{digit1, space0};
use nom::combinator::{all_consuming, map_res, opt, value};

use crate::auth::{self, ScrapeAuth};
use crate::limits;
use crate::remote_write::settings;

/// Checked configuration used by the rest of the program.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    pub listen: SocketAddr,
    pub cache_bytes: usize,
    pub ttl: Duration,
    pub socket_mode: u32,
    /// Connections on the push socket at once (`--max-push-connections`).
    pub max_push_connections: usize,
    /// Connections on the scrape port at once (`--max-scrape-connections`).
    pub max_scrape_connections: usize,
    /// `--max-connections` when it was given: the start-up log says it is
    /// deprecated and what it was taken for.
    pub legacy_max_connections: Option<usize>,
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
    /// Where the cache is saved across restarts (`--persistence-file`).
    pub persistence_file: Option<PathBuf>,
    /// Least time between two snapshots (`--persistence-interval`).
    pub persistence_interval: Duration,
    /// `--remote-write-url` and the flags that go with it.
    pub remote_write: Option<crate::remote_write::Settings>,
}

impl Config {
    /// A configuration for tests and embedding: the defaults of the flags.
    pub fn with_defaults(socket: PathBuf) -> Config {
        let mut args = Args::parse_from(["push-gateway"]);
        args.sockets.socket = socket;
        match args.into_config() {
            Ok(config) => config,
            // The defaults are ours: --max-ttl 24h is above --ttl 60s.
            Err(e) => unreachable!("the default flags disagree: {e}"),
        }
    }
}

/// The command line: every flag, each also read from its `PUSH_GATEWAY_*`
/// variable, in groups.
#[derive(Debug)]
pub struct Args {
    pub sockets: SocketFlags,
    pub cache: CacheFlags,
    pub connections: ConnectionFlags,
    pub persistence: PersistenceFlags,
    pub remote_write: RemoteWriteFlags,
}

// The flags come in groups, each a struct whose arguments clap builds in
// a function of its own. Built in one function (a derived `Args` with
// every flag, or with the groups flattened, which the compiler inlined),
// all the arguments' temporaries shared one stack frame of 24-40 KB, and
// stack pages touched at start-up stay resident for the gateway's life.
// Called through `black_box`ed pointers, the groups' builders stay apart.
// (Their comments are not doc comments: clap would make one the about
// text.)
const GROUPS: [fn(clap::Command) -> clap::Command; 5] = [
    <SocketFlags as clap::Args>::augment_args,
    <CacheFlags as clap::Args>::augment_args,
    <ConnectionFlags as clap::Args>::augment_args,
    <PersistenceFlags as clap::Args>::augment_args,
    <RemoteWriteFlags as clap::Args>::augment_args,
];

impl clap::CommandFactory for Args {
    fn command() -> clap::Command {
        let cmd = clap::Command::new("push-gateway")
            .version(env!("CARGO_PKG_VERSION"))
            .about("Push-gateway: keeps pushed Prometheus metrics for a TTL in a fixed memory budget and serves them for scraping");
        std::hint::black_box(GROUPS)
            .iter()
            .fold(cmd, |cmd, group| group(cmd))
    }

    fn command_for_update() -> clap::Command {
        Self::command()
    }
}

impl FromArgMatches for Args {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(Args {
            sockets: SocketFlags::from_arg_matches(m)?,
            cache: CacheFlags::from_arg_matches(m)?,
            connections: ConnectionFlags::from_arg_matches(m)?,
            persistence: PersistenceFlags::from_arg_matches(m)?,
            remote_write: RemoteWriteFlags::from_arg_matches(m)?,
        })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.sockets.update_from_arg_matches(m)?;
        self.cache.update_from_arg_matches(m)?;
        self.connections.update_from_arg_matches(m)?;
        self.persistence.update_from_arg_matches(m)?;
        self.remote_write.update_from_arg_matches(m)
    }
}

impl Parser for Args {}

// Where pushes and scrapes arrive.
#[derive(clap::Args, Debug)]
pub struct SocketFlags {
    /// Unix socket that accepts pushes (lines of the text exposition format,
    /// or Pushgateway-style HTTP requests)
    #[arg(
        long,
        env = "PUSH_GATEWAY_SOCKET",
        default_value = "/run/push-gateway.sock"
    )]
    pub socket: PathBuf,
    /// File mode of the push socket, in octal
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_SOCKET_MODE", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,
    /// Group owning the push socket (name or number), so that pushers of
    /// other users in that group can write to it
    #[arg(long, env = "PUSH_GATEWAY_SOCKET_GROUP")]
    pub socket_group: Option<String>,
    /// TCP address serving /metrics (read-only)
    #[arg(long, env = "PUSH_GATEWAY_LISTEN", default_value = "0.0.0.0:9091", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// File with the credential scrapers must send on the TCP port: one
    /// line, `user:password` for basic auth or else a bearer token. Read
    /// at start-up; /-/healthy and /-/ready stay open
    #[arg(long, env = "PUSH_GATEWAY_SCRAPE_AUTH_FILE", value_name = "PATH", value_parser = parse_scrape_auth_file)]
    pub scrape_auth_file: Option<ScrapeAuth>,
}

// What is kept, and for how long.
#[derive(clap::Args, Debug)]
pub struct CacheFlags {
    /// Cache budget: plain bytes or with a KiB/MiB/GiB suffix (e.g. 10KiB,
    /// 2MiB; 1 KiB to 1 GiB)
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_CACHE_BYTES", default_value = "10KiB", value_parser = parse_cache_bytes)]
    pub cache_bytes: usize,
    /// A series lives this long after its last write (e.g. 500ms, 60s, 5m, 1h)
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_TTL", default_value = "60s", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Longest TTL a push may ask for with `Push-TTL` or `# TTL`
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_MAX_TTL", default_value = "24h", value_parser = parse_ttl)]
    pub max_ttl: Duration,
    /// Remove each series once a scrape that included it has been sent
    /// whole (each sample reaches one scraper once)
    #[arg(long, env = "PUSH_GATEWAY_DRAIN_ON_SCRAPE")]
    pub drain_on_scrape: bool,
    /// Leave the gateway's own push_gateway_* metrics off /metrics
    #[arg(long, env = "PUSH_GATEWAY_NO_SELF_METRICS")]
    pub no_self_metrics: bool,
}

// How many connections, and how large a push.
#[derive(clap::Args, Debug)]
pub struct ConnectionFlags {
    /// Connections on the push socket at once (default 64); when all are
    /// open, the one idle longest is closed to admit a new one
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_MAX_PUSH_CONNECTIONS", value_parser = parse_max_connections)]
    pub max_push_connections: Option<usize>,
    /// Connections on the TCP port at once (default 16); when all are
    /// open, the one idle longest is closed to admit a new one
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_MAX_SCRAPE_CONNECTIONS", value_parser = parse_max_connections)]
    pub max_scrape_connections: Option<usize>,
    /// Deprecated: sets both --max-push-connections and
    /// --max-scrape-connections (each one given wins over it)
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_MAX_CONNECTIONS", value_parser = parse_max_connections)]
    pub max_connections: Option<usize>,
    /// Largest HTTP push body (KiB/MiB/GiB suffixes); default: the cache budget,
    /// since a larger push cannot fit
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_MAX_BODY_BYTES", value_parser = parse_size)]
    pub max_body_bytes: Option<usize>,
}

// Saving the cache across restarts.
#[derive(clap::Args, Debug)]
pub struct PersistenceFlags {
    /// File the cache is saved to (on SIGTERM/SIGINT, and at most once per
    /// --persistence-interval while it changes) and restored from at
    /// start-up; its directory must be writable. Off when not given
    #[arg(long, env = "PUSH_GATEWAY_PERSISTENCE_FILE", value_name = "PATH")]
    pub persistence_file: Option<PathBuf>,
    /// Least time between two snapshots while the cache changes (e.g. 30s,
    /// 5m); nothing is written while it does not
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_PERSISTENCE_INTERVAL", default_value = "5m", value_parser = parse_ttl)]
    pub persistence_interval: Duration,
}

// Sending the cache to a remote write receiver.
#[derive(clap::Args, Debug)]
pub struct RemoteWriteFlags {
    /// Send the cache every --remote-write-interval to this Prometheus
    /// remote write receiver: http://IP:PORT/PATH (plain HTTP, an IP
    /// address or localhost; for HTTPS or a host name, a local forwarder:
    /// see README). Off by default
    #[arg(long, env = "PUSH_GATEWAY_REMOTE_WRITE_URL", value_name = "URL")]
    pub remote_write_url: Option<String>,
    /// How often remote write sends the cache (e.g. 15s, 1m; 1s to 1h)
    #[arg(long, allow_hyphen_values = true, env = "PUSH_GATEWAY_REMOTE_WRITE_INTERVAL", default_value = "15s", value_parser = parse_ttl)]
    pub remote_write_interval: Duration,
    /// A label added to every series sent by remote write, e.g. box=edge-17
    /// (repeatable; a series' own label of that name wins). In the
    /// environment: NAME=VALUE pairs separated by commas
    #[arg(
        long = "remote-write-label",
        env = "PUSH_GATEWAY_REMOTE_WRITE_LABEL",
        value_name = "NAME=VALUE",
        value_delimiter = ','
    )]
    pub remote_write_labels: Vec<String>,
    /// File with the credential remote write sends: one line,
    /// `user:password` for basic auth or else a bearer token (the form of
    /// --scrape-auth-file). Read at start-up
    #[arg(long, env = "PUSH_GATEWAY_REMOTE_WRITE_AUTH_FILE", value_name = "PATH")]
    pub remote_write_auth_file: Option<PathBuf>,
}

impl Args {
    /// Checks what no single flag can: `--max-ttl` must not be below
    /// `--ttl` (raising it silently would allow pushes the operator meant
    /// to refuse).
    ///
    /// # Errors
    /// A message naming both flags and what to change.
    pub fn into_config(self) -> Result<Config, String> {
        if self.cache.max_ttl < self.cache.ttl {
            return Err(format!(
                "--max-ttl {} is below --ttl {}: a push could not even ask for the default TTL; raise --max-ttl to at least {} or lower --ttl",
                format_duration(self.cache.max_ttl),
                format_duration(self.cache.ttl),
                format_duration(self.cache.ttl),
            ));
        }
        // The remote write flags are checked here rather than by clap
        // value parsers: each of those is kilobytes of generic code.
        let remote_write = match self.remote_write.remote_write_url {
            Some(url) => {
                let flag = |flag: &'static str| move |e: String| format!("{flag}: {e}");
                let labels = self
                    .remote_write
                    .remote_write_labels
                    .iter()
                    .map(|l| settings::parse_label(l))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(flag("--remote-write-label"))?;
                Some(crate::remote_write::Settings {
                    target: settings::parse_url(&url).map_err(flag("--remote-write-url"))?,
                    interval: check_interval(self.remote_write.remote_write_interval)?,
                    labels: settings::check_labels(labels)?,
                    auth: self
                        .remote_write
                        .remote_write_auth_file
                        .map(|p| auth::load_for(&p, "--remote-write-auth-file"))
                        .transpose()
                        .map_err(flag("--remote-write-auth-file"))?,
                })
            }
            None if !self.remote_write.remote_write_labels.is_empty()
                || self.remote_write.remote_write_auth_file.is_some() =>
            {
                return Err(
                    "--remote-write-label and --remote-write-auth-file need --remote-write-url: give the receiver's URL, or drop them".into(),
                );
            }
            None => None,
        };
        Ok(Config {
            remote_write,
            socket: self.sockets.socket,
            listen: self.sockets.listen,
            cache_bytes: self.cache.cache_bytes,
            ttl: self.cache.ttl,
            socket_mode: self.sockets.socket_mode,
            max_push_connections: self
                .connections
                .max_push_connections
                .or(self.connections.max_connections)
                .unwrap_or(limits::PUSH_CONNECTIONS_DEFAULT),
            max_scrape_connections: self
                .connections
                .max_scrape_connections
                .or(self.connections.max_connections)
                .unwrap_or(limits::SCRAPE_CONNECTIONS_DEFAULT),
            legacy_max_connections: self.connections.max_connections,
            max_body_bytes: self
                .connections
                .max_body_bytes
                .unwrap_or(self.cache.cache_bytes),
            self_metrics: !self.cache.no_self_metrics,
            socket_group: self.sockets.socket_group,
            max_ttl: self.cache.max_ttl,
            drain_on_scrape: self.cache.drain_on_scrape,
            scrape_auth: self.sockets.scrape_auth_file,
            persistence_file: self.persistence.persistence_file,
            persistence_interval: self.persistence.persistence_interval,
        })
    }
}

/// Parses what README documents: bytes (`4096`) or a number with a
/// binary suffix, `KiB`, `MiB` or `GiB` (`10KiB`, `2MiB`, `1GiB`; a space
/// before the suffix is allowed). `K`, `KB`, `MB`... are refused rather
/// than guessed at (KB is 1000 bytes to some, 1024 to others).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let unit = alt((
        value(1usize << 30, tag("GiB")),
        value(1usize << 20, tag("MiB")),
        value(1usize << 10, tag("KiB")),
        value(1usize, tag("")),
    ));
    let number = map_res(digit1, str::parse::<usize>);
    let mut parser = all_consuming((number, space0, unit));
    let parsed: nom::IResult<&str, _> = parser.parse(s.trim());
    match parsed {
        Ok((_, (n, _, mult))) => n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s:?} is too large")),
        Err(_) => Err(format!(
            "{s:?} is not a size: use a whole number of bytes, or one with a KiB, MiB or GiB suffix, e.g. 4096, 10KiB, 1GiB"
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
    auth::load_for(std::path::Path::new(s), "--scrape-auth-file")
}

/// `--remote-write-interval`, read as a duration by clap: 1 s to 1 h.
fn check_interval(d: Duration) -> Result<Duration, String> {
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        return Err(format!(
            "--remote-write-interval {} is out of range: use 1s to 1h",
            format_duration(d)
        ));
    }
    Ok(d)
}

/// Parses `500ms`, `60s`, `5m`, `1h`. The unit is required: a bare
/// number is refused, as the message says.
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let unit = alt((
        value(1u64, tag("ms")),
        value(1000u64, tag("s")),
        value(60_000u64, tag("m")),
        value(3_600_000u64, tag("h")),
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
            "{s:?} is not a duration: use a whole number with a unit, ms, s, m or h, e.g. 500ms, 60s, 5m, 24h"
        )),
    }
}

/// Writes a duration in the largest unit that holds it exactly, as the
/// flags take it (`24h`, `90s`, `1500ms`), so messages can be pasted back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0ms".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// `IP:PORT`, as `SocketAddr` reads it; the message names the form
/// (host names are not looked up: the gateway resolves nothing).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "{s:?} is not an address: use IP:PORT, e.g. 0.0.0.0:9091, 127.0.0.1:9091 or [::1]:9091 (a numeric IP; host names such as localhost are not accepted)"
        )
    })
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    // Deadlines are kept in milliseconds (see limits::TTL_MAX).
    if d.is_zero() || d > limits::TTL_MAX {
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
            ("3K", None),
            ("3KB", None),
            ("12B", None),
            ("KiB", None),
            ("-1", None),
            ("1.5KiB", None),
            ("1GiB", Some(1 << 30)),
            ("2G", None),
            ("1 GB", None),
            ("2 GiB", Some(2 << 30)),
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
            ("7", None),
            ("-1", None),
            ("1500ms", Some(1500)),
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
        for (ms, text) in [
            (86_400_000, "24h"),
            (90_000, "90s"),
            (300_000, "5m"),
            (1500, "1500ms"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)));
        }
    }

    #[test]
    fn listen_addresses() {
        assert!(parse_listen("127.0.0.1:9091").is_ok());
        assert!(parse_listen("[::1]:9091").is_ok());
        let e = parse_listen("localhost:9091").unwrap_err();
        assert!(
            e.contains("IP:PORT") && e.contains("[::1]:9091") && e.contains("host names"),
            "{e}"
        );
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
    fn connection_budgets_and_the_deprecated_flag() {
        let budgets = |args: &[&str]| {
            let c = Args::parse_from([&["push-gateway"], args].concat())
                .into_config()
                .unwrap();
            (c.max_push_connections, c.max_scrape_connections)
        };
        assert_eq!(budgets(&[]), (64, 16));
        assert_eq!(budgets(&["--max-push-connections", "5"]), (5, 16));
        assert_eq!(budgets(&["--max-scrape-connections", "3"]), (64, 3));
        // The old flag sets both; a new one given with it wins for its kind.
        assert_eq!(budgets(&["--max-connections", "8"]), (8, 8));
        let both = ["--max-connections", "8", "--max-scrape-connections", "2"];
        assert_eq!(budgets(&both), (8, 2));
    }

    #[test]
    fn remote_write_flags() {
        let config =
            |args: &[&str]| Args::parse_from([&["push-gateway"], args].concat()).into_config();
        assert!(config(&[]).unwrap().remote_write.is_none());
        let rw = config(&[
            "--remote-write-url",
            "http://127.0.0.1:9090/api/v1/write",
            "--remote-write-label",
            "zone=b",
            "--remote-write-label",
            "box=a",
            "--remote-write-interval",
            "30s",
        ])
        .unwrap()
        .remote_write
        .unwrap();
        assert_eq!(
            rw.labels,
            [("box".into(), "a".into()), ("zone".into(), "b".into())]
        );
        assert_eq!(rw.interval, Duration::from_secs(30));
        assert_eq!(rw.target.port, 9090);
        let e = config(&["--remote-write-label", "box=a"]).unwrap_err();
        assert!(e.contains("need --remote-write-url"), "{e}");
        let url = ["--remote-write-url", "http://127.0.0.1:1/"];
        for (flag, value, says) in [
            ("--remote-write-interval", "500ms", "1s to 1h"),
            ("--remote-write-interval", "2h", "1s to 1h"),
            ("--remote-write-label", "__x=1", "reserved"),
            ("--remote-write-auth-file", "/nonexistent", "cannot read"),
        ] {
            let e = config(&[&url[..], &[flag, value]].concat()).unwrap_err();
            assert!(e.contains(flag) && e.contains(says), "{e}");
        }
        let e = config(&["--remote-write-url", "https://x/"]).unwrap_err();
        assert!(e.contains("--remote-write-url") && e.contains("TLS"), "{e}");
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

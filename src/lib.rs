//! push-gateway: local processes push Prometheus metrics into a Unix
//! socket; the gateway keeps each series for a TTL after its last write in
//! a fixed byte budget and serves them on `/metrics` for Prometheus.
//!
//! # Layout
//! * [`config`]: flags and environment to a checked [`config::Config`].
//! * [`limits`]: every fixed bound, with its unit and overflow action.
//! * [`auth`]: the scrape credential (`--scrape-auth-file`) and its check.
//! * [`listen`]: creating the push socket (mode, stale files) and the TCP
//!   listener, with start-up errors that say what to do.
//! * [`systemd`]: socket activation and readiness notification.
//! * [`event_loop`]: the one `mio::Poll`, its tokens and the dispatch.
//! * [`slab`]: connections keyed by token, in fixed capacity, on lists
//!   ordered by last activity.
//! * [`sockopt`]: the one socket option std lacks (`SO_SNDBUF`).
//! * [`conn`]: per-connection state machines (stream pushes, HTTP).
//! * [`http`]: HTTP/1.x request framing and response heads (httparse).
//! * [`routes`]: what a request means (push, page, index) and its answer.
//! * [`decompress`]: gzip and snappy (framed) push bodies, decoded as
//!   they arrive within the body limit.
//! * [`exposition`]: the text exposition format parser (nom).
//! * [`value`]: numbers of the format, read and written as Go does.
//! * [`ingest`]: what parsed lines mean for the cache (families, types).
//! * [`key`]: canonical series keys, with a push's grouping labels.
//! * [`push`]: the Pushgateway-compatible HTTP push API (groups).
//! * [`name_index`]: names of a push body, found by hash.
//! * [`push_check`]: a push body checked by the Pushgateway's rules.
//! * [`push_path`]: grouping keys and labels from push paths and queries.
//! * [`protobuf`]: the delimited `MetricFamily` decoder for pushes.
//! * [`cache`]: the byte-budgeted TTL cache.
//! * [`render`]: the `/metrics` page.
//! * [`remote_write`]: the cache sent to a Prometheus remote write
//!   receiver every interval, from the same loop.
//! * [`api`]: the Pushgateway's JSON API (`/api/v1/status`, `/api/v1/metrics`).
//! * [`snapshot`]: the cache saved to `--persistence-file` and restored
//!   at start-up (atomic, checksummed, written only when changed).
//! * [`self_metrics`]: the gateway's own counters and their families.
//! * [`warn_limit`]: rate-limited warnings about bad input.
//! * [`bytes`]: word-at-a-time byte string comparisons for the hot paths.
#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod bytes;
pub mod cache;
pub mod config;
pub mod conn;
pub mod decompress;
pub mod event_loop;
pub mod exposition;
pub mod http;
pub mod ingest;
pub mod key;
pub mod limits;
pub mod listen;
pub mod name_index;
pub mod protobuf;
pub mod push;
pub mod push_check;
pub mod push_path;
pub mod remote_write;
pub mod render;
pub mod routes;
pub mod self_metrics;
pub mod slab;
pub mod snapshot;
pub mod sockopt;
pub mod systemd;
pub mod value;
pub mod warn_limit;

//! The binary: flags in, listeners bound (or inherited from systemd), the
//! event loop run until SIGTERM/SIGINT; start-up failures become one clear
//! line and a non-zero exit.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use push_gateway::config::{Args, Config, format_duration};
use push_gateway::{event_loop, listen, systemd};

fn main() -> ExitCode {
    // Flags that disagree are a usage error like any invalid value: clap's
    // format, exit status 2.
    let config = match Args::parse().into_config() {
        Ok(config) => config,
        Err(e) => Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit(),
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr whatever RUST_LOG says (the journal keeps it).
            eprintln!("push-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let signals = event_loop::stop_signals()?;
    let (push, scrape, created) = match systemd::inherited()? {
        Some(inherited) => {
            let scrape = match inherited.scrape {
                Some(l) => l,
                None => listen::bind_scrape(config.listen)?,
            };
            (inherited.push, scrape, None)
        }
        None => {
            let gid = config
                .socket_group
                .as_deref()
                .map(listen::resolve_group)
                .transpose()?;
            let (push, file) = listen::bind_push_socket(&config.socket, config.socket_mode, gid)?;
            let scrape = listen::bind_scrape(config.listen)?;
            (push, scrape, Some(file))
        }
    };
    push.set_nonblocking(true)?;
    scrape.set_nonblocking(true)?;
    // A socket the gateway created was bound under a private name and
    // renamed into place: name the final path.
    let push_path = match &created {
        Some(_) => config.socket.display().to_string(),
        None => push
            .local_addr()?
            .as_pathname()
            .map_or_else(|| "(unnamed)".into(), |p| p.display().to_string()),
    };
    let access = match (&created, &config.socket_group) {
        (None, _) => "inherited from the service manager".to_string(),
        (Some(_), None) => format!("mode {:04o}", config.socket_mode),
        (Some(_), Some(g)) => format!("mode {:04o}, group {g}", config.socket_mode),
    };
    log::info!(
        "push-gateway {} started: pushes on {push_path} ({access}), scrapes on http://{}/metrics (credential: {}); cache {} bytes, ttl {}, max ttl {}, max {} push and {} scrape connections, max body {} bytes, drain on scrape {}, self-metrics {}, persistence {}; remote write {}",
        env!("CARGO_PKG_VERSION"),
        scrape.local_addr()?,
        match config.scrape_auth.as_ref().map(|a| a.scheme()) {
            None => "none",
            Some(push_gateway::auth::Scheme::Bearer) => "bearer token",
            Some(push_gateway::auth::Scheme::Basic) => "basic auth",
        },
        config.cache_bytes,
        format_duration(config.ttl),
        format_duration(config.max_ttl),
        config.max_push_connections,
        config.max_scrape_connections,
        config.max_body_bytes,
        if config.drain_on_scrape { "on" } else { "off" },
        if config.self_metrics { "on" } else { "off" },
        match &config.persistence_file {
            None => "off".to_string(),
            Some(p) => format!(
                "to {} at most every {}",
                p.display(),
                format_duration(config.persistence_interval)
            ),
        },
        match &config.remote_write {
            None => "off".to_string(),
            Some(rw) => format!(
                "to http://{}{} every {} ({} added labels, credential: {}, body bound {} bytes)",
                rw.target.authority,
                rw.target.path,
                format_duration(rw.interval),
                rw.labels.len(),
                match rw.auth.as_ref().map(|a| a.scheme()) {
                    None => "none",
                    Some(push_gateway::auth::Scheme::Bearer) => "bearer token",
                    Some(push_gateway::auth::Scheme::Basic) => "basic auth",
                },
                push_gateway::limits::remote_write_body_max_bytes(
                    config.cache_bytes,
                    rw.label_bytes()
                ),
            ),
        },
    );
    systemd::notify("READY=1");
    let result = event_loop::run_with_signals(
        mio::net::UnixListener::from_std(push),
        mio::net::TcpListener::from_std(scrape),
        config,
        signals,
    );
    systemd::notify("STOPPING=1");
    // The socket file goes before the process does.
    drop(created);
    result?;
    Ok(())
}

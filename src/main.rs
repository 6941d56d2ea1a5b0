//! The binary: flags in, listeners bound, the event loop run; start-up
//! failures become one clear line and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;
use push_gateway::config::Args;
use push_gateway::{event_loop, listen};

fn main() -> ExitCode {
    let config = Args::parse().into_config();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("push-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &push_gateway::config::Config) -> Result<(), Box<dyn std::error::Error>> {
    let push = listen::bind_push_socket(&config.socket, config.socket_mode)?;
    let scrape = listen::bind_scrape(config.listen)?;
    push.set_nonblocking(true)?;
    scrape.set_nonblocking(true)?;
    log::info!(
        "push-gateway {} listening: pushes on {} (mode {:04o}), scrapes on http://{}/metrics; cache {} bytes, ttl {:?}, max {} connections",
        env!("CARGO_PKG_VERSION"),
        config.socket.display(),
        config.socket_mode,
        config.listen,
        config.cache_bytes,
        config.ttl,
        config.max_connections
    );
    event_loop::run(
        mio::net::UnixListener::from_std(push),
        mio::net::TcpListener::from_std(scrape),
        config,
    )?;
    Ok(())
}

//! Running under systemd: socket activation and readiness notification,
//! both optional; without systemd the binary binds its own sockets.
//!
//! * Socket activation (`LISTEN_FDS`/`LISTEN_PID`, via listenfd): the
//!   inherited Unix stream socket is the push socket and an inherited TCP
//!   listener, if any, serves scrapes; they are told apart by their type,
//!   so their order and names in the socket unit do not matter.
//! * `Type=notify`: `READY=1` (and `STOPPING=1`) are sent to
//!   `NOTIFY_SOCKET` with std's `UnixDatagram`, no libsystemd.
//!
//! Memory: none kept.

use std::io;
use std::net::TcpListener;
use std::os::unix::net::{UnixDatagram, UnixListener};

/// Sockets passed by the service manager.
pub struct Inherited {
    pub push: UnixListener,
    pub scrape: Option<TcpListener>,
}

/// Takes the sockets passed with socket activation, if any.
///
/// # Errors
/// When sockets were passed but none is a Unix stream listener.
pub fn inherited() -> io::Result<Option<Inherited>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut push = None;
    let mut scrape = None;
    for idx in 0..fds.len() {
        if push.is_none()
            && let Ok(Some(l)) = fds.take_unix_listener(idx)
        {
            push = Some(l);
            continue;
        }
        if scrape.is_none()
            && let Ok(Some(l)) = fds.take_tcp_listener(idx)
        {
            scrape = Some(l);
            continue;
        }
        log::warn!("ignoring inherited socket {idx}: neither the push socket nor a TCP listener");
    }
    match push {
        Some(push) => Ok(Some(Inherited { push, scrape })),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket activation passed no Unix stream socket: give the socket unit a ListenStream=/run/push-gateway.sock",
        )),
    }
}

/// Sends `state` (e.g. `READY=1`) to the service manager, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        log::warn!("could not notify the service manager ({state}): {e}");
    }
}

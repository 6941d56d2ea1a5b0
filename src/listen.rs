//! Creating the listeners, with start-up errors that say what to do.
//!
//! The push socket is created with its final mode and no window in which it
//! is more open: it is bound inside a private (0700) directory next to the
//! final path, chmod-ed there, then renamed into place. An existing path is
//! only replaced when it is a socket nobody listens on (a stale file left by
//! a crash); a live socket, a symlink or any other file is refused. Memory:
//! none kept.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Why the gateway could not start listening.
#[derive(Debug)]
pub enum ListenError {
    InUse(PathBuf),
    NotASocket(PathBuf),
    Socket(PathBuf, io::Error),
    Tcp(std::net::SocketAddr, io::Error),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::InUse(p) => write!(
                f,
                "socket {} is in use by a running process (another push-gateway?): stop it or choose another --socket",
                p.display()
            ),
            ListenError::NotASocket(p) => write!(
                f,
                "{} exists and is not a socket: remove it or choose another --socket",
                p.display()
            ),
            ListenError::Socket(p, e) if e.kind() == io::ErrorKind::PermissionDenied => write!(
                f,
                "cannot create socket {}: permission denied; choose a --socket in a directory you can write (e.g. /tmp/push-gateway.sock)",
                p.display()
            ),
            ListenError::Socket(p, e) => write!(f, "cannot create socket {}: {e}", p.display()),
            ListenError::Tcp(a, e) if e.kind() == io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {a}: address in use (another push-gateway or Pushgateway?); stop it or choose another --listen"
            ),
            ListenError::Tcp(a, e) if e.kind() == io::ErrorKind::PermissionDenied => write!(
                f,
                "cannot listen on {a}: permission denied; use a port above 1023 in --listen"
            ),
            ListenError::Tcp(a, e) => write!(f, "cannot listen on {a}: {e}"),
        }
    }
}

impl std::error::Error for ListenError {}

/// Binds the push socket at `path` with file mode `mode`.
///
/// # Errors
/// [`ListenError`] saying why and what to do.
pub fn bind_push_socket(path: &Path, mode: u32) -> Result<UnixListener, ListenError> {
    let err = |e| ListenError::Socket(path.to_path_buf(), e);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ListenError::InUse(path.to_path_buf()));
            }
            log::info!("replacing stale socket {}", path.display());
        }
        Ok(_) => return Err(ListenError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| err(io::ErrorKind::InvalidInput.into()))?;
    let private = dir.join(format!(
        ".{}.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(err)?;
    let result = (|| {
        let tmp = private.join("s");
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    result.map_err(err)
}

/// Binds the scrape listener.
///
/// # Errors
/// [`ListenError::Tcp`] saying why and what to do.
pub fn bind_scrape(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    std::net::TcpListener::bind(addr).map_err(|e| ListenError::Tcp(addr, e))
}

use std::os::unix::fs::DirBuilderExt;

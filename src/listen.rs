//! Creating the listeners, with start-up errors that say what to do.
//!
//! The push socket is created with its final mode and no window in which it
//! is more open: it is bound inside a private (0700) directory next to the
//! final path, chmod-ed there, then renamed into place. An existing path is
//! only replaced when it is a socket nobody listens on (a stale file left by
//! a crash); a live socket, a symlink or any other file is refused. Paths
//! up to [`SOCKET_PATH_MAX_BYTES`] work: when the staging name would be
//! longer than that, the socket is bound through a short name of the same
//! directory (`/proc/self/fd/N/s`). Whether another process listens is
//! asked with a non-blocking connect, so a stopped owner with a full
//! backlog is found in use at once instead of hanging the start. Memory:
//! none kept.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::limits::SOCKET_PATH_MAX_BYTES;

/// Why the gateway could not start listening.
#[derive(Debug)]
pub enum ListenError {
    InUse(PathBuf),
    NotASocket(PathBuf),
    PathTooLong(PathBuf),
    Socket(PathBuf, io::Error),
    Tcp(std::net::SocketAddr, io::Error),
    Group(String),
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
            ListenError::PathTooLong(p) => write!(
                f,
                "socket path {} is {} bytes; Unix socket paths are at most {SOCKET_PATH_MAX_BYTES} bytes: choose a shorter --socket",
                p.display(),
                p.as_os_str().len()
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
            ListenError::Group(g) => write!(
                f,
                "no group {g:?} in /etc/group: create it (groupadd {g}) or give --socket-group a group that exists"
            ),
        }
    }
}

impl std::error::Error for ListenError {}

/// The push socket the gateway created, removed when this is dropped: on
/// exit, and on any start-up failure after the socket was created (a TCP
/// port in use), so a failed start leaves nothing behind. Only removed if
/// the path still names that very file (not a successor's).
pub struct SocketFile {
    path: PathBuf,
    dev_ino: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let same =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.dev_ino);
        if same && let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Looks up a group by name in /etc/group, or takes a number as is.
///
/// # Errors
/// [`ListenError::Group`] when there is no such group.
pub fn resolve_group(group: &str) -> Result<u32, ListenError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| ListenError::Group(group.to_string()))
}

/// Binds the push socket at `path` with file mode `mode` and, if given,
/// group `gid`.
///
/// # Errors
/// [`ListenError`] saying why and what to do.
pub fn bind_push_socket(
    path: &Path,
    mode: u32,
    gid: Option<u32>,
) -> Result<(UnixListener, SocketFile), ListenError> {
    let err = |e| ListenError::Socket(path.to_path_buf(), e);
    if path.as_os_str().len() > SOCKET_PATH_MAX_BYTES {
        return Err(ListenError::PathTooLong(path.to_path_buf()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if is_listened_on(path) {
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
        let listener = if tmp.as_os_str().len() <= SOCKET_PATH_MAX_BYTES {
            UnixListener::bind(&tmp)?
        } else {
            // The staging path is longer than the final one, past what
            // `sun_path` holds: name the same directory through its file
            // descriptor instead. Everything after `bind` uses full paths,
            // which have no such limit.
            let dir = std::fs::File::open(&private)?;
            UnixListener::bind(format!("/proc/self/fd/{}/s", dir.as_raw_fd())).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{e} (a path this long is bound through /proc/self/fd: mount /proc, or choose a shorter --socket)"
                    ),
                )
            })?
        };
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&tmp, None, Some(gid))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        let meta = std::fs::symlink_metadata(&tmp)?;
        std::fs::rename(&tmp, path)?;
        let file = SocketFile {
            path: path.to_path_buf(),
            dev_ino: (meta.dev(), meta.ino()),
        };
        Ok((listener, file))
    })();
    let _ = std::fs::remove_dir_all(&private);
    result.map_err(err)
}

/// Whether a process listens on the socket at `path`. The connect does not
/// block: a listener whose backlog is full (its owner stopped, or too busy
/// to accept) answers "try again" at once, and that too means in use.
fn is_listened_on(path: &Path) -> bool {
    match mio::net::UnixStream::connect(path) {
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Binds the scrape listener.
///
/// # Errors
/// [`ListenError::Tcp`] saying why and what to do.
pub fn bind_scrape(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    std::net::TcpListener::bind(addr).map_err(|e| ListenError::Tcp(addr, e))
}

use std::os::unix::fs::DirBuilderExt;

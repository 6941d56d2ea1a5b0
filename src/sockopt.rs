//! Socket options that neither std nor mio can set: `SO_SNDBUF`. One
//! `setsockopt` call, one of the gateway's two unsafe calls (the other is
//! the snapshot's `sync_file_range`). Memory: none.

use std::io;
use std::os::fd::AsRawFd;

/// Sets `SO_SNDBUF` of `socket` to `bytes` (Linux doubles the value for its
/// bookkeeping). On a listening socket, connections accepted later inherit
/// it.
///
/// # Errors
/// The system's error when the option cannot be set.
#[allow(unsafe_code)]
pub fn set_send_buffer(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is borrowed from an open socket for the length
    // of the call; the option value points to a live `c_int` and `len` is
    // its size, so the kernel reads only that memory and writes none.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

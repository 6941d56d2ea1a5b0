//! Rate-limited warnings: a client sending only bad lines, or a flood of
//! connections past the file descriptor limit, must not be able to fill
//! the log. At most [`WARN_BURST`] warnings per [`WARN_WINDOW`] for each
//! limiter; the rest are counted and reported in one line when the window
//! ends. Memory: three integers and a name.

use std::time::Duration;

use crate::limits::{WARN_BURST, WARN_WINDOW};

#[derive(Debug)]
pub struct WarnLimit {
    window_start_ms: u64,
    in_window: u32,
    suppressed: u64,
    /// What the warnings are about, for the summary line.
    about: &'static str,
}

impl Default for WarnLimit {
    /// The limiter for warnings about bad input.
    fn default() -> WarnLimit {
        WarnLimit::about("bad input")
    }
}

impl WarnLimit {
    /// A limiter whose summary line speaks of warnings about `about`.
    pub const fn about(about: &'static str) -> WarnLimit {
        WarnLimit {
            window_start_ms: 0,
            in_window: 0,
            suppressed: 0,
            about,
        }
    }

    /// Whether a warning may be logged at `now` (ms). Logs the count of
    /// suppressed warnings when a new window opens.
    pub fn allow(&mut self, now: u64) -> bool {
        let window = WARN_WINDOW.as_millis() as u64;
        if now.saturating_sub(self.window_start_ms) >= window {
            if self.suppressed > 0 {
                log::warn!(
                    "suppressed {} more warnings about {} in the last {:?}",
                    self.suppressed,
                    self.about,
                    Duration::from_millis(window)
                );
            }
            self.window_start_ms = now;
            self.in_window = 0;
            self.suppressed = 0;
        }
        if self.in_window < WARN_BURST {
            self.in_window += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses_then_reopens() {
        let mut w = WarnLimit::default();
        let allowed = (0..100).filter(|_| w.allow(5)).count();
        assert_eq!(allowed, WARN_BURST as usize);
        assert_eq!(w.suppressed, 100 - u64::from(WARN_BURST));
        assert!(w.allow(5 + WARN_WINDOW.as_millis() as u64));
        assert_eq!(w.suppressed, 0);
    }
}

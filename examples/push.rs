//! Pushes Prometheus text exposition lines into push-gateway's Unix socket,
//! with nothing but the standard library.
//!
//! ```sh
//! cargo run --example push -- 'door_open{door="front"} 1' '# TYPE x gauge' 'x 2'
//! printf 'jobs_done_total{queue="mail"} 42\n' | cargo run --example push
//! cargo run --example push -- --socket /tmp/push-gateway.sock 'x 1'
//! ```
//!
//! Lines come from the arguments, one per argument, or else from standard
//! input (streamed: a long-running producer can pipe into it for days). The
//! socket is `--socket PATH`, else `$PUSH_GATEWAY_SOCKET`, else
//! `/run/push-gateway.sock` (after `make run`: `/tmp/push-gateway.sock`).
//!
//! The gateway answers nothing for good lines and `error: line N: REASON`
//! for a bad one (which is skipped; the other lines are kept). Those
//! replies are printed on standard error and the exit status is then 1; it
//! is 2 when the socket cannot be reached.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

const DEFAULT_SOCKET: &str = "/run/push-gateway.sock";

const USAGE: &str = "usage: push [--socket PATH] [LINE...]
Pushes LINEs (or standard input) to push-gateway's Unix socket.
  --socket PATH   default: $PUSH_GATEWAY_SOCKET or /run/push-gateway.sock";

fn main() -> ExitCode {
    let mut socket = std::env::var_os("PUSH_GATEWAY_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let mut lines = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(path) => socket = PathBuf::from(path),
                None => return usage("--socket needs a path"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("--") => {
                lines.extend(args.by_ref());
            }
            Some(s) if s.starts_with("--") => return usage(&format!("unknown option {s}")),
            _ => lines.push(arg),
        }
    }

    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("push: cannot connect to {}: {e}", socket.display());
            return ExitCode::from(2);
        }
    };

    // Replies can arrive while we are still writing (a long stdin stream):
    // read them on a second thread so neither side can block the other.
    let replies = {
        let stream = stream.try_clone().expect("clone the socket");
        thread::spawn(move || print_replies(stream))
    };

    let sent = if lines.is_empty() {
        send(&stream, io::stdin().lock())
    } else {
        let mut text = Vec::new();
        for line in &lines {
            text.extend_from_slice(line.as_encoded_bytes());
            text.push(b'\n');
        }
        send(&stream, &text[..])
    };
    // Tell the gateway we are done; it answers what is left, then closes.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let errors = replies.join().unwrap_or(0);

    if let Err(e) = sent {
        eprintln!("push: writing to {}: {e}", socket.display());
        return ExitCode::from(2);
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Copies `input` to the socket line by line; a last line without a
/// newline gets one (the gateway applies only complete lines). Written in
/// batches, but never held back while waiting for more input.
fn send(stream: &UnixStream, input: impl Read) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut out = BufWriter::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return out.flush();
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        out.write_all(&line)?;
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
}

/// Prints each reply line on standard error; the number of lines.
fn print_replies(stream: UnixStream) -> usize {
    let mut n = 0;
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) => {
                eprintln!("{line}");
                n += 1;
            }
            Err(_) => break,
        }
    }
    n
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("push: {problem}\n{USAGE}");
    ExitCode::from(2)
}

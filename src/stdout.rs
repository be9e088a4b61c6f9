//! Writing a command's output to stdout: a closed pipe (`parlab lessons | head`) is not an error, every other write
//! error is (a full disk, a revoked terminal). Imports nothing of parlab's.

use std::io::{self, Write};

/// Writes `text` to stdout and flushes it. Only `BrokenPipe` is ignored: the reader went away, which is how
/// `| head` ends a command.
pub(crate) fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|_| out.flush()))
}

fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_is_ignored() {
        assert!(ignore_broken_pipe(Err(io::ErrorKind::BrokenPipe.into())).is_ok());
        let full = ignore_broken_pipe(Err(io::Error::from_raw_os_error(libc::ENOSPC)));
        assert_eq!(full.map_err(|e| e.raw_os_error()), Err(Some(libc::ENOSPC)));
        assert!(ignore_broken_pipe(Ok(())).is_ok());
    }
}

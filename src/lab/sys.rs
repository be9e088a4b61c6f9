//! The operating-system helpers every part of the lab shares: pipes, descriptors, fork, wait statuses, the
//! parent-death signal and exact reads. A leaf: it imports nothing of parlab's, only std and libc, so the lab's
//! modes, its demos, the fork server and the worker all build on it without importing each other.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Environment variable naming the pid a child must die with.
pub(crate) const PARENT_ENV: &str = "PARLAB_PARENT_PID";

/// Makes the calling process die when its parent does, and exits now if the parent is already gone.
pub(crate) fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    let expected = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<i32>().ok());
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    if parent == 1 || expected.is_some_and(|p| p != parent) {
        // The parent died before the signal was armed.
        // SAFETY: _exit ends the process at once; nothing needs unwinding.
        unsafe { libc::_exit(3) };
    }
}

/// Forks this process into a child that runs `body` with `stdin` and `stdout` as its fd 0 and 1 and every other
/// descriptor closed, dies with this process, and exits with the code `body` returns (101 if it panics: a panic must
/// never unwind back into the code the child is a copy of). Returns the child's pid.
///
/// # Safety
/// The calling process must be single-threaded (the lab in processes mode or running a demo, the fork server), so
/// the child gets a consistent copy of every lock and of the allocator and may run ordinary Rust code.
pub(crate) unsafe fn fork_child(stdin: RawFd, stdout: RawFd, body: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { fork_child_with(stdin, stdout, None, body) }
}

/// `fork_child`, with one more descriptor put on the child's fd 3 (a pool worker's shared task queue).
///
/// # Safety
/// As `fork_child`.
pub(crate) unsafe fn fork_child_with(
    stdin: RawFd,
    stdout: RawFd,
    extra: Option<RawFd>,
    body: impl FnOnce() -> i32,
) -> io::Result<i32> {
    let parent = std::process::id() as i32;
    // SAFETY: the caller guarantees a single-threaded process (see above).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child: arm the parent-death signal, put the channel on fd 0 and 1, close the rest, run the
        // body, and leave with _exit so nothing of the parent's state is dropped or flushed twice.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(3);
            }
            // The extra descriptor first, out of the way of 0 and 1 (it is never one of them: they are the lab's own).
            let extra = extra.map(|fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10));
            libc::dup2(stdin, 0);
            libc::dup2(stdout, 1);
            match extra {
                Some(fd) if fd >= 0 => {
                    libc::dup2(fd, 3);
                    close_from(4, None);
                }
                Some(_) => libc::_exit(3),
                None => close_from(3, None),
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            libc::_exit(code);
        }
    }
    Ok(pid)
}

/// Forks this process into a child that runs `body` on two fresh pipes (its fd 0 and 1; `extra`, if given, as its
/// fd 3), as `fork_child_with` does. Returns the child's pid, the write end of its input and the read end of its
/// output; the child's ends are closed here once it has them.
///
/// # Safety
/// As `fork_child`.
pub(crate) unsafe fn fork_piped(
    extra: Option<RawFd>,
    body: impl FnOnce() -> i32,
) -> io::Result<(i32, OwnedFd, OwnedFd)> {
    let (task_r, task_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    // SAFETY: the caller's guarantee, passed on.
    let pid = unsafe { fork_child_with(task_r.as_raw_fd(), res_w.as_raw_fd(), extra, body)? };
    Ok((pid, task_w, res_r))
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Closes every descriptor from `from` up, except `keep`.
pub(crate) fn close_from(from: i32, keep: Option<RawFd>) {
    // SAFETY: close_range only closes descriptors of the calling process; the callers own all of them (a freshly
    // forked child that keeps only what it names).
    unsafe {
        match keep {
            Some(k) if k >= from => {
                if k > from {
                    libc::syscall(libc::SYS_close_range, from as u32, (k - 1) as u32, 0u32);
                }
                libc::syscall(libc::SYS_close_range, (k + 1) as u32, u32::MAX, 0u32);
            }
            _ => {
                libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32);
            }
        }
    }
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes all of `bytes` to a blocking descriptor.
pub(crate) fn write_all_fd(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid slice to a descriptor we own.
        let r = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[r as usize..];
    }
    Ok(())
}

/// Makes a pipe 1 MiB: large payloads then move in fewer, larger copies. Failure just keeps the default size.
pub(crate) fn grow_pipe(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
}

/// How a child ended, in words.
pub(crate) fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        if code == 101 { "exited with status 101 (it panicked)".into() } else { format!("exited with status {code}") }
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = match sig {
            libc::SIGKILL => "SIGKILL",
            libc::SIGTERM => "SIGTERM",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGINT => "SIGINT",
            libc::SIGBUS => "SIGBUS",
            _ => "a signal",
        };
        format!("was killed by signal {sig} ({name})")
    } else {
        format!("ended with status {status}")
    }
}

/// Waits for a child and returns its raw status.
pub(crate) fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return status;
        }
    }
}

/// Reads exactly `buf.len()` bytes; false at a clean end of stream before the first byte.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended mid-message")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

//! The process-internals demos (`parlab demo NAME`): real measurements of what makes processes different from
//! threads — start-up cost, separate memory, copy-on-write, moving data, batching, races and locks, shared memory,
//! and the GIL convoy. Each runs inside a lab process like an experiment, streams its lanes and spans, and ends
//! with a `DemoReport` (a short table, a one-line reading, key figures).
//!
//! This module owns the demo names and size limits, the context demos record through, the helpers that start a
//! demo's children by each start method (always from a single-threaded lab), and what those children run.

mod convoy;
mod cow;
mod ipc;
mod isolation;
mod queue_batching;
mod race;
mod shared_memory;
mod start_cost;

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::{Result, anyhow, bail};

use crate::clock::{self, Mark};
use crate::experiment::StartMethod;
use crate::timeline::{DemoFigure, LabEvent, Lane, RunEnd, Span, SpanKind};

use super::forkserver::{ForkServer, Role};
use super::sys;
pub(crate) use super::sys::read_full;
use super::{DEMO_CHILD_ARG, LAB_ARG, Out, PARENT_ENV, finished};
pub(crate) use crate::experiment::demo::{DemoName, DemoSpec};

/// Runs a demo in the lab and streams its events; the demo's report goes out just before the end marker.
pub(crate) fn run(spec: &DemoSpec, out: &mut Out) -> RunEnd {
    // Never trust the wire: the same validation as the caller's.
    let checked = DemoSpec::new(spec.name.name(), Some(spec.size));
    let t0 = clock::now_ns();
    let result = checked.map_err(|e| anyhow!(e)).and_then(|spec| {
        // The fork server comes before any of the demo's state exists.
        let server = if spec.name.needs_forkserver() {
            Some(
                ForkServer::start(out, super::child_entry)
                    .map_err(|e| anyhow!("could not start the forkserver: {e}"))?,
            )
        } else {
            None
        };
        let mut ctx = Ctx { out, next_lane: 0, size: spec.size, server, lab_pid: std::process::id() };
        let report = match spec.name {
            DemoName::StartCost => start_cost::run(&mut ctx),
            DemoName::Isolation => isolation::run(&mut ctx),
            DemoName::Cow => cow::run(&mut ctx),
            DemoName::Ipc => ipc::run(&mut ctx),
            DemoName::QueueBatching => queue_batching::run(&mut ctx),
            DemoName::Race => race::run(&mut ctx),
            DemoName::SharedMemory => shared_memory::run(&mut ctx),
            DemoName::Convoy => convoy::run(&mut ctx),
        };
        report.map(|r| (r, spec.name))
    });
    match result {
        Ok((mut report, name)) => {
            report.name = name.name().to_string();
            report.figures.retain(|f| f.value.is_finite());
            out.emit(&LabEvent::Demo(report));
            finished(t0, 0, 0)
        }
        Err(e) => {
            let mut end = finished(t0, 0, 0);
            end.error = Some(format!("{e:#}"));
            end
        }
    }
}

/// What a demo records through: lanes, spans and notes go straight to the lab's event stream.
pub(crate) struct Ctx<'a> {
    out: &'a mut Out,
    next_lane: u32,
    /// The demo's size (validated against its `SizeRule`).
    pub(crate) size: u64,
    pub(crate) server: Option<ForkServer>,
    pub(crate) lab_pid: u32,
}

impl Ctx<'_> {
    /// A new lane (one thread or process of the demo).
    pub(crate) fn lane(&mut self, label: impl Into<String>, pid: u32, tid: u32) -> u32 {
        let id = self.next_lane;
        self.next_lane += 1;
        self.out.emit(&LabEvent::Lane(Lane { id, pid, tid, label: label.into() }));
        id
    }

    /// Renames or re-homes a lane (e.g. to the pid of the child that used it last).
    pub(crate) fn relabel(&mut self, id: u32, label: impl Into<String>, pid: u32, tid: u32) {
        self.out.emit(&LabEvent::Lane(Lane { id, pid, tid, label: label.into() }));
    }

    pub(crate) fn span(&mut self, lane: u32, kind: SpanKind, start: Mark, end: Mark) {
        self.span_n(lane, 0, 0, kind, start, end);
    }

    pub(crate) fn span_n(&mut self, lane: u32, task: u64, count: u64, kind: SpanKind, start: Mark, end: Mark) {
        // Marks from another process may be a hair apart; a span never ends before it starts.
        let end = Mark { ns: end.ns.max(start.ns), ..end };
        self.out.emit(&LabEvent::Span(Span::between(lane, task, count, kind, start, end)));
        self.out.flush_now_and_then();
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.out.emit(&LabEvent::Note(text.into()));
    }

    /// Sends what was recorded so far, and stops the lab if its caller has gone (its input closed). The demo's
    /// children die with the lab (parent-death signal).
    pub(crate) fn checkpoint(&mut self) {
        self.out.flush();
        let mut fd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        // SAFETY: polling our own stdin with a valid pollfd, without waiting.
        if unsafe { libc::poll(&mut fd, 1, 0) } > 0 {
            let mut b = [0u8; 64];
            // SAFETY: reading into a local buffer from our stdin.
            if unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) } <= 0 {
                // SAFETY: _exit ends the lab at once; nothing needs unwinding.
                unsafe { libc::_exit(4) };
            }
        }
    }

    pub(crate) fn server(&mut self) -> io::Result<&mut ForkServer> {
        self.server.as_mut().ok_or_else(|| io::Error::other("this demo has no forkserver"))
    }
}

/// A figure for a report.
pub(crate) fn fig(name: &str, value: f64, unit: &str) -> DemoFigure {
    DemoFigure { name: name.to_string(), value, unit: unit.to_string() }
}

/// Number of threads of the calling process.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Refuses to fork from a process with more than one thread (the child would inherit locks held by threads that
/// do not exist in it).
fn ensure_single_threaded() -> io::Result<()> {
    let n = thread_count();
    if n != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork: the lab has {n} threads (fork must happen from a single-threaded process)"
        )));
    }
    Ok(())
}

/// A child process of a demo, talking over its input and output.
pub(crate) struct Proc {
    pub(crate) pid: i32,
    pub(crate) method: StartMethod,
    pub(crate) to: Option<File>,
    pub(crate) from: BufReader<File>,
    /// Just before the child was asked for (fork, exec or the request to the server).
    pub(crate) started: Mark,
    /// When the call that started it returned in the lab (for fork: how long `fork()` itself took).
    pub(crate) returned: Mark,
    reaped: bool,
}

impl Proc {
    fn new(pid: i32, method: StartMethod, to: OwnedFd, from: OwnedFd, started: Mark) -> Proc {
        Proc {
            pid,
            method,
            to: Some(File::from(to)),
            from: BufReader::with_capacity(256 * 1024, File::from(from)),
            started,
            returned: Mark::now(),
            reaped: false,
        }
    }

    /// One line of the child's output, without its newline.
    pub(crate) fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.from.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("child {} ended early", self.pid)));
        }
        Ok(line.trim_end().to_string())
    }

    /// Closes the child's input and waits for it to end; returns its raw wait status.
    pub(crate) fn join(&mut self, ctx: &mut Ctx) -> io::Result<i32> {
        if let Some(to) = self.to.take() {
            // A socket's other descriptor (`from`) keeps it open: say end-of-input explicitly. (A pipe refuses
            // with ENOTSOCK, and closing it is enough.)
            // SAFETY: shutdown on a descriptor we own.
            unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
        }
        self.reaped = true;
        if self.method == StartMethod::Forkserver {
            return ctx.server()?.wait(self.pid);
        }
        Ok(sys::reap(self.pid))
    }

    /// Joins and insists on a clean exit.
    pub(crate) fn join_ok(&mut self, ctx: &mut Ctx) -> Result<()> {
        let status = self.join(ctx)?;
        if status != 0 {
            bail!("child {} ({}) {}", self.pid, self.method, sys::describe_status(status));
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signalling our own child (or the server's, which reaps it and has not yet reported it).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            if self.method != StartMethod::Forkserver {
                sys::reap(self.pid);
            }
        }
    }
}

/// Forks the lab (which must be single-threaded) into a child that runs `body` with its input on fd 0 and its
/// output on fd 1, and exits with the code `body` returns. `socket` makes fd 0 and 1 one Unix stream socket (which
/// can also carry descriptors) instead of two pipes.
pub(crate) fn fork_with(
    ctx: &mut Ctx,
    socket: bool,
    body: impl FnOnce(&mut File, &mut File) -> i32,
) -> io::Result<Proc> {
    ensure_single_threaded()?;
    ctx.out.flush();
    let started = Mark::now();
    let child = || {
        // SAFETY: fd 0 and 1 were just set up by fork_child and belong to this child for the rest of its life.
        let (mut i, mut o) = unsafe { (File::from_raw_fd(0), File::from_raw_fd(1)) };
        body(&mut i, &mut o)
    };
    let (pid, to, from) = if socket {
        let (mine, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mine_too = mine.try_clone()?;
        // SAFETY: the lab is single-threaded (checked above).
        let pid = unsafe { sys::fork_child(theirs.as_raw_fd(), theirs.as_raw_fd(), child)? };
        (pid, mine, mine_too)
    } else {
        // SAFETY: the lab is single-threaded (checked above).
        unsafe { sys::fork_piped(None, child)? }
    };
    Ok(Proc::new(pid, StartMethod::Fork, to, from, started))
}

/// Starts a child running `role` (see `child_main`) by the given start method.
pub(crate) fn start_role(ctx: &mut Ctx, method: StartMethod, role: &str) -> io::Result<Proc> {
    match method {
        StartMethod::Fork => {
            let role = role.to_string();
            fork_with(ctx, false, move |_, _| child_main(&role))
        }
        StartMethod::Spawn => {
            let exe = std::env::current_exe()?;
            let started = Mark::now();
            let mut child = Command::new(exe)
                .arg(LAB_ARG)
                .arg(DEMO_CHILD_ARG)
                .arg(role)
                .env(PARENT_ENV, std::process::id().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let to = child.stdin.take().ok_or_else(|| io::Error::other("child has no stdin"))?;
            let from = child.stdout.take().ok_or_else(|| io::Error::other("child has no stdout"))?;
            // SAFETY: into_raw_fd hands over ownership of open descriptors.
            let (to, from) =
                unsafe { (OwnedFd::from_raw_fd(to.into_raw_fd()), OwnedFd::from_raw_fd(from.into_raw_fd())) };
            // Dropping `Child` neither waits nor kills: `Proc` reaps the pid itself.
            Ok(Proc::new(child.id() as i32, StartMethod::Spawn, to, from, started))
        }
        StartMethod::Forkserver => {
            let started = Mark::now();
            let (pid, to, from) = ctx.server()?.fork(&Role::Demo(role.to_string()))?;
            Ok(Proc::new(pid, StartMethod::Forkserver, to, from, started))
        }
    }
}

/// What a demo's child runs when started by spawn (`parlab __lab --demo-child ROLE`) or by the fork server: it
/// serves on fd 0 and 1 and returns its exit code.
pub(crate) fn child_main(role: &str) -> i32 {
    // SAFETY: fd 0 and 1 are this process's input and output; ManuallyDrop leaves them open.
    let (mut input, mut output) =
        unsafe { (ManuallyDrop::new(File::from_raw_fd(0)), ManuallyDrop::new(File::from_raw_fd(1))) };
    match role {
        "noop" => 0,
        "isolation" => isolation::child(&mut input, &mut output),
        _ => {
            eprintln!("parlab: unknown demo child role '{role}'");
            2
        }
    }
}

/// Minor page faults of the calling process so far.
pub(crate) fn minor_faults() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_minflt as u64
}

/// A field of /proc/self/smaps_rollup in KiB (`Private_Dirty`, `Pss`, ...), 0 when unknown.
pub(crate) fn smaps_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory the kernel says is available, in MiB (None when unknown).
pub(crate) fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kib / 1024)
}

/// Refuses a demo size that would need more memory than this machine has free.
pub(crate) fn check_memory(demo: &str, need_mib: u64, size_mib: u64, per_size: u64) -> Result<()> {
    if let Some(avail) = mem_available_mib()
        && need_mib > avail * 8 / 10
    {
        bail!(
            "the {demo} demo at --size {size_mib} needs about {need_mib} MiB of memory and only {avail} MiB is \
             available (try --size {} or less)",
            (avail * 8 / 10 / per_size.max(1)).max(1)
        );
    }
    Ok(())
}

/// An anonymous memory mapping, private or shared with children forked after it was made.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    pub(crate) fn new(len: usize, shared: bool) -> io::Result<Mapping> {
        let flags = libc::MAP_ANONYMOUS | if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len.max(1), libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: ptr.cast(), len })
    }

    /// Maps `len` bytes of a file descriptor (a memfd), shared.
    pub(crate) fn of_fd(fd: RawFd, len: usize, writable: bool) -> io::Result<Mapping> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: mapping a descriptor we hold; the kernel checks the length against the file.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len.max(1), prot, libc::MAP_SHARED, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: ptr.cast(), len })
    }

    /// Asks for 4 KiB pages (no transparent huge pages), so one page fault means one 4 KiB page.
    pub(crate) fn no_huge_pages(&self) {
        // SAFETY: advice on our own mapping; failure only means the kernel keeps its default.
        unsafe { libc::madvise(self.ptr.cast(), self.len, libc::MADV_NOHUGEPAGE) };
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only reference from this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len.max(1)) };
    }
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// A lock that works between threads and between processes sharing memory: a futex word in the memory itself
/// (0 free, 1 taken, 2 taken with waiters), the way glibc and `multiprocessing.Lock`'s semaphore build theirs.
#[repr(C)]
pub(crate) struct FutexLock {
    state: AtomicU32,
}

impl FutexLock {
    /// Takes the lock; true if it had to wait.
    pub(crate) fn lock(&self) -> bool {
        if self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return false;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return true;
            }
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            // SAFETY: FUTEX_WAIT on a valid, aligned u32 that lives as long as the lock; shared (not private)
            // because the lock may sit in memory shared between processes.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.state.as_ptr(),
                    libc::FUTEX_WAIT,
                    2u32,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
        true
    }

    pub(crate) fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            // SAFETY: FUTEX_WAKE of one waiter on the same word.
            unsafe { libc::syscall(libc::SYS_futex, self.state.as_ptr(), libc::FUTEX_WAKE, 1u32) };
        }
    }
}

/// Spins (yielding) until `flag` is set or `timeout_ms` passes; true if it was set.
pub(crate) fn wait_flag(flag: &AtomicBool, timeout_ms: u64) -> bool {
    let deadline = clock::now_ns() + timeout_ms * 1_000_000;
    while !flag.load(Ordering::Acquire) {
        if clock::now_ns() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

pub(crate) fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() { (0.0, 0.0) } else { (min, max) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_demos_and_sizes_out_of_range_are_refused_with_what_is_allowed() {
        let err = DemoSpec::new("cwo", None).unwrap_err();
        assert!(err.starts_with("unknown demo 'cwo' (expected one of: start-cost, isolation, cow"), "{err}");
        assert!(err.ends_with("(did you mean 'cow'?)"), "{err}");
        let err = DemoSpec::new("cow", Some(100_000)).unwrap_err();
        assert_eq!(err, "--size 100000 for the cow demo is out of range (allowed 1..=1024 MiB in the parent's buffer)");
        assert_eq!(DemoSpec::new("race", None), Ok(DemoSpec { name: DemoName::Race, size: 1_000_000 }));
    }

    #[test]
    fn the_futex_lock_keeps_a_shared_count_exact() {
        let lock = FutexLock { state: AtomicU32::new(0) };
        let count = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        lock.lock();
                        let v = count.load(Ordering::Relaxed);
                        count.store(v + 1, Ordering::Relaxed);
                        lock.unlock();
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 80_000);
    }
}

//! The `processes` mode: a pool of worker processes fed chunks of `chunksize` tasks over pipes, like
//! `multiprocessing.Pool`. The lab stays single-threaded here (one poll loop), so forking is safe.
//!
//! Start methods: `spawn` execs a fresh `parlab __worker`; `fork` forks the lab itself (the child keeps a
//! copy-on-write image of the lab's memory and serves on its pipe ends); `forkserver` asks a clean server process,
//! forked before the run's data existed, to fork the workers (see `forkserver.rs`). A forkserver worker is the
//! server's child, so its exit status comes from the server's report instead of our own `waitpid`.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::clock::{self, Mark};
use crate::experiment::{Experiment, StartMethod};
use crate::timeline::{LabEvent, Lane, RunEnd, Span, SpanKind};
use crate::wire::{self, Reader, Writer};

use super::forkserver::{ForkServer, Role};
use super::{Out, PARENT_ENV, WORKER_ARG, finished};

/// Bytes not yet written to a worker: small frames are owned, the payload is shared by every chunk.
enum Piece {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Owned(v) => v,
            Piece::Shared(v) => v,
        }
    }
}

struct Worker {
    n: usize,
    pid: i32,
    /// Forked by the fork server (which reaps it), not by the lab.
    via_server: bool,
    lane: Option<u32>,
    spawned: Mark,
    to: Option<OwnedFd>,
    from: OwnedFd,
    outq: VecDeque<Piece>,
    out_off: usize,
    inbuf: Vec<u8>,
    in_off: usize,
    in_flight: VecDeque<u64>,
    ready: bool,
    exited: bool,
    last_ns: u64,
}

/// A started pool, before and while it runs.
pub(crate) struct Pool {
    workers: Vec<Worker>,
    next_lane: u32,
    /// The fork server, for `--start forkserver`.
    server: Option<ForkServer>,
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
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
fn write_all_fd(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
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

fn grow_pipe(fd: RawFd) {
    // A 1 MiB pipe moves large payloads in fewer, larger copies. Failure just keeps the default size.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

impl Pool {
    /// Starts `exp.workers` workers with the experiment's start method, queueing their init frames.
    fn start(exp: &Experiment, server: Option<ForkServer>, out: &mut Out) -> io::Result<Pool> {
        let mut pool = Pool { workers: Vec::new(), next_lane: 0, server };
        for n in 0..exp.workers as usize {
            let spawned = Mark::now();
            let (pid, to, from) = match exp.start {
                StartMethod::Spawn => spawn_worker()?,
                StartMethod::Fork => {
                    out.flush();
                    fork_worker()?
                }
                StartMethod::Forkserver => match pool.server.as_mut() {
                    Some(server) => server.fork(&Role::Worker)?,
                    None => return Err(io::Error::other("the forkserver was not started")),
                },
            };
            // The init frame goes now, while the pipe is empty (it is far smaller than a pipe buffer, so this never
            // blocks): a worker must not wait for the rest of the pool to be started before it can say hello.
            let mut init = Writer::frame(wire::TAG_INIT, 32);
            init.u64(exp.payload).bytes(exp.workload.to_string().as_bytes());
            write_all_fd(to.as_raw_fd(), &init.finish())?;
            set_nonblocking(to.as_raw_fd())?;
            set_nonblocking(from.as_raw_fd())?;
            if exp.payload > 0 {
                grow_pipe(to.as_raw_fd());
                grow_pipe(from.as_raw_fd());
            }
            pool.workers.push(Worker {
                n,
                pid,
                via_server: exp.start == StartMethod::Forkserver,
                lane: None,
                spawned,
                to: Some(to),
                from,
                outq: VecDeque::new(),
                out_off: 0,
                inbuf: Vec::with_capacity(64 * 1024),
                in_off: 0,
                in_flight: VecDeque::new(),
                ready: false,
                exited: false,
                last_ns: spawned.ns,
            });
        }
        Ok(pool)
    }

    /// Kills every worker still running and reaps them all.
    fn kill_all(&mut self) {
        for i in 0..self.workers.len() {
            let w = &mut self.workers[i];
            w.to = None;
            if w.exited {
                continue;
            }
            if w.via_server && self.server.as_mut().and_then(|s| s.try_status(w.pid)).is_some() {
                // Already ended and reaped by the server: its pid may belong to someone else by now.
                w.exited = true;
                continue;
            }
            // SAFETY: signalling our own worker, which has not been reaped (by us, or by the server as far as
            // its reports say; a pid is only reused after the whole pid space wrapped around).
            unsafe { libc::kill(w.pid, libc::SIGKILL) };
            let _ = self.reap_worker(i);
        }
    }

    /// Closes every worker's input (they exit on EOF) and reaps them.
    fn shut_down(&mut self) {
        for w in &mut self.workers {
            w.to = None;
        }
        for i in 0..self.workers.len() {
            if !self.workers[i].exited {
                let _ = self.reap_worker(i);
            }
        }
    }

    /// Waits for worker `i` to end and says how it ended: from our own `waitpid`, or from the fork server's report.
    fn reap_worker(&mut self, i: usize) -> String {
        let w = &mut self.workers[i];
        w.exited = true;
        if !w.via_server {
            return describe_status(reap(w.pid));
        }
        match self.server.as_mut().map(|s| s.wait(w.pid)) {
            Some(Ok(status)) => describe_status(status),
            Some(Err(e)) => format!("ended, status unknown ({e})"),
            None => "ended, status unknown (no forkserver)".to_string(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn spawn_worker() -> io::Result<(i32, OwnedFd, OwnedFd)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg(WORKER_ARG)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let to = child.stdin.take().ok_or_else(|| io::Error::other("worker has no stdin"))?;
    let from = child.stdout.take().ok_or_else(|| io::Error::other("worker has no stdout"))?;
    // Dropping `Child` neither waits nor kills; the pool reaps the pid itself.
    let pid = child.id() as i32;
    // SAFETY: into_raw_fd hands over ownership of open descriptors.
    Ok(unsafe { (pid, OwnedFd::from_raw_fd(to.into_raw_fd()), OwnedFd::from_raw_fd(from.into_raw_fd())) })
}

/// Forks the (single-threaded) lab into a worker that serves on fresh pipes.
fn fork_worker() -> io::Result<(i32, OwnedFd, OwnedFd)> {
    let (task_r, task_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    // SAFETY: the lab is single-threaded in processes mode (no runtime, no pool threads).
    let pid = unsafe {
        super::fork_child(task_r.as_raw_fd(), res_w.as_raw_fd(), || match crate::worker::serve_fds(0, 1) {
            Ok(()) => 0,
            Err(_) => 2,
        })?
    };
    Ok((pid, task_w, res_r))
}

/// Why the run stopped early.
enum Stop {
    Failed(String),
}

pub(crate) fn run(exp: &Experiment, out: &mut Out) -> RunEnd {
    // The fork server comes first, before the payload or anything else of this run exists: its workers start
    // from that clean image, as Python's forkserver children do.
    let server = if exp.start == StartMethod::Forkserver {
        match ForkServer::start(out) {
            Ok(s) => {
                out.emit(&LabEvent::Note(format!(
                    "forkserver: workers are forked by a server process (pid {}) started before the run, in {:.2} ms",
                    s.pid(),
                    s.launched.1.ns.saturating_sub(s.launched.0.ns) as f64 / 1e6
                )));
                Some(s)
            }
            Err(e) => {
                let mut end = finished(clock::now_ns(), 0, 0);
                end.error = Some(format!("could not start the forkserver: {e}"));
                return end;
            }
        }
    } else {
        None
    };
    let t_before = clock::now_ns();
    let mut pool = match Pool::start(exp, server, out) {
        Ok(p) => p,
        Err(e) => {
            let mut end = finished(t_before, 0, 0);
            end.error = Some(format!("could not start {} worker processes: {e}", exp.workers));
            return end;
        }
    };
    let payload = Arc::new(crate::workload::make_payload(exp.payload as usize));
    let mut st = RunState {
        exp,
        chunks: exp.chunks(),
        next_chunk: 0,
        done: 0,
        sum: 0,
        payload,
        big_payload: exp.payload.saturating_mul(exp.chunksize) >= 8 << 20,
        run_ns: 0,
        dispatch: !exp.warm,
    };
    let mut t0 = t_before;
    if exp.warm {
        // Start the pool before the clock starts: wait until every worker has said hello.
        if let Err(Stop::Failed(msg)) = pump(&mut pool, &mut st, out, |p, _| p.workers.iter().all(|w| w.ready)) {
            pool.kill_all();
            let mut end = finished(t0, 0, 0);
            end.error = Some(msg);
            return end;
        }
        out.emit(&LabEvent::Note("warm pool: workers started before the clock".into()));
        st.dispatch = true;
        t0 = clock::now_ns();
    }
    let result = pump(&mut pool, &mut st, out, |_, st| st.done == st.chunks);
    match result {
        Ok(()) => {
            if !exp.warm {
                // A cold pool's shutdown is part of the measured time, as when a tutorial times `with Pool(...)`.
                pool.shut_down();
            }
            let end = finished(t0, st.sum, exp.tasks);
            pool.shut_down();
            end
        }
        Err(Stop::Failed(msg)) => {
            pool.kill_all();
            let mut end = finished(t0, st.sum, st.done);
            end.error = Some(msg);
            end
        }
    }
}

struct RunState<'a> {
    exp: &'a Experiment,
    chunks: u64,
    next_chunk: u64,
    done: u64,
    sum: u64,
    payload: Arc<Vec<u8>>,
    /// Chunks this large go one at a time (two in flight would hold hundreds of MB per worker).
    big_payload: bool,
    /// Run time of the chunks done so far, to tell tiny chunks from big ones.
    run_ns: u64,
    dispatch: bool,
}

impl RunState<'_> {
    /// Chunks queued per worker. Two keeps a worker busy while its next chunk is on the way, yet leaves the rest
    /// in the shared queue for whoever finishes first (load balance). Chunks that run for microseconds would then
    /// leave workers idle waiting on the dispatcher, so they get a deeper queue (Pool's task queue is unbounded).
    fn depth(&self) -> usize {
        if self.big_payload {
            1
        } else if self.done >= 8 && self.run_ns / self.done < 100_000 {
            8
        } else {
            2
        }
    }
}

/// Queues chunks to every worker with room for more.
fn dispatch(pool: &mut Pool, st: &mut RunState<'_>) {
    if !st.dispatch {
        return;
    }
    for w in pool.workers.iter_mut().filter(|w| !w.exited && w.to.is_some()) {
        let depth = st.depth();
        while w.in_flight.len() < depth && st.next_chunk < st.chunks {
            let c = st.next_chunk;
            st.next_chunk += 1;
            let (first, count) = st.exp.chunk_range(c);
            let per_task = st.exp.payload as usize;
            let mut f = Writer::frame(wire::TAG_CHUNK, 32);
            f.u64(c).u64(first).u64(count).u64(per_task as u64);
            w.outq.push_back(Piece::Owned(f.finish_with(per_task * count as usize)));
            if per_task > 0 {
                for _ in 0..count {
                    w.outq.push_back(Piece::Shared(Arc::clone(&st.payload)));
                }
            }
            w.in_flight.push_back(c);
        }
    }
}

/// Runs the poll loop until `until` holds or a worker fails.
fn pump(
    pool: &mut Pool,
    st: &mut RunState<'_>,
    out: &mut Out,
    until: impl Fn(&Pool, &RunState<'_>) -> bool,
) -> Result<(), Stop> {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(pool.workers.len() * 2 + 1);
    loop {
        dispatch(pool, st);
        if until(pool, st) {
            return Ok(());
        }
        fds.clear();
        fds.push(libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 });
        for w in &pool.workers {
            fds.push(libc::pollfd { fd: w.from.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            let to = w.to.as_ref().map_or(-1, |f| f.as_raw_fd());
            let events = if w.outq.is_empty() { 0 } else { libc::POLLOUT };
            fds.push(libc::pollfd { fd: if events == 0 { -1 } else { to }, events, revents: 0 });
        }
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Stop::Failed(format!("poll failed: {}", io::Error::last_os_error())));
        }
        if fds[0].revents != 0 {
            let mut b = [0u8; 64];
            // SAFETY: reading into a local buffer from our stdin.
            let r = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
            if r <= 0 {
                // The parent closed our input: it no longer wants this run.
                pool.kill_all();
                // SAFETY: _exit ends the lab at once; the workers are already gone.
                unsafe { libc::_exit(4) };
            }
        }
        for i in 0..pool.workers.len() {
            let (rin, rout) = (fds[1 + 2 * i].revents, fds[2 + 2 * i].revents);
            if rout & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0 {
                write_some(&mut pool.workers[i]);
            }
            if rin != 0 {
                let eof = read_some(&mut pool.workers[i]);
                handle_frames(pool, i, st, out)?;
                if eof {
                    return Err(worker_failed(pool, i, st, out));
                }
            }
        }
        out.flush_now_and_then();
    }
}

fn write_some(w: &mut Worker) {
    let Some(to) = w.to.as_ref() else { return };
    while let Some(piece) = w.outq.front() {
        let bytes = &piece.bytes()[w.out_off..];
        // SAFETY: writing from a valid slice to a descriptor we own.
        let r = unsafe { libc::write(to.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if r < 0 {
            // EAGAIN: the pipe is full, try again when poll says so. EPIPE: the worker died; its EOF tells us.
            return;
        }
        w.out_off += r as usize;
        if w.out_off == piece.bytes().len() {
            w.outq.pop_front();
            w.out_off = 0;
        }
    }
}

/// Reads what is available; true at end of stream.
fn read_some(w: &mut Worker) -> bool {
    loop {
        // Make room for at least the frame being read.
        let pending = w.inbuf.len() - w.in_off;
        // The rest of a frame whose length is known (exactly: rounding up past a 100 MB frame would reallocate
        // and copy it), or a block for whatever comes next.
        let rest_of_frame = if pending >= 4 {
            let len = u32::from_le_bytes(w.inbuf[w.in_off..w.in_off + 4].try_into().unwrap_or([0; 4]));
            (len as usize + 4).saturating_sub(pending)
        } else {
            0
        };
        let want = if rest_of_frame > 0 { rest_of_frame } else { 64 * 1024 };
        if w.in_off > 0 && w.in_off == w.inbuf.len() {
            w.inbuf.clear();
            w.in_off = 0;
        }
        if w.inbuf.capacity() - w.inbuf.len() < want {
            w.inbuf.reserve_exact(want);
            crate::wire::advise_huge(&mut w.inbuf);
        }
        let spare = w.inbuf.capacity() - w.inbuf.len();
        let len = w.inbuf.len();
        // SAFETY: reading into the vector's spare capacity, then growing its length by what was read.
        let r = unsafe { libc::read(w.from.as_raw_fd(), w.inbuf.as_mut_ptr().add(len).cast(), spare) };
        if r > 0 {
            // SAFETY: `r` bytes were just initialised by read.
            unsafe { w.inbuf.set_len(len + r as usize) };
            continue;
        }
        return r == 0;
    }
}

fn handle_frames(pool: &mut Pool, i: usize, st: &mut RunState<'_>, out: &mut Out) -> Result<(), Stop> {
    loop {
        let w = &mut pool.workers[i];
        let avail = w.inbuf.len() - w.in_off;
        if avail < 4 {
            break;
        }
        let len = u32::from_le_bytes(w.inbuf[w.in_off..w.in_off + 4].try_into().unwrap_or([0; 4])) as usize;
        if len == 0 || len > wire::MAX_FRAME {
            return Err(Stop::Failed(format!("worker p{} sent a corrupt frame", w.n + 1)));
        }
        if avail < 4 + len {
            break;
        }
        let start = w.in_off + 4;
        w.in_off += 4 + len;
        let tag = w.inbuf[start];
        let body_range = start + 1..start + len;
        match tag {
            wire::TAG_HELLO => {
                let mut r = Reader::new(&pool.workers[i].inbuf[body_range]);
                let (pid, tid) = (r.u32().unwrap_or(0), r.u32().unwrap_or(0));
                let ready = Mark { ns: r.u64().unwrap_or(0), cpu: r.i32().unwrap_or(-1) };
                let lane = pool.next_lane;
                pool.next_lane += 1;
                let w = &mut pool.workers[i];
                w.lane = Some(lane);
                w.ready = true;
                w.last_ns = ready.ns;
                out.emit(&LabEvent::Lane(Lane { id: lane, pid, tid, label: format!("p{}", w.n + 1) }));
                emit_span(out, lane, 0, 0, SpanKind::Startup, w.spawned, ready);
            }
            wire::TAG_RESULT => {
                let w = &mut pool.workers[i];
                let lane = w.lane.unwrap_or(0);
                let body = &w.inbuf[body_range];
                let mut r = Reader::new(body);
                let parsed = (|| -> io::Result<(u64, u64, Vec<wire::WorkerSpan>)> {
                    let chunk = r.u64()?;
                    let sum = r.u64()?;
                    let n = r.u32()?;
                    let spans = (0..n).map(|_| wire::get_worker_span(&mut r)).collect::<io::Result<_>>()?;
                    Ok((chunk, sum, spans))
                })();
                let Ok((chunk, sum, spans)) = parsed else {
                    return Err(Stop::Failed(format!("worker p{} sent a corrupt result", w.n + 1)));
                };
                let (first, count) = st.exp.chunk_range(chunk);
                if r.rest.len() as u64 != st.exp.payload * count {
                    return Err(Stop::Failed(format!(
                        "worker p{} returned {} payload bytes for chunk {chunk}, expected {}",
                        w.n + 1,
                        r.rest.len(),
                        st.exp.payload * count
                    )));
                }
                for s in &spans {
                    emit_span(out, lane, first, count, s.kind, s.start, s.end);
                    w.last_ns = w.last_ns.max(s.end.ns);
                    if s.kind == SpanKind::Run {
                        st.run_ns += s.end.ns.saturating_sub(s.start.ns);
                    }
                }
                if let Some(pos) = w.in_flight.iter().position(|c| *c == chunk) {
                    w.in_flight.remove(pos);
                }
                st.sum = st.sum.wrapping_add(sum);
                st.done += 1;
            }
            wire::TAG_SPAN => {
                let w = &mut pool.workers[i];
                let mut r = Reader::new(&w.inbuf[body_range]);
                if let Ok(s) = wire::get_worker_span(&mut r) {
                    emit_span(out, w.lane.unwrap_or(0), 0, 0, s.kind, s.start, s.end);
                    w.last_ns = w.last_ns.max(s.end.ns);
                }
            }
            other => {
                return Err(Stop::Failed(format!(
                    "worker p{} sent an unknown message (tag {other})",
                    pool.workers[i].n + 1
                )));
            }
        }
    }
    let w = &mut pool.workers[i];
    if w.in_off == w.inbuf.len() {
        w.inbuf.clear();
        w.in_off = 0;
    } else if w.in_off > (1 << 20) {
        w.inbuf.drain(..w.in_off);
        w.in_off = 0;
    }
    Ok(())
}

fn emit_span(out: &mut Out, lane: u32, task: u64, count: u64, kind: SpanKind, start: Mark, end: Mark) {
    out.emit(&LabEvent::Span(Span::between(lane, task, count, kind, start, end)));
}

/// A worker's output ended before the run did: record a failed span and say what happened.
fn worker_failed(pool: &mut Pool, i: usize, st: &RunState<'_>, out: &mut Out) -> Stop {
    let lane = match pool.workers[i].lane {
        Some(l) => l,
        None => {
            let l = pool.next_lane;
            pool.next_lane += 1;
            let w = &pool.workers[i];
            out.emit(&LabEvent::Lane(Lane {
                id: l,
                pid: w.pid as u32,
                tid: w.pid as u32,
                label: format!("p{}", w.n + 1),
            }));
            l
        }
    };
    pool.workers[i].to = None;
    let how = pool.reap_worker(i);
    let w = &pool.workers[i];
    let now = Mark::now();
    let chunk = w.in_flight.front().copied();
    let (task, count) = chunk.map_or((0, 0), |c| st.exp.chunk_range(c));
    emit_span(out, lane, task, count, SpanKind::Failed, Mark { ns: w.last_ns, cpu: -1 }, now);
    let during = match chunk {
        Some(c) => format!(" while running chunk {c} (tasks {task}..{})", task + count),
        None if !w.ready => " while starting".to_string(),
        None => String::new(),
    };
    Stop::Failed(format!("worker p{} (pid {}) {how}{during}; the run was stopped", w.n + 1, w.pid))
}

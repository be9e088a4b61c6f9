//! The `processes` mode: a pool of worker processes fed chunks of `chunksize` tasks over pipes, like
//! `multiprocessing.Pool`. The lab stays single-threaded here (one poll loop), so forking is safe.
//!
//! Dispatch follows CPython's rules: every chunk goes on ONE task queue shared by the whole pool (a pipe all
//! workers read, see `wire::Task`), and each idle worker takes the next chunk itself, one at a time; nothing is
//! queued per worker. With `--api map|imap|imap_unordered` the lab keeps the queue as full as its pipe allows, as
//! Pool's task handler does; with `--api executor` it keeps at most `max_workers + 1` chunks waiting, as
//! ProcessPoolExecutor's call queue does. A chunk with payloads is claimed by the worker that took it, and its
//! payloads follow on that worker's own pipe.
//!
//! Start methods: `spawn` execs a fresh `parlab __worker`; `fork` forks the lab itself (the child keeps a
//! copy-on-write image of the lab's memory and serves on its pipe ends); `forkserver` asks a clean server process,
//! forked before the run's data existed, to fork the workers (see `forkserver.rs`). A forkserver worker is the
//! server's child, so its exit status comes from the server's report instead of our own `waitpid`.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::clock::{self, Mark};
use crate::experiment::{Api, Experiment, StartMethod};
use crate::timeline::{LabEvent, Lane, RunEnd, Span, SpanKind};
use crate::wire::{self, Reader, Writer};

use super::forkserver::{ForkServer, Role};
use super::sys::{self, describe_status, grow_pipe, pipe, reap, set_nonblocking, write_all_fd};
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
    /// The worker's own input: its init frame, then the payloads of the chunks it claims.
    to: Option<OwnedFd>,
    from: OwnedFd,
    outq: VecDeque<Piece>,
    out_off: usize,
    inbuf: Vec<u8>,
    in_off: usize,
    /// The chunk the worker said it holds (a claim for payloads, or the chunk it failed on).
    holding: Option<u64>,
    ready: bool,
    exited: bool,
    /// Its output ended (after the queue closed, once it sent its last spans).
    eof: bool,
    last_ns: u64,
}

/// A started pool, before and while it runs.
pub(crate) struct Pool {
    workers: Vec<Worker>,
    next_lane: u32,
    /// The fork server, for `--start forkserver`.
    server: Option<ForkServer>,
    /// The write end of the shared task queue every worker reads (closed to tell them the run is over).
    queue: Option<OwnedFd>,
}

impl Pool {
    /// Starts `exp.workers` workers with the experiment's start method, sending their init frames. Every worker
    /// gets the read end of one shared task queue as its fd 3.
    fn start(exp: &Experiment, server: Option<ForkServer>, out: &mut Out) -> io::Result<Pool> {
        let (queue_r, queue_w) = pipe()?;
        // Non-blocking for every worker at once (the flag belongs to the pipe end they all share): see `worker::take`.
        set_nonblocking(queue_r.as_raw_fd())?;
        let mut pool = Pool { workers: Vec::new(), next_lane: 0, server, queue: None };
        for n in 0..exp.workers as usize {
            let spawned = Mark::now();
            let (pid, to, from) = match exp.start {
                StartMethod::Spawn => spawn_worker(queue_r.as_raw_fd())?,
                StartMethod::Fork => {
                    out.flush();
                    fork_worker(queue_r.as_raw_fd())?
                }
                StartMethod::Forkserver => match pool.server.as_mut() {
                    Some(server) => server.fork_with(&Role::Worker, Some(queue_r.as_raw_fd()))?,
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
                holding: None,
                ready: false,
                exited: false,
                eof: false,
                last_ns: spawned.ns,
            });
        }
        // Only the workers read the queue (the lab's read end closes here); the lab alone writes it.
        drop(queue_r);
        set_nonblocking(queue_w.as_raw_fd())?;
        pool.queue = Some(queue_w);
        Ok(pool)
    }

    /// Kills every worker still running and reaps them all.
    fn kill_all(&mut self) {
        self.queue = None;
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

    /// Closes the task queue and every worker's input (they exit on EOF), takes the spans they still send, and
    /// reaps them.
    fn shut_down(&mut self, out: &mut Out) {
        self.queue = None;
        for w in &mut self.workers {
            w.to = None;
        }
        self.drain(out);
        for i in 0..self.workers.len() {
            if !self.workers[i].exited {
                let _ = self.reap_worker(i);
            }
        }
    }

    /// Reads what the workers send after the queue closed (their last recorded spans) until each output ends, for
    /// at most two seconds.
    fn drain(&mut self, out: &mut Out) {
        let deadline = clock::now_ns() + 2_000_000_000;
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.workers.len());
        loop {
            fds.clear();
            for w in &self.workers {
                let fd = if w.eof || w.exited { -1 } else { w.from.as_raw_fd() };
                fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
            }
            let now = clock::now_ns();
            if fds.iter().all(|f| f.fd < 0) || now >= deadline {
                return;
            }
            let wait_ms = ((deadline - now) / 1_000_000).clamp(1, 200) as i32;
            // SAFETY: `fds` is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
            for (i, fd) in fds.iter().enumerate() {
                if fd.revents == 0 {
                    continue;
                }
                let eof = read_some(&mut self.workers[i]);
                self.late_frames(i, out);
                self.workers[i].eof |= eof;
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

fn spawn_worker(queue: RawFd) -> io::Result<(i32, OwnedFd, OwnedFd)> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(WORKER_ARG)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the child between fork and exec and only calls dup2 and fcntl, which are
    // async-signal-safe; `queue` is open in the lab and therefore in the child.
    unsafe {
        cmd.pre_exec(move || {
            let r = if queue == crate::worker::QUEUE_FD {
                // Already in place: keep it open across exec.
                libc::fcntl(queue, libc::F_SETFD, 0)
            } else {
                libc::dup2(queue, crate::worker::QUEUE_FD)
            };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    let mut child = cmd.spawn()?;
    let to = child.stdin.take().ok_or_else(|| io::Error::other("worker has no stdin"))?;
    let from = child.stdout.take().ok_or_else(|| io::Error::other("worker has no stdout"))?;
    // Dropping `Child` neither waits nor kills; the pool reaps the pid itself.
    let pid = child.id() as i32;
    // SAFETY: into_raw_fd hands over ownership of open descriptors.
    Ok(unsafe { (pid, OwnedFd::from_raw_fd(to.into_raw_fd()), OwnedFd::from_raw_fd(from.into_raw_fd())) })
}

/// Forks the (single-threaded) lab into a worker that serves on fresh pipes and the shared queue.
fn fork_worker(queue: RawFd) -> io::Result<(i32, OwnedFd, OwnedFd)> {
    // SAFETY: the lab is single-threaded in processes mode (no runtime, no pool threads).
    unsafe { sys::fork_piped(Some(queue), || super::child_entry(&Role::Worker)) }
}

/// Why the run stopped early, in words (a worker died, sent garbage, poll failed).
type Stop = String;

pub(crate) fn run(exp: &Experiment, out: &mut Out) -> RunEnd {
    // The fork server comes first, before the payload or anything else of this run exists: its workers start
    // from that clean image, as Python's forkserver children do.
    let server = if exp.start == StartMethod::Forkserver {
        match ForkServer::start(out, super::child_entry) {
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
        in_flight_limit: exp.api.queue_limit(exp.workers).map(|q| q + u64::from(exp.workers)),
        dispatch: !exp.warm,
    };
    if exp.api != Api::Map {
        out.emit(&LabEvent::Note(api_note(exp)));
    }
    let mut t0 = t_before;
    if exp.warm {
        // Start the pool before the clock starts: wait until every worker has said hello.
        if let Err(msg) = pump(&mut pool, &mut st, out, |p, _| p.workers.iter().all(|w| w.ready)) {
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
                pool.shut_down(out);
            }
            let end = finished(t0, st.sum, exp.tasks);
            pool.shut_down(out);
            end
        }
        Err(msg) => {
            pool.kill_all();
            let mut end = finished(t0, st.sum, st.done);
            end.error = Some(msg);
            end
        }
    }
}

/// What the modelled API does, for the run's notes.
fn api_note(exp: &Experiment) -> String {
    let queue = match exp.api.queue_limit(exp.workers) {
        Some(q) => format!("a shared call queue of at most {q} chunks (max_workers + 1)"),
        None => "one shared task queue".to_string(),
    };
    let order = if exp.api.ordered() { "in input order" } else { "as they complete" };
    format!(
        "api {}: {} rules: default chunksize {}, {queue} that idle workers pull from; Python hands results back {order} \
         (the wall time ends with the last result either way)",
        exp.api,
        exp.api.python(),
        exp.api.default_chunksize(exp.tasks, exp.workers),
    )
}

struct RunState<'a> {
    exp: &'a Experiment,
    chunks: u64,
    /// Chunks written to the shared queue so far.
    next_chunk: u64,
    done: u64,
    sum: u64,
    payload: Arc<Vec<u8>>,
    /// Chunks queued or running at most (ProcessPoolExecutor: every worker busy plus `max_workers + 1` waiting).
    in_flight_limit: Option<u64>,
    dispatch: bool,
}

/// Writes the next chunks into the shared task queue: as many as the pipe takes (Pool's task queue), or up to the
/// executor's limit. Which worker runs a chunk is decided by whichever idle worker reads it first.
fn feed(pool: &mut Pool, st: &mut RunState<'_>) {
    if !st.dispatch {
        return;
    }
    let Some(queue) = pool.queue.as_ref() else { return };
    let mut buf = [0u8; wire::TASKS_PER_WRITE * wire::TASK_FRAME];
    loop {
        let room = st.in_flight_limit.map_or(u64::MAX, |l| l.saturating_sub(st.next_chunk - st.done));
        let n = (st.chunks - st.next_chunk).min(room).min(wire::TASKS_PER_WRITE as u64) as usize;
        if n == 0 {
            return;
        }
        let sent_ns = clock::now_ns();
        let flags = if st.exp.payload > 0 { wire::TASK_HAS_PAYLOAD } else { 0 };
        for k in 0..n {
            let chunk = st.next_chunk + k as u64;
            let (first, count) = st.exp.chunk_range(chunk);
            let task = wire::Task { chunk, first, count: count as u32, flags, sent_ns };
            task.encode(&mut buf[k * wire::TASK_FRAME..(k + 1) * wire::TASK_FRAME]);
        }
        let bytes = &buf[..n * wire::TASK_FRAME];
        // SAFETY: writing from a valid slice to a descriptor we own. At most PIPE_BUF bytes: all or nothing.
        let r = unsafe { libc::write(queue.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if r < 0 {
            // EAGAIN: the queue is full, more when poll says so. EPIPE: every worker is gone; their EOFs tell us.
            return;
        }
        st.next_chunk += n as u64;
    }
}

/// Whether the shared queue has frames waiting to be written.
fn wants_to_feed(pool: &Pool, st: &RunState<'_>) -> bool {
    st.dispatch
        && pool.queue.is_some()
        && st.next_chunk < st.chunks
        && st.in_flight_limit.is_none_or(|l| st.next_chunk - st.done < l)
}

/// Runs the poll loop until `until` holds or a worker fails.
fn pump(
    pool: &mut Pool,
    st: &mut RunState<'_>,
    out: &mut Out,
    until: impl Fn(&Pool, &RunState<'_>) -> bool,
) -> Result<(), Stop> {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(pool.workers.len() * 2 + 2);
    loop {
        feed(pool, st);
        if until(pool, st) {
            return Ok(());
        }
        fds.clear();
        fds.push(libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 });
        let queue_fd = match pool.queue.as_ref() {
            Some(q) if wants_to_feed(pool, st) => q.as_raw_fd(),
            _ => -1,
        };
        fds.push(libc::pollfd { fd: queue_fd, events: libc::POLLOUT, revents: 0 });
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
            return Err(format!("poll failed: {}", io::Error::last_os_error()));
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
            let (rin, rout) = (fds[2 + 2 * i].revents, fds[3 + 2 * i].revents);
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

/// The next whole frame in a worker's input buffer: its tag and the range of its body. `Err` for a corrupt length.
fn next_frame(w: &mut Worker) -> Result<Option<(u8, std::ops::Range<usize>)>, ()> {
    let avail = w.inbuf.len() - w.in_off;
    if avail < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes(w.inbuf[w.in_off..w.in_off + 4].try_into().unwrap_or([0; 4])) as usize;
    if len == 0 || len > wire::MAX_FRAME {
        return Err(());
    }
    if avail < 4 + len {
        return Ok(None);
    }
    let start = w.in_off + 4;
    w.in_off += 4 + len;
    Ok(Some((w.inbuf[start], start + 1..start + len)))
}

/// Drops what was consumed from a worker's input buffer.
fn compact(w: &mut Worker) {
    if w.in_off == w.inbuf.len() {
        w.inbuf.clear();
        w.in_off = 0;
    } else if w.in_off > (1 << 20) {
        w.inbuf.drain(..w.in_off);
        w.in_off = 0;
    }
}

/// Reads `n` spans (after their count) onto `lane`.
fn read_spans(r: &mut Reader<'_>, lane: u32) -> io::Result<Vec<Span>> {
    let n = r.u32()? as usize;
    if n > r.rest.len() / wire::WORKER_SPAN_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "span count beyond the frame"));
    }
    (0..n).map(|_| wire::get_worker_span(r, lane)).collect()
}

impl Pool {
    /// Handles a worker's last frames, after the queue closed: its hello (a worker that started too late to get a
    /// chunk still has a lane) and its last spans. Anything else is ignored: the run is over.
    fn late_frames(&mut self, i: usize, out: &mut Out) {
        while let Ok(Some((tag, body))) = next_frame(&mut self.workers[i]) {
            match tag {
                wire::TAG_HELLO => {
                    let mut r = Reader::new(&self.workers[i].inbuf[body]);
                    let (pid, tid) = (r.u32().unwrap_or(0), r.u32().unwrap_or(0));
                    let ready = Mark { ns: r.u64().unwrap_or(0), cpu: r.i32().unwrap_or(-1) };
                    self.hello(i, pid, tid, ready, out);
                }
                wire::TAG_SPAN => {
                    let w = &self.workers[i];
                    let mut r = Reader::new(&w.inbuf[body]);
                    for s in read_spans(&mut r, w.lane.unwrap_or(0)).unwrap_or_default() {
                        out.emit_span(&s);
                    }
                }
                _ => {}
            }
        }
        compact(&mut self.workers[i]);
    }

    /// A worker said hello: it gets the next lane, and its start-up span.
    fn hello(&mut self, i: usize, pid: u32, tid: u32, ready: Mark, out: &mut Out) {
        let lane = self.next_lane;
        self.next_lane += 1;
        let w = &mut self.workers[i];
        w.lane = Some(lane);
        w.ready = true;
        w.last_ns = ready.ns;
        out.emit(&LabEvent::Lane(Lane { id: lane, pid, tid, label: format!("p{}", w.n + 1) }));
        out.emit_span(&Span::between(lane, 0, 0, SpanKind::Startup, w.spawned, ready));
    }
}

fn handle_frames(pool: &mut Pool, i: usize, st: &mut RunState<'_>, out: &mut Out) -> Result<(), Stop> {
    loop {
        let w = &mut pool.workers[i];
        let Ok(next) = next_frame(w) else {
            return Err(format!("worker p{} sent a corrupt frame", w.n + 1));
        };
        let Some((tag, body_range)) = next else { break };
        match tag {
            wire::TAG_HELLO => {
                let mut r = Reader::new(&pool.workers[i].inbuf[body_range]);
                let (pid, tid) = (r.u32().unwrap_or(0), r.u32().unwrap_or(0));
                let ready = Mark { ns: r.u64().unwrap_or(0), cpu: r.i32().unwrap_or(-1) };
                pool.hello(i, pid, tid, ready, out);
            }
            wire::TAG_RESULT => {
                let w = &mut pool.workers[i];
                let lane = w.lane.unwrap_or(0);
                let mut r = Reader::new(&w.inbuf[body_range]);
                let parsed = (|| -> io::Result<(u64, u64, Vec<Span>)> {
                    let chunk = r.u64()?;
                    let sum = r.u64()?;
                    Ok((chunk, sum, read_spans(&mut r, lane)?))
                })();
                let Ok((chunk, sum, spans)) = parsed else {
                    return Err(format!("worker p{} sent a corrupt result", w.n + 1));
                };
                if chunk >= st.next_chunk {
                    return Err(format!("worker p{} returned chunk {chunk}, which was never queued", w.n + 1));
                }
                let (_, count) = st.exp.chunk_range(chunk);
                if r.rest.len() as u64 != st.exp.payload * count {
                    return Err(format!(
                        "worker p{} returned {} payload bytes for chunk {chunk}, expected {}",
                        w.n + 1,
                        r.rest.len(),
                        st.exp.payload * count
                    ));
                }
                for s in &spans {
                    out.emit_span(s);
                    w.last_ns = w.last_ns.max(s.end_ns);
                }
                w.holding = None;
                st.sum = st.sum.wrapping_add(sum);
                st.done += 1;
            }
            wire::TAG_CLAIM => {
                let w = &mut pool.workers[i];
                let chunk = Reader::new(&w.inbuf[body_range]).u64().unwrap_or(u64::MAX);
                if chunk >= st.next_chunk {
                    return Err(format!("worker p{} claimed chunk {chunk}, which was never queued", w.n + 1));
                }
                w.holding = Some(chunk);
                let (_, count) = st.exp.chunk_range(chunk);
                let per_task = st.exp.payload as usize;
                let mut f = Writer::frame(wire::TAG_PAYLOAD, 16);
                f.u64(chunk).u64(per_task as u64);
                w.outq.push_back(Piece::Owned(f.finish_with(per_task * count as usize)));
                for _ in 0..count {
                    w.outq.push_back(Piece::Shared(Arc::clone(&st.payload)));
                }
                write_some(w);
            }
            wire::TAG_FAILED => {
                let w = &mut pool.workers[i];
                w.holding = Reader::new(&w.inbuf[body_range]).u64().ok();
            }
            wire::TAG_SPAN => {
                let w = &mut pool.workers[i];
                let lane = w.lane.unwrap_or(0);
                let mut r = Reader::new(&w.inbuf[body_range]);
                for s in read_spans(&mut r, lane).unwrap_or_default() {
                    out.emit_span(&s);
                    w.last_ns = w.last_ns.max(s.end_ns);
                }
            }
            other => {
                return Err(format!("worker p{} sent an unknown message (tag {other})", pool.workers[i].n + 1));
            }
        }
    }
    compact(&mut pool.workers[i]);
    Ok(())
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
    let chunk = w.holding;
    let (task, count) = chunk.map_or((0, 0), |c| st.exp.chunk_range(c));
    out.emit_span(&Span::between(lane, task, count, SpanKind::Failed, Mark { ns: w.last_ns, cpu: -1 }, now));
    let during = match chunk {
        Some(c) => format!(" while running chunk {c} (tasks {task}..{})", task + count),
        None if !w.ready => " while starting".to_string(),
        None => String::new(),
    };
    format!("worker p{} (pid {}) {how}{during}; the run was stopped", w.n + 1, w.pid)
}

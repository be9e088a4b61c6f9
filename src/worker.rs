//! The worker process side: take chunks of tasks from the pool's shared task queue, run the kernels, send back
//! checksums, spans and the payload. Used by every start method: exec'd (`spawn`) workers enter through
//! `worker_main`, forked ones call `serve_fds` in the child.
//!
//! A worker has three descriptors: fd 0, its own pipe from the lab (the init frame, then the payloads of the
//! chunks it claims); fd 1, its own pipe to the lab (hello, results, spans); fd 3, the queue every worker of the pool
//! reads (`wire::Task` frames). An idle worker takes the next chunk from the queue, one at a time, as a
//! `multiprocessing.Pool` worker calls `get()` on the pool's task queue: nobody decides in advance which worker runs
//! which chunk.
//!
//! Never imports: the app, the widgets, the lab's client or its modes (only the lab's leaves `sys` and `record`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::process::ExitCode;

use crate::clock::{self, Mark};
use crate::experiment::Workload;
use crate::lab::record::Coalescer;
use crate::timeline::{Span, SpanKind};
use crate::wire::{self, Reader, Task, Writer};
use crate::workload::{self, Plain};

/// Set in tests: the worker panics when it reaches this task, to show a failed lane.
pub(crate) const PANIC_AT_ENV: &str = "PARLAB_TEST_PANIC_AT_TASK";

/// The descriptor a worker reads its pool's shared task queue from.
pub(crate) const QUEUE_FD: i32 = 3;

/// Entry point of `parlab __worker`: serve on stdin, stdout and the queue on fd 3.
pub fn worker_main() -> ExitCode {
    crate::lab::sys::die_with_parent();
    match serve_fds(0, 1, QUEUE_FD) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parlab worker {}: {e}", std::process::id());
            ExitCode::from(2)
        }
    }
}

/// Serves on raw file descriptors (kept open: the process owns them).
pub(crate) fn serve_fds(input: i32, output: i32, queue: i32) -> io::Result<()> {
    // SAFETY: the caller hands over three open descriptors; ManuallyDrop keeps us from closing them twice.
    let (inp, out, queue) = unsafe {
        (
            ManuallyDrop::new(File::from_raw_fd(input)),
            ManuallyDrop::new(File::from_raw_fd(output)),
            ManuallyDrop::new(File::from_raw_fd(queue)),
        )
    };
    serve(&*inp, &*out, queue.as_raw_fd())
}

/// Takes one task frame from the queue: `None` when the lab closed it (the run is over).
///
/// The queue's read end is non-blocking (set once by the lab for every worker), and an idle worker waits in `poll`
/// rather than in `read`: the kernel wakes one blocked pipe reader at a time, as a "sync" wake-up that puts it on
/// the core of the worker that woke it, where it waits for that worker's time slice, milliseconds behind a free
/// core. A write into the queue wakes every poller at once, as releasing Pool's queue lock wakes a waiting worker.
fn take(queue: RawFd) -> io::Result<Option<Task>> {
    let mut frame = [0u8; wire::TASK_FRAME];
    loop {
        // One read of exactly one frame, never more: a worker must not take a second chunk while it has one.
        // SAFETY: reading into a local buffer of the given length from a descriptor this process owns.
        let n = unsafe { libc::read(queue, frame.as_mut_ptr().cast(), frame.len()) };
        if n == wire::TASK_FRAME as isize {
            return Ok(Some(Task::decode(&frame)));
        }
        if n == 0 {
            return Ok(None);
        }
        if n > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the task queue gave a partial frame ({n} bytes)"),
            ));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                let mut fd = libc::pollfd { fd: queue, events: libc::POLLIN, revents: 0 };
                // SAFETY: polling one valid pollfd.
                if unsafe { libc::poll(&mut fd, 1, -1) } < 0
                    && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted
                {
                    return Err(io::Error::last_os_error());
                }
            }
            _ => return Err(e),
        }
    }
}

/// The worker's spans, summed like every lane's (`Coalescer`), waiting to travel with the next frame.
struct Spans {
    coalesce: Coalescer,
    ready: Vec<Span>,
}

impl Spans {
    fn add(&mut self, kind: SpanKind, task: u64, count: u64, start: Mark, end: Mark) {
        let ready = &mut self.ready;
        self.coalesce.push(wire::span_of(kind, task, count, start, end), &mut |s| ready.push(s));
    }

    /// Appends the ready spans (count, then each) to a frame being built.
    fn put(&mut self, w: &mut Writer) {
        w.u32(self.ready.len() as u32);
        for s in self.ready.drain(..) {
            wire::put_worker_span(w, &s);
        }
    }
}

pub(crate) fn serve(input: impl Read, output: impl Write, queue: RawFd) -> io::Result<()> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let mut output = BufWriter::with_capacity(64 * 1024, output);
    let mut body = Vec::new();
    let panic_at: Option<u64> = std::env::var(PANIC_AT_ENV).ok().and_then(|v| v.parse().ok());

    // The first frame names the workload and the payload size per task.
    let workload: Workload = match wire::read_frame(&mut input, &mut body)? {
        Some(wire::TAG_INIT) => {
            let mut r = Reader::new(&body);
            let _payload = r.u64()?;
            let name = std::str::from_utf8(r.rest)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "workload is not UTF-8"))?;
            name.parse().map_err(|e: crate::experiment::ExperimentError| {
                io::Error::new(io::ErrorKind::InvalidData, e.to_string())
            })?
        }
        Some(tag) => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected init, got tag {tag}")));
        }
        None => return Ok(()),
    };
    let ready = Mark::now();
    let mut w = Writer::frame(wire::TAG_HELLO, 24);
    w.u32(std::process::id()).u32(clock::tid()).u64(ready.ns).i32(ready.cpu);
    output.write_all(&w.finish())?;
    output.flush()?;

    let mut spans = Spans { coalesce: Coalescer::new(), ready: Vec::with_capacity(16) };
    let mut waiting = Mark::now();
    loop {
        let Some(task) = take(queue)? else {
            // The queue is closed: the run is over. What is still recorded goes to the lab, which reads until our
            // output ends.
            let ready = &mut spans.ready;
            spans.coalesce.flush(&mut |s| ready.push(s));
            if !spans.ready.is_empty() {
                let mut w = Writer::frame(wire::TAG_SPAN, 4 + spans.ready.len() * wire::WORKER_SPAN_BYTES);
                spans.put(&mut w);
                output.write_all(&w.finish())?;
                output.flush()?;
            }
            return Ok(());
        };
        let took = Mark::now();
        let (chunk, first, count) = (task.chunk, task.first, u64::from(task.count));
        // Taking the frame is message cost from when both sides were there: time before the lab wrote it was idle.
        let from = if task.sent_ns > waiting.ns { Mark { ns: task.sent_ns, cpu: waiting.cpu } } else { waiting };
        spans.add(SpanKind::Ipc, first, count, from, took);

        let mut received = took;
        let mut payloads: &[u8] = &[];
        let mut per_task = 0usize;
        if task.flags & wire::TASK_HAS_PAYLOAD != 0 {
            // Claim the chunk; the lab answers on our own pipe with its payloads.
            let mut w = Writer::frame(wire::TAG_CLAIM, 8);
            w.u64(chunk);
            output.write_all(&w.finish())?;
            output.flush()?;
            match wire::read_frame(&mut input, &mut body)? {
                Some(wire::TAG_PAYLOAD) => {}
                Some(tag) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected tag {tag}"))),
                None => return Ok(()),
            }
            let mut r = Reader::new(&body);
            if r.u64()? != chunk {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "payloads came for another chunk"));
            }
            per_task = (r.u64()?) as usize;
            payloads = r.rest;
            if payloads.len() != per_task * count as usize {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "payload length does not match"));
            }
            received = Mark::now();
            spans.add(SpanKind::Ipc, first, count, took, received);
        }

        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(p) = panic_at
                && (first..first + count).contains(&p)
            {
                panic!("task {p} panicked (asked to by {PANIC_AT_ENV})");
            }
            let mut sum = workload::run_chunk(&workload, first, count, &mut Plain);
            if per_task > 0 {
                for p in payloads.chunks_exact(per_task) {
                    sum = sum.wrapping_add(workload::payload_checksum(p));
                }
            }
            sum
        }));
        let sum = match ran {
            Ok(sum) => sum,
            Err(panic) => {
                // Say which chunk it was before dying of it (status 101, as any panic).
                let mut w = Writer::frame(wire::TAG_FAILED, 8);
                w.u64(chunk);
                let _ = output.write_all(&w.finish()).and_then(|_| output.flush());
                std::panic::resume_unwind(panic);
            }
        };
        let done = Mark::now();
        spans.add(SpanKind::Run, first, count, received, done);

        let mut w = Writer::frame(wire::TAG_RESULT, 24 + (spans.ready.len() + 2) * wire::WORKER_SPAN_BYTES);
        w.u64(chunk).u64(sum);
        spans.put(&mut w);
        // The payloads go back as they came (a round trip, like returning the data from a pool task).
        let frame = w.finish_with(payloads.len());
        let encoded = Mark::now();
        output.write_all(&frame)?;
        if !payloads.is_empty() {
            output.write_all(payloads)?;
        }
        output.flush()?;
        let sent = Mark::now();
        // These two travel with the next result (or at the end): this one is already on its way.
        spans.add(SpanKind::Serialize, first, count, done, encoded);
        spans.add(SpanKind::Ipc, first, count, encoded, sent);
        waiting = sent;
    }
}

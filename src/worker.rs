//! The worker process side: read chunks of tasks from the lab, run the kernels, send back checksums, spans and
//! the payload. Used by every start method: exec'd (`spawn`) workers enter through `worker_main`, forked ones call
//! `serve` in the child.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use crate::clock::{self, Mark};
use crate::experiment::Workload;
use crate::timeline::SpanKind;
use crate::wire::{self, Reader, WorkerSpan, Writer};
use crate::workload::{self, Plain};

/// Set in tests: the worker panics when it reaches this task, to show a failed lane.
pub(crate) const PANIC_AT_ENV: &str = "PARLAB_TEST_PANIC_AT_TASK";

/// Entry point of `parlab __worker`: serve on stdin/stdout.
pub(crate) fn worker_main() -> ExitCode {
    crate::lab::die_with_parent();
    match serve_fds(0, 1) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parlab worker {}: {e}", std::process::id());
            ExitCode::from(2)
        }
    }
}

/// Serves on raw file descriptors (kept open: the process owns them).
pub(crate) fn serve_fds(input: i32, output: i32) -> io::Result<()> {
    // SAFETY: the caller hands over two open descriptors; ManuallyDrop keeps us from closing them twice.
    let (inp, out) =
        unsafe { (ManuallyDrop::new(File::from_raw_fd(input)), ManuallyDrop::new(File::from_raw_fd(output))) };
    serve(&*inp, &*out)
}

pub(crate) fn serve(input: impl Read, output: impl Write) -> io::Result<()> {
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
            name.parse().map_err(|e: String| io::Error::new(io::ErrorKind::InvalidData, e))?
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

    let mut head = [0u8; 4];
    loop {
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let arrived = Mark::now();
        let len = u32::from_le_bytes(head) as usize;
        if len == 0 || len > wire::MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad frame length {len}")));
        }
        wire::read_body(&mut input, &mut body, len)?;
        let received = Mark::now();
        if body[0] != wire::TAG_CHUNK {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected tag {}", body[0])));
        }
        let mut r = Reader::new(&body[1..]);
        let chunk = r.u64()?;
        let first = r.u64()?;
        let count = r.u64()?;
        let per_task = r.u64()? as usize;
        let payloads = r.rest;
        if payloads.len() != per_task * count as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "payload length does not match"));
        }

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
        let done = Mark::now();

        let mut spans = Vec::with_capacity(2);
        if per_task > 0 {
            spans.push(WorkerSpan { kind: SpanKind::Ipc, start: arrived, end: received });
        }
        spans.push(WorkerSpan { kind: SpanKind::Run, start: received, end: done });
        let mut w = Writer::frame(wire::TAG_RESULT, 32 + spans.len() * 25);
        w.u64(chunk).u64(sum).u32(spans.len() as u32);
        for s in &spans {
            wire::put_worker_span(&mut w, s);
        }
        // The payloads go back as they came (a round trip, like returning the data from a pool task).
        output.write_all(&w.finish_with(payloads.len()))?;
        if !payloads.is_empty() {
            output.write_all(payloads)?;
        }
        output.flush()?;
        if per_task > 0 {
            let sent = Mark::now();
            let mut w = Writer::frame(wire::TAG_SPAN, 25);
            wire::put_worker_span(&mut w, &WorkerSpan { kind: SpanKind::Ipc, start: done, end: sent });
            output.write_all(&w.finish())?;
            output.flush()?;
        }
    }
}

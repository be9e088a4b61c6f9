//! The compact binary format spoken over pipes: lab <-> worker messages and the lab's event stream.
//!
//! A frame is `len: u32 LE` (of what follows), `tag: u8`, then the body. Integers are little-endian. Payload bytes
//! travel as they are, after the fixed fields, so a 100 MB payload costs one copy into the pipe and one out.
//!
//! The one exception is the pool's shared task queue: a pipe every worker reads, holding fixed-size task frames of
//! `TASK_FRAME` bytes and no length prefix. Every write into it is a whole number of frames of at most `PIPE_BUF`
//! bytes (atomic), and every read takes exactly one frame (the kernel serialises readers of a pipe), so each frame
//! reaches exactly one worker, whole, without a lock.
//!
//! Never imports: anything but the timeline's types and the clock (both sides of every pipe share it).

use std::io::{self, Read, Write};

use crate::clock::Mark;
use crate::timeline::{LabEvent, Span, SpanKind};

pub(crate) const TAG_INIT: u8 = 1;
/// Lab to worker, on the worker's own pipe: the payloads of a chunk the worker claimed.
pub(crate) const TAG_PAYLOAD: u8 = 3;
pub(crate) const TAG_HELLO: u8 = 10;
pub(crate) const TAG_RESULT: u8 = 11;
/// Worker to lab: "I took this chunk from the queue and need its payloads".
pub(crate) const TAG_CLAIM: u8 = 12;
/// Worker to lab: "this chunk made me fail" (sent just before a worker dies of a panic).
pub(crate) const TAG_FAILED: u8 = 13;
/// Worker to lab: recorded spans that did not travel with a result. Lab to caller: one span.
pub(crate) const TAG_SPAN: u8 = 20;
pub(crate) const TAG_EVENT: u8 = 21;

/// Bytes of one task frame on the shared task queue.
pub(crate) const TASK_FRAME: usize = 32;
/// Task frames per write into the shared queue: one write of at most `PIPE_BUF` (4096 on Linux) bytes is atomic.
pub(crate) const TASKS_PER_WRITE: usize = 4096 / TASK_FRAME;
/// Task frame flag: the chunk's payloads follow on the worker's own pipe once it claims the chunk.
pub(crate) const TASK_HAS_PAYLOAD: u32 = 1;

/// One chunk on the shared task queue. `sent_ns` is when the lab wrote it (a worker's `ipc` span for taking it
/// starts no earlier: time spent waiting for the lab to produce work is idle, not message cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Task {
    pub chunk: u64,
    pub first: u64,
    pub count: u32,
    pub flags: u32,
    pub sent_ns: u64,
}

impl Task {
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.chunk.to_le_bytes());
        out[8..16].copy_from_slice(&self.first.to_le_bytes());
        out[16..20].copy_from_slice(&self.count.to_le_bytes());
        out[20..24].copy_from_slice(&self.flags.to_le_bytes());
        out[24..32].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    pub(crate) fn decode(b: &[u8; TASK_FRAME]) -> Task {
        let u64_at =
            |i: usize| u64::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Task { chunk: u64_at(0), first: u64_at(8), count: u32_at(16), flags: u32_at(20), sent_ns: u64_at(24) }
    }
}

/// Frames larger than this are refused as corrupt (the largest real one is a chunk of payloads).
pub(crate) const MAX_FRAME: usize = 2 * 1024 * 1024 * 1024 - 1;

/// Appends little-endian fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    /// Starts a frame; `finish` fills in its length.
    pub(crate) fn frame(tag: u8, capacity: usize) -> Writer {
        let mut buf = Vec::with_capacity(capacity + 5);
        buf.extend_from_slice(&[0, 0, 0, 0, tag]);
        Writer { buf }
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// Sets the frame length, counting `extra` bytes that will be written after this buffer.
    pub(crate) fn finish_with(mut self, extra: usize) -> Vec<u8> {
        let len = (self.buf.len() - 4 + extra) as u32;
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.finish_with(0)
    }
}

/// Reads little-endian fields from a frame body.
pub(crate) struct Reader<'a> {
    pub rest: &'a [u8],
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "frame too short")
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader { rest: body }
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(short());
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| short())?))
    }
    pub(crate) fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().map_err(|_| short())?))
    }
    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| short())?))
    }
}

/// Reads one frame: `Ok(None)` at a clean end of stream.
pub(crate) fn read_frame(r: &mut impl Read, body: &mut Vec<u8>) -> io::Result<Option<u8>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(head) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad frame length {len}")));
    }
    read_body(r, body, len)?;
    let tag = body[0];
    body.remove(0);
    Ok(Some(tag))
}

/// Reads exactly `len` bytes into `body`, without zero-filling it first (a 100 MB payload would pay for that).
/// Reserves at most `RESERVE_AHEAD` before the bytes arrive, so a corrupt length cannot claim gigabytes up front.
pub(crate) fn read_body(r: &mut impl Read, body: &mut Vec<u8>, len: usize) -> io::Result<()> {
    /// The largest payload a task may carry (256 MiB) plus room for its frame.
    const RESERVE_AHEAD: usize = (256 << 20) + (1 << 20);
    body.clear();
    let ahead = len.min(RESERVE_AHEAD);
    if body.capacity() < ahead {
        body.reserve_exact(ahead);
        advise_huge(body);
    }
    let got = r.take(len as u64).read_to_end(body)?;
    if got != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a frame"));
    }
    Ok(())
}

/// Asks for transparent huge pages on a large buffer's spare capacity: a 100 MB payload then takes ~50 page faults
/// instead of ~25,000. Only advice; where THP is off nothing changes.
pub(crate) fn advise_huge(buf: &mut Vec<u8>) {
    const HUGE: usize = 2 << 20;
    let cap = buf.capacity();
    if cap < 4 * HUGE {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE);
    let end = (start + cap) & !(HUGE - 1);
    if end > aligned {
        // SAFETY: the range lies inside the vector's own allocation; MADV_HUGEPAGE changes no contents.
        unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
    }
}

pub(crate) fn kind_code(kind: SpanKind) -> u8 {
    match kind {
        SpanKind::Startup => 0,
        SpanKind::Run => 1,
        SpanKind::GilWait => 2,
        SpanKind::Ipc => 3,
        SpanKind::Serialize => 4,
        SpanKind::Idle => 5,
        SpanKind::Failed => 6,
    }
}

pub(crate) fn kind_from_code(code: u8) -> io::Result<SpanKind> {
    Ok(match code {
        0 => SpanKind::Startup,
        1 => SpanKind::Run,
        2 => SpanKind::GilWait,
        3 => SpanKind::Ipc,
        4 => SpanKind::Serialize,
        5 => SpanKind::Idle,
        6 => SpanKind::Failed,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad span kind")),
    })
}

/// Bytes of one span as a worker sends it.
pub(crate) const WORKER_SPAN_BYTES: usize = 41;

/// A span as a worker reports it: everything but the lane, which the lab knows from the pipe it came on.
pub(crate) fn put_worker_span(w: &mut Writer, s: &Span) {
    w.u8(kind_code(s.kind)).u64(s.task).u64(s.count).u64(s.start_ns).u64(s.end_ns).i32(s.cpu_start).i32(s.cpu_end);
}

/// Reads a worker's span and puts it on `lane`.
pub(crate) fn get_worker_span(r: &mut Reader<'_>, lane: u32) -> io::Result<Span> {
    let kind = kind_from_code(r.u8()?)?;
    let (task, count) = (r.u64()?, r.u64()?);
    let (start_ns, end_ns) = (r.u64()?, r.u64()?);
    let (cpu_start, cpu_end) = (r.i32()?, r.i32()?);
    Ok(Span { lane, task, count, kind, start_ns, end_ns, cpu_start, cpu_end })
}

/// A span between two marks, for code that has marks rather than a lane (the lane is filled in later).
pub(crate) fn span_of(kind: SpanKind, task: u64, count: u64, start: Mark, end: Mark) -> Span {
    Span::between(0, task, count, kind, start, end)
}

/// Bytes of a span event frame (length, tag and body).
const SPAN_EVENT_BYTES: usize = 4 + 1 + 45;

/// A span event frame, built on the stack: spans are most of the event stream, so they cost no allocation.
fn span_frame(s: &Span) -> [u8; SPAN_EVENT_BYTES] {
    let mut b = [0u8; SPAN_EVENT_BYTES];
    b[0..4].copy_from_slice(&((SPAN_EVENT_BYTES - 4) as u32).to_le_bytes());
    b[4] = TAG_SPAN;
    b[5..9].copy_from_slice(&s.lane.to_le_bytes());
    b[9..17].copy_from_slice(&s.task.to_le_bytes());
    b[17..25].copy_from_slice(&s.count.to_le_bytes());
    b[25] = kind_code(s.kind);
    b[26..34].copy_from_slice(&s.start_ns.to_le_bytes());
    b[34..42].copy_from_slice(&s.end_ns.to_le_bytes());
    b[42..46].copy_from_slice(&s.cpu_start.to_le_bytes());
    b[46..50].copy_from_slice(&s.cpu_end.to_le_bytes());
    b
}

/// Writes one span event.
pub(crate) fn write_span(w: &mut impl Write, s: &Span) -> io::Result<()> {
    w.write_all(&span_frame(s))
}

/// Encodes a lab event: spans in binary (they are most of the stream), the rest as JSON.
pub(crate) fn encode_event(ev: &LabEvent) -> Vec<u8> {
    match ev {
        LabEvent::Span(s) => span_frame(s).to_vec(),
        other => {
            let json = serde_json::to_vec(other).unwrap_or_default();
            let mut w = Writer::frame(TAG_EVENT, json.len());
            w.bytes(&json);
            w.finish()
        }
    }
}

pub(crate) fn decode_event(tag: u8, body: &[u8]) -> io::Result<LabEvent> {
    match tag {
        TAG_SPAN => {
            let mut r = Reader::new(body);
            let lane = r.u32()?;
            let task = r.u64()?;
            let count = r.u64()?;
            let kind = kind_from_code(r.u8()?)?;
            Ok(LabEvent::Span(Span {
                lane,
                task,
                count,
                kind,
                start_ns: r.u64()?,
                end_ns: r.u64()?,
                cpu_start: r.i32()?,
                cpu_end: r.i32()?,
            }))
        }
        TAG_EVENT => serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unknown event tag {tag}"))),
    }
}

/// Writes every event as a frame.
pub(crate) fn write_event(w: &mut impl Write, ev: &LabEvent) -> io::Result<()> {
    match ev {
        LabEvent::Span(s) => write_span(w, s),
        other => w.write_all(&encode_event(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Lane, RunEnd};

    #[test]
    fn events_round_trip_through_frames() {
        let events = vec![
            LabEvent::Started { lab_pid: 3, t0_ns: 9, cores: 2 },
            LabEvent::Lane(Lane { id: 1, pid: 4, tid: 5, label: "p1".into() }),
            LabEvent::Span(Span {
                lane: 1,
                task: 7,
                count: 2,
                kind: SpanKind::GilWait,
                start_ns: 10,
                end_ns: 20,
                cpu_start: 1,
                cpu_end: -1,
            }),
            LabEvent::Finished(RunEnd { t0_ns: 1, t_end_ns: 2, checksum: 3, tasks_done: 4, error: None }),
        ];
        let mut stream = Vec::new();
        for e in &events {
            write_event(&mut stream, e).unwrap();
        }
        let mut r = &stream[..];
        let mut body = Vec::new();
        let mut back = Vec::new();
        while let Some(tag) = read_frame(&mut r, &mut body).unwrap() {
            back.push(decode_event(tag, &body).unwrap());
        }
        assert_eq!(back, events);
    }

    #[test]
    fn task_frames_round_trip_in_their_fixed_size() {
        let t = Task { chunk: 7, first: 700, count: 100, flags: TASK_HAS_PAYLOAD, sent_ns: 123_456_789 };
        let mut b = [0u8; TASK_FRAME];
        t.encode(&mut b);
        assert_eq!(Task::decode(&b), t);
        assert_eq!(TASKS_PER_WRITE * TASK_FRAME, 4096, "a batch of task frames must be one atomic pipe write");
    }

    #[test]
    fn worker_spans_round_trip_with_their_tasks() {
        let s = Span {
            lane: 0,
            task: 5,
            count: 3,
            kind: SpanKind::Serialize,
            start_ns: 1,
            end_ns: 2,
            cpu_start: 0,
            cpu_end: 1,
        };
        let mut w = Writer::frame(TAG_SPAN, 64);
        put_worker_span(&mut w, &s);
        let frame = w.finish();
        assert_eq!(frame.len(), 5 + WORKER_SPAN_BYTES);
        let mut r = Reader::new(&frame[5..]);
        assert_eq!(get_worker_span(&mut r, 9).unwrap(), Span { lane: 9, ..s });
    }

    #[test]
    fn a_truncated_frame_is_an_error_not_a_panic() {
        let frame = encode_event(&LabEvent::Note("hello".into()));
        let mut r = &frame[..frame.len() - 2];
        assert!(read_frame(&mut r, &mut Vec::new()).is_err());
    }
}

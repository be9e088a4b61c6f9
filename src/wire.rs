//! The compact binary format spoken over pipes: lab <-> worker messages and the lab's event stream.
//!
//! A frame is `len: u32 LE` (of what follows), `tag: u8`, then the body. Integers are little-endian. Payload bytes
//! travel as they are, after the fixed fields, so a 100 MB payload costs one copy into the pipe and one out.

use std::io::{self, Read, Write};

use crate::clock::Mark;
use crate::timeline::{LabEvent, Span, SpanKind};

pub(crate) const TAG_INIT: u8 = 1;
pub(crate) const TAG_CHUNK: u8 = 2;
pub(crate) const TAG_HELLO: u8 = 10;
pub(crate) const TAG_RESULT: u8 = 11;
pub(crate) const TAG_SPAN: u8 = 20;
pub(crate) const TAG_EVENT: u8 = 21;

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
pub(crate) fn read_body(r: &mut impl Read, body: &mut Vec<u8>, len: usize) -> io::Result<()> {
    body.clear();
    if body.capacity() < len {
        body.reserve_exact(len);
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

/// A span as a worker reports it (its lane is known from the pipe it came on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WorkerSpan {
    pub kind: SpanKind,
    pub start: Mark,
    pub end: Mark,
}

pub(crate) fn put_worker_span(w: &mut Writer, s: &WorkerSpan) {
    w.u8(kind_code(s.kind)).u64(s.start.ns).u64(s.end.ns).i32(s.start.cpu).i32(s.end.cpu);
}

pub(crate) fn get_worker_span(r: &mut Reader<'_>) -> io::Result<WorkerSpan> {
    let kind = kind_from_code(r.u8()?)?;
    let (s, e) = (r.u64()?, r.u64()?);
    let (cs, ce) = (r.i32()?, r.i32()?);
    Ok(WorkerSpan { kind, start: Mark { ns: s, cpu: cs }, end: Mark { ns: e, cpu: ce } })
}

/// Encodes a lab event: spans in binary (they are most of the stream), the rest as JSON.
pub(crate) fn encode_event(ev: &LabEvent) -> Vec<u8> {
    match ev {
        LabEvent::Span(s) => {
            let mut w = Writer::frame(TAG_SPAN, 46);
            w.u32(s.lane).u64(s.task).u64(s.count).u8(kind_code(s.kind));
            w.u64(s.start_ns).u64(s.end_ns).i32(s.cpu_start).i32(s.cpu_end);
            w.finish()
        }
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
    w.write_all(&encode_event(ev))
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
    fn a_truncated_frame_is_an_error_not_a_panic() {
        let frame = encode_event(&LabEvent::Note("hello".into()));
        let mut r = &frame[..frame.len() - 2];
        assert!(read_frame(&mut r, &mut Vec::new()).is_err());
    }
}

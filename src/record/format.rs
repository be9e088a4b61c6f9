//! The recording format, version 1 (the spec, field by field, is docs/recording.md): gzip-compressed text of two
//! JSON lines, a small header (format, version, parlab version, when, machine, engine, kind, a summary for
//! listings) and the runs, with spans as compact arrays and times as nanoseconds from each run's origin.
//!
//! Encoding and decoding are pure over bytes (`encode`, `decode`, `decode_header`); `write`, `read` and
//! `read_header` add the file. Reading never panics and trusts nothing: the input is bounded (`MAX_FILE_BYTES`
//! read, `MAX_TEXT_BYTES` unpacked), every list has a bound checked while it is parsed, and the result is validated
//! (spans name existing lanes, start <= end, knobs in range) with the same checks `encode` makes before writing.
//! Each problem is one `RecordError` that names the file and what is wrong.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{
    CoreSample, Engine, FORMAT_NAME, FORMAT_VERSION, Kind, Machine, RecordedJob, RecordedRun, Recording, Samples,
};
use crate::experiment::demo::DemoSpec;
use crate::experiment::{
    Api, Experiment, MAX_PAYLOAD, MAX_SWITCH_US, MAX_TASKS, MAX_WORKERS, MIN_SWITCH_US, Mode, StartMethod, Workload,
};
use crate::timeline::{DemoFigure, DemoReport, Lane, RunEnd, Span, SpanKind, Timeline};

/// The most bytes read from a recording file (compressed or not).
pub(crate) const MAX_FILE_BYTES: u64 = 256 << 20;
/// The most bytes of JSON a recording may unpack to: a gzip bomb stops here.
pub(crate) const MAX_TEXT_BYTES: u64 = 256 << 20;
/// The header line is a few hundred bytes; one longer than this is not a header.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Runs in one recording (a compare of every mode, with room to spare).
pub(crate) const MAX_RUNS: usize = 16;
pub(crate) const MAX_LANES: usize = 100_000;
/// Spans in one run (a million-task run with chunksize 1 records about three per chunk).
pub(crate) const MAX_SPANS: usize = 5_000_000;
/// Samples of one source (system or parlab) in one run: 7 hours at the monitor's fastest rate.
pub(crate) const MAX_SAMPLES: usize = 100_000;
pub(crate) const MAX_CORES: usize = 4096;
const MAX_NOTES: usize = 1_000;
const MAX_WALLS: usize = 1_000;
/// Bytes in one note, error or demo reading.
const MAX_TEXT: usize = 64 * 1024;
/// Bytes in one name (a lane label, a machine fact, a table cell).
const MAX_NAME: usize = 1_024;
const MAX_ROWS: usize = 10_000;
const MAX_COLUMNS: usize = 64;
const MAX_FIGURES: usize = 1_000;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What is wrong with a recording file, as data; `RecordError` says it with the file's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    Missing,
    NotAFile,
    Unreadable(String),
    TooLarge(String),
    /// Not a parlab recording: why it is taken for something else.
    Foreign(String),
    Truncated(String),
    Damaged(String),
    Newer {
        found: u64,
    },
    /// A field out of range or of the wrong shape, with its path (`runs[0].spans[41]: ...`).
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "no such file"),
            Problem::NotAFile => write!(f, "not a regular file (a recording is a file)"),
            Problem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            Problem::TooLarge(what) => write!(f, "too large: {what}"),
            Problem::Foreign(why) => write!(f, "not a parlab recording ({why})"),
            Problem::Truncated(what) => write!(f, "truncated: {what}"),
            Problem::Damaged(what) => write!(f, "damaged: {what}"),
            Problem::Newer { found } => {
                write!(f, "recording format {found} is newer than this parlab reads ({FORMAT_VERSION}); update parlab")
            }
            Problem::Invalid(what) => write!(f, "not a valid recording: {what}"),
        }
    }
}

/// A recording that cannot be read: `run.parlab: truncated: the runs end early (...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordError {
    /// The file as the user named it.
    pub file: String,
    pub problem: Problem,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

impl std::error::Error for RecordError {}

/// Text from a file, fit for one line of a terminal: control characters replaced, at most `max` characters.
pub(crate) fn shown(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

// ---- raw types: the format as written, before validation ----

/// A list that refuses, while it is parsed, to grow past `N` items (so a hostile file cannot make it huge).
#[derive(Debug)]
struct Bounded<T, const N: usize>(Vec<T>);

impl<T: Serialize, const N: usize> Serialize for Bounded<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Items<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(de::Error::custom(format!("more than {N} items (at most {N} allowed)")));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }
        d.deserialize_seq(Items(PhantomData))
    }
}

/// The short facts a listing shows, kept in the header so a listing never reads the runs. Written from the runs;
/// a reader of the whole recording goes by the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub title: String,
    /// Each run's mode (or `demo NAME`), in order.
    pub modes: Vec<String>,
    /// Each run's median wall time, ms.
    pub walls_ms: Vec<f64>,
    /// Spans in all runs.
    pub spans: u64,
    /// Whether a run failed.
    pub failed: bool,
}

#[derive(Serialize, Deserialize)]
struct RawHeader {
    format: String,
    version: u32,
    parlab: String,
    made: String,
    machine: Machine,
    engine: Engine,
    kind: Kind,
    baseline: Option<usize>,
    summary: Summary,
}

/// A recording's header: what a listing needs, read without the runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Header {
    pub version: u32,
    pub parlab_version: String,
    pub made: String,
    pub machine: Machine,
    pub engine: Engine,
    pub kind: Kind,
    pub baseline: Option<usize>,
    pub summary: Summary,
}

#[derive(Serialize, Deserialize)]
struct RawBody {
    runs: Bounded<RawRun, MAX_RUNS>,
}

#[derive(Serialize, Deserialize)]
struct RawRun {
    job: RawJob,
    parent_pid: u32,
    lab_pid: u32,
    cores: u32,
    /// Raw CLOCK_MONOTONIC ns that every other time of the run counts from.
    origin_ns: u64,
    t0: u64,
    end: Option<RawEnd>,
    walls_ns: Bounded<u64, MAX_WALLS>,
    notes: Bounded<String, MAX_NOTES>,
    demo_report: Option<RawDemoReport>,
    lanes: Bounded<RawLane, MAX_LANES>,
    spans: Bounded<RawSpan, MAX_SPANS>,
    samples: RawSamples,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawJob {
    Experiment(RawExperiment),
    Demo(RawDemo),
}

#[derive(Serialize, Deserialize)]
struct RawExperiment {
    workload: String,
    tasks: u64,
    mode: String,
    workers: u32,
    chunksize: u64,
    chunksize_given: bool,
    start: String,
    switch_interval_us: u64,
    payload: u64,
    warm: bool,
    /// The Python pool API the processes mode followed (absent in recordings made before it existed: `map`).
    #[serde(default = "default_api")]
    api: String,
    /// What ran it: `native` or `python` (absent in recordings made before the python engine: `native`).
    #[serde(default = "default_engine")]
    engine: String,
    /// The python engine's interpreter (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    python: Option<crate::experiment::PythonRef>,
}

fn default_api() -> String {
    Api::Map.name().to_string()
}

fn default_engine() -> String {
    crate::experiment::Engine::Native.name().to_string()
}

#[derive(Serialize, Deserialize)]
struct RawDemo {
    name: String,
    size: u64,
}

#[derive(Serialize, Deserialize)]
struct RawEnd {
    t0: u64,
    t_end: u64,
    checksum: u64,
    tasks_done: u64,
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RawLane {
    id: u32,
    pid: u32,
    tid: u32,
    label: String,
}

/// `[lane, task, count, kind, start, end, cpu_start, cpu_end]`, times from the run's origin.
type RawSpan = (u32, u64, u64, SpanKind, u64, u64, i32, i32);
/// `[at, interval_ns, [pct per core]]`, `at` from the run's origin.
type RawSample = (u64, u64, Bounded<f32, MAX_CORES>);

#[derive(Serialize, Deserialize)]
struct RawSamples {
    system: Bounded<RawSample, MAX_SAMPLES>,
    parlab: Bounded<RawSample, MAX_SAMPLES>,
}

#[derive(Serialize, Deserialize)]
struct RawDemoReport {
    name: String,
    title: String,
    columns: Bounded<String, MAX_COLUMNS>,
    rows: Bounded<Bounded<String, MAX_COLUMNS>, MAX_ROWS>,
    reading: String,
    figures: Bounded<RawFigure, MAX_FIGURES>,
}

#[derive(Serialize, Deserialize)]
struct RawFigure {
    name: String,
    value: f64,
    unit: String,
}

// ---- validation: one set of checks for what is written and what is read ----

fn check_text(path: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{path}: {} bytes of text (at most {max} allowed)", text.len()));
    }
    Ok(())
}

fn check_len(path: &str, len: usize, max: usize, what: &str) -> Result<(), String> {
    if len > max {
        return Err(format!("{path}: {len} {what} (at most {max} allowed)"));
    }
    Ok(())
}

fn check_header(h: &Header) -> Result<(), String> {
    if h.parlab_version.is_empty() {
        return Err("parlab: the parlab version is empty".to_string());
    }
    check_text("parlab", &h.parlab_version, 64)?;
    check_text("made", &h.made, 64)?;
    if humantime::parse_rfc3339_weak(&h.made).is_err() {
        return Err(format!("made: '{}' is not an RFC 3339 time (like 2025-03-01T10:15:30Z)", shown(&h.made, 40)));
    }
    let m = &h.machine;
    if m.cores == 0 || m.cores as usize > MAX_CORES {
        return Err(format!("machine.cores: {} is out of range (allowed 1..={MAX_CORES})", m.cores));
    }
    check_text("machine.cpu_model", &m.cpu_model, MAX_NAME)?;
    check_text("machine.os", &m.os, MAX_NAME)?;
    check_text("machine.kernel", &m.kernel, MAX_NAME)?;
    if h.engine.name.is_empty() {
        return Err("engine.name: the engine's name is empty".to_string());
    }
    check_text("engine.name", &h.engine.name, 64)?;
    if let Some(i) = &h.engine.interpreter {
        check_text("engine.interpreter.path", &i.path, 4096)?;
        check_text("engine.interpreter.version", &i.version, MAX_NAME)?;
    }
    let s = &h.summary;
    check_text("summary.title", &s.title, MAX_NAME)?;
    check_len("summary.modes", s.modes.len(), MAX_RUNS, "modes")?;
    check_len("summary.walls_ms", s.walls_ms.len(), MAX_RUNS, "wall times")?;
    for (i, m) in s.modes.iter().enumerate() {
        check_text(&format!("summary.modes[{i}]"), m, MAX_NAME)?;
    }
    Ok(())
}

fn check_experiment(path: &str, e: &Experiment) -> Result<(), String> {
    let range = |what: &str, v: u64, lo: u64, hi: u64| {
        if v < lo || v > hi { Err(format!("{path}.{what}: {v} is out of range (allowed {lo}..={hi})")) } else { Ok(()) }
    };
    range("tasks", e.tasks, 1, MAX_TASKS)?;
    range("workers", u64::from(e.workers), 1, u64::from(MAX_WORKERS))?;
    range("chunksize", e.chunksize, 1, e.tasks)?;
    range("switch_interval_us", e.switch_interval_us, MIN_SWITCH_US, MAX_SWITCH_US)?;
    range("payload", e.payload, 0, MAX_PAYLOAD)
}

fn check_run(path: &str, r: &RecordedRun) -> Result<(), String> {
    match &r.job {
        RecordedJob::Experiment(e) => check_experiment(&format!("{path}.job.experiment"), e)?,
        RecordedJob::Demo(d) => {
            DemoSpec::new(d.name.name(), Some(d.size)).map_err(|e| format!("{path}.job.demo: {e}"))?;
        }
    }
    let t = &r.timeline;
    if t.cores as usize > MAX_CORES {
        return Err(format!("{path}.cores: {} is out of range (allowed 0..={MAX_CORES})", t.cores));
    }
    check_len(&format!("{path}.lanes"), t.lanes.len(), MAX_LANES, "lanes")?;
    let mut ids = HashSet::with_capacity(t.lanes.len());
    for (i, l) in t.lanes.iter().enumerate() {
        if !ids.insert(l.id) {
            return Err(format!("{path}.lanes[{i}]: lane id {} is used twice", l.id));
        }
        check_text(&format!("{path}.lanes[{i}].label"), &l.label, MAX_NAME)?;
    }
    check_len(&format!("{path}.spans"), t.spans.len(), MAX_SPANS, "spans")?;
    for (i, s) in t.spans.iter().enumerate() {
        if !ids.contains(&s.lane) {
            return Err(format!("{path}.spans[{i}]: lane {} is not one of the run's lanes", s.lane));
        }
        if s.start_ns > s.end_ns {
            return Err(format!("{path}.spans[{i}]: it starts after it ends ({} ns > {} ns)", s.start_ns, s.end_ns));
        }
        for (what, cpu) in [("cpu_start", s.cpu_start), ("cpu_end", s.cpu_end)] {
            if cpu < -1 || cpu >= MAX_CORES as i32 {
                return Err(format!("{path}.spans[{i}].{what}: {cpu} is out of range (allowed -1..{MAX_CORES})"));
            }
        }
        if s.task > MAX_TASKS || s.count > MAX_TASKS {
            return Err(format!(
                "{path}.spans[{i}]: task {} × {} is out of range (at most {MAX_TASKS})",
                s.task, s.count
            ));
        }
    }
    if let Some(e) = &t.end {
        if e.t0_ns > e.t_end_ns {
            return Err(format!("{path}.end: the run ends before it starts ({} ns > {} ns)", e.t0_ns, e.t_end_ns));
        }
        if let Some(err) = &e.error {
            check_text(&format!("{path}.end.error"), err, MAX_TEXT)?;
        }
    }
    check_len(&format!("{path}.walls_ns"), r.walls_ns.len(), MAX_WALLS, "wall times")?;
    check_len(&format!("{path}.notes"), t.notes.len(), MAX_NOTES, "notes")?;
    for (i, n) in t.notes.iter().enumerate() {
        check_text(&format!("{path}.notes[{i}]"), n, MAX_TEXT)?;
    }
    if let Some(d) = &t.demo {
        let p = format!("{path}.demo_report");
        check_text(&format!("{p}.title"), &d.title, MAX_NAME)?;
        check_text(&format!("{p}.reading"), &d.reading, MAX_TEXT)?;
        check_len(&format!("{p}.columns"), d.columns.len(), MAX_COLUMNS, "columns")?;
        check_len(&format!("{p}.rows"), d.rows.len(), MAX_ROWS, "rows")?;
        check_len(&format!("{p}.figures"), d.figures.len(), MAX_FIGURES, "figures")?;
        for (i, row) in d.rows.iter().enumerate() {
            check_len(&format!("{p}.rows[{i}]"), row.len(), MAX_COLUMNS, "cells")?;
            for (j, cell) in row.iter().enumerate() {
                check_text(&format!("{p}.rows[{i}][{j}]"), cell, MAX_NAME)?;
            }
        }
        for (i, f) in d.figures.iter().enumerate() {
            if !f.value.is_finite() {
                return Err(format!("{p}.figures[{i}]: the value is not a finite number"));
            }
        }
    }
    for (source, list) in [("system", &r.samples.system), ("parlab", &r.samples.parlab)] {
        let p = format!("{path}.samples.{source}");
        check_len(&p, list.len(), MAX_SAMPLES, "samples")?;
        for (i, s) in list.iter().enumerate() {
            check_len(&format!("{p}[{i}]"), s.pct.len(), MAX_CORES, "cores")?;
            if let Some((c, v)) = s.pct.iter().enumerate().find(|(_, v)| !(0.0..=100.0).contains(*v)) {
                return Err(format!("{p}[{i}]: core {c} at {v}% is out of range (allowed 0..=100)"));
            }
        }
    }
    Ok(())
}

fn check_recording(rec: &Recording) -> Result<(), String> {
    check_header(&header_of(rec))?;
    match (rec.kind, rec.runs.len()) {
        (_, 0) => return Err("runs: there are no runs".to_string()),
        (Kind::Run, n) if n > 1 => return Err(format!("runs: a run recording holds one run, this one {n}")),
        (_, n) => check_len("runs", n, MAX_RUNS, "runs")?,
    }
    if let Some(b) = rec.baseline.filter(|b| *b >= rec.runs.len()) {
        return Err(format!("baseline: run {b} does not exist (there are {})", rec.runs.len()));
    }
    for (i, r) in rec.runs.iter().enumerate() {
        check_run(&format!("runs[{i}]"), r)?;
    }
    Ok(())
}

fn header_of(rec: &Recording) -> Header {
    Header {
        version: FORMAT_VERSION,
        parlab_version: rec.parlab_version.clone(),
        made: rec.made.clone(),
        machine: rec.machine.clone(),
        engine: rec.engine.clone(),
        kind: rec.kind,
        baseline: rec.baseline,
        summary: rec.summary(),
    }
}

// ---- encoding ----

fn raw_run(r: &RecordedRun) -> RawRun {
    let t = &r.timeline;
    let origin = t
        .spans
        .iter()
        .map(|s| s.start_ns)
        .chain(t.end.as_ref().map(|e| e.t0_ns.min(e.t_end_ns)))
        .chain(r.samples.system.iter().chain(&r.samples.parlab).map(|s| s.at_ns))
        .fold(t.t0_ns, u64::min);
    let off = |ns: u64| ns - origin;
    let job = match &r.job {
        RecordedJob::Experiment(e) => RawJob::Experiment(RawExperiment {
            workload: e.workload.to_string(),
            tasks: e.tasks,
            mode: e.mode.name().to_string(),
            workers: e.workers,
            chunksize: e.chunksize,
            chunksize_given: e.chunksize_given,
            start: e.start.name().to_string(),
            switch_interval_us: e.switch_interval_us,
            payload: e.payload,
            warm: e.warm,
            api: e.api.name().to_string(),
            engine: e.engine.name().to_string(),
            python: e.python.clone(),
        }),
        RecordedJob::Demo(d) => RawJob::Demo(RawDemo { name: d.name.name().to_string(), size: d.size }),
    };
    let samples = |list: &[CoreSample]| {
        Bounded(list.iter().map(|s| (off(s.at_ns), s.interval_ns, Bounded(s.pct.clone()))).collect())
    };
    RawRun {
        job,
        parent_pid: r.parent_pid,
        lab_pid: t.lab_pid,
        cores: t.cores,
        origin_ns: origin,
        t0: off(t.t0_ns),
        end: t.end.as_ref().map(|e| RawEnd {
            t0: off(e.t0_ns),
            t_end: off(e.t_end_ns),
            checksum: e.checksum,
            tasks_done: e.tasks_done,
            error: e.error.clone(),
        }),
        walls_ns: Bounded(r.walls_ns.clone()),
        notes: Bounded(t.notes.clone()),
        demo_report: t.demo.as_ref().map(|d| RawDemoReport {
            name: d.name.clone(),
            title: d.title.clone(),
            columns: Bounded(d.columns.clone()),
            rows: Bounded(d.rows.iter().map(|r| Bounded(r.clone())).collect()),
            reading: d.reading.clone(),
            figures: Bounded(
                d.figures
                    .iter()
                    .map(|f| RawFigure { name: f.name.clone(), value: f.value, unit: f.unit.clone() })
                    .collect(),
            ),
        }),
        lanes: Bounded(
            t.lanes.iter().map(|l| RawLane { id: l.id, pid: l.pid, tid: l.tid, label: l.label.clone() }).collect(),
        ),
        spans: Bounded(
            t.spans
                .iter()
                .map(|s| (s.lane, s.task, s.count, s.kind, off(s.start_ns), off(s.end_ns), s.cpu_start, s.cpu_end))
                .collect(),
        ),
        samples: RawSamples { system: samples(&r.samples.system), parlab: samples(&r.samples.parlab) },
    }
}

/// Counts what goes through, and refuses past `MAX_TEXT_BYTES` (what a reader would refuse).
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > MAX_TEXT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("it would unpack to more than {} MiB, more than a reader takes", MAX_TEXT_BYTES >> 20),
            ));
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The bytes of a recording: gzip of the header line and the runs line. Refuses (saying why) what a reader would
/// refuse, so every recording written can be read.
pub(crate) fn encode(rec: &Recording) -> Result<Vec<u8>, String> {
    check_recording(rec)?;
    let h = header_of(rec);
    let header = RawHeader {
        format: FORMAT_NAME.to_string(),
        version: h.version,
        parlab: h.parlab_version,
        made: h.made,
        machine: h.machine,
        engine: h.engine,
        kind: h.kind,
        baseline: h.baseline,
        summary: h.summary,
    };
    let body = RawBody { runs: Bounded(rec.runs.iter().map(raw_run).collect()) };
    // Level 1: for 100,000 spans a third larger than the default level (0.9 MB against 0.6 MB) and eight times
    // faster to write (40 ms against 330 ms), which matters when the TUI keeps every run.
    let gz = Counted { inner: GzEncoder::new(Vec::new(), Compression::fast()), written: 0 };
    // serde_json writes token by token: the buffer spares the compressor a call per comma.
    let mut out = io::BufWriter::with_capacity(64 << 10, gz);
    let result = (|| -> io::Result<Vec<u8>> {
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        serde_json::to_writer(&mut out, &body)?;
        out.write_all(b"\n")?;
        out.into_inner().map_err(io::IntoInnerError::into_error)?.inner.finish()
    })();
    result.map_err(|e| format!("cannot encode the recording: {e}"))
}

// ---- decoding ----

/// Reads at most `max` bytes, then fails with `FileTooLarge` instead of ending quietly.
struct Limited<R> {
    inner: R,
    left: u64,
    what: &'static str,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(io::ErrorKind::FileTooLarge, self.what)),
            };
        }
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn io_problem(e: &io::Error, gzip: bool) -> Problem {
    match e.kind() {
        io::ErrorKind::FileTooLarge => Problem::TooLarge(e.to_string()),
        io::ErrorKind::UnexpectedEof => Problem::Truncated("the compressed data ends early".to_string()),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput if gzip => {
            Problem::Damaged(format!("its compressed data is corrupt ({e})"))
        }
        _ => Problem::Unreadable(e.to_string()),
    }
}

/// The text of a recording, unpacked if it is gzip, bounded either way.
fn text_stream<'a>(input: impl Read + 'a) -> Result<(Box<dyn BufRead + 'a>, bool), Problem> {
    let mut raw = BufReader::new(Limited { inner: input, left: MAX_FILE_BYTES, what: "it is more than 256 MiB" });
    let gzip = raw.fill_buf().map_err(|e| io_problem(&e, false))?.starts_with(&GZIP_MAGIC);
    let text_limit = "it unpacks to more than 256 MiB of text";
    let stream: Box<dyn BufRead + 'a> = if gzip {
        Box::new(BufReader::new(Limited { inner: GzDecoder::new(raw), left: MAX_TEXT_BYTES, what: text_limit }))
    } else {
        Box::new(BufReader::new(Limited { inner: raw, left: MAX_TEXT_BYTES, what: text_limit }))
    };
    Ok((stream, gzip))
}

#[derive(Deserialize)]
struct Probe {
    format: Option<Value>,
}

fn foreign_format(v: &Value) -> Problem {
    let text = match v {
        Value::String(s) => format!("'{}'", shown(s, 40)),
        other => shown(&other.to_string(), 40),
    };
    Problem::Foreign(format!("its \"format\" is {text}, not '{FORMAT_NAME}'"))
}

/// Reads the header line and checks it is a parlab recording this parlab can read.
fn header_from(stream: &mut Box<dyn BufRead + '_>, gzip: bool) -> Result<Header, Problem> {
    let mut line = Vec::new();
    stream.as_mut().take(MAX_HEADER_BYTES + 1).read_until(b'\n', &mut line).map_err(|e| io_problem(&e, gzip))?;
    let text = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&line);
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.iter().all(u8::is_ascii_whitespace) && !line.ends_with(b"\n") {
        return Err(Problem::Truncated("it is empty".to_string()));
    }
    let map = match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Problem::Foreign("it is JSON, but not an object".to_string())),
        Err(_) => return Err(whole_probe(text, line.ends_with(b"\n"), stream, gzip)),
    };
    match map.get("format") {
        None => return Err(Problem::Foreign("it is JSON without a \"format\" field".to_string())),
        Some(Value::String(s)) if s == FORMAT_NAME => {}
        Some(other) => return Err(foreign_format(other)),
    }
    match map.get("version").and_then(Value::as_u64) {
        None => return Err(Problem::Invalid("version: the header has no format version (a whole number)".into())),
        Some(0) => return Err(Problem::Invalid("version: format version 0 does not exist".into())),
        Some(v) if v > u64::from(FORMAT_VERSION) => return Err(Problem::Newer { found: v }),
        Some(_) => {}
    }
    let raw: RawHeader = serde_path_to_error::deserialize(Value::Object(map))
        .map_err(|e| Problem::Invalid(shown(&format!("{}: {}", e.path(), e.inner()), 300)))?;
    let h = Header {
        version: raw.version,
        parlab_version: raw.parlab,
        made: raw.made,
        machine: raw.machine,
        engine: raw.engine,
        kind: raw.kind,
        baseline: raw.baseline,
        summary: raw.summary,
    };
    check_header(&h).map_err(|e| Problem::Invalid(shown(&e, 300)))?;
    Ok(h)
}

/// The first line is not a JSON header: what is the whole thing? (Pretty-printed JSON, another program's file,
/// a recording cut inside its header.)
fn whole_probe(first: &[u8], had_newline: bool, rest: &mut Box<dyn BufRead + '_>, gzip: bool) -> Problem {
    if first.starts_with(br#"{"format":"parlab-recording""#) && !had_newline {
        return Problem::Truncated("it ends inside its header".to_string());
    }
    let mut whole = first.to_vec();
    if had_newline {
        whole.push(b'\n');
    }
    if let Err(e) = rest.read_to_end(&mut whole) {
        return io_problem(&e, gzip);
    }
    match serde_json::from_slice::<Probe>(&whole) {
        Ok(Probe { format: None }) => Problem::Foreign("it is JSON without a \"format\" field".to_string()),
        Ok(Probe { format: Some(Value::String(s)) }) if s == FORMAT_NAME => Problem::Damaged(
            "its header is not on the first line (a recording is two lines of JSON: was it reformatted?)".to_string(),
        ),
        Ok(Probe { format: Some(other) }) => foreign_format(&other),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Problem::Foreign("it is JSON, but not an object".to_string())
        }
        Err(_) if gzip => Problem::Foreign("it is gzip data, but not of JSON".to_string()),
        Err(_) if std::str::from_utf8(&whole).is_ok() => Problem::Foreign("it is text, but not JSON".to_string()),
        Err(_) => Problem::Foreign("it is neither gzip nor JSON".to_string()),
    }
}

fn body_from(stream: &mut Box<dyn BufRead + '_>, gzip: bool) -> Result<RawBody, Problem> {
    let mut text = Vec::new();
    stream.read_to_end(&mut text).map_err(|e| io_problem(&e, gzip))?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::Truncated("it ends after its header: the runs are missing".to_string()));
    }
    let mut de = serde_json::Deserializer::from_slice(&text);
    let body: RawBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_eof() {
            Problem::Truncated(format!("the runs end early (in {path})"))
        } else {
            Problem::Invalid(shown(&format!("{path}: {inner}"), 300))
        }
    })?;
    de.end().map_err(|_| Problem::Damaged("there is more after the runs".to_string()))?;
    Ok(body)
}

fn abs(path: &str, origin: u64, off: u64) -> Result<u64, String> {
    origin.checked_add(off).ok_or_else(|| format!("{path}: the time overflows (origin {origin} + {off} ns)"))
}

fn run_from(path: &str, raw: RawRun) -> Result<RecordedRun, String> {
    let o = raw.origin_ns;
    let job = match raw.job {
        RawJob::Experiment(e) => {
            let p = format!("{path}.job.experiment");
            let workload: Workload = e.workload.parse().map_err(|m| format!("{p}.workload: {m}"))?;
            let mode: Mode = e.mode.parse().map_err(|m| format!("{p}.mode: {m}"))?;
            let start: StartMethod = e.start.parse().map_err(|m| format!("{p}.start: {m}"))?;
            let api: Api = e.api.parse().map_err(|m| format!("{p}.api: {m}"))?;
            let engine: crate::experiment::Engine = e.engine.parse().map_err(|m| format!("{p}.engine: {m}"))?;
            if let Some(py) = &e.python
                && (py.path.len() > 4096 || py.version.len() > 1024)
            {
                return Err(format!("{p}.python: its path or version is too long"));
            }
            RecordedJob::Experiment(Experiment {
                workload,
                tasks: e.tasks,
                mode,
                workers: e.workers,
                chunksize: e.chunksize,
                chunksize_given: e.chunksize_given,
                start,
                switch_interval_us: e.switch_interval_us,
                payload: e.payload,
                warm: e.warm,
                api,
                engine,
                python: e.python,
                cluster: None,
            })
        }
        RawJob::Demo(d) => {
            RecordedJob::Demo(DemoSpec::new(&d.name, Some(d.size)).map_err(|m| format!("{path}.job.demo: {m}"))?)
        }
    };
    let end = match raw.end {
        Some(e) => Some(RunEnd {
            t0_ns: abs(&format!("{path}.end.t0"), o, e.t0)?,
            t_end_ns: abs(&format!("{path}.end.t_end"), o, e.t_end)?,
            checksum: e.checksum,
            tasks_done: e.tasks_done,
            error: e.error,
        }),
        None => None,
    };
    let mut spans = Vec::with_capacity(raw.spans.0.len());
    for (i, (lane, task, count, kind, start, end, cpu_start, cpu_end)) in raw.spans.0.into_iter().enumerate() {
        let p = format!("{path}.spans[{i}]");
        spans.push(Span {
            lane,
            task,
            count,
            kind,
            start_ns: abs(&p, o, start)?,
            end_ns: abs(&p, o, end)?,
            cpu_start,
            cpu_end,
        });
    }
    let samples = |source: &str, list: Bounded<RawSample, MAX_SAMPLES>| -> Result<Vec<CoreSample>, String> {
        list.0
            .into_iter()
            .enumerate()
            .map(|(i, (at, interval_ns, pct))| {
                Ok(CoreSample { at_ns: abs(&format!("{path}.samples.{source}[{i}]"), o, at)?, interval_ns, pct: pct.0 })
            })
            .collect()
    };
    let timeline = Timeline {
        lanes: raw.lanes.0.into_iter().map(|l| Lane { id: l.id, pid: l.pid, tid: l.tid, label: l.label }).collect(),
        spans,
        lab_pid: raw.lab_pid,
        cores: raw.cores,
        t0_ns: abs(&format!("{path}.t0"), o, raw.t0)?,
        end,
        notes: raw.notes.0,
        demo: raw.demo_report.map(|d| DemoReport {
            name: d.name,
            title: d.title,
            columns: d.columns.0,
            rows: d.rows.0.into_iter().map(|r| r.0).collect(),
            reading: d.reading,
            figures: d
                .figures
                .0
                .into_iter()
                .map(|f| DemoFigure { name: f.name, value: f.value, unit: f.unit })
                .collect(),
        }),
    };
    Ok(RecordedRun {
        job,
        timeline,
        parent_pid: raw.parent_pid,
        walls_ns: raw.walls_ns.0,
        samples: Samples {
            system: samples("system", raw.samples.system)?,
            parlab: samples("parlab", raw.samples.parlab)?,
        },
    })
}

fn decode_problem(input: impl Read) -> Result<Recording, Problem> {
    let (mut stream, gzip) = text_stream(input)?;
    let header = header_from(&mut stream, gzip)?;
    let body = body_from(&mut stream, gzip)?;
    let runs = body
        .runs
        .0
        .into_iter()
        .enumerate()
        .map(|(i, r)| run_from(&format!("runs[{i}]"), r))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| Problem::Invalid(shown(&e, 300)))?;
    let rec = Recording {
        parlab_version: header.parlab_version,
        made: header.made,
        machine: header.machine,
        engine: header.engine,
        kind: header.kind,
        runs,
        baseline: header.baseline,
    };
    check_recording(&rec).map_err(|e| Problem::Invalid(shown(&e, 300)))?;
    Ok(rec)
}

/// A recording from its bytes (gzip or plain text); `file` names it in the error.
pub(crate) fn decode(file: &str, input: impl Read) -> Result<Recording, RecordError> {
    decode_problem(input).map_err(|problem| RecordError { file: file.to_string(), problem })
}

/// Only the header of a recording, for listings: the runs are not parsed, but the rest is read through so that a
/// file cut short or damaged (its gzip checksum) is found here too, not only when it is replayed.
pub(crate) fn decode_header(file: &str, input: impl Read) -> Result<Header, RecordError> {
    let found = text_stream(input).and_then(|(mut stream, gzip)| {
        let header = header_from(&mut stream, gzip)?;
        let rest = io::copy(&mut stream, &mut io::sink()).map_err(|e| io_problem(&e, gzip))?;
        if rest == 0 {
            return Err(Problem::Truncated("it ends after its header: the runs are missing".to_string()));
        }
        Ok(header)
    });
    found.map_err(|problem| RecordError { file: file.to_string(), problem })
}

// ---- files ----

/// Opens a recording without ever blocking (a FIFO is refused, not waited on) and checks its size.
fn open_recording(path: &Path) -> Result<File, RecordError> {
    let err = |problem| RecordError { file: path.display().to_string(), problem };
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).map_err(
        |e| match e.kind() {
            io::ErrorKind::NotFound => err(Problem::Missing),
            _ => err(Problem::Unreadable(e.to_string())),
        },
    )?;
    let meta = file.metadata().map_err(|e| err(Problem::Unreadable(e.to_string())))?;
    if !meta.is_file() {
        return Err(err(Problem::NotAFile));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(Problem::TooLarge(format!(
            "{} MiB, and a recording is at most {} MiB",
            meta.len() >> 20,
            MAX_FILE_BYTES >> 20
        ))));
    }
    Ok(file)
}

/// Reads and validates a recording file.
pub(crate) fn read(path: &Path) -> Result<Recording, RecordError> {
    let file = open_recording(path)?;
    decode(&path.display().to_string(), file)
}

/// Reads only a recording's header.
pub(crate) fn read_header(path: &Path) -> Result<Header, RecordError> {
    let file = open_recording(path)?;
    decode_header(&path.display().to_string(), file)
}

/// Writes a recording atomically (see `atomic_write`); returns its size in bytes.
pub(crate) fn write(path: &Path, rec: &Recording) -> anyhow::Result<u64> {
    let bytes = encode(rec).map_err(|e| anyhow::anyhow!("cannot record to '{}': {e}", path.display()))?;
    atomic_write(path, &bytes).map_err(|e| anyhow::anyhow!("cannot write the recording '{}': {e}", path.display()))?;
    Ok(bytes.len() as u64)
}

/// Replaces `path` with `bytes` atomically: a temp file beside it (unique to this process and call), flushed to
/// disk, renamed over. A reader sees the old file or the new one, never half of one; a failed write leaves no temp.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename durable too (best effort: not every file system syncs a folder).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_past_its_limit_fails_instead_of_ending_quietly() {
        let data = vec![b' '; 100];
        let mut out = Vec::new();
        let exact = Limited { inner: data.as_slice(), left: 100, what: "too much" }.read_to_end(&mut out);
        assert_eq!(exact.unwrap(), 100);
        let over = Limited { inner: data.as_slice(), left: 99, what: "too much" }.read_to_end(&mut Vec::new());
        assert_eq!(over.unwrap_err().kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_unpacked_limit() {
        // 8 MiB of spaces packs into a few KiB; unpacking stops at the limit, long before the end.
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&vec![b' '; 8 << 20]).unwrap();
        let packed = gz.finish().unwrap();
        assert!(packed.len() < 64 << 10);
        let mut text = Limited { inner: GzDecoder::new(packed.as_slice()), left: 1 << 20, what: "unpacks too far" };
        let err = text.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(io_problem(&err, true), Problem::TooLarge("unpacks too far".to_string()));
    }
}

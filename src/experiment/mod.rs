//! Experiments: the workload, mode, start method and knobs of one run, parsed from names and validated into
//! values nothing downstream has to re-check. The same names are used by the CLI, lessons, JSON and the TUI.
//!
//! Never imports: a terminal, a runtime, the sampler, the lab or the faces (only `units`). `demo` holds the one list of
//! demos; `Job` is what the app asks for and the lab runs.

pub(crate) mod demo;
pub(crate) mod error;
pub(crate) mod knob;

pub(crate) use error::ExperimentError;

use std::fmt;
use std::str::FromStr;

use crate::units::{format_bytes, format_interval_us, plural};
use serde::{Deserialize, Serialize};

/// Largest number of tasks in one run.
pub(crate) const MAX_TASKS: u64 = 10_000_000;
/// Largest pool.
pub(crate) const MAX_WORKERS: u32 = 256;
/// Largest payload sent with one task.
pub(crate) const MAX_PAYLOAD: u64 = 256 * 1024 * 1024;
/// Largest payload moved in one run (sent and returned counts once).
pub(crate) const MAX_TOTAL_PAYLOAD: u64 = 4 * 1024 * 1024 * 1024;
pub(crate) const MIN_SWITCH_US: u64 = 100;
pub(crate) const MAX_SWITCH_US: u64 = 1_000_000;
pub(crate) const DEFAULT_SWITCH_US: u64 = 5_000;

/// A fixed amount of work per task; every task returns a checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// Naive recursive Fibonacci; task `i` computes `fib(lo + i % (hi - lo + 1))`.
    Fib {
        lo: u32,
        hi: u32,
    },
    Squares(u64),
    Count(u64),
    Pi(u64),
    Primes(u64),
    Tiny,
    /// Milliseconds of waiting (simulated network or disk).
    Sleep(u64),
    Logs(u64),
}

/// Every workload name with its size range and default, in the order the docs list them.
pub(crate) const WORKLOADS: &[(&str, u64, u64, u64)] = &[
    // name, min, max, default
    ("fib", 1, 42, 32),
    ("squares", 1, 10_000_000_000, 1_000_000),
    ("count", 1, 10_000_000_000, 10_000_000),
    ("pi", 1, 1_000_000_000, 1_000_000),
    ("primes", 2, 50_000_000, 200_000),
    ("tiny", 0, 0, 0),
    ("sleep", 0, 60_000, 100),
    ("logs", 1, 10_000_000, 100_000),
];

impl Workload {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Workload::Fib { .. } => "fib",
            Workload::Squares(_) => "squares",
            Workload::Count(_) => "count",
            Workload::Pi(_) => "pi",
            Workload::Primes(_) => "primes",
            Workload::Tiny => "tiny",
            Workload::Sleep(_) => "sleep",
            Workload::Logs(_) => "logs",
        }
    }

    /// The size after the colon (the upper end for a fib range).
    pub(crate) fn size(&self) -> u64 {
        match *self {
            Workload::Fib { hi, .. } => hi as u64,
            Workload::Squares(n)
            | Workload::Count(n)
            | Workload::Pi(n)
            | Workload::Primes(n)
            | Workload::Sleep(n)
            | Workload::Logs(n) => n,
            Workload::Tiny => 0,
        }
    }

    /// The same workload with another size, clamped into its allowed range (used by the `-`/`+` knob).
    pub(crate) fn with_size(&self, size: u64) -> Workload {
        let (_, min, max, _) = workload_row(self.name());
        let size = size.clamp(min, max);
        match *self {
            Workload::Fib { lo, hi } => {
                let span = hi - lo;
                let hi = (size as u32).max(span + 1);
                Workload::Fib { lo: hi - span, hi }
            }
            Workload::Squares(_) => Workload::Squares(size),
            Workload::Count(_) => Workload::Count(size),
            Workload::Pi(_) => Workload::Pi(size),
            Workload::Primes(_) => Workload::Primes(size),
            Workload::Tiny => Workload::Tiny,
            Workload::Sleep(_) => Workload::Sleep(size),
            Workload::Logs(_) => Workload::Logs(size),
        }
    }

    /// A step up or down in size that changes the work by a noticeable factor.
    pub(crate) fn step_size(&self, up: bool) -> Workload {
        let size = self.size();
        let next = match self {
            Workload::Fib { .. } => {
                if up {
                    size + 1
                } else {
                    size.saturating_sub(1)
                }
            }
            Workload::Tiny => 0,
            _ => {
                if up {
                    size.saturating_mul(2)
                } else {
                    size / 2
                }
            }
        };
        self.with_size(next)
    }

    /// Waiting rather than computing: threads and async overlap it even under the GIL.
    pub(crate) fn is_io(&self) -> bool {
        matches!(self, Workload::Sleep(_))
    }
}

fn workload_row(name: &str) -> (&'static str, u64, u64, u64) {
    *WORKLOADS.iter().find(|w| w.0 == name).expect("workload names come from WORKLOADS")
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Workload::Fib { lo, hi } if lo == hi => write!(f, "fib:{hi}"),
            Workload::Fib { lo, hi } => write!(f, "fib:{lo}..{hi}"),
            Workload::Tiny => write!(f, "tiny"),
            other => write!(f, "{}:{}", other.name(), other.size()),
        }
    }
}

fn names_of<T>(list: &[(&str, T)]) -> String {
    list.iter().map(|x| x.0).collect::<Vec<_>>().join(", ")
}

/// A message whose `--flag` words name knobs (so a lesson file can say `switch_interval` where the command line
/// says `--switch-interval`).
fn flagged(message: String) -> ExperimentError {
    const NAMES: &[&str] =
        &["tasks", "workers", "chunksize", "start", "warm", "api", "switch_interval", "payload", "mode"];
    let mut e = ExperimentError::text("");
    let mut rest = message.as_str();
    while let Some(i) = rest.find("--") {
        let word_len =
            rest[i + 2..].find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(rest.len() - i - 2);
        let word = rest[i + 2..i + 2 + word_len].replace('-', "_");
        match NAMES.iter().find(|n| **n == word) {
            Some(name) => e = e.then(&rest[..i]).and(name),
            None => e = e.then(&rest[..i + 2 + word_len]),
        }
        rest = &rest[i + 2 + word_len..];
    }
    e.then(rest)
}

/// A close known name, for "did you mean".
pub(crate) fn suggest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&input, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    suggest(input, candidates.iter().copied())
}

fn parse_size(name: &str, text: &str) -> Result<u64, ExperimentError> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (_, min, max, _) = workload_row(name);
    let n: u64 = cleaned.parse().map_err(|_| {
        ExperimentError::text(format!(
            "workload size '{text}' for {name} is not a whole number (expected {min}..={max})"
        ))
    })?;
    if n < min || n > max {
        return Err(ExperimentError::text(format!(
            "workload size {n} for {name} is out of range (allowed {min}..={max})"
        )));
    }
    Ok(n)
}

impl FromStr for Workload {
    type Err = ExperimentError;

    fn from_str(s: &str) -> Result<Self, ExperimentError> {
        let s = s.trim();
        let (name, size) = match s.split_once(':') {
            Some((n, z)) => (n, Some(z)),
            None => (s, None),
        };
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.0).collect();
        let Some(&(name, _, _, default)) = WORKLOADS.iter().find(|w| w.0 == name) else {
            return Err(ExperimentError::text(format!(
                "unknown workload '{name}' (expected one of: {})",
                names.join(", ")
            ))
            .suggest(did_you_mean(name, &names)));
        };
        if name == "tiny" {
            return match size {
                None => Ok(Workload::Tiny),
                Some(z) => Err(ExperimentError::text(format!("workload 'tiny' takes no size (got ':{z}')"))),
            };
        }
        if name == "fib"
            && let Some((a, b)) = size.and_then(|z| z.split_once(".."))
        {
            let lo = parse_size(name, a)? as u32;
            let hi = parse_size(name, b)? as u32;
            if lo > hi {
                return Err(ExperimentError::text(format!(
                    "fib range '{a}..{b}' is backwards (write the smaller number first)"
                )));
            }
            return Ok(Workload::Fib { lo, hi });
        }
        let n = match size {
            Some(z) => parse_size(name, z)?,
            None => default,
        };
        Ok(match name {
            "fib" => Workload::Fib { lo: n as u32, hi: n as u32 },
            "squares" => Workload::Squares(n),
            "count" => Workload::Count(n),
            "pi" => Workload::Pi(n),
            "primes" => Workload::Primes(n),
            "sleep" => Workload::Sleep(n),
            "logs" => Workload::Logs(n),
            _ => unreachable!("every name in WORKLOADS is matched"),
        })
    }
}

impl Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, $list:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub(crate) enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        pub(crate) const $list: &[(&str, $name)] = &[$(($text, $name::$variant)),+];

        impl $name {
            pub(crate) fn name(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = ExperimentError;
            fn from_str(s: &str) -> Result<Self, ExperimentError> {
                let s = s.trim();
                $list.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| {
                    let names: Vec<&str> = $list.iter().map(|x| x.0).collect();
                    ExperimentError::text(format!(
                        concat!("unknown ", $what, " '{}' (expected one of: {})"),
                        s,
                        names_of($list),
                    ))
                    .suggest(did_you_mean(s, &names))
                })
            }
        }
    };
}

named_enum!(
    /// How the tasks are run.
    Mode, "mode", MODES {
        Sequential = "sequential",
        Threads = "threads",
        Gil = "gil",
        Processes = "processes",
        Async = "async",
        AsyncOffload = "async-offload",
        Interpreters = "interpreters",
        Dask = "dask",
        Ray = "ray",
    }
);

named_enum!(
    /// What runs the workloads: parlab's native Rust kernels (with the simulated GIL), or a real CPython through
    /// the embedded harness (`src/engine/`).
    Engine, "engine", ENGINES {
        Native = "native",
        Python = "python",
    }
);

// The variants come from `named_enum!`, which cannot mark one `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Engine {
    fn default() -> Engine {
        Engine::Native
    }
}

/// The interpreter a python-engine run used, as runs and JSON name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PythonRef {
    pub path: String,
    pub version: String,
    pub gil_enabled: bool,
}

named_enum!(
    /// The Python pool API the processes mode models: its default chunksize and its task queue.
    Api, "api", APIS {
        Map = "map",
        Imap = "imap",
        ImapUnordered = "imap_unordered",
        Executor = "executor",
    }
);

impl Api {
    /// What the API is called in Python, for titles and notes.
    pub(crate) fn python(&self) -> &'static str {
        match self {
            Api::Map => "Pool.map",
            Api::Imap => "Pool.imap",
            Api::ImapUnordered => "Pool.imap_unordered",
            Api::Executor => "ProcessPoolExecutor.map",
        }
    }

    /// The chunksize Python picks when none is given: Pool.map about four chunks per worker, the others 1.
    pub(crate) fn default_chunksize(&self, tasks: u64, workers: u32) -> u64 {
        match self {
            Api::Map => default_chunksize(tasks, workers),
            Api::Imap | Api::ImapUnordered | Api::Executor => 1,
        }
    }

    /// Chunks queued for the workers but not yet taken, at most (`None`: as many as the queue's pipe holds).
    /// ProcessPoolExecutor keeps its call queue at `max_workers + 1` items; Pool's task queue is unbounded.
    pub(crate) fn queue_limit(&self, workers: u32) -> Option<u64> {
        match self {
            Api::Executor => Some(u64::from(workers) + 1),
            Api::Map | Api::Imap | Api::ImapUnordered => None,
        }
    }

    /// Whether results are handed back in input order (imap_unordered: as they complete).
    pub(crate) fn ordered(&self) -> bool {
        !matches!(self, Api::ImapUnordered)
    }
}

named_enum!(
    /// How worker processes are created (processes mode).
    StartMethod, "start method", START_METHODS {
        Spawn = "spawn",
        Fork = "fork",
        Forkserver = "forkserver",
    }
);

impl Mode {
    /// Modes only a real CPython runs (the python engine): subinterpreters, Dask, Ray.
    pub(crate) fn python_only(&self) -> bool {
        matches!(self, Mode::Interpreters | Mode::Dask | Mode::Ray)
    }

    /// Whether `engine` can run this mode (`gil` is the native engine's simulation of what python threads are).
    pub(crate) fn runs_on(&self, engine: Engine) -> bool {
        match engine {
            Engine::Native => !self.python_only(),
            Engine::Python => *self != Mode::Gil,
        }
    }

    /// Whether `--chunksize` means anything for this mode.
    pub(crate) fn uses_chunksize(&self) -> bool {
        matches!(self, Mode::Processes | Mode::Threads | Mode::Dask | Mode::Ray)
    }

    /// Whether `--warm` means anything for this mode (a pool or a cluster started before the clock).
    pub(crate) fn uses_warm(&self) -> bool {
        matches!(self, Mode::Processes | Mode::Dask | Mode::Ray)
    }

    /// Whether `--workers` means anything for this mode.
    pub(crate) fn uses_workers(&self) -> bool {
        !matches!(self, Mode::Sequential | Mode::Async)
    }

    /// The Python counterpart, for tables and the TUI.
    pub(crate) fn python(&self) -> &'static str {
        match self {
            Mode::Sequential => "a plain loop",
            Mode::Threads => "free-threaded 3.13t / C code releasing the GIL",
            Mode::Gil => "threading / ThreadPoolExecutor",
            Mode::Processes => "multiprocessing.Pool / ProcessPoolExecutor",
            Mode::Async => "asyncio",
            Mode::AsyncOffload => "asyncio + run_in_executor",
            Mode::Interpreters => "concurrent.futures.InterpreterPoolExecutor (3.14+)",
            Mode::Dask => "dask.distributed (LocalCluster or a scheduler)",
            Mode::Ray => "ray (ray.init locally or a cluster address)",
        }
    }
}

/// Parses `5ms`, `500us`, `0.5s`, `2` (milliseconds) into microseconds.
pub(crate) fn parse_interval_us(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (t, 1_000.0)
    };
    let bad =
        || format!("switch interval '{text}' is not a duration (write e.g. 5ms, 500us or 0.5s; allowed 100us..=1s)");
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let us = (value * scale).round() as u64;
    if !(MIN_SWITCH_US..=MAX_SWITCH_US).contains(&us) {
        return Err(format!("switch interval '{text}' is out of range (allowed 100us..=1s)"));
    }
    Ok(us)
}

/// Parses a byte count with an optional unit: `1048576`, `64KiB`, `1MB`, `100M`.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '_' || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(format!("payload '{text}' has an unknown unit (use bytes, or KB, KiB, MB, MiB, GB, GiB)"));
        }
    };
    let cleaned: String = num.chars().filter(|c| *c != '_').collect();
    let value: f64 = cleaned.parse().map_err(|_| format!("payload '{text}' is not a size in bytes"))?;
    Ok((value * scale as f64).round() as u64)
}

/// Python's Pool.map rule: ceil(tasks / (4 * workers)).
pub(crate) fn default_chunksize(tasks: u64, workers: u32) -> u64 {
    tasks.div_ceil(4 * workers as u64).max(1)
}

/// Most spans a lane of an in-process mode records for one run's tasks.
pub(crate) const MAX_RECORDED_CHUNKS: u64 = 4096;
/// The work one recorded chunk of an in-process mode aims at: long enough that reading the clock twice and keeping
/// a span costs well under 0.1% of it, short enough that threads still share unequal work out finely.
pub(crate) const RECORD_TARGET_NS: u64 = 100_000;

/// Tasks per chunk for the modes that run in the lab's own threads (sequential, threads without a chunksize,
/// gil, async, async-offload): one task per chunk when a task takes about 100 µs or more (so sleeps and
/// ThreadPoolExecutor-style work are dispatched one by one, as Python does), otherwise about 100 µs of tasks per
/// chunk (a sequential loop over a million `tiny` tasks records a few dozen spans, not a million), never fewer than
/// four chunks per worker, and never more than 4096 chunks. The task cost is the workload's own estimate
/// (`Workload::estimated_ns`), so the chunking, and with it the number of recorded spans, is the same on every run.
pub(crate) fn record_chunk(workload: Workload, tasks: u64, workers: u32) -> u64 {
    let by_count = tasks.div_ceil(MAX_RECORDED_CHUNKS);
    let by_time = (RECORD_TARGET_NS / workload.estimated_ns().max(1)).max(1);
    let fair = tasks.div_ceil(4 * u64::from(workers.max(1)));
    by_count.max(by_time.min(fair)).clamp(1, tasks.max(1))
}

/// The cores this process may really use (affinity and cgroup limits respected).
pub(crate) fn available_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Knob values as given, before validation. `None` means "not given".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Knobs {
    pub workers: Option<u32>,
    pub chunksize: Option<u64>,
    pub start: Option<StartMethod>,
    pub switch_interval_us: Option<u64>,
    pub payload: Option<u64>,
    pub warm: bool,
    pub api: Option<Api>,
    /// The engines a lesson's experiment runs on (`engines = ["native", "python"]`); empty: the native one, or
    /// what the learner chose. `Experiment::build` ignores it: `src/engine` sets the engine afterwards.
    #[serde(default)]
    pub engines: Vec<Engine>,
}

/// One validated run: everything the lab needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Experiment {
    pub workload: Workload,
    pub tasks: u64,
    pub mode: Mode,
    pub workers: u32,
    /// Tasks per message to a worker process (processes), per dispatch to a thread (threads), or per recorded
    /// span (the other modes; see `record_chunk`).
    pub chunksize: u64,
    /// Whether `chunksize` was chosen by the user rather than by a default rule.
    pub chunksize_given: bool,
    pub start: StartMethod,
    pub switch_interval_us: u64,
    pub payload: u64,
    pub warm: bool,
    /// The Python pool API modelled by the processes mode (`map` for the other modes, where it means nothing).
    pub api: Api,
    /// What runs it (`native` unless `src/engine` set it after checking the interpreter).
    #[serde(default)]
    pub engine: Engine,
    /// The interpreter of a python-engine run (detected before the run).
    #[serde(default)]
    pub python: Option<PythonRef>,
    /// A running cluster to use: Dask's scheduler address (mode dask) or Ray's address (mode ray).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// How strictly knobs that do not fit the mode are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// `parlab run`: a knob the mode ignores is a usage error.
    Strict,
    /// `compare` and lessons: a knob applies to the modes it fits and is ignored by the others.
    Lenient,
}

/// For `compare` (lenient: each mode ignores the knobs it has no use for): a knob that none of the compared modes
/// uses would silently do nothing, so it is refused, naming the knob and the modes it applies to.
pub(crate) fn check_knobs_apply_to_some(knobs: &Knobs, modes: &[Mode]) -> Result<(), String> {
    type Applies = fn(&Mode) -> bool;
    let knobs: [(&str, bool, Applies); 5] = [
        ("--workers", knobs.workers.is_some(), Mode::uses_workers),
        ("--chunksize", knobs.chunksize.is_some(), Mode::uses_chunksize),
        ("--start", knobs.start.is_some(), |m| *m == Mode::Processes),
        ("--warm", knobs.warm, Mode::uses_warm),
        ("--switch-interval", knobs.switch_interval_us.is_some(), |m| *m == Mode::Gil),
    ];
    for (flag, given, applies) in knobs {
        if given && !modes.iter().any(applies) {
            let to: Vec<&str> = MODES.iter().filter(|(_, m)| applies(m)).map(|(n, _)| *n).collect();
            let compared: Vec<&str> = modes.iter().map(Mode::name).collect();
            return Err(format!(
                "{flag} applies only to {}, and none of the compared modes ({}) is one: add one to --modes or leave \
                 {flag} out",
                to.join(", "),
                compared.join(", ")
            ));
        }
    }
    Ok(())
}

/// What a run runs: an experiment or a process-internals demo. The app asks for one; the lab receives it as one
/// JSON line on its stdin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Job {
    Experiment(Experiment),
    Demo(demo::DemoSpec),
}

impl Experiment {
    /// Validates one run. `cores` scales defaults (workers).
    pub(crate) fn build(
        workload: Workload,
        tasks: u64,
        mode: Mode,
        knobs: &Knobs,
        fit: Fit,
        cores: u32,
    ) -> Result<Experiment, ExperimentError> {
        if tasks == 0 || tasks > MAX_TASKS {
            return Err(flagged(format!("--tasks {tasks} is out of range (allowed 1..={MAX_TASKS})")));
        }
        let strict = fit == Fit::Strict;
        if let Some(w) = knobs.workers {
            if w == 0 || w > MAX_WORKERS {
                return Err(flagged(format!("--workers {w} is out of range (allowed 1..={MAX_WORKERS})")));
            }
            if strict && !mode.uses_workers() {
                return Err(flagged(format!(
                    "--workers does not apply to --mode {mode} (it always runs on one thread)"
                )));
            }
        }
        if let Some(c) = knobs.chunksize {
            if c == 0 || c > MAX_TASKS {
                return Err(flagged(format!("--chunksize {c} is out of range (allowed 1..={MAX_TASKS})")));
            }
            if strict && !mode.uses_chunksize() {
                return Err(flagged(format!(
                    "--chunksize applies to --mode processes, threads, dask or ray, not {mode}"
                )));
            }
        }
        if strict && knobs.start.is_some() && mode != Mode::Processes {
            return Err(flagged(format!("--start applies only to --mode processes, not {mode}")));
        }
        if strict && knobs.warm && !mode.uses_warm() {
            return Err(flagged(format!("--warm applies only to --mode processes, dask or ray, not {mode}")));
        }
        if strict && knobs.api.is_some() && mode != Mode::Processes {
            return Err(flagged(format!("--api applies only to --mode processes, not {mode}")));
        }
        if let Some(us) = knobs.switch_interval_us {
            if !(MIN_SWITCH_US..=MAX_SWITCH_US).contains(&us) {
                return Err(flagged(format!(
                    "--switch-interval {} is out of range (allowed 100us..=1s)",
                    format_interval_us(us)
                )));
            }
            if strict && mode != Mode::Gil {
                return Err(flagged(format!("--switch-interval applies only to --mode gil, not {mode}")));
            }
        }
        let payload = knobs.payload.unwrap_or(0);
        if payload > MAX_PAYLOAD {
            return Err(flagged(format!(
                "--payload {payload} bytes is too large (allowed 0..={MAX_PAYLOAD} bytes, 256 MiB, per task)"
            )));
        }
        if payload.saturating_mul(tasks) > MAX_TOTAL_PAYLOAD {
            return Err(flagged(format!(
                "--payload {payload} x --tasks {tasks} would move {} MiB; the limit is {} MiB per run",
                payload.saturating_mul(tasks) >> 20,
                MAX_TOTAL_PAYLOAD >> 20
            )));
        }
        let workers = if mode.uses_workers() { knobs.workers.unwrap_or(cores.max(1)) } else { 1 };
        let api = if mode == Mode::Processes { knobs.api.unwrap_or(Api::Map) } else { Api::Map };
        let (chunksize, chunksize_given) = match (mode, knobs.chunksize) {
            (m, Some(c)) if m.uses_chunksize() => (c.min(tasks), true),
            (Mode::Processes, None) => (api.default_chunksize(tasks, workers).min(tasks), false),
            // Tasks per batch (one remote call), by Pool.map's rule: as many round trips as a default Pool.map.
            (Mode::Dask | Mode::Ray, None) => (default_chunksize(tasks, workers).min(tasks), false),
            _ => (record_chunk(workload, tasks, workers), false),
        };
        Ok(Experiment {
            workload,
            tasks,
            mode,
            workers,
            chunksize,
            chunksize_given,
            start: if mode == Mode::Processes { knobs.start.unwrap_or(StartMethod::Spawn) } else { StartMethod::Spawn },
            switch_interval_us: knobs.switch_interval_us.unwrap_or(DEFAULT_SWITCH_US),
            payload,
            warm: mode.uses_warm() && knobs.warm,
            api,
            engine: Engine::Native,
            python: None,
            cluster: None,
        })
    }

    /// A one-line title: `fib:32 × 8 · processes (spawn, 2 workers, chunksize 1)`.
    pub(crate) fn title(&self) -> String {
        let mut s = format!("{} × {} · {}", self.workload, self.tasks, self.mode);
        let mut extra: Vec<String> = Vec::new();
        match self.mode {
            Mode::Processes => {
                extra.push(self.start.to_string());
                extra.push(plural(self.workers as u64, "worker"));
                if self.api != Api::Map {
                    extra.push(format!("api {}", self.api));
                }
                extra.push(format!("chunksize {}", self.chunksize));
                if self.warm {
                    extra.push("warm".into());
                }
            }
            Mode::Threads | Mode::AsyncOffload | Mode::Interpreters => {
                extra.push(plural(self.workers as u64, "worker"))
            }
            Mode::Dask | Mode::Ray => {
                extra.push(plural(self.workers as u64, "worker"));
                extra.push(format!("batch {}", self.chunksize));
                if let Some(c) = &self.cluster {
                    extra.push(format!("at {c}"));
                }
                if self.warm {
                    extra.push("warm".into());
                }
            }
            Mode::Gil => {
                extra.push(plural(self.workers as u64, "worker"));
                extra.push(format_interval_us(self.switch_interval_us));
            }
            Mode::Sequential | Mode::Async => {}
        }
        if self.payload > 0 {
            extra.push(format!("payload {}", format_bytes(self.payload)));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        if let Some(py) = self.python.as_ref().filter(|_| self.engine == Engine::Python) {
            s.push_str(&format!(" · python {}{}", py.version, if py.gil_enabled { "" } else { " (free-threaded)" }));
        }
        s
    }

    /// The mode's name, marked `·py` when the python engine runs it (compare rows, lane columns).
    pub(crate) fn label(&self) -> String {
        match self.engine {
            Engine::Native => self.mode.name().to_string(),
            Engine::Python => format!("{}·py", self.mode.name()),
        }
    }

    /// Number of chunks the tasks are split into.
    pub(crate) fn chunks(&self) -> u64 {
        self.tasks.div_ceil(self.chunksize)
    }

    /// Tasks `[first, first + count)` of chunk `c`.
    pub(crate) fn chunk_range(&self, c: u64) -> (u64, u64) {
        let first = c * self.chunksize;
        (first, self.chunksize.min(self.tasks - first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(w: &str, tasks: u64, mode: Mode, knobs: Knobs) -> Result<Experiment, String> {
        Ok(Experiment::build(w.parse()?, tasks, mode, &knobs, Fit::Strict, 2)?)
    }

    #[test]
    fn workload_names_round_trip_through_display() {
        for text in ["fib:30", "fib:27..30", "squares:1000", "tiny", "sleep:100", "logs:5000", "pi:10"] {
            let w: Workload = text.parse().unwrap();
            assert_eq!(w.to_string(), text);
        }
    }

    #[test]
    fn unknown_workload_names_the_value_and_suggests() {
        let e = "fibb:30".parse::<Workload>().unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("fib"), "the suggestion is data");
        let err = e.to_string();
        assert!(err.starts_with("unknown workload 'fibb' (expected one of: fib, squares"), "{err}");
        assert!(err.ends_with("(did you mean 'fib'?)"), "{err}");
    }

    #[test]
    fn workload_sizes_out_of_range_are_refused_with_the_range() {
        let err = "fib:99".parse::<Workload>().unwrap_err().to_string();
        assert_eq!(err, "workload size 99 for fib is out of range (allowed 1..=42)");
        assert!("tiny:3".parse::<Workload>().is_err());
        assert!("fib:30..27".parse::<Workload>().is_err());
    }

    #[test]
    fn unknown_mode_suggests_the_close_name() {
        let err = "thread".parse::<Mode>().unwrap_err().to_string();
        assert!(err.contains("unknown mode 'thread'"), "{err}");
        assert!(err.contains("did you mean 'threads'?"), "{err}");
    }

    #[test]
    fn default_chunksize_follows_pools_rule() {
        assert_eq!(default_chunksize(100_000, 2), 12_500);
        assert_eq!(default_chunksize(8, 2), 1);
        assert_eq!(default_chunksize(9, 2), 2);
        let e = build("fib:20", 100_000, Mode::Processes, Knobs::default()).unwrap();
        assert_eq!(e.chunksize, 12_500);
        assert_eq!(e.workers, 2);
    }

    #[test]
    fn zero_and_absurd_values_are_refused() {
        let w = |n| Knobs { workers: Some(n), ..Knobs::default() };
        assert!(build("fib:20", 4, Mode::Threads, w(0)).unwrap_err().contains("allowed 1..=256"));
        assert!(build("fib:20", 0, Mode::Threads, Knobs::default()).is_err());
        assert!(build("fib:20", 1_000_000_000_000, Mode::Threads, Knobs::default()).is_err());
        let big = Knobs { payload: Some(100 << 30), ..Knobs::default() };
        assert!(build("fib:20", 4, Mode::Processes, big).unwrap_err().contains("too large"));
    }

    #[test]
    fn knobs_that_do_not_fit_the_mode_are_refused_in_strict_runs_only() {
        let start = Knobs { start: Some(StartMethod::Fork), ..Knobs::default() };
        let err = build("fib:20", 4, Mode::Threads, start.clone()).unwrap_err();
        assert_eq!(err, "--start applies only to --mode processes, not threads");
        let lenient = Experiment::build("fib:20".parse().unwrap(), 4, Mode::Threads, &start, Fit::Lenient, 2);
        assert!(lenient.is_ok());
    }

    #[test]
    fn compare_refuses_a_knob_that_none_of_its_modes_uses() {
        let start = Knobs { start: Some(StartMethod::Fork), ..Knobs::default() };
        let err = check_knobs_apply_to_some(&start, &[Mode::Sequential, Mode::Threads]).unwrap_err();
        assert_eq!(
            err,
            "--start applies only to processes, and none of the compared modes (sequential, threads) is one: add one \
             to --modes or leave --start out"
        );
        assert_eq!(check_knobs_apply_to_some(&start, &[Mode::Sequential, Mode::Threads, Mode::Processes]), Ok(()));
        let cases = [
            (Knobs { warm: true, ..Knobs::default() }, "--warm applies only to processes,"),
            (Knobs { switch_interval_us: Some(1_000), ..Knobs::default() }, "--switch-interval applies only to gil,"),
            (Knobs { chunksize: Some(4), ..Knobs::default() }, "--chunksize applies only to threads, processes,"),
            (
                Knobs { workers: Some(2), ..Knobs::default() },
                "--workers applies only to threads, gil, processes, async-offload,",
            ),
        ];
        for (knobs, want) in cases {
            let err = check_knobs_apply_to_some(&knobs, &[Mode::Sequential, Mode::Async]).unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
        let gil = Knobs { switch_interval_us: Some(1_000), workers: Some(2), ..Knobs::default() };
        assert_eq!(check_knobs_apply_to_some(&gil, &[Mode::Sequential, Mode::Gil]), Ok(()));
    }

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval_us("5ms"), Ok(5_000));
        assert_eq!(parse_interval_us("500us"), Ok(500));
        assert_eq!(parse_interval_us("0.5s"), Ok(500_000));
        assert_eq!(parse_interval_us("2"), Ok(2_000));
        assert!(parse_interval_us("5 parsecs").is_err());
        assert!(parse_interval_us("10s").unwrap_err().contains("out of range"));
        assert_eq!(format_interval_us(5_000), "5ms");
        assert_eq!(format_interval_us(500), "500us");
    }

    #[test]
    fn bytes_parse_with_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
        assert!(parse_bytes("3 parsecs").is_err());
    }

    #[test]
    fn chunks_cover_every_task_once() {
        let e = Experiment::build(
            "tiny".parse().unwrap(),
            10,
            Mode::Processes,
            &Knobs { chunksize: Some(3), ..Knobs::default() },
            Fit::Strict,
            2,
        )
        .unwrap();
        assert_eq!(e.chunks(), 4);
        let covered: u64 = (0..e.chunks()).map(|c| e.chunk_range(c).1).sum();
        assert_eq!(covered, 10);
        assert_eq!(e.chunk_range(3), (9, 1));
    }
}

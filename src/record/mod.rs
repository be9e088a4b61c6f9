//! Recordings of runs: what a `run` or a `compare` measured, kept in a file that replays later, on another machine,
//! or in front of a class.
//!
//! This module owns the recording format (`format`: encoding, decoding and validation; the spec is
//! `docs/recording.md`), the machine facts a recording carries (`machine`), the bounded history of recent runs in the
//! data dir (`history`), and the exports of a recording (`trace`: Chrome / Perfetto trace events; `svg`: the Gantt as
//! a self-contained SVG).
//!
//! Plain data and pure functions wherever it can be: a recording is built from values the caller hands in (the
//! clock reading through `made_at`, the machine facts, the runs), so the format and the exports are tested on
//! synthetic runs. Only `Machine::detect`, the file functions (`write`, `read`, `read_header`) and `history` touch
//! the system. It builds on `timeline`, `experiment` and the demo names of `lab::demos`, and never imports ratatui,
//! crossterm, tokio, sysinfo, `ui` or `app`.

mod format;
pub(crate) mod history;
mod machine;
pub(crate) mod svg;
pub(crate) mod trace;

use std::time::SystemTime;

use crate::experiment::demo::DemoSpec;
use crate::experiment::{Experiment, Mode};
use crate::timeline::{RunReport, Timeline, median};
use crate::units::plural;

#[cfg(test)]
pub(crate) use format::decode;
pub(crate) use format::{Problem, Summary, atomic_write, encode, read, read_header, write};
pub(crate) use machine::Machine;

/// The `format` field of every recording.
pub(crate) const FORMAT_NAME: &str = "parlab-recording";
/// The format version this parlab writes, and the newest it reads (see docs/recording.md for the rule).
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The usual file name ending of a recording.
pub(crate) const EXTENSION: &str = "parlab";

/// Whether a recording holds one run or a compare of several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Run,
    Compare,
}

/// The engine that ran the workloads: `native` (Rust kernels) today; `python` will name its interpreter.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Engine {
    pub name: String,
    pub interpreter: Option<Interpreter>,
}

impl Engine {
    pub(crate) fn native() -> Engine {
        Engine { name: "native".to_string(), interpreter: None }
    }
}

/// The Python interpreter a `python` engine ran.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Interpreter {
    pub path: String,
    /// As it reports itself, e.g. `3.13.1`.
    pub version: String,
    /// False on a free-threaded build running without its GIL.
    pub gil_enabled: bool,
}

/// What a recorded run ran.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RecordedJob {
    Experiment(Experiment),
    Demo(DemoSpec),
}

/// One per-core utilization sample: `pct[c]` is the share of core `c` used (0..=100) over the `interval_ns` that
/// ended at `at_ns` (raw CLOCK_MONOTONIC, like the spans).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CoreSample {
    pub at_ns: u64,
    pub interval_ns: u64,
    pub pct: Vec<f32>,
}

impl CoreSample {
    /// A sample of parlab's own processes from the monitor's reading: CPU ns per core over `interval_ns`.
    pub(crate) fn from_cpu_ns(at_ns: u64, interval_ns: u64, per_core_ns: &[u64]) -> CoreSample {
        let pct = per_core_ns
            .iter()
            .map(|ns| if interval_ns == 0 { 0.0 } else { (*ns as f64 / interval_ns as f64 * 100.0).min(100.0) as f32 })
            .collect();
        CoreSample { at_ns, interval_ns, pct }
    }
}

/// The per-core samples taken while a run went on, so core bars can replay with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Samples {
    /// The whole system (every program), as the monitor read it.
    pub system: Vec<CoreSample>,
    /// parlab's own processes (the run's lab and workers).
    pub parlab: Vec<CoreSample>,
}

/// One run as recorded: what ran, its timeline, and the samples taken meanwhile.
#[derive(Clone, Debug)]
pub(crate) struct RecordedRun {
    pub job: RecordedJob,
    /// Lanes, spans, notes, the run's end (t0, end, checksum, tasks done, error), the lab's pid and cores, and a
    /// demo's report.
    pub timeline: Timeline,
    /// The process that started the run (the UI or `parlab run`).
    pub parent_pid: u32,
    /// Wall time of every repetition; the timeline is the median one's. Empty: the timeline's own wall time.
    pub walls_ns: Vec<u64>,
    pub samples: Samples,
}

// By hand: `Timeline` has no `PartialEq` of its own. Every field of it that a recording keeps is compared.
impl PartialEq for RecordedRun {
    fn eq(&self, o: &RecordedRun) -> bool {
        let (a, b) = (&self.timeline, &o.timeline);
        self.job == o.job
            && self.parent_pid == o.parent_pid
            && self.walls_ns == o.walls_ns
            && self.samples == o.samples
            && a.lanes == b.lanes
            && a.spans == b.spans
            && a.lab_pid == b.lab_pid
            && a.cores == b.cores
            && a.t0_ns == b.t0_ns
            && a.end == b.end
            && a.notes == b.notes
            && a.demo == b.demo
    }
}

impl RecordedRun {
    /// A finished headless run (`parlab run --record`), with the samples taken during it (none headless today).
    pub(crate) fn from_report(r: &RunReport, samples: Samples) -> RecordedRun {
        RecordedRun {
            job: RecordedJob::Experiment(r.experiment.clone()),
            timeline: r.timeline.clone(),
            parent_pid: r.parent_pid,
            walls_ns: r.walls_ns.clone(),
            samples,
        }
    }

    /// The run as headless printing takes it (`run_text`, `run_json`), with no speedup; a demo has none.
    #[cfg(test)]
    pub(crate) fn to_report(&self) -> Option<RunReport> {
        let RecordedJob::Experiment(exp) = &self.job else { return None };
        Some(RunReport {
            experiment: exp.clone(),
            timeline: self.timeline.clone(),
            parent_pid: self.parent_pid,
            walls_ns: self.walls_ns.clone(),
            speedup: None,
        })
    }

    /// The median wall time, in ms (the same rule as `RunReport::wall_ms`).
    pub(crate) fn wall_ms(&self) -> f64 {
        let walls: Vec<f64> = self.walls_ns.iter().map(|w| *w as f64 / 1e6).collect();
        if walls.is_empty() {
            return self.timeline.wall_ns() as f64 / 1e6;
        }
        median(&walls)
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.timeline.end.as_ref().and_then(|e| e.error.as_deref())
    }

    /// The mode's name, or `demo NAME`.
    pub(crate) fn mode_name(&self) -> String {
        match &self.job {
            RecordedJob::Experiment(e) => e.mode.name().to_string(),
            RecordedJob::Demo(d) => format!("demo {}", d.name),
        }
    }

    /// A one-line title: the experiment's (`fib:32 × 8 · gil (2 workers, 5ms)`) or the demo's.
    pub(crate) fn title(&self) -> String {
        match &self.job {
            RecordedJob::Experiment(e) => e.title(),
            RecordedJob::Demo(d) => match &self.timeline.demo {
                Some(r) if !r.title.is_empty() => format!("demo {} · {}", d.name, r.title),
                _ => format!("demo {} (size {})", d.name, d.size),
            },
        }
    }
}

/// A recording: one run or a compare, with where and when it was made.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Recording {
    /// The parlab that made it (`CARGO_PKG_VERSION`).
    pub parlab_version: String,
    /// When it was made, RFC 3339 in UTC (`2025-03-01T10:15:30Z`; see `made_at`).
    pub made: String,
    pub machine: Machine,
    pub engine: Engine,
    pub kind: Kind,
    /// A compare's runs, in the order they ran; a run's one.
    pub runs: Vec<RecordedRun>,
    /// The run the speedups are measured against (a compare's sequential run), by index into `runs`.
    pub baseline: Option<usize>,
}

/// `now` in RFC 3339, UTC, to the second: the `made` of a recording.
pub(crate) fn made_at(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

impl Recording {
    /// A recording of one run, made at `made` (see `made_at`) on `machine`.
    pub(crate) fn of_run(made: String, machine: Machine, engine: Engine, run: RecordedRun) -> Recording {
        Recording {
            parlab_version: env!("CARGO_PKG_VERSION").to_string(),
            made,
            machine,
            engine,
            kind: Kind::Run,
            runs: vec![run],
            baseline: None,
        }
    }

    /// A recording of a compare: the runs in the order they ran; the baseline is the first sequential run that did
    /// not fail (the rule `compare` uses for its speedups).
    pub(crate) fn of_compare(made: String, machine: Machine, engine: Engine, runs: Vec<RecordedRun>) -> Recording {
        let baseline = runs.iter().position(|r| {
            matches!(&r.job, RecordedJob::Experiment(e) if e.mode == Mode::Sequential) && r.error().is_none()
        });
        Recording {
            parlab_version: env!("CARGO_PKG_VERSION").to_string(),
            made,
            machine,
            engine,
            kind: Kind::Compare,
            runs,
            baseline,
        }
    }

    /// Each run's speedup against the baseline (None for the runs that failed, or without a baseline): the same
    /// rule as `compare`'s, which measures each engine against its own sequential run. The recorded baseline is the
    /// first engine's; a run of another engine is measured against that engine's first sequential run.
    pub(crate) fn speedups(&self) -> Vec<Option<f64>> {
        let engine = |r: &RecordedRun| match &r.job {
            RecordedJob::Experiment(e) => Some(e.engine),
            RecordedJob::Demo(_) => None,
        };
        let recorded = self.baseline.and_then(|b| self.runs.get(b)).filter(|b| b.error().is_none());
        let base_for = |r: &RecordedRun| -> Option<f64> {
            let own = engine(r);
            if let Some(b) = recorded.filter(|b| engine(b) == own) {
                return Some(b.wall_ms());
            }
            self.runs
                .iter()
                .find(|b| {
                    matches!(&b.job, RecordedJob::Experiment(e) if e.mode == Mode::Sequential && Some(e.engine) == own)
                        && b.error().is_none()
                })
                .map(RecordedRun::wall_ms)
        };
        self.runs
            .iter()
            .map(|r| match base_for(r) {
                Some(b) if r.error().is_none() && r.wall_ms() > 0.0 => Some(b / r.wall_ms()),
                _ => None,
            })
            .collect()
    }

    /// The runs as headless printing takes them, with their speedups (demos left out).
    #[cfg(test)]
    pub(crate) fn reports(&self) -> Vec<RunReport> {
        self.runs
            .iter()
            .zip(self.speedups())
            .filter_map(|(r, speedup)| {
                let mut rep = r.to_report()?;
                rep.speedup = speedup;
                Some(rep)
            })
            .collect()
    }

    /// A one-line title: the run's, or for a compare its workload and the number of modes.
    pub(crate) fn title(&self) -> String {
        match (self.kind, self.runs.first()) {
            (Kind::Compare, Some(first)) => match &first.job {
                RecordedJob::Experiment(e) => {
                    format!("{} × {} · compare of {}", e.workload, e.tasks, plural(self.runs.len() as u64, "mode"))
                }
                RecordedJob::Demo(_) => format!("compare of {}", plural(self.runs.len() as u64, "run")),
            },
            (_, Some(first)) => first.title(),
            (_, None) => "no runs".to_string(),
        }
    }

    /// The short facts a listing shows without reading the runs (kept in the header).
    pub(crate) fn summary(&self) -> Summary {
        Summary {
            title: self.title(),
            modes: self.runs.iter().map(RecordedRun::mode_name).collect(),
            walls_ms: self.runs.iter().map(RecordedRun::wall_ms).collect(),
            spans: self.runs.iter().map(|r| r.timeline.spans.len() as u64).sum(),
            failed: self.runs.iter().any(|r| r.error().is_some()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;

//! Lessons: Markdown files with TOML front matter and fenced `experiment`, `quiz` and `exercise` blocks (format in
//! lessons/README.md). Raw serde structs are validated into the types below; nothing downstream re-checks them.
//!
//! These types are the contract between the parser (this module), the TUI, `lint`, and exercises.

use crate::experiment::{Knobs, Mode, Workload};

/// One validated lesson.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lesson {
    pub id: String,
    pub title: String,
    pub minutes: u32,
    pub summary: String,
    pub covers: Vec<String>,
    /// Where it came from: `lessons/03-the-gil.md` for embedded lessons, the real path otherwise.
    pub path: String,
    /// Section 0 is the introduction (text before the first `## `); it may be empty of blocks.
    pub sections: Vec<Section>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Section {
    /// The `## ` heading text (the lesson title for the introduction).
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    /// Markdown prose (no fenced code inside; code comes as `Code`).
    Markdown(String),
    /// A fenced code block shown as it is (`python`, `text`, `console`, ...).
    Code { lang: String, text: String, runnable: bool },
    Experiment(ExperimentSpec),
    Quiz(Quiz),
    Exercise(ExerciseSpec),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExperimentSpec {
    pub id: Option<String>,
    pub kind: ExperimentKind,
    pub expect: Vec<Expect>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ExperimentKind {
    /// A workload run in one or more modes (the first is what `r` runs; `c` compares them all).
    Run { workload: Workload, tasks: u64, modes: Vec<Mode>, knobs: Knobs },
    /// A process-internals demo by name (`start-cost`, `isolation`, `cow`, ...).
    Demo(String),
}

/// The names `demo = "..."` accepts.
pub(crate) const DEMOS: [&str; 8] =
    ["start-cost", "isolation", "cow", "ipc", "queue-batching", "race", "shared-memory", "convoy"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    Speedup,
    Efficiency,
    WallMs,
    OverheadShare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    AtLeast,
    AtMost,
}

/// A checkable claim: `[MODE.]METRIC OP NUMBER [* cores]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Goal {
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
    /// Multiply `value` by the cores parlab really has.
    pub per_core: bool,
    /// The text as written, for messages.
    pub text: String,
}

impl Goal {
    /// The threshold on a machine with `cores` cores.
    pub(crate) fn threshold(&self, cores: u32) -> f64 {
        if self.per_core { self.value * f64::from(cores.max(1)) } else { self.value }
    }

    /// Whether a measured value meets the goal.
    pub(crate) fn holds(&self, measured: f64, cores: u32) -> bool {
        match self.op {
            Op::AtLeast => measured >= self.threshold(cores),
            Op::AtMost => measured <= self.threshold(cores),
        }
    }
}

/// An experiment's `expect` line: a goal about one of its modes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Expect {
    pub mode: Mode,
    pub goal: Goal,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Quiz {
    pub question: String,
    pub choices: Vec<String>,
    pub answer: usize,
    pub why: String,
}

/// Knobs a learner may change in an exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Knob {
    Mode,
    Workers,
    Chunksize,
    Start,
    SwitchInterval,
    Payload,
    Warm,
    Size,
    Tasks,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExerciseSpec {
    pub id: String,
    pub title: String,
    pub workload: Workload,
    pub tasks: u64,
    pub baseline: Mode,
    /// The learner's starting setup.
    pub mode: Mode,
    pub knobs: Knobs,
    pub may_change: Vec<Knob>,
    pub goal: Goal,
    pub hints: Vec<String>,
    pub explain: String,
    /// A starter in assets/exercises/ for `parlab check ID FILE.py`.
    pub python: Option<String>,
}

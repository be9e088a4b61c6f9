//! Lessons: Markdown files with TOML front matter and fenced `experiment`, `quiz` and `exercise` blocks (format in
//! lessons/README.md). Raw serde structs are validated into the types below; nothing downstream re-checks them.
//!
//! These types are the contract between the parser (this module), the TUI, `lint`, and exercises.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::experiment::{Knobs, Mode, Workload};

pub mod cmd;
mod cost;
mod error;
mod goal;
mod metric;
mod parse;
mod raw;
mod refs;
mod text;
mod validate;

#[cfg(test)]
mod tests;

pub(crate) use error::LintError;
pub(crate) use metric::{goal_cores, metric_value};
pub(crate) use parse::parse_lesson;
pub(crate) use text::terminal_safe;

/// The largest lesson file read, in bytes: a lesson is a few dozen KiB; anything near this is a mistake or an attack.
pub(crate) const MAX_LESSON_BYTES: u64 = 1 << 20;
/// Errors kept per file; the rest are counted (`and N more errors in FILE`).
pub(crate) const MAX_ERRORS_PER_FILE: usize = 50;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The lessons that loaded and the files that did not (each with every error found in it). One broken file never
/// stops the others from loading.
#[derive(Clone, Debug, Default)]
pub(crate) struct LessonSet {
    /// Sorted by file name.
    pub lessons: Vec<Lesson>,
    /// Sorted by file name.
    pub broken: Vec<Broken>,
    /// Entries of a lesson folder that look like lessons but were not read (a directory or FIFO named `*.md`, a
    /// dangling symlink or a symlink loop), each as a warning line: `skipped 'DIR/x.md': a directory, ...`.
    pub skipped: Vec<String>,
}

/// A lesson file that did not load.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Broken {
    /// As shown (terminal-safe).
    pub path: String,
    /// The first `MAX_ERRORS_PER_FILE` errors, in file order.
    pub errors: Vec<LintError>,
    /// How many more errors the file has beyond `errors`.
    pub more: usize,
}

impl Broken {
    /// Every error of the file, shown or not.
    pub(crate) fn count(&self) -> usize {
        self.errors.len() + self.more
    }
}

impl LessonSet {
    pub(crate) fn find(&self, id: &str) -> Option<&Lesson> {
        self.lessons.iter().find(|l| l.id == id)
    }

    /// Every exercise of every lesson, in lesson order.
    pub(crate) fn exercises(&self) -> impl Iterator<Item = (&Lesson, &ExerciseSpec)> {
        self.lessons.iter().flat_map(|l| l.exercises().map(move |e| (l, e)))
    }

    pub(crate) fn error_count(&self) -> usize {
        self.broken.iter().map(Broken::count).sum()
    }

    /// Parses files given as (display path, text or the reason it could not be read), checks ids across them, and
    /// sorts the result by file name.
    /// Lessons from the texts of lesson files, as `lint` and the loaders see them (pure: reads no file).
    pub(crate) fn from_texts(files: Vec<(String, String)>) -> LessonSet {
        LessonSet::from_files(files.into_iter().map(|(path, text)| (path, Ok(text))).collect())
    }

    fn from_files(mut files: Vec<(String, Result<String, LintError>)>) -> LessonSet {
        files.sort_by(|a, b| (file_name(&a.0), &a.0).cmp(&(file_name(&b.0), &b.0)));
        let names = asset_names();
        let starters: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut set = LessonSet::default();
        let mut lesson_ids: Vec<(String, String)> = Vec::new();
        let mut exercise_ids: Vec<(String, String)> = Vec::new();
        for (path, text) in files {
            let path = terminal_safe(&path).into_owned();
            let text = match text {
                Ok(text) => text,
                Err(e) => {
                    set.broken.push(Broken { path, errors: vec![e], more: 0 });
                    continue;
                }
            };
            let parsed = match parse_lesson(&path, &text, &starters) {
                Ok(p) => p,
                Err(broken) => {
                    set.broken.push(broken);
                    continue;
                }
            };
            let mut errors = Vec::new();
            let source: Arc<str> = Arc::from(text.as_str());
            if let Some((_, other)) = lesson_ids.iter().find(|(id, _)| *id == parsed.lesson.id) {
                let message = format!("lesson id '{}' is already used by {other}", parsed.lesson.id);
                errors.push(LintError::at(&path, &source, parsed.id_span.clone(), message, None));
            }
            for (id, span) in &parsed.exercise_ids {
                if let Some((_, other)) = exercise_ids.iter().find(|(seen, _)| seen == id) {
                    let message = format!("exercise id '{id}' is already used by {other}");
                    errors.push(LintError::at(
                        &path,
                        &source,
                        span.clone(),
                        message,
                        Some("exercise ids are unique across all lessons".into()),
                    ));
                }
            }
            if errors.is_empty() {
                lesson_ids.push((parsed.lesson.id.clone(), path.clone()));
                exercise_ids.extend(parsed.exercise_ids.iter().map(|(id, _)| (id.clone(), path.clone())));
                set.lessons.push(parsed.lesson);
            } else {
                set.broken.push(Broken { path, errors, more: 0 });
            }
        }
        set
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Lesson {
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.sections.iter().flat_map(|s| s.blocks.iter())
    }

    pub(crate) fn experiments(&self) -> impl Iterator<Item = &ExperimentSpec> {
        self.blocks().filter_map(|b| if let Block::Experiment(e) = b { Some(e) } else { None })
    }

    pub(crate) fn exercises(&self) -> impl Iterator<Item = &ExerciseSpec> {
        self.blocks().filter_map(|b| if let Block::Exercise(e) = b { Some(e) } else { None })
    }

    /// Every notes block of a section, with the index of the experiment or exercise block it is about (the last
    /// one before it in the section; `None`: about the section as a whole).
    pub(crate) fn notes(&self, section: usize) -> Vec<(Option<usize>, &Notes)> {
        let Some(s) = self.sections.get(section) else { return Vec::new() };
        let mut about = None;
        let mut out = Vec::new();
        for (i, b) in s.blocks.iter().enumerate() {
            match b {
                Block::Experiment(_) | Block::Exercise(_) => about = Some(i),
                Block::Notes(n) => out.push((about, n)),
                _ => {}
            }
        }
        out
    }
}

/// The lessons built into the binary (from `lessons/*.md` at build time).
pub(crate) fn load_embedded() -> LessonSet {
    LessonSet::from_files(
        embedded::EMBEDDED_LESSONS.iter().map(|(path, text)| (path.to_string(), Ok(text.to_string()))).collect(),
    )
}

/// The `*.md` lessons in a folder (its `README.md` is the authors' guide, not a lesson).
pub(crate) fn load_dir(path: &Path) -> Result<LessonSet> {
    let (files, skipped) = lesson_files(path)?;
    let mut set = LessonSet::from_files(read_files(&files));
    set.skipped = skipped;
    Ok(set)
}

/// The embedded lessons, or those in `dir`.
pub(crate) fn load(dir: Option<&Path>) -> Result<LessonSet> {
    match dir {
        Some(dir) => load_dir(dir),
        None => Ok(load_embedded()),
    }
}

/// Lesson files and folders named on the command line, linted together (ids must be unique across them all). A
/// named file that is not a regular file (`/dev/zero`, a FIFO) is reported as a broken lesson, never opened.
pub(crate) fn load_paths(paths: &[PathBuf]) -> Result<LessonSet> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read '{}'", terminal_safe(&path.display().to_string())))?;
        if meta.is_dir() {
            let (found, skip) = lesson_files(path)?;
            files.extend(found);
            skipped.extend(skip);
        } else {
            files.push(path.clone());
        }
    }
    let mut set = LessonSet::from_files(read_files(&files));
    set.skipped = skipped;
    Ok(set)
}

/// What a file system entry is, for messages.
fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// The `*.md` files of a folder, and a warning for each `*.md` entry that is not a regular file (followed through
/// symlinks): those are skipped, never opened.
fn lesson_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let shown_dir = terminal_safe(&dir.display().to_string()).into_owned();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read lesson folder '{shown_dir}'"))?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in entries.flatten().map(|e| e.path()) {
        if p.extension().is_none_or(|x| x != "md") || p.file_name().is_some_and(|n| n == "README.md") {
            continue;
        }
        let shown = terminal_safe(&p.display().to_string()).into_owned();
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => files.push(p),
            Ok(m) => skipped.push(format!("skipped '{shown}': {}, not a regular file", kind_of(m.file_type()))),
            Err(e) => skipped.push(format!("skipped '{shown}': {e}")),
        }
    }
    files.sort();
    skipped.sort();
    if files.is_empty() {
        let why = if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join("; ")) };
        bail!("no lesson files (*.md) in '{shown_dir}'{why}");
    }
    Ok((files, skipped))
}

/// Reads each file; one that cannot be read, is not a regular file, is too large or is not UTF-8 becomes an error
/// located in it.
fn read_files(paths: &[PathBuf]) -> Vec<(String, Result<String, LintError>)> {
    paths
        .iter()
        .map(|p| {
            let shown = p.display().to_string();
            let text = read_lesson(p, &terminal_safe(&shown));
            (shown, text)
        })
        .collect()
}

fn too_large(shown: &str, size: Option<u64>) -> LintError {
    let size = match size {
        Some(b) => format!("{} ({b} bytes)", crate::units::format_bytes(b)),
        None => format!("over {MAX_LESSON_BYTES} bytes"),
    };
    LintError::file(shown, format!("the file is {size}; a lesson file may be at most 1 MiB ({MAX_LESSON_BYTES} bytes)"))
}

/// Reads one lesson file with bounded work: the type and size are checked before it is opened, it is opened
/// without blocking (a FIFO swapped in after the check cannot stall the read), checked again on the open file, and
/// at most `MAX_LESSON_BYTES + 1` bytes are read whatever the file claims (files under /proc report size 0).
// One call per file, and the error becomes the file's `Broken` entry as it is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn read_lesson(path: &Path, shown: &str) -> Result<String, LintError> {
    let cannot = |e: std::io::Error| LintError::file(shown, format!("cannot read the file: {e}"));
    let not_regular = |t| {
        LintError::file(
            shown,
            format!("{}, not a regular file: a lesson is a regular file of at most 1 MiB", kind_of(t)),
        )
    };
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    if meta.len() > MAX_LESSON_BYTES {
        return Err(too_large(shown, Some(meta.len())));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_LESSON_BYTES) as usize + 1);
    file.take(MAX_LESSON_BYTES + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_LESSON_BYTES {
        return Err(too_large(shown, None));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let lossy: Arc<str> = Arc::from(String::from_utf8_lossy(e.as_bytes()).as_ref());
        LintError::at(shown, &lossy, at..at + 1, "the file is not UTF-8 text", None)
    })
}

/// A Python exercise starter embedded from assets/exercises/, by file name.
pub(crate) fn starter(name: &str) -> Option<&'static str> {
    embedded::EXERCISE_STARTERS.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// The intended fix of a Python exercise starter, embedded from assets/exercises/solutions/, by the starter's name.
pub(crate) fn python_solution(name: &str) -> Option<&'static str> {
    embedded::EXERCISE_SOLUTIONS.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// The names `validate` checks `python = "..."` against: every starter, and every solution as `solutions/NAME`.
fn asset_names() -> Vec<String> {
    let starters = embedded::EXERCISE_STARTERS.iter().map(|s| s.0.to_string());
    starters.chain(embedded::EXERCISE_SOLUTIONS.iter().map(|s| format!("{SOLUTIONS_DIR}{}", s.0))).collect()
}

/// Where a Python starter's solution lives, relative to assets/exercises/.
pub(crate) const SOLUTIONS_DIR: &str = "solutions/";

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
// A lesson holds a few dozen blocks, read-only: an exercise's size next to a paragraph's costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Block {
    /// Markdown prose (no fenced code inside; code comes as `Code`).
    Markdown(String),
    /// A fenced code block shown as it is (`python`, `text`, `console`, ...).
    Code {
        lang: String,
        text: String,
        runnable: bool,
    },
    Experiment(ExperimentSpec),
    Quiz(Quiz),
    Exercise(ExerciseSpec),
    /// Speaker notes for the presenter (`parlab notes`): never shown in the learner's lesson view.
    Notes(Notes),
}

/// A `notes` block: what an instructor says about the experiment or exercise before it in the section (or about
/// the section, when none comes before it). Every field is optional; a block has at least one.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Notes {
    /// What to point at on screen.
    pub point: Option<String>,
    /// The question to ask the class before pressing `r`.
    pub ask: Option<String>,
    /// The figure to expect on a 2-core machine.
    pub two_cores: Option<String>,
    /// The figure to expect on an 8-core machine (reasoned, not measured).
    pub eight_cores: Option<String>,
    /// Anything else to say.
    pub say: Option<String>,
}

impl Notes {
    /// The fields that are set, with the label a presenter reads them by, in the order they are said.
    pub(crate) fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("say", &self.say),
            ("point at", &self.point),
            ("ask before r", &self.ask),
            ("on 2 cores", &self.two_cores),
            ("on 8 cores", &self.eight_cores),
        ]
        .into_iter()
        .filter_map(|(label, v)| v.as_deref().map(|v| (label, v)))
        .collect()
    }

    fn fields_mut(&mut self) -> [&mut Option<String>; 5] {
        [&mut self.say, &mut self.point, &mut self.ask, &mut self.two_cores, &mut self.eight_cores]
    }

    pub(crate) fn make_safe(&mut self) {
        for s in self.fields_mut().into_iter().flatten() {
            text::make_safe(s);
        }
    }
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

/// Knobs a learner may change in an exercise (the one vocabulary: `experiment::knob`).
pub(crate) use crate::experiment::knob::Knob;

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
    /// A starter in assets/exercises/ for `parlab check ID FILE.py`; its intended fix is
    /// assets/exercises/solutions/ under the same name.
    pub python: Option<String>,
    /// The intended fix of the native exercise: what `lint --verify` checks passes (and the start fails).
    pub solution: Box<Solution>,
}

/// Changes to an exercise's starting setup, as `parlab check ID --workers 2 ...` makes them: only knobs the
/// exercise lets the learner change, each `None` (or `warm: false`) where the start is kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Solution {
    pub mode: Option<Mode>,
    /// `api` is never set: it is fixed by the exercise, not a knob.
    pub knobs: Knobs,
    pub size: Option<u64>,
    pub tasks: Option<u64>,
}

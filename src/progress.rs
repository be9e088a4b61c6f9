//! The learner's progress file: lessons started and done, quiz answers, exercises passed with their best figures,
//! hints used, predictions, and where the learner stopped.
//!
//! It lives in the platform data directory (`~/.local/share/parlab/progress.json` on Linux; `PARLAB_DATA_DIR`
//! overrides it). Every change is also kept as an operation; `save` takes an advisory lock (flock on
//! `progress.lock` beside the file), re-reads the file, replays this instance's operations onto it, and replaces the
//! file atomically (temp file in the same folder, fsync, rename). So two parlab instances at once never corrupt the
//! file or lose each other's updates, and a crash mid-write leaves the old file whole. A file that does not parse
//! is moved aside as `progress.json.corrupt-<unix time>` with a warning, never silently overwritten. A file in a
//! newer format (a later parlab wrote it) is shown as far as it is understood and never written over; values out
//! of range are dropped with a warning; a data folder that is a file is said once, and nothing is saved then.
//! (Settings such as a saved theme belong at the top level of `ProgressData`, beside `version`.)
//!
//! Never imports: the lab, the app or the widgets.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Overrides the data directory (tests use a temporary one).
pub(crate) const DATA_DIR_ENV: &str = "PARLAB_DATA_DIR";
pub(crate) const FILE_NAME: &str = "progress.json";
const LOCK_NAME: &str = "progress.lock";
const FORMAT_VERSION: u32 = 1;
/// Predictions kept (the oldest are dropped first).
const MAX_PREDICTIONS: usize = 200;
/// The largest section, quiz, choice or hint number a file may hold: far beyond any lesson, far below a wrap.
pub(crate) const MAX_INDEX: usize = 10_000;
/// A progress file is a few KiB; one bigger than this is not one.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Values out of range named in a warning (then "and N more").
const MAX_NAMED: usize = 3;

/// How far a learner got with a lesson (the mark in the lesson list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LessonMark {
    NotStarted,
    Started,
    Done,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct LessonProgress {
    /// The section last shown.
    pub section: usize,
    /// The furthest section reached.
    pub furthest: usize,
    pub done: bool,
    /// Quiz answers by quiz index within the lesson (the latest answer).
    pub quizzes: BTreeMap<usize, QuizAnswer>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct QuizAnswer {
    pub choice: usize,
    pub correct: bool,
    pub attempts: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ExerciseProgress {
    pub passed: bool,
    pub attempts: u32,
    /// Highest and lowest figure over the passing attempts (over all attempts until one passes). Which of the two
    /// is "best" depends on the goal (`speedup >=` wants the highest, `wall_ms <=` the lowest): see
    /// [`Progress::best_figure`].
    pub highest: Option<f64>,
    pub lowest: Option<f64>,
    pub last: Option<f64>,
    /// How many hints the learner has seen.
    pub hints: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Prediction {
    pub key: String,
    pub predicted: f64,
    pub measured: f64,
    /// Unix time, seconds.
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub lesson: String,
    pub section: usize,
}

/// The learner's choices in the TUI.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Settings {
    /// The theme last chosen with `t` (dark, light, contrast).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
}

impl Settings {
    fn is_empty(&self) -> bool {
        self.theme.is_none()
    }
}

/// The file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ProgressData {
    pub version: u32,
    pub lessons: BTreeMap<String, LessonProgress>,
    pub exercises: BTreeMap<String, ExerciseProgress>,
    pub predictions: Vec<Prediction>,
    pub last: Option<Position>,
    /// Left out while empty, so a file without settings stays readable by builds that predate them.
    #[serde(skip_serializing_if = "Settings::is_empty")]
    pub settings: Settings,
}

impl Default for ProgressData {
    fn default() -> Self {
        ProgressData {
            version: FORMAT_VERSION,
            lessons: BTreeMap::new(),
            exercises: BTreeMap::new(),
            predictions: Vec::new(),
            last: None,
            settings: Settings::default(),
        }
    }
}

/// One change, replayed onto the file's current content at save time.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Section { lesson: String, section: usize },
    LessonDone(String),
    Quiz { lesson: String, quiz: usize, choice: usize, correct: bool },
    Hint { exercise: String, n: usize },
    Prediction(Prediction),
    Exercise { id: String, passed: bool, figure: f64 },
    Theme(String),
}

impl ProgressData {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Section { lesson, section } => {
                let l = self.lessons.entry(lesson.clone()).or_default();
                l.section = *section;
                l.furthest = l.furthest.max(*section);
                self.last = Some(Position { lesson: lesson.clone(), section: *section });
            }
            Op::LessonDone(lesson) => self.lessons.entry(lesson.clone()).or_default().done = true,
            Op::Quiz { lesson, quiz, choice, correct } => {
                let q = self.lessons.entry(lesson.clone()).or_default().quizzes.entry(*quiz).or_default();
                q.choice = *choice;
                q.correct = *correct;
                q.attempts = q.attempts.saturating_add(1);
            }
            Op::Hint { exercise, n } => {
                let e = self.exercises.entry(exercise.clone()).or_default();
                e.hints = e.hints.max(*n);
            }
            Op::Prediction(p) => {
                self.predictions.push(p.clone());
                let extra = self.predictions.len().saturating_sub(MAX_PREDICTIONS);
                self.predictions.drain(..extra);
            }
            Op::Theme(name) => self.settings.theme = Some(name.clone()),
            Op::Exercise { id, passed, figure } => {
                let e = self.exercises.entry(id.clone()).or_default();
                e.attempts = e.attempts.saturating_add(1);
                if !figure.is_finite() {
                    e.passed |= *passed;
                    return;
                }
                e.last = Some(*figure);
                if *passed && !e.passed {
                    // The first pass replaces the figures of the failed attempts.
                    e.passed = true;
                    e.highest = Some(*figure);
                    e.lowest = Some(*figure);
                } else if *passed == e.passed {
                    e.highest = Some(e.highest.map_or(*figure, |h| h.max(*figure)));
                    e.lowest = Some(e.lowest.map_or(*figure, |l| l.min(*figure)));
                }
            }
        }
    }
}

impl ProgressData {
    /// Drops every value no lesson can have (a section or quiz number beyond `MAX_INDEX`, which could only wrap or
    /// mislead), and names what was dropped.
    pub(crate) fn drop_out_of_range(&mut self) -> Vec<String> {
        let mut dropped = Vec::new();
        for (id, l) in &mut self.lessons {
            if l.section > MAX_INDEX {
                dropped.push(format!("lesson '{}' section {}", shown(id), l.section));
                l.section = 0;
            }
            if l.furthest > MAX_INDEX {
                dropped.push(format!("lesson '{}' furthest section {}", shown(id), l.furthest));
                l.furthest = l.section;
            }
            l.quizzes.retain(|quiz, answer| {
                let ok = *quiz <= MAX_INDEX && answer.choice <= MAX_INDEX;
                if !ok {
                    dropped.push(format!("lesson '{}' quiz {quiz} answer {}", shown(id), answer.choice));
                }
                ok
            });
        }
        for (id, e) in &mut self.exercises {
            if e.hints > MAX_INDEX {
                dropped.push(format!("exercise '{}' hints {}", shown(id), e.hints));
                e.hints = 0;
            }
        }
        if let Some(p) = &self.last
            && p.section > MAX_INDEX
        {
            dropped.push(format!("resume position '{}' section {}", shown(&p.lesson), p.section));
            self.last = None;
        }
        dropped
    }
}

/// A name from the file, as it may be shown in a message.
fn shown(text: &str) -> String {
    crate::exercise::text::terminal_safe(text, 60)
}

/// What the bytes of a progress file hold.
#[derive(Debug, PartialEq)]
pub(crate) enum Parsed {
    /// This format, with the values that were out of range and dropped.
    Current(ProgressData, Vec<String>),
    /// A newer format: what this parlab understands of it, which must never be written back.
    Newer(u32, ProgressData),
    Damaged(String),
}

/// Parses a progress file (pure). A UTF-8 byte order mark, which some editors add, is not damage.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // The version first, without judging the rest: a newer format may have fields this parlab does not know.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            let version = map.get("version").and_then(serde_json::Value::as_u64);
            if let Some(v) = version.filter(|v| *v > u64::from(FORMAT_VERSION)) {
                // Keep the fields this format has (whatever is added to `ProgressData` later, e.g. a theme).
                let known = serde_json::to_value(ProgressData::default()).unwrap_or_default();
                map.retain(|k, _| k != "version" && known.get(k).is_some());
                let mut data: ProgressData = serde_json::from_value(serde_json::Value::Object(map)).unwrap_or_default();
                data.drop_out_of_range();
                return Parsed::Newer(u32::try_from(v).unwrap_or(u32::MAX), data);
            }
        }
        // serde would take `[]` for a struct with defaults: a progress file is an object.
        Ok(_) => return Parsed::Damaged("not a JSON object".to_string()),
        // The typed parse below says where the text goes wrong.
        Err(_) => {}
    }
    match serde_json::from_slice::<ProgressData>(bytes) {
        Ok(mut data) => {
            let dropped = data.drop_out_of_range();
            Parsed::Current(data, dropped)
        }
        Err(e) => Parsed::Damaged(e.to_string()),
    }
}

fn newer_text(path: &Path, version: u32) -> String {
    format!(
        "the progress file '{}' is in format {version}, newer than this parlab's ({FORMAT_VERSION}): it is shown as \
         far as this parlab understands it and nothing will be saved over it (update parlab to keep saving progress)",
        path.display()
    )
}

fn dropped_text(path: &Path, dropped: &[String]) -> Option<String> {
    if dropped.is_empty() {
        return None;
    }
    let mut named = dropped.iter().take(MAX_NAMED).cloned().collect::<Vec<_>>().join(", ");
    if dropped.len() > MAX_NAMED {
        named.push_str(&format!(" and {} more", dropped.len() - MAX_NAMED));
    }
    Some(format!(
        "the progress file '{}' held values out of range ({named}; at most {MAX_INDEX} allowed): they were dropped",
        path.display()
    ))
}

/// Why progress cannot be kept in `dir` at all: it, or a folder above it, is a file.
fn folder_problem(dir: &Path) -> Option<String> {
    let mut at = Some(dir);
    while let Some(a) = at {
        match fs::metadata(a) {
            Ok(m) if m.is_dir() => return None,
            Ok(_) => {
                let what = if a == dir { String::new() } else { format!(": '{}' is a file", a.display()) };
                return Some(format!(
                    "the progress folder '{}' is not a folder{what}; progress will not be saved this time (move the \
                     file away, or set {DATA_DIR_ENV} to a folder)",
                    dir.display()
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => at = a.parent(),
            Err(_) => return None,
        }
    }
    None
}

/// The progress in memory, with the changes not yet saved. `save` takes `&self` (the UI saves from wherever it
/// stands), so the state sits behind a mutex; every other method is plain.
#[derive(Debug)]
pub(crate) struct Progress {
    state: Mutex<State>,
    /// Where it is saved; `None` when no data directory could be found (nothing is saved then).
    dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Default)]
struct State {
    data: ProgressData,
    pending: Vec<Op>,
    /// A warning from a save (a corrupt file moved aside), for the UI to show.
    warning: Option<String>,
    /// Warnings already given, so a save that finds the same thing again does not repeat it.
    told: Vec<String>,
    /// Why nothing may be saved (a newer format on disk, no folder to save in), said once when it was found.
    frozen: Option<String>,
}

impl Clone for Progress {
    fn clone(&self) -> Self {
        Progress { state: Mutex::new(self.state().clone()), dir: self.dir.clone() }
    }
}

/// The folder the progress file lives in.
pub(crate) fn data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "parlab")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| anyhow!("cannot find your home folder to keep progress in (set {DATA_DIR_ENV} to a folder)"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Holds the advisory lock on `progress.lock` until dropped.
struct DirLock {
    _lock: Option<Flock<File>>,
}

fn lock_dir(dir: &Path) -> Result<DirLock> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create the progress folder '{}'", dir.display()))?;
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file '{}'", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusive) {
        Ok(lock) => Ok(DirLock { _lock: Some(lock) }),
        // A file system without flock (some network mounts): the rename still keeps every write whole.
        Err((_, nix::errno::Errno::ENOLCK | nix::errno::Errno::EOPNOTSUPP)) => Ok(DirLock { _lock: None }),
        Err((_, e)) => Err(anyhow!("cannot lock '{}': {e}", path.display())),
    }
}

/// What reading the file found.
#[derive(Debug, Default)]
struct Loaded {
    data: ProgressData,
    /// Something to tell the learner: a damaged file moved aside, values dropped, a newer format.
    warning: Option<String>,
    /// Why the file must not be written over, if it must not (a newer format).
    frozen: Option<String>,
}

/// Reads the file (under the lock, when the caller holds it). A file that does not parse is moved aside.
fn read_locked(dir: &Path) -> Result<Loaded> {
    let path = dir.join(FILE_NAME);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(anyhow!("cannot read the progress file '{}': {e}", path.display())),
    };
    // Never block on a FIFO or read a device: only a regular file can be a progress file.
    if !meta.is_file() {
        return Err(anyhow!("the progress file '{}' is not a regular file", path.display()));
    }
    let parsed = if meta.len() > MAX_FILE_BYTES {
        Parsed::Damaged(format!("{} bytes, far more than a progress file holds", meta.len()))
    } else {
        let text = fs::read(&path).map_err(|e| anyhow!("cannot read the progress file '{}': {e}", path.display()))?;
        parse(&text)
    };
    match parsed {
        Parsed::Current(data, dropped) => Ok(Loaded { data, warning: dropped_text(&path, &dropped), frozen: None }),
        Parsed::Newer(version, data) => {
            let why = newer_text(&path, version);
            Ok(Loaded { data, warning: Some(why.clone()), frozen: Some(why) })
        }
        Parsed::Damaged(err) => {
            let aside = move_aside(&path)?;
            Ok(Loaded {
                data: ProgressData::default(),
                warning: Some(format!(
                    "the progress file '{}' was damaged ({err}); it was kept as '{}' and a fresh one started",
                    path.display(),
                    aside.display()
                )),
                frozen: None,
            })
        }
    }
}

fn move_aside(path: &Path) -> Result<PathBuf> {
    let base = format!("{}.corrupt-{}", path.display(), unix_now());
    let mut aside = PathBuf::from(&base);
    let mut n = 2;
    while aside.exists() {
        aside = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    fs::rename(path, &aside)
        .with_context(|| format!("cannot move the damaged progress file '{}' aside", path.display()))?;
    Ok(aside)
}

/// Writes `data` to the progress file atomically: a temp file in the same folder, flushed to disk, renamed over.
fn write_atomic(dir: &Path, data: &ProgressData) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let text = serde_json::to_string_pretty(data)? + "\n";
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable (best effort: not every file system allows syncing a folder).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!("cannot write the progress file '{}': {e}", path.display()));
    }
    Ok(())
}

impl Progress {
    /// Loads the learner's progress. Never fails: a missing file is a fresh start, and anything else (a damaged file
    /// moved aside, an unreadable folder) comes back as a warning to show.
    pub(crate) fn load() -> (Progress, Option<String>) {
        match data_dir() {
            Ok(dir) => Progress::load_from(&dir),
            Err(e) => {
                let why = format!("{e:#}; progress will not be saved");
                (Progress::frozen(None, ProgressData::default(), why.clone()), Some(why))
            }
        }
    }

    /// Loads from a given folder (tests, and `load`).
    pub(crate) fn load_from(dir: &Path) -> (Progress, Option<String>) {
        let here = Some(dir.to_path_buf());
        if let Some(problem) = folder_problem(dir) {
            return (Progress::frozen(here, ProgressData::default(), problem.clone()), Some(problem));
        }
        let path = dir.join(FILE_NAME);
        match fs::symlink_metadata(&path) {
            // A fresh start creates nothing until there is something to save.
            Err(e) if e.kind() == ErrorKind::NotFound => return (Progress::new(here, ProgressData::default()), None),
            Ok(m) if !m.is_file() && !m.file_type().is_symlink() => {
                let why = format!(
                    "the progress file '{}' is not a regular file; progress will not be saved this time (move it \
                     away, or set {DATA_DIR_ENV} to another folder)",
                    path.display()
                );
                return (Progress::frozen(here, ProgressData::default(), why.clone()), Some(why));
            }
            _ => {}
        }
        let locked = lock_dir(dir).and_then(|_lock| read_locked(dir));
        let (progress, warning) = match locked {
            Ok(loaded) => {
                let mut p = Progress::new(here, loaded.data);
                p.state_mut().frozen = loaded.frozen;
                (p, loaded.warning)
            }
            // A folder that cannot be locked (read-only) may still be read: show what is there. `save` re-reads
            // under the lock and refuses to overwrite what it cannot read.
            Err(e) => {
                let data = match fs::metadata(&path) {
                    Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => match fs::read(&path).map(|t| parse(&t)) {
                        Ok(Parsed::Current(data, _) | Parsed::Newer(_, data)) => data,
                        _ => ProgressData::default(),
                    },
                    _ => ProgressData::default(),
                };
                (Progress::new(here, data), Some(format!("{e:#}; progress may not be saved")))
            }
        };
        if let Some(w) = &warning {
            progress.state().told.push(w.clone());
        }
        (progress, warning)
    }

    fn new(dir: Option<PathBuf>, data: ProgressData) -> Progress {
        Progress { state: Mutex::new(State { data, ..State::default() }), dir }
    }

    /// Progress that is shown and changed in memory but never saved, for the reason given.
    fn frozen(dir: Option<PathBuf>, data: ProgressData, why: String) -> Progress {
        Progress { state: Mutex::new(State { data, frozen: Some(why), ..State::default() }), dir }
    }

    /// Why this progress will not be saved, if it will not.
    pub(crate) fn not_saved(&self) -> Option<String> {
        self.state().frozen.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    fn folder(&self) -> Result<&Path> {
        match &self.dir {
            Some(dir) => Ok(dir),
            None => Err(data_dir().err().unwrap_or_else(|| anyhow!("no progress folder"))),
        }
    }

    /// Where the progress file is (or would be).
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(FILE_NAME))
    }

    /// Saves this instance's changes, merged with whatever other instances saved meanwhile.
    /// Progress that cannot be saved (said once, at load) is kept in memory only, and saving it is not an error.
    pub(crate) fn save(&self) -> Result<()> {
        let dir = self.folder()?;
        let mut state = self.state();
        if state.frozen.is_some() || (state.pending.is_empty() && dir.join(FILE_NAME).exists()) {
            return Ok(());
        }
        let _lock = lock_dir(dir)?;
        let loaded = read_locked(dir)?;
        if let Some(w) = loaded.warning
            && !state.told.contains(&w)
        {
            state.told.push(w.clone());
            state.warning = Some(w);
        }
        if loaded.frozen.is_some() {
            // A newer parlab wrote the file since this one loaded it: keep it as it is.
            state.frozen = loaded.frozen;
            return Ok(());
        }
        let mut disk = loaded.data;
        for op in &state.pending {
            disk.apply(op);
        }
        disk.version = FORMAT_VERSION;
        write_atomic(dir, &disk)?;
        state.data = disk;
        state.pending.clear();
        Ok(())
    }

    /// Clears all progress on disk (the caller has asked for confirmation).
    pub(crate) fn reset(&mut self) -> Result<()> {
        if let Some(why) = &self.state().frozen {
            return Err(anyhow!("nothing was cleared: {why}"));
        }
        let dir = self.folder()?.to_path_buf();
        let _lock = lock_dir(&dir)?;
        if let Some(why) = read_locked(&dir)?.frozen {
            return Err(anyhow!("nothing was cleared: {why}"));
        }
        write_atomic(&dir, &ProgressData::default())?;
        *self.state_mut() = State::default();
        Ok(())
    }

    /// A warning from the last save (a damaged file found and moved aside), once.
    pub(crate) fn take_warning(&self) -> Option<String> {
        self.state().warning.take()
    }

    /// A copy of everything recorded.
    pub(crate) fn data(&self) -> ProgressData {
        self.state().data.clone()
    }

    fn push(&mut self, op: Op) {
        let state = self.state_mut();
        state.data.apply(&op);
        state.pending.push(op);
    }

    /// The learner is looking at `section` of `lesson` (also the resume position).
    pub(crate) fn mark_section(&mut self, lesson: &str, section: usize) {
        let data = &self.state_mut().data;
        let same = data.last.as_ref().is_some_and(|p| p.lesson == lesson && p.section == section)
            && data.lessons.contains_key(lesson);
        if !same {
            self.push(Op::Section { lesson: lesson.to_string(), section });
        }
    }

    pub(crate) fn lesson_done(&mut self, lesson: &str) {
        if self.lesson_mark(lesson) != LessonMark::Done {
            self.push(Op::LessonDone(lesson.to_string()));
        }
    }

    /// The learner answered quiz number `quiz` (counted from 0 within the lesson) with `choice`.
    pub(crate) fn record_quiz(&mut self, lesson: &str, quiz: usize, choice: usize, correct: bool) {
        self.push(Op::Quiz { lesson: lesson.to_string(), quiz, choice, correct });
    }

    /// The learner has now seen `n` hints of `exercise` (1 after the first); the count never goes down.
    pub(crate) fn hint_used(&mut self, exercise: &str, n: usize) {
        if self.hints_used(exercise) < n {
            self.push(Op::Hint { exercise: exercise.to_string(), n });
        }
    }

    pub(crate) fn hints_used(&self, exercise: &str) -> usize {
        self.state().data.exercises.get(exercise).map_or(0, |e| e.hints)
    }

    pub(crate) fn record_prediction(&mut self, key: &str, predicted: f64, measured: f64) {
        self.push(Op::Prediction(Prediction { key: key.to_string(), predicted, measured, at: unix_now() }));
    }

    /// One check of an exercise: whether it passed and the measured figure (kept if it is the best so far; a
    /// figure that is not a number, for a check that could not measure, only counts the attempt).
    pub(crate) fn record_exercise(&mut self, id: &str, passed: bool, figure: f64) {
        self.push(Op::Exercise { id: id.to_string(), passed, figure });
    }

    /// The theme the learner chose last in the TUI.
    pub(crate) fn theme(&self) -> Option<String> {
        self.state().data.settings.theme.clone()
    }

    pub(crate) fn set_theme(&mut self, name: &str) {
        if self.theme().as_deref() != Some(name) {
            self.push(Op::Theme(name.to_string()));
        }
    }

    /// Where the learner stopped: the lesson and section shown last.
    pub(crate) fn last_position(&self) -> Option<(String, usize)> {
        self.state().data.last.as_ref().map(|p| (p.lesson.clone(), p.section))
    }

    pub(crate) fn lesson_mark(&self, lesson: &str) -> LessonMark {
        match self.state().data.lessons.get(lesson) {
            None => LessonMark::NotStarted,
            Some(l) if l.done => LessonMark::Done,
            Some(_) => LessonMark::Started,
        }
    }

    pub(crate) fn exercise_passed(&self, id: &str) -> bool {
        self.state().data.exercises.get(id).is_some_and(|e| e.passed)
    }

    /// The best figure recorded for an exercise: the highest when the goal wants more (`>=`), else the lowest.
    pub(crate) fn best_figure(&self, id: &str, higher_is_better: bool) -> Option<f64> {
        let state = self.state();
        let e = state.data.exercises.get(id)?;
        if higher_is_better { e.highest } else { e.lowest }
    }

    pub(crate) fn exercise(&self, id: &str) -> Option<ExerciseProgress> {
        self.state().data.exercises.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn a_fresh_folder_loads_empty_progress_without_a_warning_or_a_file() {
        let dir = temp();
        let (p, warning) = Progress::load_from(&dir.path().join("parlab"));
        assert!(warning.is_none());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "loading alone writes nothing");
        assert_eq!(p.lesson_mark("gil"), LessonMark::NotStarted);
        assert_eq!(p.last_position(), None);
        assert!(!p.exercise_passed("beat-the-gil"));
    }

    #[test]
    fn saved_progress_comes_back_after_a_restart() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        p.mark_section("gil", 2);
        p.mark_section("gil", 3);
        p.mark_section("intro", 1);
        p.lesson_done("intro");
        p.record_quiz("gil", 0, 1, true);
        p.hint_used("beat-the-gil", 2);
        p.record_prediction("gil/threads", 1.5, 1.9);
        p.record_exercise("beat-the-gil", false, 0.98);
        p.record_exercise("beat-the-gil", true, 1.8);
        p.record_exercise("beat-the-gil", true, 1.6);
        p.save().unwrap();

        let (q, warning) = Progress::load_from(dir.path());
        assert!(warning.is_none());
        assert_eq!(q.lesson_mark("gil"), LessonMark::Started);
        assert_eq!(q.lesson_mark("intro"), LessonMark::Done);
        assert_eq!(q.lesson_mark("asyncio"), LessonMark::NotStarted);
        assert_eq!(q.last_position(), Some(("intro".to_string(), 1)));
        assert_eq!(q.data().lessons["gil"].furthest, 3);
        assert_eq!(q.data().lessons["gil"].quizzes[&0], QuizAnswer { choice: 1, correct: true, attempts: 1 });
        assert_eq!(q.hints_used("beat-the-gil"), 2);
        assert_eq!(q.data().predictions.len(), 1);
        assert!(q.exercise_passed("beat-the-gil"));
        let e = q.exercise("beat-the-gil").unwrap();
        assert_eq!(e.attempts, 3);
        // The failed attempt's 0.98 is not a best figure once the exercise passed.
        assert_eq!(q.best_figure("beat-the-gil", true), Some(1.8));
        assert_eq!(q.best_figure("beat-the-gil", false), Some(1.6));
    }

    #[test]
    fn a_failed_attempt_after_a_pass_keeps_the_pass_and_its_best_figure() {
        let mut d = ProgressData::default();
        d.apply(&Op::Exercise { id: "x".into(), passed: true, figure: 1.7 });
        d.apply(&Op::Exercise { id: "x".into(), passed: false, figure: 0.9 });
        let e = &d.exercises["x"];
        assert!(e.passed);
        assert_eq!((e.highest, e.lowest, e.last), (Some(1.7), Some(1.7), Some(0.9)));
    }

    #[test]
    fn the_chosen_theme_is_remembered_and_a_file_without_one_has_no_settings() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        p.mark_section("gil", 0);
        p.save().unwrap();
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains("settings"), "older builds read a file without settings: {text}");
        p.set_theme("contrast");
        p.save().unwrap();
        let (again, warning) = Progress::load_from(dir.path());
        assert_eq!(warning, None);
        assert_eq!(again.theme().as_deref(), Some("contrast"));
    }

    #[test]
    fn hints_seen_never_go_down() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        p.hint_used("e", 3);
        p.hint_used("e", 1);
        assert_eq!(p.hints_used("e"), 3);
    }

    #[test]
    fn save_replaces_the_file_whole_and_leaves_no_temp_files() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        for i in 0..20 {
            p.mark_section("gil", i);
            p.save().unwrap();
            let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
            let data: ProgressData = serde_json::from_str(&text).expect("always a whole, valid file");
            assert_eq!(data.lessons["gil"].section, i);
        }
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn readers_never_see_a_half_written_file() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        p.lesson_done("intro");
        p.save().unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, done) = (dir.path().join(FILE_NAME), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    let text = fs::read(&path).expect("the file is always there");
                    serde_json::from_slice::<ProgressData>(&text).expect("always a whole, valid file");
                    reads += 1;
                }
            })
        };
        // Big enough that a plain truncate-and-write would be caught half done.
        for i in 0..150 {
            p.record_prediction(&format!("key-{i}-{}", "x".repeat(200)), 1.0, 2.0);
            p.save().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    }

    #[test]
    fn a_failed_write_removes_its_temp_file() {
        let dir = temp();
        // The rename target is a non-empty folder, so the rename fails.
        fs::create_dir_all(dir.path().join(FILE_NAME).join("x")).unwrap();
        assert!(write_atomic(dir.path(), &ProgressData::default()).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only the folder remains");
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_with_a_warning_and_a_fresh_one_starts() {
        let dir = temp();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, "{ \"lessons\": { \"gil\": ").unwrap();
        let (mut p, warning) = Progress::load_from(dir.path());
        let warning = warning.expect("a warning");
        assert!(warning.contains("damaged") && warning.contains(".corrupt-"), "{warning}");
        assert!(!path.exists(), "moved aside, not left in place");
        let aside: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("progress.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read_to_string(&aside[0]).unwrap(), "{ \"lessons\": { \"gil\": ", "kept byte for byte");
        p.lesson_done("intro");
        p.save().unwrap();
        let (q, warning) = Progress::load_from(dir.path());
        assert!(warning.is_none());
        assert_eq!(q.lesson_mark("intro"), LessonMark::Done);
    }

    #[test]
    fn a_file_damaged_by_someone_else_before_a_save_is_moved_aside_too() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        fs::write(dir.path().join(FILE_NAME), "not json").unwrap();
        p.lesson_done("intro");
        p.save().unwrap();
        assert!(p.take_warning().is_some_and(|w| w.contains("damaged")));
        assert_eq!(Progress::load_from(dir.path()).0.lesson_mark("intro"), LessonMark::Done);
    }

    #[test]
    fn wrong_types_count_as_damage() {
        let dir = temp();
        fs::write(dir.path().join(FILE_NAME), r#"{"lessons": {"gil": {"done": "yes"}}}"#).unwrap();
        let (_, warning) = Progress::load_from(dir.path());
        assert!(warning.is_some());
    }

    #[test]
    fn two_writers_at_once_lose_nothing() {
        let dir = temp();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    // Each writer loaded before the other saved anything: a plain overwrite would lose updates.
                    let (mut p, _) = Progress::load_from(&dir);
                    for i in 0..25 {
                        p.record_exercise(&format!("w{w}-e{i}"), true, i as f64);
                        p.record_quiz("shared", w * 100 + i, 0, true);
                        p.save().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let (p, warning) = Progress::load_from(dir.path());
        assert!(warning.is_none());
        for w in 0..2 {
            for i in 0..25 {
                assert!(p.exercise_passed(&format!("w{w}-e{i}")), "w{w}-e{i} lost");
                assert!(p.data().lessons["shared"].quizzes.contains_key(&(w * 100 + i)));
            }
        }
    }

    #[test]
    fn reset_clears_everything() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        p.lesson_done("intro");
        p.save().unwrap();
        p.reset().unwrap();
        assert_eq!(Progress::load_from(dir.path()).0.lesson_mark("intro"), LessonMark::NotStarted);
    }

    #[test]
    fn a_newer_format_is_shown_read_only_and_never_written_over() {
        let dir = temp();
        let path = dir.path().join(FILE_NAME);
        let newer = r#"{"version": 99, "lessons": {"gil": {"done": true}}, "theme": "contrast", "new_thing": [1]}"#;
        fs::write(&path, newer).unwrap();
        let (mut p, warning) = Progress::load_from(dir.path());
        let warning = warning.expect("a warning");
        assert!(warning.contains("is in format 99, newer than this parlab's (1)"), "{warning}");
        assert!(warning.contains("nothing will be saved over it"), "{warning}");
        assert_eq!(p.lesson_mark("gil"), LessonMark::Done, "what this parlab understands is shown");
        assert!(p.not_saved().is_some());
        p.lesson_done("intro");
        p.save().expect("not saving is not an error");
        assert_eq!(p.take_warning(), None, "said once, at load");
        assert_eq!(fs::read_to_string(&path).unwrap(), newer, "the newer file is untouched");
        assert!(p.reset().unwrap_err().to_string().contains("nothing was cleared"));
        assert_eq!(fs::read_to_string(&path).unwrap(), newer);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path() != path).count(),
            1,
            "only the lock"
        );
    }

    #[test]
    fn a_newer_file_written_by_another_parlab_meanwhile_is_not_overwritten() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        let newer = r#"{"version": 2, "lessons": {}}"#;
        fs::write(dir.path().join(FILE_NAME), newer).unwrap();
        p.lesson_done("intro");
        p.save().unwrap();
        assert!(p.take_warning().is_some_and(|w| w.contains("format 2")));
        assert_eq!(fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(), newer);
    }

    #[test]
    fn indexes_out_of_range_are_dropped_with_a_warning_never_wrapped() {
        let dir = temp();
        let max = u64::MAX;
        fs::write(
            dir.path().join(FILE_NAME),
            format!(
                r#"{{"lessons": {{"gil": {{"section": {max}, "furthest": {max}, "quizzes": {{"0": {{"choice": {max}}},
                   "1": {{"choice": 1, "correct": true}}}}}}}}, "exercises": {{"e": {{"hints": {max}, "attempts": 4294967295}}}},
                   "last": {{"lesson": "gil", "section": {max}}}}}"#
            ),
        )
        .unwrap();
        let (mut p, warning) = Progress::load_from(dir.path());
        let warning = warning.expect("a warning");
        assert!(
            warning.contains(&format!("lesson 'gil' section {max}")) && warning.contains("they were dropped"),
            "{warning}"
        );
        assert!(warning.contains("and 2 more"), "{warning}");
        let gil = &p.data().lessons["gil"];
        assert_eq!((gil.section, gil.furthest), (0, 0));
        assert_eq!(gil.quizzes.keys().copied().collect::<Vec<_>>(), vec![1], "the good answer stays");
        assert_eq!(p.last_position(), None);
        assert_eq!(p.hints_used("e"), 0);
        p.record_exercise("e", false, 1.0);
        assert_eq!(p.exercise("e").unwrap().attempts, u32::MAX, "a count at its limit stays there");
        p.save().unwrap();
        assert_eq!(p.take_warning(), None, "the same values are not reported twice");
        let (_, again) = Progress::load_from(dir.path());
        assert_eq!(again, None, "the saved file holds no value out of range");
    }

    #[test]
    fn a_byte_order_mark_is_not_damage() {
        let dir = temp();
        fs::write(dir.path().join(FILE_NAME), "\u{feff}{\"lessons\": {\"intro\": {\"done\": true}}}").unwrap();
        let (p, warning) = Progress::load_from(dir.path());
        assert_eq!(warning, None);
        assert_eq!(p.lesson_mark("intro"), LessonMark::Done);
    }

    #[test]
    fn a_data_folder_that_is_a_file_is_said_once_and_nothing_is_saved() {
        let dir = temp();
        let file = dir.path().join("not-a-folder");
        fs::write(&file, "mine").unwrap();
        for place in [file.clone(), file.join("parlab")] {
            let (mut p, warning) = Progress::load_from(&place);
            let warning = warning.expect("a warning");
            assert!(warning.contains("is not a folder") && warning.contains("will not be saved"), "{warning}");
            if place != file {
                assert!(warning.contains(&format!("'{}' is a file", file.display())), "{warning}");
            }
            p.lesson_done("intro");
            assert_eq!(p.lesson_mark("intro"), LessonMark::Done, "it keeps working in memory");
            p.save().expect("no error on every save");
            assert_eq!(p.take_warning(), None);
            assert_eq!(fs::read_to_string(&file).unwrap(), "mine");
        }
    }

    #[test]
    fn a_progress_file_that_is_a_fifo_is_refused_without_blocking() {
        let dir = temp();
        nix::unistd::mkfifo(&dir.path().join(FILE_NAME), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (p, warning) = Progress::load_from(dir.path());
        assert!(warning.is_some_and(|w| w.contains("is not a regular file")));
        assert!(p.not_saved().is_some());
        p.save().unwrap();
    }

    #[test]
    fn parsing_tells_current_newer_and_damaged_apart() {
        assert!(matches!(parse(b"{}"), Parsed::Current(_, ref d) if d.is_empty()));
        assert!(
            matches!(parse(br#"{"version": 1, "theme2": 1}"#), Parsed::Damaged(_)),
            "unknown fields in this format"
        );
        assert!(matches!(parse(br#"{"version": 7, "theme2": 1}"#), Parsed::Newer(7, _)));
        assert!(matches!(parse(br#"{"version": "2"}"#), Parsed::Damaged(_)));
        assert!(matches!(parse(b"\xef\xbb\xbf{}"), Parsed::Current(..)));
        assert!(matches!(parse(b"[]"), Parsed::Damaged(_)));
    }

    #[test]
    fn the_environment_variable_chooses_the_folder() {
        // Only checks the rule, without changing this process's environment (tests run in parallel).
        let dir = data_dir().unwrap();
        match std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(d) => assert_eq!(dir, PathBuf::from(d)),
            None => assert!(dir.ends_with("parlab"), "{}", dir.display()),
        }
    }
}

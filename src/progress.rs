//! The learner's progress file: lessons started and done, quiz answers, exercises passed with their best figures,
//! hints used, predictions, and where the learner stopped.
//!
//! It lives in the platform data directory (`~/.local/share/parlab/progress.json` on Linux; `PARLAB_DATA_DIR`
//! overrides it). Every change is also kept as an operation; `save` takes an advisory lock (flock on
//! `progress.lock` beside the file), re-reads the file, replays this instance's operations onto it, and replaces the
//! file atomically (temp file in the same folder, fsync, rename). So two parlab instances at once never corrupt the
//! file or lose each other's updates, and a crash mid-write leaves the old file whole. A file that does not parse
//! is moved aside as `progress.json.corrupt-<unix time>` with a warning, never silently overwritten.

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

/// How far a learner got with a lesson (the mark in the lesson list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
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
                q.attempts += 1;
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
                e.attempts += 1;
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

/// Reads the file under the lock. A file that does not parse is moved aside and reported in the second value.
fn read_locked(dir: &Path) -> Result<(ProgressData, Option<String>)> {
    let path = dir.join(FILE_NAME);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((ProgressData::default(), None)),
        Err(e) => {
            return Err(anyhow!("cannot read the progress file '{}': {e}", path.display()));
        }
    };
    match serde_json::from_slice::<ProgressData>(&text) {
        Ok(data) => Ok((data, None)),
        Err(err) => {
            let aside = move_aside(&path)?;
            Ok((
                ProgressData::default(),
                Some(format!(
                    "the progress file '{}' was damaged ({err}); it was kept as '{}' and a fresh one started",
                    path.display(),
                    aside.display()
                )),
            ))
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
                (Progress::new(None, ProgressData::default()), Some(format!("{e:#}; progress will not be saved")))
            }
        }
    }

    /// Loads from a given folder (tests, and `load`).
    pub(crate) fn load_from(dir: &Path) -> (Progress, Option<String>) {
        let here = Some(dir.to_path_buf());
        if !dir.join(FILE_NAME).exists() {
            // A fresh start creates nothing until there is something to save.
            return (Progress::new(here, ProgressData::default()), None);
        }
        let locked = lock_dir(dir).and_then(|_lock| read_locked(dir));
        match locked {
            Ok((data, warning)) => (Progress::new(here, data), warning),
            // A folder that cannot be locked (read-only) may still be read: show what is there. `save` re-reads
            // under the lock and refuses to overwrite what it cannot read.
            Err(e) => {
                let data = fs::read(dir.join(FILE_NAME))
                    .ok()
                    .and_then(|t| serde_json::from_slice::<ProgressData>(&t).ok())
                    .unwrap_or_default();
                (Progress::new(here, data), Some(format!("{e:#}; progress may not be saved")))
            }
        }
    }

    fn new(dir: Option<PathBuf>, data: ProgressData) -> Progress {
        Progress { state: Mutex::new(State { data, ..State::default() }), dir }
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
    pub(crate) fn save(&self) -> Result<()> {
        let dir = self.folder()?;
        let mut state = self.state();
        if state.pending.is_empty() && dir.join(FILE_NAME).exists() {
            return Ok(());
        }
        let _lock = lock_dir(dir)?;
        let (mut disk, warning) = read_locked(dir)?;
        if warning.is_some() {
            state.warning = warning;
        }
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
        let dir = self.folder()?.to_path_buf();
        let _lock = lock_dir(&dir)?;
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
        if self.lesson_mark(lesson) != Mark::Done {
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

    pub(crate) fn lesson_mark(&self, lesson: &str) -> Mark {
        match self.state().data.lessons.get(lesson) {
            None => Mark::NotStarted,
            Some(l) if l.done => Mark::Done,
            Some(_) => Mark::Started,
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
        assert_eq!(p.lesson_mark("gil"), Mark::NotStarted);
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
        assert_eq!(q.lesson_mark("gil"), Mark::Started);
        assert_eq!(q.lesson_mark("intro"), Mark::Done);
        assert_eq!(q.lesson_mark("asyncio"), Mark::NotStarted);
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
        assert_eq!(q.lesson_mark("intro"), Mark::Done);
    }

    #[test]
    fn a_file_damaged_by_someone_else_before_a_save_is_moved_aside_too() {
        let dir = temp();
        let (mut p, _) = Progress::load_from(dir.path());
        fs::write(dir.path().join(FILE_NAME), "not json").unwrap();
        p.lesson_done("intro");
        p.save().unwrap();
        assert!(p.take_warning().is_some_and(|w| w.contains("damaged")));
        assert_eq!(Progress::load_from(dir.path()).0.lesson_mark("intro"), Mark::Done);
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
        assert_eq!(Progress::load_from(dir.path()).0.lesson_mark("intro"), Mark::NotStarted);
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

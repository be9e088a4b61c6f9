//! The history of recent runs: each recording saved here lands in `runs/` under the data dir (`PARLAB_DATA_DIR`, or
//! the XDG data dir), bounded to `MAX_RUNS` files and `MAX_BYTES` in all (the oldest go first; the newest is kept
//! even alone over the bytes), listed newest first, and addressed as `last`, `N` (1 is the newest) or a path.
//!
//! Two parlab instances may save at once: every file has a name of its own (`<unix ms>-<pid>-<n>.parlab`, so the
//! names sort by age) and appears whole by an atomic rename; pruning and listing take files vanishing under them
//! in their stride. Only files named that way are counted, listed or removed: anything else in the folder is left
//! alone. A file that cannot be read is skipped with a warning, never fatal, and pruned in its turn.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::{EXTENSION, Kind, Recording, atomic_write, encode, read_header};
use crate::units::fmt_ms;

/// Most recordings kept.
pub(crate) const MAX_RUNS: usize = 50;
/// Most bytes kept in all (200 MB).
pub(crate) const MAX_BYTES: u64 = 200_000_000;
/// The folder under the data dir.
pub(crate) const DIR_NAME: &str = "runs";
/// A temp file older than this was left by a writer that died; pruning removes it.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Which recording a command means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// The newest in the history.
    Last,
    /// The N-th in `parlab runs` (1 is the newest).
    Index(usize),
    /// A file anywhere (write `./3` for a file named `3`).
    Path(PathBuf),
}

impl Address {
    /// `last`, a number, or else a path.
    pub(crate) fn parse(text: &str) -> Address {
        let t = text.trim();
        if t == "last" {
            Address::Last
        } else if !t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()) {
            Address::Index(t.parse().unwrap_or(0))
        } else {
            Address::Path(PathBuf::from(text))
        }
    }
}

/// One recording in the history, as `parlab runs` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Entry {
    /// 1 is the newest.
    pub index: usize,
    pub path: PathBuf,
    /// RFC 3339, UTC.
    pub made: String,
    pub title: String,
    pub kind: Kind,
    pub modes: Vec<String>,
    pub walls_ms: Vec<f64>,
    pub failed: bool,
    /// The file's size.
    pub bytes: u64,
    /// Where it was made: `AMD EPYC 7B13 · 2 cores · ...` (see `Machine::describe`).
    pub machine: String,
    /// The machine's cores, for a short column.
    pub cores: u32,
}

impl Entry {
    /// `2025-03-01 10:15:30`, from `made` (UTC).
    pub(crate) fn when(&self) -> String {
        let t = self.made.strip_suffix('Z').unwrap_or(&self.made);
        match (t.get(..10), t.get(10..11), t.get(11..19)) {
            (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
            _ => self.made.clone(),
        }
    }

    /// `412 ms` for a run; for a compare, each mode's.
    pub(crate) fn wall(&self) -> String {
        self.walls_ms.iter().map(|w| fmt_ms(*w)).collect::<Vec<_>>().join(" / ")
    }
}

/// The history, newest first, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
    /// One line per file skipped (`<file>: truncated: ...`).
    pub warnings: Vec<String>,
}

impl Listing {
    /// The table `parlab runs` prints: N, date, experiment, modes, wall, machine.
    pub(crate) fn table(&self) -> String {
        let mut s = format!(
            "  {:>3}  {:<19}  {:<40}  {:<28}  {:<24}  {}\n",
            "#", "when (UTC)", "experiment", "modes", "wall", "machine"
        );
        for e in &self.entries {
            let title = if e.failed { format!("{} (FAILED)", e.title) } else { e.title.clone() };
            s.push_str(&format!(
                "  {:>3}  {:<19}  {:<40}  {:<28}  {:<24}  {}\n",
                e.index,
                e.when(),
                title,
                e.modes.join(","),
                e.wall(),
                e.machine
            ));
        }
        s
    }
}

/// The recordings kept in one folder.
#[derive(Clone, Debug)]
pub(crate) struct History {
    dir: PathBuf,
    max_runs: usize,
    max_bytes: u64,
}

/// A file of the history: its name's parts, newest sorting first.
#[derive(Debug)]
struct Named {
    key: (u64, u32, u64),
    path: PathBuf,
}

fn parse_name(name: &str) -> Option<(u64, u32, u64)> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let mut parts = stem.split('-');
    let (ms, pid, n) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || ms.len() != 13 || !digits(ms) || !digits(pid) || !digits(n) {
        return None;
    }
    Some((ms.parse().ok()?, pid.parse().ok()?, n.parse().ok()?))
}

impl History {
    /// `runs/` in the data dir (`PARLAB_DATA_DIR` or the XDG data dir).
    pub(crate) fn in_data_dir() -> Result<History> {
        Ok(History::at(crate::progress::data_dir()?.join(DIR_NAME)))
    }

    pub(crate) fn at(dir: PathBuf) -> History {
        History { dir, max_runs: MAX_RUNS, max_bytes: MAX_BYTES }
    }

    /// Other bounds than the defaults (tests).
    #[cfg(test)]
    pub(crate) fn bounded(self, max_runs: usize, max_bytes: u64) -> History {
        History { max_runs: max_runs.max(1), max_bytes, ..self }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The history's files, newest first. A folder that does not exist is an empty history.
    fn files(&self) -> Result<Vec<Named>> {
        let read = match fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow!("cannot read the history of runs '{}': {e}", self.dir.display())),
        };
        let mut files: Vec<Named> = read
            .flatten()
            .filter_map(|e| {
                let key = parse_name(e.file_name().to_str()?)?;
                Some(Named { key, path: e.path() })
            })
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.key));
        Ok(files)
    }

    /// Saves a recording as the newest of the history, then prunes it to its bounds. Returns where it went, and a
    /// warning if pruning failed (the run is kept all the same; the next save prunes again).
    pub(crate) fn save(&self, rec: &Recording, now: SystemTime) -> Result<(PathBuf, Option<String>)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let bytes = encode(rec).map_err(|e| anyhow!("cannot keep the run in the history: {e}"))?;
        fs::create_dir_all(&self.dir)
            .map_err(|e| anyhow!("cannot create the history of runs '{}': {e}", self.dir.display()))?;
        let ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64).min(9_999_999_999_999);
        let name = format!("{ms:013}-{}-{}.{EXTENSION}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = self.dir.join(name);
        atomic_write(&path, &bytes).map_err(|e| anyhow!("cannot keep the run in '{}': {e}", path.display()))?;
        let warning = self.prune(now).err().map(|e| format!("{e:#}"));
        Ok((path, warning))
    }

    /// Drops the oldest files beyond the bounds (and temp files a dead writer left). Files that vanish meanwhile
    /// (another parlab pruning too) are no error. Returns the files removed.
    pub(crate) fn prune(&self, now: SystemTime) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let (mut count, mut total) = (0usize, 0u64);
        for f in self.files()? {
            let size = match fs::metadata(&f.path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => 0,
            };
            let keep = count == 0 || (count < self.max_runs && total + size <= self.max_bytes);
            if keep {
                count += 1;
                total += size;
                continue;
            }
            match fs::remove_file(&f.path) {
                Ok(()) => removed.push(f.path),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow!("cannot drop the old run '{}': {e}", f.path.display())),
            }
        }
        if let Ok(read) = fs::read_dir(&self.dir) {
            for e in read.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                let ours = name.starts_with('.') && name.contains(&format!(".{EXTENSION}.tmp-"));
                let old = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok());
                if ours && old.is_some_and(|age| age > STALE_TEMP) && fs::remove_file(e.path()).is_ok() {
                    removed.push(e.path());
                }
            }
        }
        Ok(removed)
    }

    /// The history, newest first. Files that cannot be read are skipped, each with a warning.
    pub(crate) fn list(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        for f in self.files()? {
            let bytes = match fs::metadata(&f.path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => 0,
            };
            match read_header(&f.path) {
                Ok(h) => listing.entries.push(Entry {
                    index: listing.entries.len() + 1,
                    path: f.path,
                    made: h.made,
                    title: h.summary.title,
                    kind: h.kind,
                    modes: h.summary.modes,
                    walls_ms: h.summary.walls_ms,
                    failed: h.summary.failed,
                    bytes,
                    machine: h.machine.describe(),
                    cores: h.machine.cores,
                }),
                Err(e) if e.problem == super::Problem::Missing => {}
                Err(e) => listing.warnings.push(format!("skipped {e}")),
            }
        }
        Ok(listing)
    }

    /// The file an address means: `last` and `N` from the history (numbered as `list` numbers it), a path as is.
    pub(crate) fn resolve(&self, addr: &Address) -> Result<PathBuf> {
        let n = match addr {
            Address::Path(p) => return Ok(p.clone()),
            Address::Last => 1,
            Address::Index(0) => {
                return Err(anyhow!("there is no run 0: the history counts from 1, the newest (see `parlab runs`)"));
            }
            Address::Index(n) => *n,
        };
        let listing = self.list()?;
        if listing.entries.is_empty() {
            return Err(anyhow!(
                "the history of runs is empty ('{}'): each run the TUI makes is kept there",
                self.dir.display()
            ));
        }
        let held = listing.entries.len() as u64;
        match listing.entries.into_iter().nth(n - 1) {
            Some(e) => Ok(e.path),
            None => Err(anyhow!(
                "there is no run {n} in the history (it holds {}: see `parlab runs`)",
                crate::units::plural(held, "run")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{recording_of, threads_run};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn history() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let h = History::at(dir.path().join(DIR_NAME));
        (dir, h)
    }

    /// A recording whose title tells it apart: `workers` threads.
    fn rec(workers: u32) -> Recording {
        recording_of(threads_run(workers, 4))
    }

    #[test]
    fn the_history_keeps_the_newest_runs_within_its_count() {
        let (_d, h) = history();
        let h = h.bounded(3, MAX_BYTES);
        for i in 1..=5 {
            let (_, warning) = h.save(&rec(i), at(1_700_000_000_000 + u64::from(i))).unwrap();
            assert_eq!(warning, None);
        }
        let list = h.list().unwrap();
        assert!(list.warnings.is_empty(), "{:?}", list.warnings);
        let titles: Vec<&str> = list.entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles.len(), 3, "{titles:?}");
        assert!(titles[0].contains("5 workers") && titles[2].contains("3 workers"), "newest first: {titles:?}");
        assert_eq!(list.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn the_history_drops_the_oldest_runs_beyond_its_bytes_but_keeps_the_newest() {
        let (_d, h) = history();
        let one = encode(&rec(2)).unwrap().len() as u64;
        let h = h.bounded(50, one * 2 + one / 2);
        for i in 0..4 {
            h.save(&rec(2), at(1_000 + i)).unwrap();
        }
        assert_eq!(h.list().unwrap().entries.len(), 2);
        // A bound below one file still keeps the newest.
        let tiny = History::at(h.dir().to_path_buf()).bounded(50, 1);
        tiny.prune(at(2_000)).unwrap();
        let left = tiny.list().unwrap().entries;
        assert_eq!(left.len(), 1);
        assert!(left[0].path.to_string_lossy().contains("0000000001003-"), "{:?}", left[0].path);
    }

    #[test]
    fn last_and_numbers_address_the_list_newest_first_and_paths_pass_through() {
        let (_d, h) = history();
        let old = h.save(&rec(1), at(10)).unwrap().0;
        let new = h.save(&rec(2), at(20)).unwrap().0;
        assert_eq!(Address::parse("last"), Address::Last);
        assert_eq!(Address::parse("2"), Address::Index(2));
        assert_eq!(Address::parse("./2"), Address::Path(PathBuf::from("./2")));
        assert_eq!(h.resolve(&Address::parse("last")).unwrap(), new);
        assert_eq!(h.resolve(&Address::parse("1")).unwrap(), new);
        assert_eq!(h.resolve(&Address::parse("2")).unwrap(), old);
        let err = h.resolve(&Address::Index(3)).unwrap_err().to_string();
        assert_eq!(err, "there is no run 3 in the history (it holds 2 runs: see `parlab runs`)");
        assert!(h.resolve(&Address::Index(0)).unwrap_err().to_string().contains("counts from 1"));
        assert_eq!(h.resolve(&Address::parse("x/run.parlab")).unwrap(), PathBuf::from("x/run.parlab"));
    }

    #[test]
    fn an_empty_history_says_so_when_addressed() {
        let (_d, h) = history();
        assert_eq!(h.list().unwrap(), Listing::default());
        let err = h.resolve(&Address::Last).unwrap_err().to_string();
        assert!(err.starts_with("the history of runs is empty"), "{err}");
    }

    #[test]
    fn a_corrupt_file_in_the_history_is_skipped_with_a_warning_and_numbers_stay_consecutive() {
        let (_d, h) = history();
        let a = h.save(&rec(1), at(10)).unwrap().0;
        let broken = h.save(&rec(2), at(20)).unwrap().0;
        let c = h.save(&rec(3), at(30)).unwrap().0;
        let bytes = fs::read(&broken).unwrap();
        fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
        // Someone else's file in the folder is neither listed nor warned about.
        fs::write(h.dir().join("notes.txt"), "mine").unwrap();
        let list = h.list().unwrap();
        assert_eq!(list.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>(), vec![c, a.clone()]);
        assert_eq!(list.entries[1].index, 2);
        assert_eq!(list.warnings.len(), 1, "{:?}", list.warnings);
        let w = &list.warnings[0];
        assert!(w.starts_with(&format!("skipped {}: truncated", broken.display())), "{w}");
        assert_eq!(h.resolve(&Address::Index(2)).unwrap(), a);
        assert!(h.dir().join("notes.txt").exists());
    }

    #[test]
    fn a_listing_entry_shows_when_title_modes_wall_and_size() {
        let (_d, h) = history();
        let path = h.save(&rec(2), at(1_700_000_000_000)).unwrap().0;
        let list = h.list().unwrap();
        let e = &list.entries[0];
        assert_eq!(e.when(), "2025-03-01 10:15:30");
        assert_eq!(e.modes, vec!["threads".to_string()]);
        assert_eq!(e.wall(), "10.0 ms");
        assert_eq!(e.bytes, fs::metadata(&path).unwrap().len());
        let table = list.table();
        assert!(table.contains("2025-03-01 10:15:30") && table.contains("threads (2 workers)"), "{table}");
    }

    #[test]
    fn two_writers_at_once_leave_every_file_whole_and_the_bound_kept() {
        let (_d, h) = history();
        let h = h.bounded(6, MAX_BYTES);
        std::thread::scope(|s| {
            for w in 0..2 {
                let h = h.clone();
                s.spawn(move || {
                    for i in 0..8 {
                        // The same millisecond on both threads: names still differ.
                        h.save(&rec(w + 1), at(5_000 + i)).unwrap();
                    }
                });
            }
        });
        let list = h.list().unwrap();
        assert!(list.warnings.is_empty(), "{:?}", list.warnings);
        assert_eq!(list.entries.len(), 6);
        let temps =
            fs::read_dir(h.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-"));
        assert_eq!(temps.count(), 0);
    }

    #[test]
    fn pruning_removes_a_dead_writers_temp_file_only_when_it_is_old() {
        let (_d, h) = history();
        h.save(&rec(1), at(10)).unwrap();
        let temp = h.dir().join(".0000000000010-1-9.parlab.tmp-1-0");
        fs::write(&temp, b"half").unwrap();
        h.prune(SystemTime::now()).unwrap();
        assert!(temp.exists(), "a fresh temp may be another writer's");
        h.prune(SystemTime::now() + Duration::from_secs(7200)).unwrap();
        assert!(!temp.exists());
    }

    #[test]
    fn only_history_names_count() {
        assert_eq!(parse_name("1700000000000-42-0.parlab"), Some((1_700_000_000_000, 42, 0)));
        for bad in ["1700000000000-42.parlab", "170000000000-42-0.parlab", "1700000000000-42-0.json", "a-b-c.parlab"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}

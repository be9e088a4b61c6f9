//! Recordings wired in: `--record FILE` and `--trace` on `run` and `compare` (one `Recording` of the runs, one trace
//! writer: `record::trace`), `run --gantt-window`, `parlab runs`, `parlab replay FILE|last|N` (the TUI on a
//! recording, or `--trace` / `--svg` exports), and the TUI's history keeper, which saves every finished run and
//! compare in the data dir.
//!
//! This is an edge module: it reads and writes files and the clock; the format and the exports are `record`'s,
//! the replay's state is `view`'s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};

use crate::app::{App, Run};
use crate::experiment::Job;
use crate::headless::TraceOut;
use crate::record::history::{Address, History};
use crate::record::{
    CoreSample, Engine, Kind, Machine, RecordedJob, RecordedRun, Recording, Samples, made_at, read, write,
};
use crate::timeline::RunReport;
use crate::ui::gantt;
use crate::units::fmt_ms;

/// How the TUI opens: in the presenter layout or not, on a recording or on the lessons.
#[derive(Default)]
pub struct Opening {
    pub(crate) present: bool,
    pub(crate) replay: Option<Recording>,
}

impl Opening {
    /// The lessons, in the presenter layout or not.
    pub fn lessons(present: bool) -> Opening {
        Opening { present, replay: None }
    }
}

/// Where `--record` goes, checked before the run so that minutes of measuring are not lost to a bad path.
pub(crate) struct RecordOut {
    path: PathBuf,
}

impl RecordOut {
    pub(crate) fn check(path: &Path) -> Result<RecordOut> {
        let shown = path.display();
        if path.is_dir() {
            bail!("cannot record to '{shown}': it is a folder (give a file name, e.g. '{shown}/run.parlab')");
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("cannot record to '{shown}': there is no folder '{}'", parent.display());
        }
        Ok(RecordOut { path: path.to_path_buf() })
    }
}

/// The engine a recording names: `native`, or `python` with its interpreter when the python engine ran every
/// run, or `native+python` when both did (each run's experiment says which ran it).
pub(crate) fn engine_of<'a>(exps: impl Iterator<Item = &'a crate::experiment::Experiment>) -> Engine {
    let (mut native, mut python) = (false, None);
    for e in exps {
        match e.engine {
            crate::experiment::Engine::Native => native = true,
            crate::experiment::Engine::Python => python = python.or(Some(e.python.clone())),
        }
    }
    match (native, python) {
        (_, None) => Engine::native(),
        (false, Some(py)) => Engine {
            name: "python".to_string(),
            interpreter: py.map(|py| crate::record::Interpreter {
                path: py.path,
                version: py.version,
                gil_enabled: py.gil_enabled,
            }),
        },
        (true, Some(_)) => Engine { name: "native+python".to_string(), interpreter: None },
    }
}

/// A recording of headless runs: a run's one, or a compare's in the order they ran.
pub(crate) fn recording_of_reports(kind: Kind, reports: &[RunReport]) -> Recording {
    let mut runs: Vec<RecordedRun> = reports.iter().map(|r| RecordedRun::from_report(r, Samples::default())).collect();
    let made = made_at(SystemTime::now());
    let engine = engine_of(reports.iter().map(|r| &r.experiment));
    match kind {
        Kind::Run if runs.len() == 1 => Recording::of_run(made, Machine::detect(), engine, runs.remove(0)),
        _ => Recording::of_compare(made, Machine::detect(), engine, runs),
    }
}

/// Writes `--trace` and `--record` of headless runs, from one recording of them.
pub(crate) fn keep_headless(
    kind: Kind,
    reports: &[RunReport],
    trace: Option<TraceOut>,
    record: Option<RecordOut>,
) -> Result<()> {
    if trace.is_none() && record.is_none() {
        return Ok(());
    }
    let rec = recording_of_reports(kind, reports);
    if let Some(t) = trace {
        t.write(&rec)?;
    }
    if let Some(r) = record {
        write(&r.path, &rec)?;
    }
    Ok(())
}

/// A time of `--gantt-window`: a number and a unit (`ns`, `us`, `µs`, `ms`, `s`), in ns.
fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    let ns = v * mult;
    (ns.is_finite() && (0.0..=1e15).contains(&ns)).then_some(ns as u64)
}

/// `--gantt-window FROM..TO`: ns from the run's t0.
pub(crate) fn parse_window(text: &str) -> Result<(u64, u64)> {
    let bad = || {
        anyhow!(
            "--gantt-window '{text}' is not a window (expected FROM..TO: times from the run's start, each with a \
             unit ns, us, ms or s, e.g. 40ms..60ms)"
        )
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b) = (parse_time(a).ok_or_else(bad)?, parse_time(b).ok_or_else(bad)?);
    if b <= a {
        bail!(
            "--gantt-window '{text}' does not end after it starts (expected FROM..TO with FROM < TO, e.g. 40ms..60ms)"
        );
    }
    Ok((a, b))
}

/// The Gantt of `[t0 + from, t0 + to)` of a run, under a line saying which window it is.
pub(crate) fn windowed_gantt(r: &RunReport, (from, to): (u64, u64), width: u16, ascii: bool) -> Result<String> {
    let t = &r.timeline;
    let len = t.last_ns().saturating_sub(t.t0_ns);
    let shown = |ns: u64| crate::units::format_ns(i128::from(ns));
    if from >= len {
        bail!(
            "--gantt-window {}..{} starts after the run ended (it ran {}: give a window within 0ms..{})",
            shown(from),
            shown(to),
            fmt_ms(len as f64 / 1e6),
            shown(len)
        );
    }
    let mut s = format!(
        "parlab run · {} · window {}..{} of {}\n\n",
        r.experiment.title(),
        shown(from),
        shown(to),
        fmt_ms(len as f64 / 1e6)
    );
    for line in gantt::to_text(t, width, Some((t.t0_ns + from, t.t0_ns + to)), ascii) {
        s.push_str(&line);
        s.push('\n');
    }
    Ok(s)
}

/// `parlab runs [--json]`.
pub fn runs_cmd(json: bool) -> Result<u8> {
    let history = History::in_data_dir()?;
    let listing = history.list()?;
    for w in &listing.warnings {
        eprintln!("warning: {w}");
    }
    let text = if json {
        serde_json::to_string_pretty(&serde_json::json!({
            "dir": history.dir(),
            "runs": listing.entries,
        }))? + "\n"
    } else if listing.entries.is_empty() {
        format!(
            "no runs kept yet in '{}': every run and compare the TUI makes is kept there (`--record FILE` keeps a \
             headless one)\n",
            history.dir().display()
        )
    } else {
        listing.table()
    };
    crate::stdout::print(&text).map_err(|e| anyhow!("cannot write to stdout: {e}"))?;
    Ok(0)
}

/// `parlab replay FILE|last|N [--trace OUT] [--svg OUT] [--present] [--theme T] [--ascii]`.
pub fn replay_cmd(
    what: &str,
    trace: Option<&Path>,
    svg: Option<&Path>,
    present: bool,
    theme: Option<&str>,
    ascii: bool,
) -> Result<u8> {
    let path = match Address::parse(what) {
        Address::Path(p) => p,
        addr => History::in_data_dir()?.resolve(&addr)?,
    };
    let rec = read(&path).map_err(|e| anyhow!("{e}"))?;
    if trace.is_some() || svg.is_some() {
        if present || theme.is_some() || ascii {
            bail!("--present, --theme and --ascii are for the TUI; with --trace or --svg parlab only exports");
        }
        // Both opened first: a bad second path loses nothing.
        let t = trace.map(TraceOut::open).transpose()?;
        let s = svg.map(TraceOut::open).transpose()?;
        if let Some(t) = t {
            t.write(&rec)?;
        }
        if let Some(s) = s {
            s.write_text(&crate::record::svg::svg(&rec))?;
        }
        return Ok(0);
    }
    crate::tui::run(None, theme, ascii, None, Opening { present, replay: Some(rec) })
}

/// A run the TUI made, as a recording keeps it: the CPU the monitor measured for its processes become the
/// parlab samples (the system's are not kept per run).
pub(crate) fn recorded_run(r: &Run) -> RecordedRun {
    let job = match &r.job {
        Job::Experiment(e) => RecordedJob::Experiment(e.clone()),
        Job::Demo(d) => RecordedJob::Demo(d.clone()),
    };
    let parlab =
        r.cpu.samples.iter().map(|s| CoreSample::from_cpu_ns(s.at_ns, s.interval_ns, &s.per_core_ns)).collect();
    RecordedRun {
        job,
        timeline: r.timeline.clone(),
        parent_pid: std::process::id(),
        walls_ns: Vec::new(),
        samples: Samples { system: Vec::new(), parlab },
    }
}

/// Keeps every finished run and compare of the TUI in the history, each once, written off the UI thread.
pub(crate) struct Keeper {
    saved: HashSet<u64>,
    history: Option<History>,
    machine: Option<Machine>,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Keeper {
    pub(crate) fn new() -> Keeper {
        Keeper { saved: HashSet::new(), history: History::in_data_dir().ok(), machine: None, warnings: Arc::default() }
    }

    #[cfg(test)]
    pub(crate) fn at(history: History) -> Keeper {
        Keeper { history: Some(history), ..Keeper::new() }
    }

    /// After each update: saves what has newly finished; a warning of an earlier save goes to the status line.
    pub(crate) fn after_update(&mut self, app: &mut App) {
        if let Some(w) = self.warnings.lock().ok().and_then(|mut w| w.pop()) {
            app.status = Some((crate::app::StatusKind::Error, w));
        }
        let finished = |r: &Run| !r.live && !r.cancelled && r.timeline.is_finished();
        let mut keep: Vec<(u64, Kind, Vec<RecordedRun>)> = Vec::new();
        if let Some(r) = app.panel.run.as_ref().filter(|r| finished(r) && !self.saved.contains(&r.id)) {
            keep.push((r.id, Kind::Run, vec![recorded_run(r)]));
        }
        if let Some(c) = app.compare.as_ref().filter(|c| c.done() && !c.cancelled && c.runs.iter().all(finished))
            && let Some(first) = c.runs.first()
            && !self.saved.contains(&first.id)
        {
            keep.push((first.id, Kind::Compare, c.runs.iter().map(recorded_run).collect()));
        }
        for (id, kind, runs) in keep {
            self.saved.insert(id);
            let Some(history) = self.history.clone() else { continue };
            let machine = self.machine.get_or_insert_with(Machine::detect).clone();
            let made = made_at(SystemTime::now());
            let mut runs = runs;
            let engine = engine_of(runs.iter().filter_map(|r| match &r.job {
                RecordedJob::Experiment(e) => Some(e),
                RecordedJob::Demo(_) => None,
            }));
            let rec = match kind {
                Kind::Run => Recording::of_run(made, machine, engine, runs.remove(0)),
                Kind::Compare => Recording::of_compare(made, machine, engine, runs),
            };
            let warnings = Arc::clone(&self.warnings);
            let _ = std::thread::Builder::new().name("keep-run".into()).spawn(move || {
                let problem = match history.save(&rec, SystemTime::now()) {
                    Ok((_, w)) => w,
                    Err(e) => Some(format!("{e:#}")),
                };
                if let (Some(p), Ok(mut w)) = (problem, warnings.lock()) {
                    w.push(p);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{app, feed_run};
    use crate::app::{AppEvent, Effect, Key};

    #[test]
    fn the_tui_keeps_each_finished_run_once_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path().join("runs"));
        let mut keeper = Keeper::at(history.clone());
        let mut a = app();
        a.update(AppEvent::Key(Key::Enter));
        a.update(AppEvent::Key(Key::Right));
        let fx = a.update(AppEvent::Key(Key::Char('r')));
        let id = fx.iter().find_map(|e| if let Effect::Start { run, .. } = e { Some(*run) } else { None }).unwrap();
        keeper.after_update(&mut a);
        assert!(keeper.saved.is_empty(), "a live run is not kept");
        feed_run(&mut a, id, 30);
        keeper.after_update(&mut a);
        keeper.after_update(&mut a);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listing = loop {
            let l = history.list().unwrap();
            if !l.entries.is_empty() || std::time::Instant::now() > deadline {
                break l;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(listing.entries.len(), 1, "{listing:?}");
        assert_eq!(listing.entries[0].modes, ["gil"]);
        assert_eq!(listing.entries[0].walls_ms, [30.0]);
        let rec = read(&listing.entries[0].path).unwrap();
        assert_eq!(rec.runs[0].timeline.spans, a.panel.run.as_ref().unwrap().timeline.spans);
    }

    #[test]
    fn a_gantt_window_takes_times_with_units() {
        assert_eq!(parse_window("40ms..60ms").unwrap(), (40_000_000, 60_000_000));
        assert!(parse_window("0..1.5s").is_err(), "a bare 0 has no unit");
        assert_eq!(parse_window("0us..1.5s").unwrap(), (0, 1_500_000_000));
        assert_eq!(parse_window("250µs..300us").unwrap(), (250_000, 300_000));
    }

    #[test]
    fn a_bad_gantt_window_names_the_value_and_the_form() {
        for bad in ["40ms-60ms", "40..60", "ms..60ms", "60ms..40ms", "1x..2ms"] {
            let e = parse_window(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("40ms..60ms"), "{e}");
        }
    }
}

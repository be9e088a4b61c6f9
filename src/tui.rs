//! The terminal UI's edge: load lessons and progress, set up the terminal (raw mode, alternate screen, mouse),
//! run the event loop, and perform the app's effects — start and cancel lab processes, run exercise checks on a
//! background thread, save progress, steer the core sampler. Every exit path (q, Ctrl-C, SIGTERM, SIGHUP, a
//! panic) restores the terminal and leaves no lab or worker process behind.
//!
//! Frames are drawn only when something changed; while a run is live the loop ticks at ~15 fps, otherwise it
//! blocks on its channel (no polling, so an idle UI uses no CPU).
//!
//! The way out never waits for drawing: a signal (or Ctrl-C) reaches the loop as an event, and if the loop has not
//! left within `STOP_GRACE` (a frame is slow), the thread that saw it kills the labs, restores the terminal and
//! exits by itself.
//!
//! A face: it wires the app, the widgets, the lab client and the sampler together; nothing but `main` imports it.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::DefaultTerminal;

use crate::app::{App, AppEvent, Effect, Key};
use crate::clock;
use crate::experiment::Job;
use crate::experiment::available_cores;
use crate::lab::client::{LabFeed, LabRun};
use crate::lesson;
use crate::monitor::{Monitor, Sample, Watcher};
use crate::progress::Progress;
use crate::ui::theme::{Palette, Theme};

/// Time between frames while a run is live (~15 fps).
const FRAME: Duration = Duration::from_millis(66);

/// For `parlab bench`: the launcher's CLOCK_MONOTONIC nanoseconds when it started this UI, and a file to write
/// the nanoseconds from then to the first frame drawn.
pub(crate) const BENCH_SPAWNED_ENV: &str = "PARLAB_BENCH_SPAWNED_NS";
pub(crate) const BENCH_FIRST_FRAME_ENV: &str = "PARLAB_BENCH_FIRST_FRAME_FILE";

/// Where to report the first frame, when a benchmark asked (both variables set).
struct FirstFrame {
    spawned_ns: u64,
    file: std::path::PathBuf,
}

impl FirstFrame {
    fn from_env() -> Option<FirstFrame> {
        let spawned_ns = std::env::var(BENCH_SPAWNED_ENV).ok()?.trim().parse().ok()?;
        let file = std::env::var_os(BENCH_FIRST_FRAME_ENV)?.into();
        Some(FirstFrame { spawned_ns, file })
    }

    /// Called right after the first frame reached the terminal.
    fn report(self) {
        let ns = clock::now_ns().saturating_sub(self.spawned_ns);
        // A benchmark that cannot read this says so itself; the UI goes on either way.
        let _ = std::fs::write(&self.file, format!("{ns}\n"));
    }
}

/// Process groups of the labs this UI started, for the panic hook and a forced stop to kill.
static LAB_GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Set once the event loop has left: the normal shutdown is under way and a forced stop stands down.
static LEFT_LOOP: AtomicBool = AtomicBool::new(false);

/// How long a quit request (a signal, Ctrl-C) waits for the event loop before the UI is stopped from outside it.
const STOP_GRACE: Duration = Duration::from_millis(750);

/// After a quit request was sent to the loop: if the loop does not leave within `STOP_GRACE` (it is stuck in a
/// slow frame), stop from this thread: kill the labs, restore the terminal, exit. Progress saved so far stays.
fn stop_unless_the_loop_leaves(what: &str) {
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if LEFT_LOOP.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if LEFT_LOOP.load(Ordering::SeqCst) {
        return;
    }
    kill_labs();
    // Holding stdout's lock keeps the drawing thread from writing between the restore and the exit.
    let out = std::io::stdout();
    let mut lock = out.lock();
    let _ = crossterm::execute!(
        lock,
        DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = lock.flush();
    eprintln!("parlab: stopped by {what} while a frame was still being drawn");
    std::process::exit(0);
}

fn kill_labs() {
    if let Ok(groups) = LAB_GROUPS.try_lock() {
        for g in groups.iter() {
            // SAFETY: killing a process group this process created (the lab leads it); no memory is touched.
            unsafe { libc::killpg(*g as i32, libc::SIGKILL) };
        }
    }
}

/// What reaches the event loop.
enum Msg {
    App(AppEvent),
    /// A lab's event stream ended; `got_end` says whether its Finished event came.
    LabClosed {
        run: u64,
        got_end: bool,
    },
}

/// The terminal UI: `parlab` with no sub-command.
pub fn run(
    lessons_dir: Option<&Path>,
    theme: Option<&str>,
    ascii: bool,
    open: Option<&str>,
    opening: crate::replay::Opening,
) -> Result<u8> {
    // Everything that can fail with a message fails here, before the terminal changes.
    let chosen = theme.map(Palette::parse).transpose().map_err(|e| anyhow!(e))?;
    let set = lesson::load(lessons_dir)?;
    let broken: Vec<String> = set
        .broken
        .iter()
        .map(|b| {
            let first = b.errors.first().map(|e| e.to_string()).unwrap_or_default();
            let first = first.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            let more = b.count().saturating_sub(1);
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            format!("{first}{more}: this file was not loaded (`parlab lint` shows every error)")
        })
        .chain(set.skipped.iter().cloned())
        .collect();
    if set.lessons.is_empty() {
        let where_ = lessons_dir.map_or("the embedded lessons".to_string(), |d| format!("'{}'", d.display()));
        bail!(
            "no lesson could be loaded from {where_}{}",
            if broken.is_empty() { String::new() } else { format!(": {}", broken.join("; ")) }
        );
    }
    if let Some(id) = open
        && set.find(id).is_none()
    {
        let ids: Vec<&str> = set.lessons.iter().map(|l| l.id.as_str()).collect();
        let hint = crate::experiment::suggest(id, ids.iter().copied())
            .map_or(String::new(), |s| format!(" (did you mean '{s}'?)"));
        bail!("no lesson '{id}' (expected one of: {}){hint}", ids.join(", "));
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        if opening.replay.is_some() {
            bail!(
                "a replay opens in the terminal UI, which needs a terminal; `parlab replay ... --svg OUT` or `--trace OUT` exports one without it"
            );
        }
        bail!("the lessons UI needs a terminal; for output to a pipe or file use `parlab run`, `compare` or `lessons`");
    }
    let (progress, warning) = Progress::load();
    // `--theme` for this session, else the one chosen last with `t` (a name this build does not know is ignored).
    let palette = chosen.or_else(|| progress.theme().and_then(|t| Palette::parse(&t).ok())).unwrap_or_default();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme { palette, color: !no_color, ascii };
    let mut app =
        App::new(set.lessons, broken, progress, theme, available_cores()).with_prose_layout(crate::ui::lesson::measure);
    if let Some(w) = warning {
        app.status = Some((crate::app::StatusKind::Error, w));
    }
    app.present = opening.present;
    if let Some(rec) = opening.replay {
        app.open_replay(rec);
    }

    let (tx, rx) = mpsc::channel::<Msg>();
    // The python engine's interpreter, asked off the UI thread (a probe takes up to a second): `e` offers it.
    let ptx = tx.clone();
    std::thread::Builder::new().name("python-detect".into()).spawn(move || {
        let found = crate::engine::detect::detect(crate::engine::detect::DEFAULT_PYTHON).map(Box::new);
        let gil = found.as_ref().is_ok_and(|py| py.gil_enabled);
        let _ = ptx.send(Msg::App(AppEvent::Python(found)));
        if gil {
            let builds = crate::engine::detect::free_threaded_on_path();
            let working: Vec<_> = builds.iter().filter_map(|p| crate::engine::detect::probe(p).ok()).collect();
            let _ = ptx.send(Msg::App(AppEvent::FreeThreaded(working)));
        }
    })?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    let signal_handle = signals.handle();
    let stx = tx.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if stx.send(Msg::App(AppEvent::Signal)).is_err() {
                break;
            }
            let name = match sig {
                signal_hook::consts::SIGTERM => "SIGTERM",
                signal_hook::consts::SIGHUP => "SIGHUP",
                _ => "SIGINT",
            };
            stop_unless_the_loop_leaves(name);
        }
    })?;
    let mtx = tx.clone();
    let monitor = Monitor::start_sampling(move |s| {
        let events = match s {
            Sample::System { cores, others } => {
                let mut v = vec![AppEvent::Cores(cores)];
                v.extend(others.map(AppEvent::Others));
                v
            }
            Sample::Run { tag, per_core_ns, interval_ns, at_ns } => {
                vec![AppEvent::RunCpu { run: tag, per_core_ns, interval_ns, at_ns }]
            }
        };
        events.into_iter().all(|e| mtx.send(Msg::App(e)).is_ok())
    })?;

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    install_panic_hook();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let itx = tx.clone();
    std::thread::Builder::new().name("input".into()).spawn(move || read_input(itx))?;

    // Speaker notes for `parlab notes --follow`; without them the UI works as before, and says why.
    let notes = crate::notes::Publisher::start()
        .map_err(|e| app.status = Some((crate::app::StatusKind::Error, format!("speaker notes are off: {e:#}"))))
        .ok();
    let mut runner = Runner { tx, labs: HashMap::new(), checks: HashMap::new(), watcher: monitor.watcher(), notes };
    let first_frame = FirstFrame::from_env();
    let result = event_loop(&mut terminal, &mut app, &rx, &mut runner, &monitor, open, first_frame);
    LEFT_LOOP.store(true, Ordering::SeqCst);
    runner.shutdown();
    restore();
    signal_handle.close();
    if let Err(e) = app.progress.save() {
        eprintln!("warning: {e:#}");
    }
    result.map(|_| 0)
}

fn restore() {
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
    let _ = std::io::stdout().flush();
}

/// On a panic anywhere: kill our labs, restore the terminal, print the panic (ratatui's hook chains to the default
/// one), and exit, so a half-dead UI never keeps the terminal in raw mode.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_labs();
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture, crossterm::cursor::Show);
        previous(info);
        let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
        std::process::exit(101);
    }));
}

fn read_input(tx: Sender<Msg>) {
    while let Ok(ev) = crossterm::event::read() {
        let ev = match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                let key = match k.code {
                    KeyCode::Char('c') | KeyCode::Char('C') if ctrl => {
                        // Quit even while a frame is slow: the loop gets the key, and this thread stops the UI
                        // itself if the loop does not leave in time.
                        if tx.send(Msg::App(AppEvent::Key(Key::CtrlC))).is_err() {
                            break;
                        }
                        stop_unless_the_loop_leaves("Ctrl-C");
                        continue;
                    }
                    KeyCode::Char(_) if ctrl => continue,
                    KeyCode::Char(c) => Key::Char(c),
                    KeyCode::Up => Key::Up,
                    KeyCode::Down => Key::Down,
                    KeyCode::Left => Key::Left,
                    KeyCode::Right => Key::Right,
                    KeyCode::Enter => Key::Enter,
                    KeyCode::Esc => Key::Esc,
                    KeyCode::Backspace => Key::Backspace,
                    KeyCode::PageUp => Key::PageUp,
                    KeyCode::PageDown => Key::PageDown,
                    KeyCode::Home => Key::Home,
                    KeyCode::End => Key::End,
                    KeyCode::Tab => Key::Tab,
                    KeyCode::BackTab => Key::BackTab,
                    _ => continue,
                };
                AppEvent::Key(key)
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollUp => AppEvent::Scroll { up: true, column: m.column },
                MouseEventKind::ScrollDown => AppEvent::Scroll { up: false, column: m.column },
                _ => continue,
            },
            Event::Resize(w, h) => AppEvent::Resize(w, h),
            _ => continue,
        };
        if tx.send(Msg::App(ev)).is_err() {
            break;
        }
    }
}

/// Performs effects: owns the running labs and exercise checks.
struct Runner {
    tx: Sender<Msg>,
    labs: HashMap<u64, LabRun>,
    checks: HashMap<u64, (Arc<AtomicBool>, JoinHandle<()>)>,
    /// Tells the monitor which processes each run has, so their CPU is measured.
    watcher: Watcher,
    /// Sends `parlab notes --follow` the section shown.
    notes: Option<crate::notes::Publisher>,
}

impl Runner {
    /// Performs one effect; may produce an event for the app (a lab that could not start).
    fn perform(&mut self, effect: Effect, app: &mut App, monitor: &Monitor) -> Option<AppEvent> {
        match effect {
            Effect::Start { run, exp } => self.follow(run, &Job::Experiment(exp)),
            Effect::StartDemo { run, demo } => self.follow(run, &Job::Demo(demo)),
            Effect::Cancel { run } => {
                self.cancel(run);
                None
            }
            Effect::Check { run, spec, setup } => {
                let stop = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&stop);
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new().name("check".into()).spawn(move || {
                    let result = crate::exercise::check_native(&spec, &setup, &flag).map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::App(AppEvent::CheckDone { run, result }));
                });
                match spawned {
                    Ok(handle) => {
                        self.checks.insert(run, (stop, handle));
                        None
                    }
                    Err(e) => Some(AppEvent::CheckDone { run, result: Err(format!("cannot start the check: {e}")) }),
                }
            }
            Effect::CancelCheck { run } => {
                if let Some((stop, _)) = self.checks.get(&run) {
                    stop.store(true, Ordering::Relaxed);
                }
                None
            }
            Effect::SaveProgress => {
                if let Err(e) = app.progress.save() {
                    app.status = Some((crate::app::StatusKind::Error, format!("{e:#}")));
                } else if let Some(w) = app.progress.take_warning() {
                    app.status = Some((crate::app::StatusKind::Error, w));
                }
                None
            }
            Effect::Monitor(rate) => {
                monitor.set(rate);
                None
            }
            Effect::Quit => None,
        }
    }

    /// Starts a lab and follows it: its events reach the loop as `AppEvent::Lab`, then `LabClosed`.
    fn follow(&mut self, run: u64, job: &Job) -> Option<AppEvent> {
        let tx = self.tx.clone();
        let watcher = self.watcher.clone();
        let mut got_end = false;
        let started = LabRun::start(job, |lab_pid| {
            // The lab itself from its start, before any of its events.
            watcher.watch(run, lab_pid);
            move |feed| match feed {
                LabFeed::Event(ev) => {
                    match &ev {
                        // Worker processes are measured too (threads are read with their process).
                        crate::timeline::LabEvent::Lane(l) => watcher.watch(run, l.pid),
                        // A last reading before the lab and its workers exit and are reaped.
                        crate::timeline::LabEvent::Finished(_) => {
                            got_end = true;
                            watcher.finish(run);
                        }
                        _ => {}
                    }
                    let _ = tx.send(Msg::App(AppEvent::Lab(run, ev)));
                }
                LabFeed::Closed => {
                    watcher.finish(run);
                    let _ = tx.send(Msg::LabClosed { run, got_end });
                }
            }
        });
        let lab = match started {
            Ok(lab) => lab,
            Err(e) => {
                return Some(AppEvent::LabExited { run, error: Some(format!("{e:#}")), now_ns: clock::now_ns() });
            }
        };
        if let Ok(mut g) = LAB_GROUPS.lock() {
            g.push(lab.pid());
        }
        self.labs.insert(run, lab);
        None
    }

    fn cancel(&mut self, run: u64) {
        self.watcher.finish(run);
        if let Some(mut lab) = self.labs.remove(&run) {
            lab.cancel();
            forget_group(lab.pid());
        }
    }

    /// A lab's stream ended: reap it and say whether it ended early.
    fn closed(&mut self, run: u64, got_end: bool) -> Option<AppEvent> {
        let mut lab = self.labs.remove(&run)?;
        let error = lab.finish(got_end);
        forget_group(lab.pid());
        Some(AppEvent::LabExited { run, error, now_ns: clock::now_ns() })
    }

    /// Stops everything: labs are killed with their workers; checks are told to stop and given a moment.
    fn shutdown(&mut self) {
        let runs: Vec<u64> = self.labs.keys().copied().collect();
        for run in runs {
            self.cancel(run);
        }
        for (stop, _) in self.checks.values() {
            stop.store(true, Ordering::Relaxed);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (_, (_, handle)) in self.checks.drain() {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

fn forget_group(pid: u32) {
    if let Ok(mut g) = LAB_GROUPS.lock() {
        g.retain(|p| *p != pid);
    }
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    rx: &Receiver<Msg>,
    runner: &mut Runner,
    monitor: &Monitor,
    open: Option<&str>,
    mut first_frame: Option<FirstFrame>,
) -> Result<()> {
    let size = terminal.size()?;
    let mut pending: VecDeque<AppEvent> = VecDeque::from([AppEvent::Resize(size.width, size.height)]);
    if let Some(id) = open {
        for e in app.open_by_id(id) {
            if let Some(ev) = runner.perform(e, app, monitor) {
                pending.push_back(ev);
            }
        }
    }
    let mut dirty = true;
    let mut last_frame = Instant::now() - FRAME;
    let mut keeper = crate::replay::Keeper::new();
    loop {
        // Apply what is queued, performing effects (which may queue more).
        let mut urgent = false;
        while let Some(ev) = pending.pop_front() {
            urgent |=
                matches!(ev, AppEvent::Key(_) | AppEvent::Resize(..) | AppEvent::Scroll { .. } | AppEvent::Signal)
                    || matches!(ev, AppEvent::LabExited { .. } | AppEvent::CheckDone { .. });
            dirty = true;
            for effect in app.update(ev) {
                if let Some(more) = runner.perform(effect, app, monitor) {
                    pending.push_back(more);
                }
            }
        }
        if app.quitting() {
            return Ok(());
        }
        keeper.after_update(app);
        if let Some(notes) = &mut runner.notes {
            notes.follow(app);
        }
        let live = app.is_live() || app.playing();
        let due = last_frame.elapsed() >= FRAME;
        if dirty && (urgent || !live || due) {
            if live {
                app.update(AppEvent::Tick(clock::now_ns()));
            }
            terminal.draw(|f| f.render_widget(&*app, f.area()))?;
            if let Some(hook) = first_frame.take() {
                hook.report();
            }
            last_frame = Instant::now();
            dirty = false;
        }
        // Wait: for the next frame while live, else for anything at all.
        let msg = if live {
            let wait = FRAME.saturating_sub(last_frame.elapsed());
            match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => {
                    // A live Gantt grows with time even when no event came.
                    dirty = true;
                    None
                }
                Err(RecvTimeoutError::Disconnected) => bail!("the UI's event channel closed"),
            }
        } else {
            Some(rx.recv().map_err(|_| anyhow!("the UI's event channel closed"))?)
        };
        // Take everything that is waiting, up to a bound, so a flood of spans costs one frame.
        let mut batch: Vec<Msg> = msg.into_iter().collect();
        while batch.len() < 20_000 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        for m in batch {
            match m {
                Msg::App(ev) => pending.push_back(ev),
                Msg::LabClosed { run, got_end } => {
                    if let Some(ev) = runner.closed(run, got_end) {
                        pending.push_back(ev);
                    }
                }
            }
        }
    }
}

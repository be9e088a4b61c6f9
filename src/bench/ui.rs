//! The UI's figures for `parlab bench`, all measured now on this machine:
//! - `frame_ms`: the median time to draw a whole lesson view (prose and experiment panel) at 200x50, after a real
//!   run of a few thousand spans went through the app like in the TUI;
//! - `first_frame_ms`: the real binary's TUI started in tmux, from the launcher's clock to its first frame drawn;
//! - `ui_idle_cpu_pct` / `ui_live_cpu_pct`: the TUI process's own CPU time (its threads' run time from the
//!   scheduler, or utime + stime of /proc/PID/stat; the lab and workers are other processes and do not count) over a
//!   few seconds on a lesson view, idle and during a live run, as % of one core.
//!
//! The tmux figures are left out when tmux is missing. They use a private tmux server (`-L`) that is killed
//! afterwards with everything it started.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::app::{App, AppEvent, Effect, Key};
use crate::clock;
use crate::experiment::{Knobs, Mode, Workload, available_cores};
use crate::lesson::{Block, ExperimentKind};
use crate::monitor::Monitor;
use crate::progress::Progress;
use crate::timeline::LabEvent;
use crate::tui::{BENCH_FIRST_FRAME_ENV, BENCH_SPAWNED_ENV};

use crate::theme::Theme;

/// The screen the frame figures are taken at.
const W: u16 = 200;
const H: u16 = 50;

/// (name, value, unit) of every UI figure this machine can measure.
pub(crate) fn bench_figures(quick: bool) -> Result<Vec<(String, f64, String)>> {
    let mut out = vec![("frame_ms".to_string(), frame_ms(quick)?, "ms".to_string())];
    if !tmux_available() {
        return Ok(out);
    }
    let scratch = Scratch::new()?;
    let secs = if quick { 3.0 } else { 5.0 };
    let (first, idle) = first_frame_and_idle(&scratch, secs)?;
    out.push(("first_frame_ms".into(), first, "ms".into()));
    out.push(("ui_idle_cpu_pct".into(), idle, "%".into()));
    let live = live_cpu(&scratch, secs)?;
    out.push(("ui_live_cpu_pct".into(), live, "%".into()));
    Ok(out)
}

/// The median time to draw a lesson view at 200x50 with a finished run of 3000 tasks (one span each) in its
/// panel: the first embedded lesson with an experiment, its panel set to 3000 tiny tasks on warm worker processes,
/// run for real in a lab, every event fed to the app as the TUI does, and real system core samples.
fn frame_ms(quick: bool) -> Result<f64> {
    let set = crate::lesson::load(None)?;
    let id = set
        .lessons
        .iter()
        .find(|l| {
            l.sections
                .iter()
                .flat_map(|s| &s.blocks)
                .any(|b| matches!(b, Block::Experiment(e) if matches!(e.kind, ExperimentKind::Run { .. })))
        })
        .map(|l| l.id.clone())
        .ok_or_else(|| anyhow!("no embedded lesson has an experiment to draw"))?;
    let scratch = Scratch::new()?;
    let (progress, _) = Progress::load_from(&scratch.path("data"));
    let cores = available_cores();
    let mut app = App::new(set.lessons, Vec::new(), progress, Theme::default(), cores)
        .with_prose_layout(crate::ui::lesson::measure);
    app.update(AppEvent::Resize(W, H));
    app.open_by_id(&id);
    // The section with the experiment (an introduction shows none).
    while app.panel.setup.as_ref().is_none_or(|s| s.demo.is_some())
        && app.view.section + 1 < app.lesson().map_or(0, |l| l.sections.len())
    {
        app.update(AppEvent::Key(Key::Right));
    }
    let setup = app.panel.setup.as_mut().ok_or_else(|| anyhow!("lesson '{id}' opened without an experiment panel"))?;
    // Tasks of ~50 µs: long enough that the lab records each chunk's spans one by one (it sums shorter ones).
    setup.workload = Workload::Fib { lo: 20, hi: 20 };
    setup.tasks = 3_000;
    setup.mode = Mode::Processes;
    setup.knobs = Knobs { workers: Some(cores), chunksize: Some(1), warm: true, ..Knobs::default() };
    setup.exercise = None;
    setup.demo = None;
    let (run, exp) = app
        .update(AppEvent::Key(Key::Char('r')))
        .into_iter()
        .find_map(|e| match e {
            Effect::Start { run, exp } => Some((run, exp)),
            _ => None,
        })
        .ok_or_else(|| anyhow!("r did not start a run in the frame benchmark"))?;

    let samples = core_samples(2);
    let mut events: Vec<LabEvent> = Vec::new();
    let stop = AtomicBool::new(false);
    let t = crate::lab::client::run_to_end(&exp, &stop, |ev| events.push(ev.clone()))?;
    if let Some(err) = t.end.as_ref().and_then(|e| e.error.as_deref()) {
        bail!("the frame benchmark's run failed: {err}");
    }
    for ev in events {
        app.update(AppEvent::Lab(run, ev));
    }
    app.update(AppEvent::LabExited { run, error: None, now_ns: clock::now_ns() });
    for s in samples {
        app.update(AppEvent::Cores(s));
    }
    let r = app.panel.run.as_ref();
    if !r.is_some_and(|r| r.succeeded() && r.timeline.spans.len() >= 1_000) {
        bail!("the frame benchmark's run did not reach the panel");
    }

    let n = if quick { 50 } else { 300 };
    for _ in 0..5 {
        std::hint::black_box(crate::ui::render_frame_for_bench(&app, W, H));
    }
    let ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(crate::ui::render_frame_for_bench(&app, W, H));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    Ok(crate::timeline::median(&ms))
}

/// A few real system samples from the monitor (none if it cannot sample here).
fn core_samples(n: usize) -> Vec<Vec<f32>> {
    let (tx, rx) = mpsc::channel();
    let Ok(monitor) = Monitor::start(move |v| tx.send(v).is_ok()) else {
        return Vec::new();
    };
    monitor.set(crate::monitor::MonitorRate::Fast);
    let out: Vec<Vec<f32>> = (0..n).map_while(|_| rx.recv_timeout(Duration::from_secs(3)).ok()).collect();
    monitor.set(crate::monitor::MonitorRate::Off);
    out
}

fn tmux_available() -> bool {
    Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// A private folder under the system temp dir, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("parlab-bench-{}-{}", std::process::id(), clock::now_ns()));
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("cannot create '{}'", dir.display()))?;
        Ok(Scratch { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private tmux server holding one 200x50 session; dropping it kills the server, the parlab it started (if
/// still there) and its socket.
struct Tmux {
    socket: String,
    ui_pid: Option<u32>,
}

impl Tmux {
    /// Starts the server first (with a placeholder session), so that starting parlab later does not include it.
    fn start() -> Result<Tmux> {
        let t = Tmux { socket: format!("parlab-bench-{}-{}", std::process::id(), clock::now_ns()), ui_pid: None };
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "hold",
            "-x",
            &W.to_string(),
            "-y",
            &H.to_string(),
            "sleep 600",
        ])?;
        Ok(t)
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().context("cannot run tmux")?;
        if !out.status.success() {
            bail!(
                "tmux {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// Starts parlab in a new session `ui`, with the bench hooks set; returns when tmux has started it.
    fn launch(&mut self, scratch: &Scratch, args: &str) -> Result<u32> {
        let exe = std::env::current_exe().context("cannot find the parlab executable")?;
        let cmd = format!(
            "exec env -u NO_COLOR TERM=xterm-256color PARLAB_DATA_DIR={} {BENCH_FIRST_FRAME_ENV}={} \
             {BENCH_SPAWNED_ENV}=%SPAWNED% {} {args}",
            quote(&scratch.path("data")),
            quote(&scratch.path("first-frame")),
            quote(&exe),
        );
        let _ = std::fs::remove_file(scratch.path("first-frame"));
        let spawned = clock::now_ns();
        let cmd = cmd.replace("%SPAWNED%", &spawned.to_string());
        let w = W.to_string();
        let h = H.to_string();
        self.run(&["new-session", "-d", "-s", "ui", "-x", &w, "-y", &h, &cmd])?;
        let out = self.run(&["display", "-p", "-t", "ui", "#{pane_pid}"])?;
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| anyhow!("tmux did not say which process runs in its pane"))?;
        self.ui_pid = Some(pid);
        Ok(pid)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "ui"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn keys(&self, keys: &[&str]) -> Result<()> {
        for k in keys {
            self.run(&["send-keys", "-t", "ui", k])?;
        }
        Ok(())
    }

    /// Waits for the screen to show something; the error names it and shows the screen.
    fn wait(&self, secs: f64, what: &str, pred: impl Fn(&str) -> bool) -> Result<()> {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return Ok(());
            }
            if Instant::now() > end {
                let last: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).take(6).collect();
                bail!("timed out waiting for {what}; the screen began: {}", last.join(" / "));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Quits parlab with q and waits for it to be gone.
    fn quit(&mut self) -> Result<()> {
        let Some(pid) = self.ui_pid else {
            return Ok(());
        };
        self.keys(&["Escape", "q"])?;
        if !wait_gone(pid, 5.0) {
            bail!("parlab (pid {pid}) did not quit on q");
        }
        self.ui_pid = None;
        Ok(())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self
            .run(&["display", "-p", "#{socket_path}"])
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        // kill-server hangs up every pane: parlab quits on SIGHUP, stopping its labs.
        let _ = self.run(&["kill-server"]);
        if let Some(pid) = self.ui_pid.take()
            && !wait_gone(pid, 3.0)
        {
            // SAFETY: signalling the parlab process this benchmark started (its pane's process).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if socket.contains(&self.socket) {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Single quotes for sh.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Whether a process is gone (or a zombie) within `secs`.
fn wait_gone(pid: u32, secs: f64) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|x| x.1.split_whitespace().next());
        if matches!(state, None | Some("Z")) {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// utime + stime of a process (all its threads, in clock ticks), in seconds.
fn stat_cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state); utime is 14, stime 15.
    let rest = stat.rsplit_once(')').map(|x| x.1).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))
    };
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// Run time of each thread of a process in ns, from the scheduler (/proc/PID/task/TID/schedstat), when the
/// kernel keeps it: exact, where utime + stime come in 10 ms ticks (0.2% of a core over 5 s, the idle target).
fn thread_ns(pid: u32) -> Option<std::collections::HashMap<u32, u64>> {
    let mut out = std::collections::HashMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A thread may end between the listing and the read: it simply does not count.
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            out.insert(tid, s.split_whitespace().next()?.parse().ok()?);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The process's own CPU use (its threads, not its children) over `secs` of wall time, as % of one core: from
/// the scheduler's per-thread run times when available, else from utime + stime.
fn cpu_pct(pid: u32, secs: f64) -> Result<f64> {
    let (s0, n0, t0) = (stat_cpu_secs(pid)?, thread_ns(pid), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (s1, n1, t1) = (stat_cpu_secs(pid)?, thread_ns(pid), Instant::now());
    let wall = (t1 - t0).as_secs_f64();
    let used = match (n0, n1) {
        // Threads started during the window count from zero; one that ended in it is lost (the UI's threads live
        // as long as it does, and a run's follower thread as long as the run).
        (Some(a), Some(b)) => {
            b.iter().map(|(tid, ns)| ns.saturating_sub(a.get(tid).copied().unwrap_or(0))).sum::<u64>() as f64 / 1e9
        }
        _ => s1 - s0,
    };
    Ok(used / wall * 100.0)
}

/// Checks that the pane runs parlab itself (the pane's process execs into it).
fn check_is_parlab(pid: u32) -> Result<()> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "parlab" {
        bail!("the tmux pane runs '{}', not parlab", comm.trim());
    }
    Ok(())
}

/// Starts the TUI on the embedded lessons: the time to its first frame; then the CPU it uses over `secs` idling on
/// the first lesson's view (its core panel sampling at the idle rate).
fn first_frame_and_idle(scratch: &Scratch, secs: f64) -> Result<(f64, f64)> {
    let mut tmux = Tmux::start()?;
    let pid = tmux.launch(scratch, "")?;
    let file = scratch.path("first-frame");
    let end = Instant::now() + Duration::from_secs(10);
    let first_ns: u64 = loop {
        if let Some(ns) = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()) {
            break ns;
        }
        if Instant::now() > end {
            bail!("the TUI drew no first frame within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    check_is_parlab(pid)?;
    tmux.wait(10.0, "the lesson list", |s| s.contains(" done"))?;
    tmux.keys(&["Enter"])?;
    tmux.wait(10.0, "the lesson view", |s| s.contains("sections"))?;
    // Let the first core samples and redraws settle.
    std::thread::sleep(Duration::from_millis(1500));
    let idle = cpu_pct(pid, secs)?;
    tmux.quit()?;
    Ok((first_ns as f64 / 1e6, idle))
}

/// A lesson with one experiment that keeps a GIL run going for much longer than the measurement: two threads
/// handing the lock over every 5 ms, so spans stream in all the time.
const LIVE_LESSON: &str = r#"+++
id = "bench-live"
title = "A long GIL run"
minutes = 1
summary = "parlab bench measures the UI's CPU while this runs."
covers = ["benchmark"]
+++

Two threads take turns holding the GIL while the UI draws their lanes live.

## A long run

```experiment
workload = "fib:34"
tasks = 1000
modes = ["gil"]
workers = 2
```
"#;

/// The TUI's CPU over `secs` while a GIL run streams its spans (only the UI process: the lab is another one).
fn live_cpu(scratch: &Scratch, secs: f64) -> Result<f64> {
    let lessons = scratch.path("lessons");
    std::fs::create_dir_all(&lessons)?;
    std::fs::write(lessons.join("01-bench-live.md"), LIVE_LESSON)?;
    let mut tmux = Tmux::start()?;
    let args = format!("--lessons {} --lesson bench-live", quote(&lessons));
    let pid = tmux.launch(scratch, &args)?;
    // The experiment is in the second section (an introduction shows none).
    tmux.wait(10.0, "the lesson view", |s| s.contains("1 of 2 sections"))?;
    tmux.keys(&["Right"])?;
    tmux.wait(10.0, "the experiment's section", |s| s.contains("experiment: fib:34"))?;
    check_is_parlab(pid)?;
    tmux.keys(&["r"])?;
    tmux.wait(20.0, "the live run's lanes", |s| s.contains("running") && s.contains("t1 "))?;
    std::thread::sleep(Duration::from_millis(500));
    let live = cpu_pct(pid, secs)?;
    if !tmux.screen().contains("running") {
        bail!("the live run ended before the measurement did");
    }
    tmux.quit()?;
    Ok(live)
}

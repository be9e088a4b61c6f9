//! The live view of `parlab watch`: while the program runs, the per-core bars and the Gantt of every thread and
//! child process, drawn with the experiment panel's widgets (`ui::cores`, `ui::gantt`) from the sampler's updates.
//! `q`, `Esc` or Ctrl-C stop the program (and everything it started); the summary is printed after the screen is
//! restored, with the last lines the program wrote.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

use crate::app::{CoreSamples, CpuSample, RunCpu};
use crate::clock::now_ns;
use crate::engine::sampler::{Interval, ProcessTrack, Samples, ThreadTrack, Update};
use crate::ui::cores::{CoreBars, RunWindow};
use crate::ui::gantt::Gantt;
use crate::ui::theme::Theme;
use crate::watch::{Python, WatchRequest, Watched, live_timeline, run_watched};

/// How much of the program's own output is kept to show after the live view.
const TAIL_BYTES: usize = 8 * 1024;

/// What the live view knows so far.
#[derive(Default)]
struct Live {
    samples: Samples,
    open: std::collections::HashMap<u32, Interval>,
    cpu: RunCpu,
}

impl Live {
    fn apply(&mut self, u: Update) {
        match u {
            Update::Thread { pid, tid, ppid, name } => {
                if !self.samples.processes.iter().any(|p| p.pid == pid) {
                    self.samples.processes.push(ProcessTrack {
                        pid,
                        ppid,
                        name: name.clone(),
                        first_ns: 0,
                        last_ns: 0,
                        cpu_ns: 0,
                    });
                }
                self.samples.threads.push(ThreadTrack {
                    pid,
                    tid,
                    name,
                    first_ns: 0,
                    last_ns: 0,
                    cpu_ns: 0,
                    intervals: Vec::new(),
                });
            }
            Update::Interval { tid, interval, .. } => {
                if let Some(t) = self.samples.threads.iter_mut().find(|t| t.tid == tid) {
                    t.intervals.push(interval);
                }
                self.open.remove(&tid);
            }
            Update::Open { tid, interval, .. } => {
                self.open.insert(tid, interval);
            }
            Update::Cores { at_ns, interval_ns, per_core_ns } => {
                self.cpu.add(CpuSample { at_ns, interval_ns, per_core_ns });
            }
        }
    }

    /// What has been seen, with the stretches in progress as they stand.
    fn snapshot(&self) -> Samples {
        let mut s = self.samples.clone();
        for t in &mut s.threads {
            if let Some(open) = self.open.get(&t.tid) {
                t.intervals.push(*open);
            }
        }
        s
    }
}

/// Runs the program with the live view; returns what was watched once it ended (or was stopped).
pub(crate) fn run(
    req: &WatchRequest,
    script: &Path,
    python: &Python,
    cores: u32,
    stop: &Arc<AtomicBool>,
) -> Result<Watched> {
    let (out_r, out_w) = std::io::pipe().context("cannot make a pipe for the program's output")?;
    let err_w = out_w.try_clone().context("cannot make a pipe for the program's output")?;
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let keep = Arc::clone(&tail);
    std::thread::Builder::new().name("watch-output".into()).spawn(move || {
        let mut r = out_r;
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut t = keep.lock().unwrap_or_else(|e| e.into_inner());
            t.extend_from_slice(&buf[..n]);
            if t.len() > 2 * TAIL_BYTES {
                let cut = t.len() - TAIL_BYTES;
                t.drain(..cut);
            }
        }
    })?;
    let (tx, rx) = mpsc::channel::<Update>();
    let (done_tx, done_rx) = mpsc::channel::<Result<Watched>>();
    let t0 = now_ns();
    {
        let (req, script, python, stop) = (req.clone(), script.to_path_buf(), python.clone(), Arc::clone(stop));
        std::thread::Builder::new().name("watch-run".into()).spawn(move || {
            let r = run_watched(&req, &script, &python, Stdio::from(out_w), Stdio::from(err_w), Some(tx), &stop);
            let _ = done_tx.send(r);
        })?;
    }
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme { color: !no_color, ..Theme::default() };
    let result = draw_loop(&mut terminal, req, python, cores, t0, theme, &rx, &done_rx, stop);
    ratatui::restore();
    let t = tail.lock().unwrap_or_else(|e| e.into_inner());
    if !t.is_empty() {
        let text = String::from_utf8_lossy(&t[t.len().saturating_sub(TAIL_BYTES)..]).into_owned();
        eprintln!("── what the program wrote (last {} lines) ──", text.lines().count().min(20));
        for line in text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev() {
            eprintln!("{}", crate::exercise::text::terminal_safe(line, 400));
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn draw_loop(
    terminal: &mut ratatui::DefaultTerminal,
    req: &WatchRequest,
    python: &Python,
    cores: u32,
    t0: u64,
    theme: Theme,
    rx: &Receiver<Update>,
    done: &Receiver<Result<Watched>>,
    stop: &AtomicBool,
) -> Result<Watched> {
    let mut live = Live::default();
    let sys = CoreSamples::default();
    let name = req
        .file
        .file_name()
        .map_or_else(|| crate::watch::shown_path(&req.file), |n| crate::watch::shown_path(Path::new(n)));
    let gil = if python.gil_enabled { "GIL" } else { "GIL off" };
    loop {
        while let Ok(u) = rx.try_recv() {
            live.apply(u);
        }
        if let Ok(r) = done.try_recv() {
            return r;
        }
        let now = now_ns();
        let snap = live.snapshot();
        let timeline = live_timeline(&snap, 0, t0, cores);
        let to = now.max(t0 + 1_000_000);
        terminal.draw(|f| {
            let area = f.area();
            let buf = f.buffer_mut();
            let header = format!(
                " parlab watch · {name} · Python {} ({gil}) · {:.1} s of {} s · {} processes, {} threads",
                python.version,
                (now - t0) as f64 / 1e9,
                req.timeout_s,
                snap.processes.len(),
                snap.threads.len()
            );
            buf.set_stringn(area.x, area.y, header, area.width as usize, theme.accent());
            let bars = CoreBars::new(
                &sys,
                Some(RunWindow { timeline: &timeline, digest: None, cpu: Some(&live.cpu), from: t0, to, live: true }),
                cores,
                theme,
            )
            .system(false);
            let bars_h = bars.wanted_height(8).min(area.height.saturating_sub(4));
            bars.render(Rect::new(area.x, area.y + 2, area.width, bars_h), buf);
            let gy = area.y + 3 + bars_h;
            let gh = area.height.saturating_sub(gy - area.y + 1);
            Gantt::new(&timeline, theme).window(t0, to).render(Rect::new(area.x, gy, area.width, gh), buf);
            let footer =
                " q / Esc stop the program (and every process it started)    █ on a CPU  ▒ waiting for the GIL";
            buf.set_stringn(area.x, area.y + area.height - 1, footer, area.width as usize, theme.dim());
        })?;
        if crossterm::event::poll(Duration::from_millis(100))?
            && let Event::Key(k) = crossterm::event::read()?
            && k.kind == KeyEventKind::Press
            && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)))
        {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

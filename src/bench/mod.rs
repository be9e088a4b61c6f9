//! `parlab bench`: the performance suite. Every figure is measured now, on this machine, and printed beside its
//! target from DESIGN.md; nothing here passes or fails a build (the machines are noisy), it reports.
//!
//! A face like `headless`: `ui` holds the UI's figures (frames, first frame, UI CPU) and `demos` the demos' figures.

mod demos;
mod ui;

use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use anyhow::{Result, anyhow};
use serde_json::json;

use crate::clock::Mark;
use crate::experiment::{Experiment, Fit, Knobs, Mode, Workload, available_cores};
use crate::lab::client::{measure, stop_flag};
use crate::lab::{Recorder, Tracker};
use crate::timeline::{RunReport, Span, SpanKind, median};
use crate::units::fmt_num;

/// One measured figure and its target.
#[derive(Clone, Debug)]
pub(crate) struct BenchFigure {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub target: String,
    /// `None` when DESIGN gives the figure no target.
    pub met: Option<bool>,
    /// How it was measured, in a few words.
    pub how: String,
}

fn exp(workload: &str, tasks: u64, mode: Mode, knobs: Knobs) -> Result<Experiment> {
    let w: Workload = workload.parse().map_err(|e| anyhow!("{e}"))?;
    Experiment::build(w, tasks, mode, &knobs, Fit::Lenient, available_cores()).map_err(|e| anyhow!(e))
}

fn run(e: &Experiment, reps: u32, stop: &AtomicBool) -> Result<RunReport> {
    let r = measure(e, reps, stop)?;
    if let Some(err) = r.error() {
        return Err(anyhow!("{} run failed: {err}", e.mode));
    }
    Ok(r)
}

fn at_least(name: &'static str, value: f64, unit: &'static str, target: f64, how: String) -> BenchFigure {
    BenchFigure { name, value, unit, target: format!(">= {}", fmt_num(target)), met: Some(value >= target), how }
}

fn at_most(name: &'static str, value: f64, unit: &'static str, target: f64, how: String) -> BenchFigure {
    BenchFigure { name, value, unit, target: format!("<= {}", fmt_num(target)), met: Some(value <= target), how }
}

/// A figure DESIGN gives no target for.
fn untargeted(name: String, value: f64, unit: String) -> BenchFigure {
    BenchFigure {
        name: leak(name),
        value,
        unit: leak(unit),
        target: "-".into(),
        met: None,
        how: "measured; no target in DESIGN".into(),
    }
}

/// Figure names and units from other modules live for the whole (short) bench process.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Runs the suite. `quick` uses smaller sizes and fewer repetitions.
pub(crate) fn figures(
    quick: bool,
    python: Option<&str>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<BenchFigure>> {
    let cores = available_cores();
    let reps = if quick { 1 } else { 3 };
    let mut out = Vec::new();

    // Speedups on equal CPU tasks of >= 100 ms each (fib:37 is ~120-200 ms natively), two tasks per core.
    progress("speedups on equal CPU tasks");
    let size = if quick { "fib:35" } else { "fib:37" };
    let tasks = 2 * u64::from(cores);
    let workers = Knobs { workers: Some(cores), ..Knobs::default() };
    let seq = run(&exp(size, tasks, Mode::Sequential, Knobs::default())?, reps, stop)?;
    let base = seq.wall_ms();
    let thr = run(&exp(size, tasks, Mode::Threads, workers.clone())?, reps, stop)?;
    let warm = Knobs { warm: true, ..workers.clone() };
    let pro = run(&exp(size, tasks, Mode::Processes, warm)?, reps, stop)?;
    let gil = run(&exp(size, tasks, Mode::Gil, workers.clone())?, reps, stop)?;
    let how = |r: &RunReport| format!("{size} × {tasks}: {:.0} ms vs sequential {base:.0} ms", r.wall_ms());
    let target = 0.95 * f64::from(cores);
    out.push(at_least("threads_speedup", base / thr.wall_ms(), "x", target, how(&thr)));
    out.push(at_least("processes_warm_speedup", base / pro.wall_ms(), "x", target, how(&pro)));
    let g = base / gil.wall_ms();
    out.push(BenchFigure {
        name: "gil_speedup",
        value: g,
        unit: "x",
        target: "0.9-1.05".into(),
        met: Some((0.9..=1.05).contains(&g)),
        how: how(&gil),
    });

    progress("GIL hand-off interval");
    let holds: Vec<f64> = gil.timeline.gil_handoffs_ns(200_000).into_iter().map(|n| n as f64 / 1e6).collect();
    let n_holds = holds.len();
    let handoff = median(&holds);
    out.push(BenchFigure {
        name: "gil_handoff_ms",
        value: handoff,
        unit: "ms",
        target: "4.5-5.5".into(),
        met: Some((4.5..=5.5).contains(&handoff)),
        how: format!("median of {n_holds} holds ended by a drop request, 5 ms interval"),
    });

    progress("worker start-up (spawn)");
    let spawn = exp("tiny", 4, Mode::Processes, Knobs { workers: Some(4), ..Knobs::default() })?;
    let mut starts = Vec::new();
    for _ in 0..if quick { 3 } else { 10 } {
        let r = run(&spawn, 1, stop)?;
        starts.extend(r.timeline.spans.iter().filter(|s| s.kind == SpanKind::Startup).map(|s| s.dur_ns() as f64 / 1e6));
    }
    let n_starts = starts.len();
    out.push(at_most(
        "spawn_start_ms",
        median(&starts),
        "ms",
        2.0,
        format!("median exec-to-ready of {n_starts} spawned workers"),
    ));

    progress("per-item overhead (tiny tasks, chunksize 1)");
    let items: u64 = if quick { 20_000 } else { 100_000 };
    let tiny = exp(
        "tiny",
        items,
        Mode::Processes,
        Knobs { workers: Some(cores), chunksize: Some(1), warm: true, ..Knobs::default() },
    )?;
    let r = run(&tiny, reps, stop)?;
    out.push(at_most(
        "per_item_overhead_us",
        r.wall_ms() * 1000.0 / items as f64,
        "µs",
        5.0,
        format!("{items} tiny tasks, warm pool of {cores}, chunksize 1: {:.0} ms", r.wall_ms()),
    ));

    progress("one worker against the loop");
    out.push(one_worker_speedup(reps, stop)?);

    progress("payload round trip");
    let mb: u64 = if quick { 20 } else { 100 };
    let payload = exp(
        "tiny",
        1,
        Mode::Processes,
        Knobs { workers: Some(1), payload: Some(mb * 1_000_000), warm: true, ..Knobs::default() },
    )?;
    let r = run(&payload, reps, stop)?;
    out.push(at_least(
        "payload_100mb_mb_per_s",
        mb as f64 / (r.wall_ms() / 1000.0),
        "MB/s",
        500.0,
        format!("{mb} MB sent to a warm worker and back: {:.0} ms", r.wall_ms()),
    ));

    progress("recording overhead");
    out.push(recording_overhead());

    progress("a 1,000,000-task run");
    out.push(million_tasks(quick, stop)?);

    progress("the terminal UI (frames, start-up, CPU while idle and live)");
    for (name, value, unit) in ui::bench_figures(quick)? {
        out.push(match name.as_str() {
            "frame_ms" => at_most("frame_ms", value, "ms", 2.0, "median full frame at 200x50, real run".into()),
            "first_frame_ms" => {
                at_most("first_frame_ms", value, "ms", 150.0, "spawn to first frame drawn, in tmux".into())
            }
            "ui_idle_cpu_pct" => {
                at_most("ui_idle_cpu_pct", value, "%", 0.2, "UI process CPU over 5 s idle, % of one core".into())
            }
            "ui_live_cpu_pct" => {
                at_most("ui_live_cpu_pct", value, "%", 2.0, "UI process CPU during a live run (lab excluded)".into())
            }
            _ => untargeted(name, value, unit),
        });
    }

    progress("process internals (fork, forkserver, copy-on-write, queues)");
    for (name, value, unit) in demos::bench_figures(quick) {
        out.push(match name.as_str() {
            "fork_start_ms" => at_most("fork_start_ms", value, "ms", 0.5, "median fork-to-ready".into()),
            "forkserver_start_ms" => at_most(
                "forkserver_start_ms",
                value,
                "ms",
                0.5,
                "median request-to-ready, server already running".into(),
            ),
            _ => untargeted(name, value, unit),
        });
    }

    // The python engine's figures beside the native ones (absent, with a note, without a working interpreter).
    let (python, note) = crate::engine::bench::figures(&out, python, quick, stop, progress)?;
    out.extend(python);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    Ok(out)
}

/// Peak memory of this process after receiving a 1,000,000-task run's events and drawing its Gantt.
fn million_tasks(quick: bool, stop: &AtomicBool) -> Result<BenchFigure> {
    let chunksize = if quick { 10 } else { 1 };
    let e =
        exp("tiny", 1_000_000, Mode::Processes, Knobs { chunksize: Some(chunksize), warm: true, ..Knobs::default() })?;
    let t = crate::lab::client::run_to_end(&e, stop, |_| {})?;
    if let Some(err) = t.end.as_ref().and_then(|e| e.error.clone()) {
        return Err(anyhow!("the 1,000,000-task run failed: {err}"));
    }
    let area = ratatui::layout::Rect::new(0, 0, 200, 50);
    let mut buf = ratatui::buffer::Buffer::empty(area);
    let start = Mark::now();
    ratatui::widgets::Widget::render(
        crate::ui::gantt::Gantt::new(&t, crate::ui::theme::Theme::default()),
        area,
        &mut buf,
    );
    let draw_ms = (Mark::now().ns - start.ns) as f64 / 1e6;
    let rss = peak_rss_mb().unwrap_or(f64::NAN);
    Ok(at_most(
        "million_tasks_rss_mb",
        rss,
        "MB",
        150.0,
        format!("{} spans received, Gantt drawn at 200x50 in {draw_ms:.1} ms (chunksize {chunksize})", t.spans.len()),
    ))
}

/// VmHWM of this process in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Processes with ONE warm worker against the sequential loop, on tiny tasks in 8 chunks: the same work plus the
/// messages, so it must never come out ahead (a figure above 1 means a mode pays for recording another does not).
fn one_worker_speedup(reps: u32, stop: &AtomicBool) -> Result<BenchFigure> {
    let knobs = Knobs { workers: Some(1), chunksize: Some(25_000), warm: true, ..Knobs::default() };
    // Alternate the two, so a burst of load from other programs falls on both.
    let (mut seq_ms, mut pro_ms) = (Vec::new(), Vec::new());
    let (seq, pro) =
        (exp("tiny", 200_000, Mode::Sequential, knobs.clone())?, exp("tiny", 200_000, Mode::Processes, knobs)?);
    for _ in 0..reps.max(3) * 3 {
        seq_ms.push(run(&seq, 1, stop)?.wall_ms());
        pro_ms.push(run(&pro, 1, stop)?.wall_ms());
    }
    let (s, p) = (median(&seq_ms), median(&pro_ms));
    Ok(at_most(
        "one_worker_speedup",
        s / p,
        "x",
        1.05,
        format!(
            "tiny × 200000, 1 warm worker, chunksize 25000: {p:.2} ms vs sequential {s:.2} ms (medians of {})",
            seq_ms.len()
        ),
    ))
}

/// What recording costs on the path every in-process lane uses (`Tracker`: two clock+core reads per chunk, the
/// lane's coalescer and a batch handed to the event writer), as a share of a 1 ms task.
fn recording_overhead() -> BenchFigure {
    let (tx, rx) = mpsc::channel();
    let rec = Recorder::new(tx);
    let drain = std::thread::spawn(move || rx.iter().count());
    let n = 200_000u64;
    let t0 = Mark::now();
    {
        let mut tracker = Tracker::new(&rec, 0, None);
        for i in 0..n {
            // The two clock reads a chunk costs, and a span as long as the task (so it is kept, not summed).
            let (a, b) = (Mark::now(), Mark::now());
            let start = Mark { ns: a.ns + i * 1_000_000, cpu: a.cpu };
            let end = Mark { ns: start.ns + 1_000_000, cpu: b.cpu };
            tracker.record(Span::between(0, i, 1, SpanKind::Run, start, end));
        }
    }
    let t1 = Mark::now();
    drop(rec);
    let _ = drain.join();
    let per_span_ns = (t1.ns - t0.ns) as f64 / n as f64;
    let pct = per_span_ns / 1_000_000.0 * 100.0;
    at_most(
        "recording_overhead_pct",
        pct,
        "%",
        1.0,
        format!("{per_span_ns:.0} ns per recorded chunk span, one span per 1 ms task"),
    )
}

pub fn bench_cmd(json_out: bool, quick: bool, python: Option<&str>) -> Result<u8> {
    let stop = stop_flag()?;
    let cores = available_cores();
    let mut progress = |what: &str| {
        if !json_out && crate::headless::progress_on_stderr() {
            eprint!("measuring {what} ...{:20}\r", "");
        }
    };
    let figs = figures(quick, python, &stop, &mut progress)?;
    if json_out {
        let list: Vec<_> = figs
            .iter()
            .map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit, "target": f.target, "met": f.met, "how": f.how}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"cores": cores, "quick": quick, "figures": list}))?);
    } else {
        if crate::headless::progress_on_stderr() {
            eprint!("{:60}\r", "");
        }
        let cores = crate::units::plural(cores as u64, "core");
        println!("parlab bench · {cores}{}\n", if quick { " · quick" } else { "" });
        println!("  {:<26} {:>12}  {:<10} {:<4}  how", "figure", "value", "target", "met");
        for f in &figs {
            println!(
                "  {:<26} {:>9.3} {:<3} {:<10} {:<4}  {}",
                f.name,
                f.value,
                f.unit,
                f.target,
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                },
                f.how
            );
        }
    }
    Ok(0)
}

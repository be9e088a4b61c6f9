//! The python engine's part of `parlab bench`: how close the native lab comes to real CPython (the fidelity
//! ratios), what recording costs inside the harness, and the python engine's own start-up, per-item and payload
//! figures beside the native ones, with Dask's and Ray's per-task cost beside Pool's where they are installed.
//! Every figure is measured now with the interpreter given (default python3); without a working one the figures are
//! absent and a note says why.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::bench::BenchFigure;
use crate::experiment::{Engine, Experiment, Fit, Knobs, Mode, Workload, available_cores};
use crate::lab::client::{channel_follower, follow};
use crate::timeline::{SpanKind, Timeline, median};

use super::detect::{self, Interpreter};

fn exp(workload: &str, tasks: u64, mode: Mode, knobs: Knobs, py: Option<&Interpreter>) -> Result<Experiment> {
    let w: Workload = workload.parse().map_err(|e| anyhow!("{e}"))?;
    let e = Experiment::build(w, tasks, mode, &knobs, Fit::Lenient, available_cores()).map_err(|e| anyhow!(e))?;
    super::on_engine(&e, if py.is_some() { Engine::Python } else { Engine::Native }, py)
}

/// Median wall (ms) of `reps` runs, and the median run's timeline.
fn wall(e: &Experiment, reps: u32, stop: &AtomicBool) -> Result<(f64, Timeline)> {
    let r = crate::lab::client::measure(e, reps, stop)?;
    if let Some(err) = r.error() {
        return Err(anyhow!("the {} run ({} engine) failed: {err}", e.mode, e.engine));
    }
    Ok((r.wall_ms(), r.timeline))
}

/// A raw harness request (e.g. `record: false`), run to its end, with or without the GIL sampler: the wall in ms.
fn raw(py: &Interpreter, request: Value, sample: bool, stop: &AtomicBool) -> Result<f64> {
    let (follower, events) = channel_follower();
    let lab = super::python::start_sampled(Path::new(&py.path), &request, sample, |_| follower)?;
    let t = follow(lab, &events, stop, |_| {})?;
    if let Some(err) = t.end.as_ref().and_then(|e| e.error.clone()) {
        return Err(anyhow!("the harness run {request} failed: {err}"));
    }
    Ok(t.wall_ns() as f64 / 1e6)
}

fn ratio(name: &'static str, value: f64, how: String) -> BenchFigure {
    BenchFigure { name, value, unit: "x", target: "0.9-1.1".into(), met: Some((0.9..=1.1).contains(&value)), how }
}

fn plain(name: &'static str, value: f64, unit: &'static str, how: String) -> BenchFigure {
    BenchFigure { name, value, unit, target: "-".into(), met: None, how }
}

/// The python engine's figures, or a note saying why there are none.
pub(crate) fn figures(
    native: &[BenchFigure],
    python: Option<&str>,
    quick: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<BenchFigure>, Option<String>)> {
    let py = match detect::detect(python.unwrap_or(detect::DEFAULT_PYTHON)) {
        Ok(py) => py,
        Err(why) => return Ok((Vec::new(), Some(format!("no python engine figures: {why}")))),
    };
    let reps = if quick { 1 } else { 3 };
    let two = Knobs { workers: Some(2), ..Knobs::default() };
    let mut out = Vec::new();
    let who = format!("{} {}", py.path, py.describe());

    // The native figures were measured above on tasks of 100 ms or more; CPython runs the same kernels 30-100x
    // slower, so its runs take sizes that give tasks of tens of milliseconds (fib grows 1.618x per step, so a
    // range of four sizes has the same inequality at any height).
    let native_of = |name: &str| native.iter().find(|f| f.name == name).map(|f| f.value);
    progress("python engine: GIL speedup fidelity");
    let (fib, tasks) = if quick { ("fib:27", 4) } else { ("fib:29", 4) };
    let (p_seq, _) = wall(&exp(fib, tasks, Mode::Sequential, Knobs::default(), Some(&py))?, reps, stop)?;
    let (p_thr, p_thr_t) = wall(&exp(fib, tasks, Mode::Threads, two.clone(), Some(&py))?, reps, stop)?;
    let real = p_seq / p_thr;
    if let Some(native) = native_of("gil_speedup") {
        out.push(ratio(
            "fidelity_gil_speedup_ratio",
            native / real,
            format!("native gil_speedup {native:.2}x / {who} threads {real:.2}x ({fib} × {tasks}, 2 threads)"),
        ));
    }

    progress("python engine: GIL hand-off fidelity");
    // The sampler's gil-wait spans of the threads run: with two threads, one waits while the other holds the GIL,
    // so a wait's length is a hold's (to the sampler's 1 ms tick).
    let waits: Vec<f64> = p_thr_t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::GilWait && s.dur_ns() >= 1_000_000)
        .map(|s| s.dur_ns() as f64 / 1e6)
        .collect();
    if let (Some(native), false) = (native_of("gil_handoff_ms"), waits.is_empty()) {
        let real = median(&waits);
        out.push(ratio(
            "fidelity_handoff_ratio",
            native / real,
            format!(
                "5 ms interval: native gil_handoff_ms {native:.2} / CPython {real:.2} ms (median of {} gil-wait \
                 spans the /proc sampler measured in the threads run, 1 ms ticks)",
                waits.len()
            ),
        ));
    }

    progress("python engine: unequal tasks on a warm pool");
    let unequal = Knobs { workers: Some(2), warm: true, ..Knobs::default() };
    let (nw, pw) = if quick { ("fib:32..35", "fib:25..28") } else { ("fib:35..38", "fib:27..30") };
    let (n_s, _) = wall(&exp(nw, 8, Mode::Sequential, Knobs::default(), None)?, reps, stop)?;
    let (n_p, _) = wall(&exp(nw, 8, Mode::Processes, unequal.clone(), None)?, reps, stop)?;
    let (p_s, _) = wall(&exp(pw, 8, Mode::Sequential, Knobs::default(), Some(&py))?, reps, stop)?;
    let (p_p, _) = wall(&exp(pw, 8, Mode::Processes, unequal, Some(&py))?, reps, stop)?;
    let (native, real) = (n_s / n_p, p_s / p_p);
    out.push(ratio(
        "fidelity_unequal_pool_ratio",
        native / real,
        format!("8 unequal tasks, 2 warm workers: native {nw} {native:.2}x / Pool.map {pw} {real:.2}x"),
    ));

    progress("python engine: recording overhead");
    let n: u64 = if quick { 300 } else { 1000 };
    let req = |record: bool| json!({"workload": "fib:20", "tasks": n, "mode": "sequential", "record": record});
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(3) {
        on.push(raw(&py, req(true), true, stop)?);
        off.push(raw(&py, req(false), false, stop)?);
    }
    let (on, off) = (median(&on), median(&off));
    let pct = (on - off) / off * 100.0;
    out.push(BenchFigure {
        name: "python_recording_overhead_pct",
        value: pct,
        unit: "%",
        target: "<= 2".into(),
        met: Some(pct <= 2.0),
        how: format!(
            "fib:20 × {n} (about 1 ms each): {on:.0} ms recorded by the harness with the 1 kHz sampler vs \
             {off:.0} ms with neither (medians)"
        ),
    });

    progress("python engine: worker start-up");
    for (start, name) in [
        (crate::experiment::StartMethod::Spawn, "python_spawn_start_ms"),
        (crate::experiment::StartMethod::Fork, "python_fork_start_ms"),
        (crate::experiment::StartMethod::Forkserver, "python_forkserver_start_ms"),
    ] {
        if !py.start_methods.iter().any(|m| m == start.name()) {
            continue;
        }
        let knobs = Knobs { workers: Some(4), start: Some(start), ..Knobs::default() };
        let e = exp("tiny", 4, Mode::Processes, knobs, Some(&py))?;
        let mut starts = Vec::new();
        for _ in 0..reps {
            let (_, t) = wall(&e, 1, stop)?;
            starts.extend(t.spans.iter().filter(|s| s.kind == SpanKind::Startup).map(|s| s.dur_ns() as f64 / 1e6));
        }
        let n = starts.len();
        out.push(plain(name, median(&starts), "ms", format!("median pool-creation-to-ready of {n} {start} workers")));
    }

    progress("python engine: per-item cost, Pool, Dask and Ray");
    let items: u64 = if quick { 5_000 } else { 20_000 };
    let per_item = |mode: &str, n: u64| {
        json!({"workload": "tiny", "tasks": n, "mode": mode, "workers": 2, "chunksize": 1, "warm": true,
               "record": false})
    };
    let ms = raw(&py, per_item("processes", items), false, stop)?;
    out.push(plain(
        "python_per_item_overhead_us",
        ms * 1000.0 / items as f64,
        "µs",
        format!("Pool.map, {items} tiny tasks, 2 warm workers, chunksize 1, not recorded: {ms:.0} ms"),
    ));
    let engine_items: u64 = if quick { 200 } else { 500 };
    for (mode, name, up) in [
        (Mode::Dask, "dask_per_task_overhead_us", py.dask.available),
        (Mode::Ray, "ray_per_task_overhead_us", py.ray.available),
    ] {
        if !up {
            continue;
        }
        let ms = raw(&py, per_item(mode.name(), engine_items), false, stop)?;
        out.push(plain(
            name,
            ms * 1000.0 / engine_items as f64,
            "µs",
            format!("{engine_items} tiny tasks, one call each, 2 warm local workers, not recorded: {ms:.0} ms"),
        ));
    }

    progress("python engine: payload round trip");
    let mb: u64 = if quick { 20 } else { 100 };
    let knobs = Knobs { workers: Some(1), payload: Some(mb * 1_000_000), warm: true, ..Knobs::default() };
    let (ms, _) = wall(&exp("tiny", 1, Mode::Processes, knobs, Some(&py))?, reps, stop)?;
    out.push(plain(
        "python_payload_100mb_mb_per_s",
        mb as f64 / (ms / 1000.0),
        "MB/s",
        format!("{mb} MB pickled to a warm Pool worker and back: {ms:.0} ms"),
    ));
    let missing: Vec<String> = [Mode::Dask, Mode::Ray].iter().filter_map(|m| py.engine_error(*m)).collect();
    let note = (!missing.is_empty()).then(|| format!("no per-task figure for {}", missing.join("; ")));
    Ok((out, note))
}

//! A recording as a Chrome Trace Event Format file (Perfetto and chrome://tracing open it): `X` events for spans,
//! one track per lane; `M` metadata naming each process and thread; `C` counters of per-core utilization from the
//! samples recorded with the run (system and parlab's own), or from the spans when a run has no samples of its own
//! (a headless run). The runs of a compare are laid one after another, each where the last ended.
//!
//! `headless::trace_json` writes the same layout for `--trace` from live runs; see the lead's note in the report:
//! the two should become one (headless building a `Recording` and calling this).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::{CoreSample, Recording};
use crate::timeline::Timeline;

/// The trace of every run of a recording.
pub(crate) fn trace_json(rec: &Recording) -> Value {
    let mut events: Vec<Value> = Vec::new();
    let mut offset_ns: u64 = 0;
    for (run_no, r) in rec.runs.iter().enumerate() {
        let t = &r.timeline;
        let from = t.first_ns();
        let mode = r.mode_name();
        let shift = |ns: u64| (ns.saturating_sub(from) + offset_ns) as f64 / 1e3;
        // Lanes that share a thread (async task slots) get their own virtual tid so spans nest correctly.
        // Maps, not scans: a recording may hold 100,000 lanes and millions of spans.
        let mut per_thread: HashMap<(u32, u32), usize> = HashMap::new();
        for l in &t.lanes {
            *per_thread.entry((l.pid, l.tid)).or_default() += 1;
        }
        let mut tids: HashMap<u32, (u32, u64)> = HashMap::new();
        let mut seen_pids = HashSet::new();
        for l in &t.lanes {
            let shared = per_thread[&(l.pid, l.tid)] > 1;
            let tid = if shared { 1_000_000 + u64::from(l.id) } else { u64::from(l.tid) };
            tids.insert(l.id, (l.pid, tid));
            if seen_pids.insert(l.pid) {
                let name = if l.pid == t.lab_pid {
                    format!("run {} · {mode} · lab {}", run_no + 1, l.pid)
                } else {
                    format!("run {} · {mode} · worker {} ({})", run_no + 1, l.label, l.pid)
                };
                events.push(json!({"ph": "M", "name": "process_name", "pid": l.pid, "tid": 0, "args": {"name": name}}));
            }
            events.push(json!({"ph": "M", "name": "thread_name", "pid": l.pid, "tid": tid, "args": {"name": l.label}}));
        }
        if !seen_pids.contains(&t.lab_pid) {
            let name = format!("run {} · {mode} · lab {}", run_no + 1, t.lab_pid);
            events.push(json!({"ph": "M", "name": "process_name", "pid": t.lab_pid, "tid": 0, "args": {"name": name}}));
        }
        for s in &t.spans {
            let Some(&(pid, tid)) = tids.get(&s.lane) else { continue };
            events.push(json!({
                "ph": "X", "name": s.kind.name(), "cat": s.kind.name(),
                "pid": pid, "tid": tid,
                "ts": shift(s.start_ns), "dur": s.dur_ns() as f64 / 1e3,
                "args": {"task": s.task, "count": s.count, "cpu_start": s.cpu_start, "cpu_end": s.cpu_end},
            }));
        }
        let mut to = t.last_ns().max(from + 1);
        for (name, samples) in [("cpu % (system)", &r.samples.system), ("cpu % (parlab)", &r.samples.parlab)] {
            to = to.max(counters(&mut events, name, t.lab_pid, samples, from, &shift));
        }
        if r.samples.parlab.is_empty() {
            spans_counter(&mut events, t, from, to, &shift);
        }
        offset_ns += to - from + 1_000_000;
    }
    let m = &rec.machine;
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "title": rec.title(),
            "made": rec.made,
            "parlab": rec.parlab_version,
            "recording_format": super::FORMAT_VERSION,
            "machine": m.describe(),
            "cores": m.cores,
            "engine": rec.engine.name,
        },
    })
}

fn pct_args(pct: &[f32]) -> Map<String, Value> {
    let mut args = Map::new();
    for (c, v) in pct.iter().enumerate() {
        args.insert(format!("cpu{c}"), json!((f64::from(*v) * 10.0).round() / 10.0));
    }
    args
}

/// One `C` event per sample, at the start of the interval it measured (a counter holds until its next value),
/// then zeros where the samples end. Samples from before the run's first span are left out. Returns the time of
/// the last sample.
fn counters(
    events: &mut Vec<Value>,
    name: &str,
    pid: u32,
    samples: &[CoreSample],
    from: u64,
    shift: &dyn Fn(u64) -> f64,
) -> u64 {
    let mut last = from;
    let mut cores = 0;
    for s in samples.iter().filter(|s| s.at_ns >= from) {
        let start = s.at_ns.saturating_sub(s.interval_ns).max(from);
        events
            .push(json!({"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": shift(start), "args": pct_args(&s.pct)}));
        last = last.max(s.at_ns);
        cores = cores.max(s.pct.len());
    }
    if cores > 0 {
        events.push(json!({"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": shift(last), "args": pct_args(&vec![0.0; cores])}));
    }
    last
}

/// parlab's own per-core use from the spans, in 20 bins per run (at least 1 ms each): for runs recorded without
/// samples of parlab's processes.
fn spans_counter(events: &mut Vec<Value>, t: &Timeline, from: u64, to: u64, shift: &dyn Fn(u64) -> f64) {
    let bin = ((to - from) / 20).max(1_000_000);
    let cores = t.cores.max(1) as usize;
    let mut a = from;
    while a < to {
        let busy: Vec<f32> = t.core_busy(cores, a, a + bin).iter().map(|b| (b * 100.0) as f32).collect();
        events.push(json!({
            "ph": "C", "name": "core busy % (parlab, from spans)", "pid": t.lab_pid, "tid": 0,
            "ts": shift(a), "args": pct_args(&busy),
        }));
        a += bin;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{compare_of_four, recording_of, threads_run};

    fn events<'a>(v: &'a Value, ph: &str) -> Vec<&'a Value> {
        v["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == ph).collect()
    }

    #[test]
    fn the_trace_has_a_span_event_per_span_and_names_every_lane() {
        let rec = recording_of(threads_run(3, 6));
        let v = trace_json(&rec);
        let t = &rec.runs[0].timeline;
        let x = events(&v, "X");
        assert_eq!(x.len(), t.spans.len());
        let threads: Vec<&str> = events(&v, "M")
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(threads, t.lanes.iter().map(|l| l.label.as_str()).collect::<Vec<_>>());
        // Times are µs from the run's first span; durations match the spans.
        let first = &t.spans[0];
        assert_eq!(x[0]["ts"], json!((first.start_ns - t.first_ns()) as f64 / 1e3));
        assert_eq!(x[0]["dur"], json!(first.dur_ns() as f64 / 1e3));
        assert_eq!(v["otherData"]["machine"], json!(rec.machine.describe()));
    }

    #[test]
    fn the_recorded_samples_become_system_and_parlab_counters() {
        let rec = recording_of(threads_run(2, 4));
        let v = trace_json(&rec);
        let c = events(&v, "C");
        let named = |n: &str| c.iter().filter(|e| e["name"] == n).count();
        let s = &rec.runs[0].samples;
        // One per sample and a closing zero.
        assert_eq!(named("cpu % (system)"), s.system.len() + 1);
        assert_eq!(named("cpu % (parlab)"), s.parlab.len() + 1);
        assert_eq!(named("core busy % (parlab, from spans)"), 0, "samples of parlab exist: no estimate from spans");
        let one = c.iter().find(|e| e["name"] == "cpu % (system)").unwrap();
        assert_eq!(one["args"]["cpu0"], json!(f64::from(s.system[0].pct[0] * 10.0).round() / 10.0));
    }

    #[test]
    fn a_compare_lays_its_runs_one_after_another_without_overlap() {
        let rec = compare_of_four();
        let v = trace_json(&rec);
        let procs: Vec<&str> = events(&v, "M")
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        for (i, r) in rec.runs.iter().enumerate() {
            assert!(procs.iter().any(|p| p.starts_with(&format!("run {} · {}", i + 1, r.mode_name()))), "{procs:?}");
        }
        // Each run's spans end before the next run's begin.
        let mut windows: Vec<(f64, f64)> = Vec::new();
        for r in &rec.runs {
            let pids: Vec<u32> = r.timeline.lanes.iter().map(|l| l.pid).collect();
            let x = events(&v, "X");
            let mine: Vec<&Value> =
                x.into_iter().filter(|e| pids.contains(&(e["pid"].as_u64().unwrap() as u32))).collect();
            let lo = mine.iter().map(|e| e["ts"].as_f64().unwrap()).fold(f64::MAX, f64::min);
            let hi = mine.iter().map(|e| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap()).fold(0.0, f64::max);
            windows.push((lo, hi));
        }
        for w in windows.windows(2) {
            assert!(w[0].1 < w[1].0, "{windows:?}");
        }
    }
}

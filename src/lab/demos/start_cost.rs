//! `start-cost`: start and join a child that does nothing, by fork, forkserver and spawn, and a thread that does
//! nothing; the median of `size` repetitions each. The processes come first: once the lab has had a thread it
//! forks no more.

use anyhow::Result;

use crate::clock::{self, Mark};
use crate::experiment::StartMethod;
use crate::timeline::{DemoReport, SpanKind, median};
use crate::units::fmt_duration_ms;

use super::{Ctx, fig, min_max, start_role};

fn ms_between(a: Mark, b: Mark) -> f64 {
    b.ns.saturating_sub(a.ns) as f64 / 1e6
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let n = ctx.size;
    let lab = ctx.lab_pid;
    let launch = ctx.server()?.launched;
    let launch_ms = ms_between(launch.0, launch.1);
    let server_pid = ctx.server()?.pid() as u32;
    let server_lane = ctx.lane("forkserver", server_pid, server_pid);
    ctx.span(server_lane, SpanKind::Startup, launch.0, launch.1);

    let mut measured: Vec<(&str, Vec<f64>)> = Vec::new();
    for method in [StartMethod::Fork, StartMethod::Forkserver, StartMethod::Spawn] {
        let lane = ctx.lane(method.name(), lab, lab);
        let mut times = Vec::with_capacity(n as usize);
        let mut last_pid = 0;
        for i in 0..n {
            let mut child = start_role(ctx, method, "noop")?;
            child.join_ok(ctx)?;
            let joined = Mark::now();
            times.push(ms_between(child.started, joined));
            ctx.span_n(lane, i, 1, SpanKind::Startup, child.started, joined);
            last_pid = child.pid as u32;
        }
        // A lane is one process: show the last child's pid (each repetition was a new one).
        ctx.relabel(lane, format!("{method} ×{n}"), last_pid, last_pid);
        measured.push((method.name(), times));
        ctx.checkpoint();
    }

    // Threads last: after this the lab has had a second thread, and it forks no more.
    let lane = ctx.lane(format!("thread ×{n}"), lab, lab);
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = Mark::now();
        let tid = std::thread::spawn(clock::tid).join().unwrap_or(0);
        let joined = Mark::now();
        times.push(ms_between(start, joined));
        ctx.span_n(lane, i, 1, SpanKind::Startup, start, joined);
        if i + 1 == n {
            ctx.relabel(lane, format!("thread ×{n}"), lab, tid);
        }
    }
    measured.insert(0, ("thread", times));

    let thread_ms = median(&measured[0].1).max(1e-6);
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for (name, times) in &measured {
        let med = median(times);
        let (lo, hi) = min_max(times);
        let how = match *name {
            "thread" => "thread: spawn + join (same process)",
            "fork" => "fork: copy of the lab",
            "forkserver" => "forkserver: forked by the server",
            _ => "spawn: exec a fresh parlab",
        };
        rows.push(vec![
            how.to_string(),
            fmt_duration_ms(med),
            fmt_duration_ms(lo),
            fmt_duration_ms(hi),
            format!("{:.0}×", med / thread_ms),
        ]);
        figures.push(fig(&format!("{name}_start_ms"), med, "ms"));
    }
    rows.push(vec![
        "forkserver: server launch (once)".into(),
        fmt_duration_ms(launch_ms),
        "—".into(),
        "—".into(),
        "—".into(),
    ]);
    figures.push(fig("forkserver_launch_ms", launch_ms, "ms"));
    figures.push(fig("repetitions", n as f64, "count"));

    let of = |name: &str| measured.iter().find(|m| m.0 == name).map_or(0.0, |m| median(&m.1));
    let procs = [("fork", of("fork")), ("forkserver", of("forkserver")), ("spawn", of("spawn"))];
    let cheapest = procs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(0.0, |p| p.1);
    let dearest = procs.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(0.0, |p| p.1);
    let reading = format!(
        "A thread started and joined in {}; a process took {} (fork), {} (forkserver) and {} (spawn), {:.0}× to \
         {:.0}× a thread. Python pays far more per process (CPython here: fork 2.1 ms, forkserver 8–15 ms, spawn \
         50 ms) because every child boots or copies an interpreter; parlab's children are native.",
        fmt_duration_ms(thread_ms),
        fmt_duration_ms(of("fork")),
        fmt_duration_ms(of("forkserver")),
        fmt_duration_ms(of("spawn")),
        cheapest / thread_ms,
        dearest / thread_ms,
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("start + join of a child that does nothing, median of {n}"),
        columns: ["how", "median", "min", "max", "vs thread"].map(String::from).to_vec(),
        rows,
        reading,
        figures,
    })
}

//! `convoy`: the latency of an I/O thread under the (simulated) GIL, alone and beside a CPU-bound thread, and
//! beside a CPU-bound thread without a GIL. The I/O thread does `size` operations: a 1 ms blocking wait (the GIL
//! is released, as CPython releases it around I/O), then a few microseconds of work on the data, which needs the
//! GIL. Its latency is from the data's arrival (the wait's end) to the end of that work.
//!
//! Beside a CPU-bound thread, the I/O thread must wait for the holder to drop the lock, which it does only after
//! the waiter has asked for a whole switch interval: CPython's "convoy effect".

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::clock::{self, Mark};
use crate::experiment::{DEFAULT_SWITCH_US, Workload};
use crate::lab::gil::Gil;
use crate::timeline::{DemoReport, SpanKind, median};
use crate::units::{fmt_duration_ms, format_interval_us};
use crate::workload::{self, Hooks};

use super::{Ctx, fig, wait_flag};

const IO_WAIT: Duration = Duration::from_millis(1);
const IO_WORK: Workload = Workload::Squares(5_000);
const CPU_WORK: Workload = Workload::Fib { lo: 24, hi: 24 };

type Spans = Vec<(SpanKind, Mark, Mark)>;

/// Kernel hooks that honour a GIL drop request and record each stretch of the thread's time.
struct Hooked<'a> {
    gil: Option<&'a Gil>,
    spans: Spans,
    open: Mark,
}

impl Hooks for Hooked<'_> {
    fn step(&mut self) {
        if let Some(gil) = self.gil
            && gil.drop_requested()
        {
            let now = Mark::now();
            self.spans.push((SpanKind::Run, self.open, now));
            gil.release(true);
            gil.take();
            let got = Mark::now();
            self.spans.push((SpanKind::GilWait, now, got));
            self.open = got;
        }
    }
}

/// The I/O thread: returns its tid, spans and the latency of every operation in ms.
fn io_thread(gil: Option<&Gil>, ops: u64) -> (u32, Spans, Vec<f64>) {
    let mut h = Hooked { gil, spans: Vec::new(), open: Mark::now() };
    let mut latencies = Vec::with_capacity(ops as usize);
    for op in 0..ops {
        let s = Mark::now();
        std::thread::sleep(IO_WAIT);
        let arrived = Mark::now();
        h.spans.push((SpanKind::Idle, s, arrived));
        if let Some(g) = gil {
            g.take();
            h.spans.push((SpanKind::GilWait, arrived, Mark::now()));
        }
        h.open = Mark::now();
        workload::run_task(&IO_WORK, op, &mut h);
        let done = Mark::now();
        h.spans.push((SpanKind::Run, h.open, done));
        if let Some(g) = gil {
            g.release(false);
        }
        latencies.push(done.ns.saturating_sub(arrived.ns) as f64 / 1e6);
    }
    (clock::tid(), h.spans, latencies)
}

/// The CPU-bound thread: Fibonacci until told to stop, holding the GIL except when asked to drop it.
fn cpu_thread(gil: Option<&Gil>, stop: &AtomicBool, holding: &AtomicBool) -> (u32, Spans) {
    let mut h = Hooked { gil, spans: Vec::new(), open: Mark::now() };
    if let Some(g) = gil {
        let w = Mark::now();
        g.take();
        h.open = Mark::now();
        h.spans.push((SpanKind::GilWait, w, h.open));
    }
    holding.store(true, Ordering::Release);
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        workload::run_task(&CPU_WORK, i, &mut h);
        i += 1;
    }
    h.spans.push((SpanKind::Run, h.open, Mark::now()));
    if let Some(g) = gil {
        g.release(false);
    }
    (clock::tid(), h.spans)
}

struct Phase {
    what: &'static str,
    latencies: Vec<f64>,
    total_ms: f64,
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let ops = ctx.size;
    let interval = Duration::from_micros(DEFAULT_SWITCH_US);
    let lab = ctx.lab_pid;
    ctx.note(format!(
        "the GIL here is parlab's simulation of CPython's (switch interval {}); the threads are real",
        format_interval_us(DEFAULT_SWITCH_US)
    ));
    let mut phases = Vec::new();
    for (what, with_gil, with_cpu, io_label, cpu_label) in [
        ("alone, under the GIL", true, false, "io alone (gil)", ""),
        ("beside a CPU-bound thread, under the GIL", true, true, "io beside cpu (gil)", "cpu (gil)"),
        ("beside a CPU-bound thread, no GIL", false, true, "io beside cpu (no gil)", "cpu (no gil)"),
    ] {
        let gil = Gil::new(interval);
        let gil = with_gil.then_some(&gil);
        let stop = AtomicBool::new(false);
        let holding = AtomicBool::new(false);
        let t0 = Mark::now();
        let (io, cpu) = std::thread::scope(|s| {
            let cpu = with_cpu.then(|| s.spawn(|| cpu_thread(gil, &stop, &holding)));
            if cpu.is_some() && !wait_flag(&holding, 10_000) {
                stop.store(true, Ordering::Release);
            }
            let io = s.spawn(|| io_thread(gil, ops)).join();
            stop.store(true, Ordering::Release);
            (io, cpu.map(|c| c.join()))
        });
        let t1 = Mark::now();
        let (tid, spans, latencies) = io.map_err(|_| anyhow!("the I/O thread panicked"))?;
        let lane = ctx.lane(io_label, lab, tid);
        for (kind, a, b) in spans {
            ctx.span(lane, kind, a, b);
        }
        if let Some(cpu) = cpu {
            let (tid, spans) = cpu.map_err(|_| anyhow!("the CPU thread panicked"))?;
            let lane = ctx.lane(cpu_label, lab, tid);
            for (kind, a, b) in spans {
                ctx.span(lane, kind, a, b);
            }
        }
        phases.push(Phase { what, latencies, total_ms: t1.ns.saturating_sub(t0.ns) as f64 / 1e6 });
        ctx.checkpoint();
    }

    let mut rows = Vec::new();
    let mut figures =
        vec![fig("ops", ops as f64, "operations"), fig("switch_interval_ms", DEFAULT_SWITCH_US as f64 / 1000.0, "ms")];
    for (p, tag) in phases.iter().zip(["alone", "beside_cpu", "no_gil"]) {
        let (med, p90) = (median(&p.latencies), percentile(&p.latencies, 0.9));
        let max = percentile(&p.latencies, 1.0);
        rows.push(vec![
            p.what.to_string(),
            fmt_duration_ms(med),
            fmt_duration_ms(p90),
            fmt_duration_ms(max),
            fmt_duration_ms(p.total_ms),
        ]);
        figures.push(fig(&format!("latency_{tag}_ms"), med, "ms"));
        figures.push(fig(&format!("p90_{tag}_ms"), p90, "ms"));
        figures.push(fig(&format!("total_{tag}_ms"), p.total_ms, "ms"));
    }
    let med = |i: usize| median(&phases[i].latencies);
    let slowdown = med(1) / med(0).max(1e-6);
    figures.push(fig("slowdown", slowdown, "x"));
    let reading = format!(
        "Beside a CPU-bound thread, each I/O operation waited about one switch interval for the GIL (median {} \
         against {} alone, {slowdown:.0}×): the holder keeps the lock until the waiter has been asking for a whole \
         switch interval ({}). Without a GIL the latency stayed at {}. CPython behaves the same way (the convoy effect); the lock is what hurts, \
         not the threads.",
        fmt_duration_ms(med(1)),
        fmt_duration_ms(med(0)),
        format_interval_us(DEFAULT_SWITCH_US),
        fmt_duration_ms(med(2)),
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("{ops} short I/O operations (1 ms wait + a little work): latency from data arrival to done"),
        columns: ["I/O thread", "median latency", "p90", "max", format!("total for {ops} ops").as_str()]
            .map(String::from)
            .to_vec(),
        rows,
        reading,
        figures,
    })
}

//! `race`: two workers add 1 to a shared counter `size` times each, with a plain read-modify-write (load, add,
//! store: no atomic increment, so updates really can be lost) and then under a lock. Run by two processes sharing
//! a page of memory (`mmap(MAP_SHARED)` before fork) and by two threads. So that the two really run at once (and
//! a race that exists actually shows), each worker is pinned to its own core when there are two, and both wait
//! at a start line until the other is running too.

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow, bail};

use crate::clock::{self, Mark};
use crate::timeline::{DemoReport, SpanKind};
use crate::units::{fmt_count, fmt_duration_ms};

use super::{Ctx, FutexLock, Mapping, fig, fork_with, page_size};

const WORKERS: u32 = 2;

/// What the workers share: zeroed memory is a valid initial state for all of it.
#[repr(C)]
struct Shared {
    counter: AtomicU64,
    lock: FutexLock,
    ready: AtomicU32,
    go: AtomicU32,
    running: AtomicU32,
}

impl Shared {
    fn reset(&self) {
        self.counter.store(0, Ordering::SeqCst);
        self.ready.store(0, Ordering::SeqCst);
        self.go.store(0, Ordering::SeqCst);
        self.running.store(0, Ordering::SeqCst);
    }
}

/// The cores this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it for the calling thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above, with the set's real size.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads the set.
    (0..libc::CPU_SETSIZE as usize).filter(|c| unsafe { libc::CPU_ISSET(*c, &set) }).collect()
}

/// Pins the calling thread to one core (best effort: a refusal leaves it where the scheduler puts it).
fn pin_to(cpu: usize) {
    // SAFETY: building a one-core set and applying it to the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// One worker: waits at the start line, then increments. Returns its start and end, and how often it waited for
/// the lock.
fn work(shared: &Shared, iters: u64, locked: bool, cpu: Option<usize>) -> (Mark, Mark, u64) {
    if let Some(c) = cpu {
        pin_to(c);
    }
    shared.ready.fetch_add(1, Ordering::AcqRel);
    while shared.go.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    // Start only when every worker is running (not merely runnable).
    shared.running.fetch_add(1, Ordering::AcqRel);
    let deadline = clock::now_ns() + 1_000_000_000;
    while shared.running.load(Ordering::Acquire) < WORKERS && clock::now_ns() < deadline {
        std::hint::spin_loop();
    }
    let start = Mark::now();
    let mut waits = 0u64;
    for _ in 0..iters {
        if locked && shared.lock.lock() {
            waits += 1;
        }
        // A read-modify-write in three steps, like `counter = plus_one(counter)` in Python: another worker may
        // store between our load and our store, and then one of the two updates is lost. `black_box` makes the
        // compiler read the counter from memory every time (it could otherwise reuse the value it stored last).
        let counter = black_box(&shared.counter);
        let v = counter.load(Ordering::Relaxed);
        counter.store(plus_one(v), Ordering::Relaxed);
        if locked {
            shared.lock.unlock();
        }
    }
    (start, Mark::now(), waits)
}

/// A few nanoseconds of work between the read and the write, like a Python function call: it keeps each
/// worker's loop long enough that the two really run at the same time.
#[inline(never)]
fn plus_one(v: u64) -> u64 {
    let mut x = v;
    for _ in 0..16 {
        x = black_box(x);
    }
    x + 1
}

/// Lets the workers go once all are at the start line (or lets them go anyway after 10 s, and says so).
fn start_line(shared: &Shared) -> Result<()> {
    let deadline = clock::now_ns() + 10_000_000_000;
    let mut late = false;
    while shared.ready.load(Ordering::Acquire) < WORKERS {
        if clock::now_ns() > deadline {
            late = true;
            break;
        }
        std::thread::yield_now();
    }
    shared.go.store(1, Ordering::Release);
    if late {
        bail!("the race workers did not reach the start line within 10 s");
    }
    Ok(())
}

struct Phase {
    who: &'static str,
    locked: bool,
    counted: u64,
    ms: f64,
    waits: u64,
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let iters = ctx.size;
    let expected = iters * u64::from(WORKERS);
    let lab = ctx.lab_pid;
    let map = Mapping::new(page_size(), true).context("cannot map shared memory")?;
    // SAFETY: the mapping is a zero-filled, page-aligned page, large enough for `Shared`, whose fields are all
    // atomics for which zero is valid; it lives until the end of this function, after every worker has ended.
    let shared: &Shared = unsafe { &*(map.ptr() as *const Shared) };
    let mut phases = Vec::new();
    // One core per worker when there are enough; otherwise they share and only preemption can interleave them.
    let cpus = allowed_cpus();
    let cpu_of = |i: u32| (cpus.len() >= WORKERS as usize).then(|| cpus[i as usize % cpus.len()]);
    if cpus.len() >= WORKERS as usize {
        ctx.note(format!(
            "each worker is pinned to its own core ({} and {}) so that they really run at once",
            cpus[0], cpus[1]
        ));
    } else {
        ctx.note("only one core is available: the workers take turns, and only a preemption between a read and a write loses an update");
    }

    // Processes first, while the lab is single-threaded.
    let mut proc_lanes: Vec<u32> = Vec::new();
    for locked in [false, true] {
        shared.reset();
        let mut children = Vec::new();
        for i in 0..WORKERS {
            let cpu = cpu_of(i);
            let child = fork_with(ctx, false, |_, out| {
                let (s, e, waits) = work(shared, iters, locked, cpu);
                let line = format!("{} {} {} {} {waits}\n", s.ns, s.cpu, e.ns, e.cpu);
                i32::from(out.write_all(line.as_bytes()).is_err()) * 2
            })?;
            children.push(child);
        }
        let t0 = Mark::now();
        start_line(shared)?;
        let mut waits = 0;
        for (i, child) in children.iter_mut().enumerate() {
            let line = child.read_line().context("a race worker did not report")?;
            let f: Vec<i64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if f.len() != 5 {
                bail!("a race worker sent '{line}'");
            }
            if proc_lanes.len() <= i {
                proc_lanes.push(ctx.lane(format!("p{}", i + 1), child.pid as u32, child.pid as u32));
            } else {
                ctx.relabel(proc_lanes[i], format!("p{}", i + 1), child.pid as u32, child.pid as u32);
            }
            let (s, e) = (Mark { ns: f[0] as u64, cpu: f[1] as i32 }, Mark { ns: f[2] as u64, cpu: f[3] as i32 });
            ctx.span_n(proc_lanes[i], u64::from(locked), iters, SpanKind::Run, s, e);
            waits += f[4] as u64;
        }
        for child in &mut children {
            child.join_ok(ctx)?;
        }
        let t1 = Mark::now();
        let counted = shared.counter.load(Ordering::SeqCst);
        phases.push(Phase { who: "processes", locked, counted, ms: t1.ns.saturating_sub(t0.ns) as f64 / 1e6, waits });
        ctx.checkpoint();
    }

    // Then threads (the lab forks no more after this).
    let mut thread_lanes: Vec<u32> = Vec::new();
    for locked in [false, true] {
        shared.reset();
        let t0 = Mark::now();
        let results = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..WORKERS).map(|i| s.spawn(move || (clock::tid(), work(shared, iters, locked, cpu_of(i))))).collect();
            let go = start_line(shared);
            let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
            go.map(|()| results)
        })?;
        let t1 = Mark::now();
        let mut waits = 0;
        for (i, r) in results.into_iter().enumerate() {
            let (tid, (s, e, w)) = r.map_err(|_| anyhow!("a race thread panicked"))?;
            if thread_lanes.len() <= i {
                thread_lanes.push(ctx.lane(format!("t{}", i + 1), lab, tid));
            } else {
                ctx.relabel(thread_lanes[i], format!("t{}", i + 1), lab, tid);
            }
            ctx.span_n(thread_lanes[i], u64::from(locked), iters, SpanKind::Run, s, e);
            waits += w;
        }
        phases.push(Phase {
            who: "threads",
            locked,
            counted: shared.counter.load(Ordering::SeqCst),
            ms: t1.ns.saturating_sub(t0.ns) as f64 / 1e6,
            waits,
        });
        ctx.checkpoint();
    }

    let mut rows = Vec::new();
    let mut figures = vec![fig("expected", expected as f64, "updates")];
    for p in &phases {
        let lost = expected.saturating_sub(p.counted);
        let tag = if p.locked { "lock" } else { "nolock" };
        rows.push(vec![
            format!("{WORKERS} {}", p.who),
            if p.locked { "yes" } else { "no" }.into(),
            fmt_count(expected),
            fmt_count(p.counted),
            format!("{} ({:.1}%)", fmt_count(lost), lost as f64 * 100.0 / expected as f64),
            fmt_duration_ms(p.ms),
            if p.locked { fmt_count(p.waits) } else { "—".into() },
        ]);
        figures.push(fig(&format!("{}_counted_{tag}", p.who), p.counted as f64, "updates"));
        figures.push(fig(&format!("{}_lost_{tag}", p.who), lost as f64, "updates"));
        figures.push(fig(&format!("{}_ms_{tag}", p.who), p.ms, "ms"));
        if p.locked {
            figures.push(fig(&format!("{}_lock_waits", p.who), p.waits as f64, "acquisitions"));
        }
    }
    let get = |who: &str, locked: bool| phases.iter().find(|p| p.who == who && p.locked == locked);
    let lost = |who: &str| get(who, false).map_or(0, |p| expected.saturating_sub(p.counted));
    let exact = phases.iter().filter(|p| p.locked).all(|p| p.counted == expected);
    let slower = match (get("threads", true), get("threads", false)) {
        (Some(l), Some(u)) => l.ms / u.ms.max(1e-6),
        _ => 0.0,
    };
    let races = if lost("threads") == 0 && lost("processes") == 0 {
        "This time no update was lost without the lock: the workers barely overlapped (a busy machine?). A race \
         that did not show is still a race; run it again or raise --size."
            .to_string()
    } else {
        format!(
            "Without a lock, {WORKERS} threads lost {} of {} updates and {WORKERS} processes sharing memory lost {}: two \
             workers read the same value and both stored value + 1.",
            fmt_count(lost("threads")),
            fmt_count(expected),
            fmt_count(lost("processes")),
        )
    };
    let reading = format!(
        "{races} With the lock every count was {}, at {slower:.1}× the time for the threads. In CPython the GIL \
         narrows this window but does not close it, and free-threaded 3.13t has no GIL at all.",
        if exact { "exact" } else { "NOT exact (this is a bug)" },
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("a shared counter, {} increments by each of {WORKERS} workers", fmt_count(iters)),
        columns: ["workers", "lock", "expected", "counted", "lost updates", "time", "waited for the lock"]
            .map(String::from)
            .to_vec(),
        rows,
        reading,
        figures,
    })
}

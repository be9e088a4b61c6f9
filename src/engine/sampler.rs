//! The thread sampler: while a run is live, a thread of its own reads the scheduler's view of every thread of a
//! set of processes (a root and all its descendants) at 1 kHz or better, and records per thread when it was on a
//! CPU and when not, on which core, and how much CPU time each thread and process used. From these, `gil_waits`
//! finds where a thread waited for CPython's GIL: off-CPU inside its run span while another thread of its process
//! was on-CPU.
//!
//! What one tick reads, per thread (descriptors kept open and re-read with `pread`, so a tick costs a few
//! microseconds per thread, not an open and a close of each file):
//! - `/proc/PID/task/TID/stat`: the state letter (`R` = running or runnable: on-CPU for this sampler) and field 39,
//!   the core it last ran on;
//! - `/proc/PID/task/TID/schedstat`: the thread's CPU time in ns (exact, unlike stat's 10 ms clock ticks), put on
//!   the core of the tick;
//! - for a thread that is not running, `/proc/PID/task/TID/syscall`: whether it sleeps in a *timed* futex wait.
//!   CPython waits for the GIL in `pthread_cond_timedwait` (a futex with a timeout of the switch interval), while
//!   `join()`, `Lock.acquire()` and an idle pool worker's queue wait without one, and `time.sleep` is no futex at
//!   all. `watch`, which has no run spans to go by, counts only timed futex waits as GIL waits.
//!
//! Processes are found from the root through `/proc/PID/task/TID/children` every `DISCOVER_EVERY` ticks (and their
//! threads through `/proc/PID/task`), so a thread or child that lives shorter than that may be missed.
//! The sampler imports only the timeline's model types: it knows pids and tids, nothing of the UI or the lab.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::now_ns;
use crate::timeline::{Lane, Span, SpanKind};

/// The default period: 1 kHz.
pub(crate) const PERIOD: Duration = Duration::from_millis(1);
/// Processes and threads are looked for every this many ticks (reading only known threads in between).
const DISCOVER_EVERY: u64 = 5;
/// The futex system call's number, as `/proc/PID/task/TID/syscall` names it.
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: i64 = 202;
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: i64 = 98;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_FUTEX: i64 = -1;

/// What a thread was doing at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum State {
    /// Running or runnable (`R`): the scheduler means it to be on a CPU.
    OnCpu,
    /// Asleep in a futex wait with a timeout (CPython's GIL wait is one).
    TimedWait,
    /// Asleep or blocked in anything else (a join, a lock without timeout, sleep, I/O), or stopped.
    Blocked,
}

/// A stretch of a thread's time in one state, `[start_ns, end_ns)` in CLOCK_MONOTONIC ns, with the core it was
/// last on at the first and the last tick of the stretch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub start_ns: u64,
    pub end_ns: u64,
    pub state: State,
    pub cpu_start: i32,
    pub cpu_end: i32,
}

/// Everything seen of one thread.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ThreadTrack {
    pub pid: u32,
    pub tid: u32,
    /// The thread's name (`comm`) when first seen.
    pub name: String,
    pub first_ns: u64,
    pub last_ns: u64,
    /// CPU time used while watched (schedstat), in ns.
    pub cpu_ns: u64,
    pub intervals: Vec<Interval>,
}

/// Everything seen of one process.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProcessTrack {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    pub first_ns: u64,
    pub last_ns: u64,
    /// CPU time of all its threads while watched, in ns.
    pub cpu_ns: u64,
}

/// What the sampler cost and how steadily it ticked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cost {
    pub period_ns: u64,
    pub ticks: u64,
    /// The sampler thread's own CPU time and the wall time it ran.
    pub cpu_ns: u64,
    pub wall_ns: u64,
    /// The longest time between two ticks (the machine was busy, or the sampler was preempted).
    pub max_gap_ns: u64,
    /// Ticks that came more than a period late and were skipped.
    pub missed: u64,
}

impl Cost {
    /// The sampler's CPU time as a share of one core over the time it ran, in percent.
    pub(crate) fn cpu_pct(&self) -> f64 {
        if self.wall_ns == 0 { 0.0 } else { self.cpu_ns as f64 * 100.0 / self.wall_ns as f64 }
    }
}

/// The record of a sampled run.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Samples {
    /// Threads in the order they were first seen (a process's main thread before its others).
    pub threads: Vec<ThreadTrack>,
    /// Processes in the order they were first seen (parents before children).
    pub processes: Vec<ProcessTrack>,
    /// CPU time of all watched threads per core, in ns.
    pub per_core_ns: Vec<u64>,
    /// Per-core CPU time in slices of `SLICE_NS`, for a history (slice k covers `first_ns + k * SLICE_NS`).
    pub slices: Vec<Vec<u64>>,
    pub first_ns: u64,
    pub last_ns: u64,
    pub cost: Cost,
}

/// The per-core history's resolution.
pub(crate) const SLICE_NS: u64 = 10_000_000;

/// What a live sampler sends as it goes (a UI draws from these before the run ends).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Update {
    /// A thread was seen for the first time; `main` when it is its process's main thread.
    Thread { pid: u32, tid: u32, ppid: u32, name: String },
    /// A closed interval of a thread.
    Interval { pid: u32, tid: u32, interval: Interval },
    /// The stretch a thread is in now (not closed yet: replaced by the next `Open` or `Interval` of the thread).
    Open { pid: u32, tid: u32, interval: Interval },
    /// CPU time per core over the `interval_ns` ending at `at_ns`.
    Cores { at_ns: u64, interval_ns: u64, per_core_ns: Vec<u64> },
}

/// A running sampler; `stop` ends it and hands back what it saw.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Samples>>,
}

impl Drop for Sampler {
    /// A sampler dropped without `stop` ends on its next tick (nothing waits for it).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Sampler {
    /// Samples `root` and every descendant of it, every `period`.
    pub(crate) fn start(root: u32, period: Duration) -> std::io::Result<Sampler> {
        Sampler::spawn(root, true, period, None)
    }

    /// Samples the descendants of `root` but not `root` itself (a guard process that only waits), and sends what
    /// it sees as it goes.
    pub(crate) fn start_below(root: u32, period: Duration, live: Option<Sender<Update>>) -> std::io::Result<Sampler> {
        Sampler::spawn(root, false, period, live)
    }

    fn spawn(root: u32, with_root: bool, period: Duration, live: Option<Sender<Update>>) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let period_ns = (period.as_nanos() as u64).clamp(100_000, 100_000_000);
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || Walk::new(root, with_root, period_ns, live).run(&flag))?;
        Ok(Sampler { stop, handle: Some(handle) })
    }

    /// Stops sampling (after one last tick) and returns the record.
    pub(crate) fn stop(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

/// A thread being watched: its open files and the stretch in progress.
struct Watched {
    index: usize,
    stat: File,
    schedstat: File,
    syscall: Option<File>,
    last_exec_ns: Option<u64>,
    open: Option<Interval>,
    seen_at: u64,
}

/// The sampler thread's state.
struct Walk {
    root: u32,
    with_root: bool,
    period_ns: u64,
    live: Option<Sender<Update>>,
    out: Samples,
    threads: HashMap<u32, Watched>,
    /// pid -> index into `out.processes`, and the tick it was last seen alive.
    processes: HashMap<u32, (usize, u64)>,
    tick: u64,
    /// When the previous tick read its threads.
    prev_tick_ns: u64,
    live_cores: Vec<u64>,
    live_since: u64,
    buf: Vec<u8>,
}

impl Walk {
    fn new(root: u32, with_root: bool, period_ns: u64, live: Option<Sender<Update>>) -> Walk {
        Walk {
            root,
            with_root,
            period_ns,
            live,
            out: Samples::default(),
            threads: HashMap::new(),
            processes: HashMap::new(),
            tick: 0,
            prev_tick_ns: 0,
            live_cores: Vec::new(),
            live_since: 0,
            buf: vec![0u8; 1024],
        }
    }

    fn run(mut self, stop: &AtomicBool) -> Samples {
        // SAFETY: prctl(PR_SET_TIMERSLACK) only changes how late this thread's own timers may fire.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
        let cpu0 = thread_cpu_ns();
        let start = now_ns();
        self.out.first_ns = start;
        self.live_since = start;
        let mut next = start;
        let mut last_tick = start;
        loop {
            let last = stop.load(Ordering::Relaxed);
            let now = now_ns();
            self.out.cost.max_gap_ns = self.out.cost.max_gap_ns.max(now - last_tick);
            last_tick = now;
            if self.tick.is_multiple_of(DISCOVER_EVERY) || last {
                self.discover(now);
            }
            self.read_all(now);
            self.prev_tick_ns = now;
            self.tick += 1;
            if self.live.is_some() && now - self.live_since >= 50_000_000 {
                self.send_cores(now);
            }
            if last {
                break;
            }
            next += self.period_ns;
            let now = now_ns();
            if next < now {
                let behind = (now - next) / self.period_ns;
                self.out.cost.missed += behind;
                next += behind * self.period_ns;
                if next < now {
                    next += self.period_ns;
                }
            }
            sleep_until(next);
        }
        let end = now_ns();
        let ids: Vec<u32> = self.threads.keys().copied().collect();
        for tid in ids {
            self.forget(tid, end);
        }
        self.out.last_ns = end;
        self.out.cost = Cost {
            period_ns: self.period_ns,
            ticks: self.tick,
            cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
            wall_ns: end - start,
            ..self.out.cost
        };
        self.out
    }

    /// Finds the processes below the root and their threads; starts watching new ones.
    fn discover(&mut self, now: u64) {
        let mut pids: Vec<(u32, u32)> = Vec::new();
        if self.with_root {
            pids.push((self.root, 0));
        }
        let mut frontier = vec![self.root];
        while let Some(p) = frontier.pop() {
            for c in children_of(p) {
                if !pids.iter().any(|(x, _)| *x == c) && c != self.root {
                    pids.push((c, p));
                    frontier.push(c);
                }
            }
        }
        for (pid, ppid) in pids {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            let mut tids: Vec<u32> =
                dir.flatten().filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok()).collect();
            tids.sort_unstable();
            // The main thread first, so a process's lane order reads main, t1, t2, ...
            tids.sort_by_key(|t| *t != pid);
            if tids.is_empty() {
                continue;
            }
            let ppid = if ppid == 0 { read_ppid(pid).unwrap_or(0) } else { ppid };
            let index = match self.processes.get(&pid) {
                Some((i, _)) => *i,
                None => {
                    let name = comm(pid, pid);
                    self.out.processes.push(ProcessTrack { pid, ppid, name, first_ns: now, last_ns: now, cpu_ns: 0 });
                    self.out.processes.len() - 1
                }
            };
            self.processes.insert(pid, (index, self.tick));
            for tid in tids {
                if !self.threads.contains_key(&tid) {
                    self.watch(pid, ppid, tid, now);
                }
            }
        }
    }

    fn watch(&mut self, pid: u32, ppid: u32, tid: u32, now: u64) {
        let base = format!("/proc/{pid}/task/{tid}");
        let (Ok(stat), Ok(schedstat)) = (File::open(format!("{base}/stat")), File::open(format!("{base}/schedstat")))
        else {
            return;
        };
        let syscall = File::open(format!("{base}/syscall")).ok();
        let name = comm(pid, tid);
        // Seen before: an exec replaced the program (its old descriptors read nothing), the thread goes on.
        if let Some(index) = self.out.threads.iter().rposition(|t| t.tid == tid && t.pid == pid) {
            self.out.threads[index].name = name.clone();
            if let Some((p, _)) = self.processes.get(&pid)
                && tid == pid
            {
                self.out.processes[*p].name = name;
            }
            self.threads
                .insert(tid, Watched { index, stat, schedstat, syscall, last_exec_ns: None, open: None, seen_at: now });
            return;
        }
        self.out.threads.push(ThreadTrack {
            pid,
            tid,
            name: name.clone(),
            first_ns: now,
            last_ns: now,
            cpu_ns: 0,
            intervals: Vec::new(),
        });
        let index = self.out.threads.len() - 1;
        self.threads
            .insert(tid, Watched { index, stat, schedstat, syscall, last_exec_ns: None, open: None, seen_at: now });
        if let Some(tx) = &self.live {
            let _ = tx.send(Update::Thread { pid, tid, ppid, name });
        }
    }

    /// One reading of every watched thread.
    fn read_all(&mut self, now: u64) {
        let tids: Vec<u32> = self.threads.keys().copied().collect();
        for tid in tids {
            let Some(w) = self.threads.get_mut(&tid) else { continue };
            let Some((state_letter, cpu)) = read_stat(&w.stat, &mut self.buf) else {
                self.forget(tid, now);
                continue;
            };
            let exec = read_exec_ns(&w.schedstat, &mut self.buf);
            let state = match state_letter {
                'R' => State::OnCpu,
                'Z' | 'X' | 'x' => {
                    self.forget(tid, now);
                    continue;
                }
                _ if w.syscall.as_ref().is_some_and(|f| in_timed_futex(f, &mut self.buf)) => State::TimedWait,
                _ => State::Blocked,
            };
            let track = &mut self.out.threads[w.index];
            let mut ran_ns = None;
            if let (Some(prev), Some(exec)) = (w.last_exec_ns, exec) {
                let d = exec.saturating_sub(prev);
                ran_ns = Some(d);
                track.cpu_ns += d;
                let pid = track.pid;
                if let Some((p, _)) = self.processes.get(&pid) {
                    self.out.processes[*p].cpu_ns += d;
                    self.out.processes[*p].last_ns = now;
                }
                if let Ok(c) = usize::try_from(cpu) {
                    add_at(&mut self.out.per_core_ns, c, d);
                    add_at(&mut self.live_cores, c, d);
                    let slice = ((now - self.out.first_ns) / SLICE_NS) as usize;
                    if self.out.slices.len() <= slice {
                        self.out.slices.resize(slice + 1, Vec::new());
                    }
                    add_at(&mut self.out.slices[slice], c, d);
                }
            }
            if exec.is_some() {
                w.last_exec_ns = exec;
            }
            track.last_ns = now;
            w.seen_at = now;
            match &mut w.open {
                Some(open) if open.state == state => {
                    open.end_ns = now;
                    open.cpu_end = cpu;
                }
                open => {
                    // A thread that left the CPU since the last tick ran for `ran_ns` of it (its CPU time is
                    // exact once it is off): it stopped about then, not at this tick. So a hold is measured to
                    // well under a period, where the ticks alone would round it to whole periods.
                    let at = match (open.as_ref(), ran_ns) {
                        (Some(o), Some(d)) if o.state == State::OnCpu && self.prev_tick_ns > 0 => {
                            (self.prev_tick_ns + d.min(now - self.prev_tick_ns)).max(o.start_ns)
                        }
                        _ => now,
                    };
                    let closed =
                        open.replace(Interval { start_ns: at, end_ns: now, state, cpu_start: cpu, cpu_end: cpu });
                    if let Some(mut c) = closed {
                        c.end_ns = at;
                        track.intervals.push(c);
                        if let Some(tx) = &self.live {
                            let _ = tx.send(Update::Interval { pid: track.pid, tid, interval: c });
                        }
                    }
                }
            }
        }
    }

    /// A thread is gone (or the sampler stops): its stretch in progress ends where it was last seen.
    fn forget(&mut self, tid: u32, now: u64) {
        let Some(mut w) = self.threads.remove(&tid) else { return };
        let track = &mut self.out.threads[w.index];
        if let Some(mut open) = w.open.take() {
            // The state was seen until the last tick that read it; a thread that is gone ended since.
            open.end_ns = if w.seen_at == now { now } else { w.seen_at.max(open.start_ns) + self.period_ns / 2 };
            open.end_ns = open.end_ns.min(now);
            track.last_ns = open.end_ns;
            track.intervals.push(open);
            if let Some(tx) = &self.live {
                let _ = tx.send(Update::Interval { pid: track.pid, tid, interval: open });
            }
        }
        let _ = &mut w.stat;
    }

    fn send_cores(&mut self, now: u64) {
        let per_core_ns = std::mem::take(&mut self.live_cores);
        let interval_ns = now - self.live_since;
        self.live_since = now;
        if let Some(tx) = &self.live {
            let _ = tx.send(Update::Cores { at_ns: now, interval_ns, per_core_ns });
            for w in self.threads.values() {
                if let Some(open) = w.open {
                    let t = &self.out.threads[w.index];
                    let _ = tx.send(Update::Open { pid: t.pid, tid: t.tid, interval: open });
                }
            }
        }
    }
}

fn add_at(v: &mut Vec<u64>, i: usize, d: u64) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += d;
}

/// The children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for e in dir.flatten() {
        let path = e.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(text.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    out
}

fn read_ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn comm(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

fn pread<'a>(f: &File, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = f.read_at(buf, 0).ok()?;
    (n > 0).then(|| &buf[..n])
}

/// The state letter and the core last run on (field 39) from a stat file.
fn read_stat(f: &File, buf: &mut [u8]) -> Option<(char, i32)> {
    parse_stat(pread(f, buf)?)
}

pub(crate) fn parse_stat(text: &[u8]) -> Option<(char, i32)> {
    // The name may hold spaces and parentheses: fields start after the last ')'. Field 3 is the state; field 39
    // (the 37th after the state) the processor.
    let close = text.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let cpu = f.nth(35).and_then(|c| c.parse().ok()).unwrap_or(-1);
    Some((state, cpu))
}

/// The thread's CPU time in ns (schedstat's first field).
fn read_exec_ns(f: &File, buf: &mut [u8]) -> Option<u64> {
    std::str::from_utf8(pread(f, buf)?).ok()?.split_ascii_whitespace().next()?.parse().ok()
}

/// Whether the thread is asleep in a futex wait with a timeout.
fn in_timed_futex(f: &File, buf: &mut [u8]) -> bool {
    pread(f, buf).is_some_and(parse_timed_futex)
}

/// `/proc/PID/task/TID/syscall`: "NR arg1 arg2 arg3 arg4 ..." in hex after the number; a futex wait with a timeout
/// has a non-zero fourth field (its timespec pointer).
pub(crate) fn parse_timed_futex(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else { return false };
    let mut f = text.split_ascii_whitespace();
    let Some(nr) = f.next().and_then(|n| n.parse::<i64>().ok()) else { return false };
    let timeout = f.nth(3).and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    nr == SYS_FUTEX && timeout.is_some_and(|t| t != 0)
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_until(ns: u64) {
    let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as _ };
    // SAFETY: clock_nanosleep with an absolute time on CLOCK_MONOTONIC and no remainder pointer (not needed with
    // TIMER_ABSTIME); an interrupted sleep just ends the tick early.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
}

/// Where the threads of `samples` waited for the GIL inside their run spans: off-CPU inside a `run` span of their
/// lane while another thread of their process was on-CPU. Each piece becomes a `gil-wait` span of the run's lane
/// and task. `lanes` maps the spans' lanes to pids and tids; spans of lanes the sampler did not see give nothing.
pub(crate) fn gil_waits(samples: &Samples, lanes: &[Lane], runs: &[Span]) -> Vec<Span> {
    let by_lane: HashMap<u32, (u32, u32)> = lanes.iter().map(|l| (l.id, (l.pid, l.tid))).collect();
    let tracks: HashMap<u32, &ThreadTrack> = samples.threads.iter().map(|t| (t.tid, t)).collect();
    let mut on_cpu_by_pid: BTreeMap<u32, Vec<(u32, u64, u64)>> = BTreeMap::new();
    for t in &samples.threads {
        let on = on_cpu_by_pid.entry(t.pid).or_default();
        on.extend(t.intervals.iter().filter(|i| i.state == State::OnCpu).map(|i| (t.tid, i.start_ns, i.end_ns)));
    }
    let mut out = Vec::new();
    for run in runs.iter().filter(|s| s.kind == SpanKind::Run) {
        let Some(&(pid, tid)) = by_lane.get(&run.lane) else { continue };
        let Some(track) = tracks.get(&tid).filter(|t| t.pid == pid) else { continue };
        let off: Vec<(u64, u64, i32, i32)> = track
            .intervals
            .iter()
            .filter(|i| i.state != State::OnCpu)
            .filter_map(|i| {
                clip(i.start_ns, i.end_ns, run.start_ns, run.end_ns).map(|(a, b)| (a, b, i.cpu_start, i.cpu_end))
            })
            .collect();
        let others = on_cpu_by_pid.get(&pid).map(|v| v.as_slice()).unwrap_or(&[]);
        for (a, b, c0, c1) in off {
            for (s, e) in covered(others, tid, a, b) {
                out.push(Span {
                    lane: run.lane,
                    task: run.task,
                    count: 0,
                    kind: SpanKind::GilWait,
                    start_ns: s,
                    end_ns: e,
                    cpu_start: c0,
                    cpu_end: c1,
                });
            }
        }
    }
    out.sort_by_key(|s| (s.lane, s.start_ns));
    out
}

/// The same for a thread with no run spans (`watch`): its timed futex waits while another thread of its process
/// was on-CPU, as `(start_ns, end_ns, cpu_start, cpu_end)`.
pub(crate) fn gil_waits_of(samples: &Samples, track: &ThreadTrack) -> Vec<(u64, u64, i32, i32)> {
    let others: Vec<(u32, u64, u64)> = samples
        .threads
        .iter()
        .filter(|t| t.pid == track.pid && t.tid != track.tid)
        .flat_map(|t| {
            t.intervals.iter().filter(|i| i.state == State::OnCpu).map(move |i| (t.tid, i.start_ns, i.end_ns))
        })
        .collect();
    let mut out = Vec::new();
    for i in track.intervals.iter().filter(|i| i.state == State::TimedWait) {
        for (s, e) in covered(&others, track.tid, i.start_ns, i.end_ns) {
            out.push((s, e, i.cpu_start, i.cpu_end));
        }
    }
    out
}

fn clip(a: u64, b: u64, from: u64, to: u64) -> Option<(u64, u64)> {
    let (s, e) = (a.max(from), b.min(to));
    (e > s).then_some((s, e))
}

/// The parts of `[a, b)` covered by an on-CPU interval of a thread other than `tid`, merged.
fn covered(on: &[(u32, u64, u64)], tid: u32, a: u64, b: u64) -> Vec<(u64, u64)> {
    let mut parts: Vec<(u64, u64)> =
        on.iter().filter(|(t, ..)| *t != tid).filter_map(|&(_, s, e)| clip(s, e, a, b)).collect();
    parts.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in parts {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// How long each thread of a process held the CPU after another thread of the same process let it go, in ns:
/// for an on-CPU stretch that began where another thread's ended (within `slack_ns`), the time from that end to
/// its own end. Ends, because the moment a thread leaves the CPU is measured to well under a period (see
/// `read_all`) while the moment one starts is only known to the tick. With two CPU-bound threads under the GIL
/// these are the GIL's hand-off intervals (about `sys.getswitchinterval()`).
pub(crate) fn handoffs_ns(samples: &Samples, slack_ns: u64) -> Vec<u64> {
    let mut by_pid: BTreeMap<u32, Vec<(u64, u64, u32)>> = BTreeMap::new();
    for t in &samples.threads {
        let v = by_pid.entry(t.pid).or_default();
        v.extend(t.intervals.iter().filter(|i| i.state == State::OnCpu).map(|i| (i.start_ns, i.end_ns, t.tid)));
    }
    let mut out = Vec::new();
    for runs in by_pid.values_mut() {
        runs.sort_unstable();
        for w in runs.windows(2) {
            let ((_, a1, at), (b0, b1, bt)) = (w[0], w[1]);
            if at != bt && b0 + slack_ns >= a1 && b0 <= a1 + slack_ns && b1 > a1 {
                out.push(b1 - a1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start_ms: u64, end_ms: u64, state: State) -> Interval {
        Interval { start_ns: start_ms * 1_000_000, end_ns: end_ms * 1_000_000, state, cpu_start: 0, cpu_end: 0 }
    }

    fn track(pid: u32, tid: u32, intervals: Vec<Interval>) -> ThreadTrack {
        ThreadTrack { pid, tid, name: String::new(), first_ns: 0, last_ns: 0, cpu_ns: 0, intervals }
    }

    /// Two threads of pid 10 taking turns every 5 ms for 20 ms, and a thread of pid 20 running all along.
    fn turns() -> Samples {
        use State::*;
        Samples {
            threads: vec![
                track(10, 11, vec![iv(0, 5, OnCpu), iv(5, 10, TimedWait), iv(10, 15, OnCpu), iv(15, 20, TimedWait)]),
                track(10, 12, vec![iv(0, 5, TimedWait), iv(5, 10, OnCpu), iv(10, 15, TimedWait), iv(15, 20, OnCpu)]),
                track(20, 21, vec![iv(0, 20, OnCpu)]),
                track(20, 22, vec![iv(0, 20, Blocked)]),
            ],
            ..Samples::default()
        }
    }

    fn lane(id: u32, pid: u32, tid: u32) -> Lane {
        Lane { id, pid, tid, label: format!("t{id}") }
    }

    fn run(lane: u32, task: u64, start_ms: u64, end_ms: u64) -> Span {
        Span {
            lane,
            task,
            count: 1,
            kind: SpanKind::Run,
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms * 1_000_000,
            cpu_start: 0,
            cpu_end: 0,
        }
    }

    fn ms(spans: &[Span]) -> Vec<(u32, u64, u64)> {
        spans.iter().map(|s| (s.lane, s.start_ns / 1_000_000, s.end_ns / 1_000_000)).collect()
    }

    #[test]
    fn a_thread_off_cpu_in_its_run_while_a_sibling_runs_waits_for_the_gil() {
        let lanes = [lane(1, 10, 11), lane(2, 10, 12)];
        // Lane 1's run covers 2..18 ms, lane 2's the whole 20 ms.
        let waits = gil_waits(&turns(), &lanes, &[run(1, 0, 2, 18), run(2, 1, 0, 20)]);
        assert_eq!(ms(&waits), vec![(1, 5, 10), (1, 15, 18), (2, 0, 5), (2, 10, 15)]);
        assert!(waits.iter().all(|s| s.kind == SpanKind::GilWait));
        assert_eq!(waits.iter().filter(|s| s.lane == 2).map(|s| s.task).collect::<Vec<_>>(), vec![1, 1]);
    }

    #[test]
    fn off_cpu_with_no_sibling_running_or_outside_a_run_is_no_gil_wait() {
        // pid 20's second thread is blocked while its sibling runs, but has no run span: nothing.
        let lanes = [lane(1, 20, 22), lane(2, 20, 21)];
        assert!(gil_waits(&turns(), &lanes, &[run(2, 0, 0, 20)]).is_empty());
        // A lone thread off-CPU inside its run (a sleep) waits for no one.
        let alone = Samples { threads: vec![track(30, 31, vec![iv(0, 10, State::Blocked)])], ..Samples::default() };
        assert!(gil_waits(&alone, &[lane(1, 30, 31)], &[run(1, 0, 0, 10)]).is_empty());
        // A span of a lane the sampler never saw gives nothing.
        assert!(gil_waits(&turns(), &[lane(9, 99, 99)], &[run(9, 0, 0, 10)]).is_empty());
    }

    #[test]
    fn without_run_spans_only_timed_futex_waits_beside_a_running_sibling_count() {
        let s = turns();
        let a: Vec<(u64, u64)> =
            gil_waits_of(&s, &s.threads[0]).iter().map(|w| (w.0 / 1_000_000, w.1 / 1_000_000)).collect();
        assert_eq!(a, vec![(5, 10), (15, 20)]);
        // Blocked (a join, a sleep) beside a running sibling is not a GIL wait.
        assert!(gil_waits_of(&s, &s.threads[3]).is_empty());
    }

    #[test]
    fn handoffs_are_the_holds_that_ended_in_another_threads_start() {
        let h: Vec<u64> = handoffs_ns(&turns(), 100_000).iter().map(|h| h / 1_000_000).collect();
        assert_eq!(h, vec![5, 5, 5]);
    }

    #[test]
    fn stat_lines_give_the_state_and_the_core_even_with_odd_names() {
        let line = b"4112 (py (worker) 1) R 4111 4111 6216 34816 4111 4194368 7421 0 0 0 93 1 0 0 20 0 3 0 59 \
                     33714176 2493 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(('R', 1)));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn a_futex_wait_is_timed_only_with_a_timeout_pointer() {
        let timed = format!("{SYS_FUTEX} 0x55d0c8 0x189 0x0 0x7ffc2e1c 0x0 0xffffffff 0x7ffc 0x7f14");
        let untimed = format!("{SYS_FUTEX} 0x55d0c8 0x189 0x0 0x0 0x0 0xffffffff 0x7ffc 0x7f14");
        assert!(parse_timed_futex(timed.as_bytes()));
        assert!(!parse_timed_futex(untimed.as_bytes()));
        assert!(!parse_timed_futex(b"230 0x0 0x0 0x7fff01104050 0x7fff01104090 0x0 0x0 0x7fff 0x7f14"));
        assert!(!parse_timed_futex(b"running"));
    }

    #[test]
    fn the_sampler_sees_its_childs_threads_and_their_cpu() {
        // A child that spins for a while: it is seen, on-CPU, with CPU time on some core, and the sampler stops.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .spawn()
            .expect("sh runs");
        let s = Sampler::start(child.id(), PERIOD).expect("sampler starts");
        let _ = child.wait();
        let samples = s.stop();
        let t = samples.threads.iter().find(|t| t.tid == child.id()).expect("the child's thread was seen");
        assert!(t.intervals.iter().any(|i| i.state == State::OnCpu), "{:?}", t.intervals);
        assert!(t.intervals.windows(2).all(|w| w[0].end_ns <= w[1].start_ns + 1 && w[0].start_ns <= w[0].end_ns));
        assert!(samples.per_core_ns.iter().sum::<u64>() > 0);
        assert!(samples.cost.ticks >= 2 && samples.cost.wall_ns > 0);
        assert_eq!(samples.processes[0].pid, child.id());
    }
}

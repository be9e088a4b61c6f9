//! The per-core sampler: a thread that reads whole-system CPU utilization per core with sysinfo (no faster than
//! sysinfo's minimum interval) and, for the runs it is told to watch, the CPU time of each of their processes'
//! threads from /proc (utime + stime, put on the core the thread last ran on, field 39 `processor`). It hands
//! each sample (owned) to a callback, and with each system sample how many cores programs other than parlab (the
//! watched runs and this UI) used. It knows pids and tags, nothing of the UI, and sleeps on its control channel
//! while there is nothing to sample, so an idle UI costs nothing.
//!
//! Never imports: the app, the widgets or the terminal (`MonitorRate` lives here).

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, MINIMUM_CPU_UPDATE_INTERVAL, System};

use crate::clock;

/// How often the system core sampler should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MonitorRate {
    Off,
    /// A core panel is on screen.
    Slow,
    /// A run is live.
    Fast,
}

/// Sampling interval while a core panel is shown and nothing runs.
const SLOW: Duration = Duration::from_millis(1000);
/// Sampling interval during a live run.
const FAST: Duration = Duration::from_millis(250);
/// How often watched processes are read: threads that exit take their last partial interval with them, so this
/// is shorter than the system's interval.
const OWN: Duration = Duration::from_millis(100);

/// What the sampler reports.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Sample {
    /// Whole-system utilization per core (0..=100) over the last interval, and the cores' worth of CPU that
    /// programs other than parlab used in it (known once a previous sample set the baseline).
    System { cores: Vec<f32>, others: Option<f32> },
    /// CPU time of the processes watched under `tag`: ns per core over the `interval_ns` ending at `at_ns`
    /// (CLOCK_MONOTONIC).
    Run { tag: u64, per_core_ns: Vec<u64>, interval_ns: u64, at_ns: u64 },
}

enum Control {
    Rate(MonitorRate),
    Watch {
        tag: u64,
        pid: u32,
    },
    /// Read the tag's processes one last time (before they are reaped) and forget them.
    Finish {
        tag: u64,
    },
}

/// The handle: set the rate; dropping it stops the thread.
pub(crate) struct Monitor {
    control: Sender<Control>,
}

/// Tells the sampler which processes belong to a run; cheap to clone and send to other threads.
#[derive(Clone)]
pub(crate) struct Watcher {
    control: Sender<Control>,
}

impl Watcher {
    /// Measures `pid` (all its threads) as part of the run `tag`, from the process's start.
    pub(crate) fn watch(&self, tag: u64, pid: u32) {
        let _ = self.control.send(Control::Watch { tag, pid });
    }

    /// The run `tag` ended: a last reading of its processes, then they are forgotten.
    pub(crate) fn finish(&self, tag: u64) {
        let _ = self.control.send(Control::Finish { tag });
    }
}

impl Monitor {
    /// Starts the system sampler only, paused. `send` gets per-core utilization (0..=100) and returns false to stop.
    pub(crate) fn start(mut send: impl FnMut(Vec<f32>) -> bool + Send + 'static) -> std::io::Result<Monitor> {
        Monitor::start_sampling(move |s| match s {
            Sample::System { cores, .. } => send(cores),
            Sample::Run { .. } => true,
        })
    }

    /// Starts the sampler, paused: system samples at the rate set, watched runs' CPU while there are any.
    pub(crate) fn start_sampling(send: impl FnMut(Sample) -> bool + Send + 'static) -> std::io::Result<Monitor> {
        let (control, rx) = mpsc::channel();
        std::thread::Builder::new().name("monitor".into()).spawn(move || sample(rx, send))?;
        Ok(Monitor { control })
    }

    pub(crate) fn set(&self, rate: MonitorRate) {
        let _ = self.control.send(Control::Rate(rate));
    }

    pub(crate) fn watcher(&self) -> Watcher {
        Watcher { control: self.control.clone() }
    }
}

fn interval(rate: MonitorRate) -> Option<Duration> {
    let d = match rate {
        MonitorRate::Off => return None,
        MonitorRate::Slow => SLOW,
        MonitorRate::Fast => FAST,
    };
    Some(d.max(MINIMUM_CPU_UPDATE_INTERVAL))
}

fn sample(control: Receiver<Control>, mut send: impl FnMut(Sample) -> bool) {
    // Without a System there are no system samples; watched runs are still measured.
    let mut sys = System::new().ok();
    let kind = CpuRefreshKind::nothing().with_usage();
    let mut rate = MonitorRate::Off;
    // Usage is a difference between two refreshes: the first after a pause only sets the baseline.
    let mut primed = false;
    let mut last = Instant::now();
    let mut own = Own::new();
    let mut last_own = Instant::now();
    loop {
        let sys_wait = interval(rate).filter(|_| sys.is_some()).map(|d| d.saturating_sub(last.elapsed()));
        let own_wait = (!own.runs.is_empty()).then(|| OWN.saturating_sub(last_own.elapsed()));
        let wait = match (sys_wait, own_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let msg = match wait {
            None => control.recv().map(Some).map_err(|_| ()),
            Some(d) => match control.recv_timeout(d) {
                Ok(r) => Ok(Some(r)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(()),
            },
        };
        match msg {
            Err(()) => return,
            Ok(Some(Control::Rate(r))) => {
                if r == MonitorRate::Off {
                    primed = false;
                } else if !primed
                    && last.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL
                    && let Some(sys) = sys.as_mut()
                {
                    sys.refresh_cpu_specifics(kind);
                    own.since_system();
                    last = Instant::now();
                    primed = true;
                }
                rate = r;
                continue;
            }
            Ok(Some(Control::Watch { tag, pid })) => {
                own.watch(tag, pid);
                continue;
            }
            Ok(Some(Control::Finish { tag })) => {
                if let Some(s) = own.read(tag)
                    && !send(s)
                {
                    return;
                }
                own.runs.remove(&tag);
                continue;
            }
            Ok(None) => {}
        }
        if !own.runs.is_empty() && last_own.elapsed() >= OWN {
            last_own = Instant::now();
            let tags: Vec<u64> = own.runs.keys().copied().collect();
            for tag in tags {
                if let Some(s) = own.read(tag)
                    && !send(s)
                {
                    return;
                }
            }
        }
        let Some(sys) = sys.as_mut().filter(|_| interval(rate).is_some()) else { continue };
        if last.elapsed() < interval(rate).unwrap_or(SLOW) {
            continue;
        }
        let span = last.elapsed();
        sys.refresh_cpu_specifics(kind);
        last = Instant::now();
        let parlab_ns = own.since_system();
        if !primed {
            primed = true;
            continue;
        }
        let cores: Vec<f32> = sys.cpus().iter().map(|c| c.usage().clamp(0.0, 100.0)).collect();
        let all: f64 = cores.iter().map(|u| f64::from(*u) / 100.0).sum();
        let others = (all - parlab_ns as f64 / span.as_nanos().max(1) as f64).max(0.0) as f32;
        if !send(Sample::System { cores, others: Some(others) }) {
            return;
        }
    }
}

/// One reading of a process from /proc: its whole CPU time (dead threads included) and its threads'.
#[derive(Clone, Debug, Default, PartialEq)]
struct ProcReading {
    /// utime + stime of the whole process, ns, and the core its main thread last ran on.
    total_ns: u64,
    cpu: i32,
    /// (tid, utime + stime ns, core last run on).
    threads: Vec<(u32, u64, i32)>,
}

/// What is known of one watched process: CPU time already accounted, per thread and in total.
#[derive(Clone, Debug, Default)]
struct ProcSeen {
    threads: HashMap<u32, u64>,
    total_ns: u64,
}

impl ProcSeen {
    /// Adds what the process used since the last reading to `per_core`: each live thread's growth on its core,
    /// and the growth of the whole that no live thread explains (threads that exited meanwhile) on the process's
    /// core. A process seen for the first time counts from its start.
    fn account(&mut self, r: &ProcReading, per_core: &mut Vec<u64>) -> u64 {
        let mut add = |cpu: i32, ns: u64| {
            if let Ok(c) = usize::try_from(cpu)
                && c < 4096
                && ns > 0
            {
                if per_core.len() <= c {
                    per_core.resize(c + 1, 0);
                }
                per_core[c] += ns;
            }
        };
        let mut threads_ns = 0u64;
        for &(tid, ns, cpu) in &r.threads {
            let before = self.threads.insert(tid, ns).unwrap_or(0);
            let d = ns.saturating_sub(before);
            threads_ns += d;
            add(cpu, d);
        }
        let whole = r.total_ns.saturating_sub(self.total_ns);
        self.total_ns = self.total_ns.max(r.total_ns);
        let rest = whole.saturating_sub(threads_ns);
        add(r.cpu, rest);
        threads_ns + rest
    }
}

/// The watched runs and this UI process.
struct Own {
    runs: HashMap<u64, Watched>,
    tick_ns: u64,
    /// CPU ns of watched processes accounted since the last system sample.
    parlab_ns: u64,
    /// This process's own CPU ns at the last system sample.
    ui_ns: Option<u64>,
}

struct Watched {
    procs: HashMap<u32, ProcSeen>,
    last: u64,
}

impl Own {
    fn new() -> Own {
        // SAFETY: sysconf only reads a system constant; no memory is handed to it.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let tick_ns = if hz > 0 { 1_000_000_000 / hz as u64 } else { 10_000_000 };
        Own { runs: HashMap::new(), tick_ns, parlab_ns: 0, ui_ns: None }
    }

    fn watch(&mut self, tag: u64, pid: u32) {
        let run = self.runs.entry(tag).or_insert_with(|| Watched { procs: HashMap::new(), last: clock::now_ns() });
        run.procs.entry(pid).or_default();
    }

    /// Reads a run's processes: what they used since the last reading, per core. Processes that are gone are
    /// dropped (their last partial interval is lost with them).
    fn read(&mut self, tag: u64) -> Option<Sample> {
        let tick = self.tick_ns;
        let run = self.runs.get_mut(&tag)?;
        let now = clock::now_ns();
        let mut per_core = Vec::new();
        let mut used = 0;
        run.procs.retain(|pid, seen| match read_proc(*pid, tick) {
            Some(r) => {
                used += seen.account(&r, &mut per_core);
                true
            }
            None => false,
        });
        self.parlab_ns += used;
        let interval_ns = now.saturating_sub(run.last);
        run.last = now;
        Some(Sample::Run { tag, per_core_ns: per_core, interval_ns, at_ns: now })
    }

    /// At a system sample: parlab's CPU since the previous one (watched runs and this UI), in ns.
    fn since_system(&mut self) -> u64 {
        let ui = read_proc(std::process::id(), self.tick_ns).map(|r| r.total_ns);
        let ui_used = match (ui, self.ui_ns) {
            (Some(now), Some(before)) => now.saturating_sub(before),
            _ => 0,
        };
        self.ui_ns = ui.or(self.ui_ns);
        std::mem::take(&mut self.parlab_ns) + ui_used
    }
}

/// utime + stime (in clock ticks) and `processor` from a /proc `stat` line. The command name may hold spaces and
/// parentheses, so fields are counted from its closing parenthesis.
fn parse_stat(text: &str) -> Option<(u64, i32)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is f[0]: utime is field 14, stime 15, processor 39.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let cpu: i32 = f.get(36)?.parse().ok()?;
    Some((utime + stime, cpu))
}

fn read_proc(pid: u32, tick_ns: u64) -> Option<ProcReading> {
    let (total, cpu) = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut threads = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
            if let Some((t, c)) = std::fs::read_to_string(e.path().join("stat")).ok().as_deref().and_then(parse_stat) {
                threads.push((tid, t * tick_ns, c));
            }
        }
    }
    Some(ProcReading { total_ns: total * tick_ns, cpu, threads })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_arrive_per_core_only_while_switched_on() {
        let (tx, rx) = mpsc::channel();
        let m = Monitor::start(move |v| tx.send(v).is_ok()).unwrap();
        // Paused: nothing comes.
        assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
        m.set(MonitorRate::Fast);
        let v = rx.recv_timeout(Duration::from_secs(5)).expect("a sample while on");
        assert!(!v.is_empty());
        assert!(v.iter().all(|u| (0.0..=100.0).contains(u)));
        m.set(MonitorRate::Off);
        // Drain what was in flight, then silence.
        while rx.recv_timeout(Duration::from_millis(400)).is_ok() {}
        assert!(rx.recv_timeout(Duration::from_millis(600)).is_err());
    }

    #[test]
    fn stat_lines_give_cpu_ticks_and_the_last_core_even_with_odd_names() {
        let line = "4242 (a (b) c) R 1 4242 4242 0 -1 4194304 125 0 0 0 30 7 0 0 20 0 1 0 100337 3133440 411 \
                    18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some((37, 3)));
        assert_eq!(parse_stat("12 (x) R 1"), None);
    }

    #[test]
    fn thread_growth_goes_to_its_core_and_exited_threads_to_the_process_core() {
        let mut seen = ProcSeen::default();
        let mut per_core = Vec::new();
        // First sight: everything since the process started counts.
        let r = ProcReading { total_ns: 30, cpu: 0, threads: vec![(1, 10, 0), (2, 20, 1)] };
        assert_eq!(seen.account(&r, &mut per_core), 30);
        assert_eq!(per_core, vec![10, 20]);
        // Thread 2 exited after 5 more ns; thread 1 grew by 4 on core 2; the whole grew by 9.
        let mut per_core = Vec::new();
        let r = ProcReading { total_ns: 39, cpu: 1, threads: vec![(1, 14, 2)] };
        assert_eq!(seen.account(&r, &mut per_core), 9);
        assert_eq!(per_core, vec![0, 5, 4], "the exited thread's 5 ns on the process's core, thread 1's 4 on its own");
    }

    #[test]
    fn a_watched_process_is_measured_until_its_run_finishes() {
        let (tx, rx) = mpsc::channel();
        let m = Monitor::start_sampling(move |s| tx.send(s).is_ok()).unwrap();
        // A child that computes until it is killed.
        let mut child = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let w = m.watcher();
        w.watch(7, child.id());
        std::thread::sleep(Duration::from_millis(500));
        w.finish(7);
        let mut total = 0u64;
        let mut last = None;
        while let Ok(s) = rx.recv_timeout(Duration::from_millis(800)) {
            if let Sample::Run { tag, per_core_ns, interval_ns, .. } = s {
                assert_eq!(tag, 7);
                assert!(interval_ns > 0);
                total += per_core_ns.iter().sum::<u64>();
                last = Some(per_core_ns.len());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(last.is_some(), "run samples arrived");
        assert!(total > 0, "the child's CPU time was measured");
        // Finished: nothing more is read for that run.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }
}

//! The per-core system sampler: a thread that reads whole-system CPU utilization per core with sysinfo, no faster
//! than sysinfo's minimum interval, and hands each sample (owned) to a callback. It sleeps on its control channel
//! while no core panel is on screen, so an idle UI costs nothing.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, MINIMUM_CPU_UPDATE_INTERVAL, System};

use crate::app::MonitorRate;

/// Sampling interval while a core panel is shown and nothing runs.
const SLOW: Duration = Duration::from_millis(1000);
/// Sampling interval during a live run.
const FAST: Duration = Duration::from_millis(250);

/// The handle: set the rate; dropping it stops the thread.
pub(crate) struct Monitor {
    control: Sender<MonitorRate>,
}

impl Monitor {
    /// Starts the sampler, paused. `send` gets per-core utilization (0..=100) and returns false to stop.
    pub(crate) fn start(send: impl FnMut(Vec<f32>) -> bool + Send + 'static) -> std::io::Result<Monitor> {
        let (control, rx) = mpsc::channel();
        std::thread::Builder::new().name("monitor".into()).spawn(move || sample(rx, send))?;
        Ok(Monitor { control })
    }

    pub(crate) fn set(&self, rate: MonitorRate) {
        let _ = self.control.send(rate);
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

fn sample(control: Receiver<MonitorRate>, mut send: impl FnMut(Vec<f32>) -> bool) {
    // Without a System there are no samples; the panel says it is still sampling and shows parlab's own share.
    let Ok(mut sys) = System::new() else { return };
    let kind = CpuRefreshKind::nothing().with_usage();
    let mut rate = MonitorRate::Off;
    // Usage is a difference between two refreshes: the first after a pause only sets the baseline.
    let mut primed = false;
    let mut last = Instant::now();
    loop {
        let wait = interval(rate);
        let msg = match wait {
            None => control.recv().map(Some).map_err(|_| ()),
            Some(d) => match control.recv_timeout(d.saturating_sub(last.elapsed())) {
                Ok(r) => Ok(Some(r)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(()),
            },
        };
        match msg {
            Err(()) => return,
            Ok(Some(r)) => {
                if r == MonitorRate::Off {
                    primed = false;
                } else if !primed && last.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
                    sys.refresh_cpu_specifics(kind);
                    last = Instant::now();
                    primed = true;
                }
                rate = r;
                continue;
            }
            Ok(None) => {}
        }
        if last.elapsed() < MINIMUM_CPU_UPDATE_INTERVAL {
            continue;
        }
        sys.refresh_cpu_specifics(kind);
        last = Instant::now();
        if !primed {
            primed = true;
            continue;
        }
        let usage: Vec<f32> = sys.cpus().iter().map(|c| c.usage().clamp(0.0, 100.0)).collect();
        if !send(usage) {
            return;
        }
    }
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
}

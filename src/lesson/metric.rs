//! The measured value of a goal's metric, from a run and its baseline: one definition shared by `lint --verify`
//! and exercise checks.

use super::Metric;
use crate::experiment::available_cores;
use crate::timeline::{RunReport, ratio};

/// What "cores" means in goals and `expect` lines: the cores parlab may really use, but no more than there are
/// tasks (8 cores cannot speed up 2 tasks more than 2x).
pub(crate) fn goal_cores(tasks: u64) -> u32 {
    cores_for(available_cores(), tasks)
}

fn cores_for(cores: u32, tasks: u64) -> u32 {
    u32::try_from(tasks).unwrap_or(u32::MAX).min(cores).max(1)
}

/// A metric of `report` measured against a baseline run's wall time (`speedup` = baseline / this run;
/// `efficiency` = speedup / cores, with cores as in goals).
pub(crate) fn metric_value(metric: Metric, report: &RunReport, baseline_wall_ms: f64) -> f64 {
    let speedup = ratio(baseline_wall_ms, report.wall_ms());
    match metric {
        Metric::Speedup => speedup,
        Metric::Efficiency => {
            let cores = if report.timeline.cores > 0 { report.timeline.cores } else { available_cores() };
            speedup / f64::from(cores_for(cores, report.experiment.tasks))
        }
        Metric::WallMs => report.wall_ms(),
        Metric::OverheadShare => report.timeline.overhead_share(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Experiment, Fit, Knobs, Mode};
    use crate::timeline::{SpanKind, Timeline, tests::span};

    fn report(tasks: u64, wall_ms: u64, cores: u32) -> RunReport {
        let exp = Experiment::build("fib:20".parse().unwrap(), tasks, Mode::Threads, &Knobs::default(), Fit::Strict, 2)
            .unwrap();
        let mut timeline = Timeline { cores, ..Timeline::default() };
        timeline.spans.push(span(0, SpanKind::Startup, 0, 25, 0));
        timeline.spans.push(span(0, SpanKind::Run, 25, 100, 0));
        RunReport { experiment: exp, timeline, parent_pid: 1, walls_ns: vec![wall_ms * 1_000_000], speedup: None }
    }

    #[test]
    fn metrics_come_from_the_run_and_its_baseline() {
        let r = report(8, 100, 4);
        assert_eq!(metric_value(Metric::Speedup, &r, 300.0), 3.0);
        assert_eq!(metric_value(Metric::Efficiency, &r, 300.0), 0.75);
        assert_eq!(metric_value(Metric::WallMs, &r, 300.0), 100.0);
        assert_eq!(metric_value(Metric::OverheadShare, &r, 300.0), 0.25);
    }

    #[test]
    fn cores_in_goals_never_exceed_the_tasks() {
        assert_eq!(cores_for(8, 2), 2);
        assert_eq!(cores_for(2, 100), 2);
        assert_eq!(cores_for(0, 0), 1);
        let r = report(2, 100, 8);
        assert_eq!(metric_value(Metric::Efficiency, &r, 200.0), 1.0);
    }
}

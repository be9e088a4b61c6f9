//! The bench figures the process-internals demos measure: fork and forkserver start cost, copy-on-write cost
//! per page, queue throughput per batch size. Each demo runs in a lab like any other, through the lab client.

use std::sync::atomic::AtomicBool;

use crate::experiment::demo::{DemoName, DemoSpec};

/// The performance figures the demos measure, for `parlab bench`: fork and forkserver start cost, copy-on-write
/// cost per page, and queue throughput per batch size. Each runs in a lab like any demo; a demo that fails is
/// left out (a figure not measured is absent) and said on stderr.
pub(crate) fn bench_figures(quick: bool) -> Vec<(String, f64, String)> {
    let stop = AtomicBool::new(false);
    let mut figures = Vec::new();
    // (demo, size, [(the demo's figure, the bench figure)])
    type Wanted = &'static [(&'static str, &'static str)];
    let runs: [(DemoName, u64, Wanted); 3] = [
        (
            DemoName::StartCost,
            if quick { 10 } else { 30 },
            &[("fork_start_ms", "fork_start_ms"), ("forkserver_start_ms", "forkserver_start_ms")],
        ),
        (DemoName::Cow, if quick { 32 } else { 128 }, &[("cow_us_per_page", "cow_us_per_page")]),
        (
            DemoName::QueueBatching,
            if quick { 50_000 } else { 200_000 },
            &[
                ("items_per_s_1", "queue_items_per_s_1"),
                ("items_per_s_10", "queue_items_per_s_10"),
                ("items_per_s_100", "queue_items_per_s_100"),
                ("items_per_s_1000", "queue_items_per_s_1000"),
            ],
        ),
    ];
    for (name, size, wanted) in runs {
        let spec = DemoSpec { name, size };
        match crate::lab::client::run_demo_spec(&spec, &stop, |_| {}) {
            Ok((_, report)) => {
                for (from, to) in wanted {
                    if let Some(f) = report.figures.iter().find(|f| f.name == *from) {
                        figures.push((to.to_string(), f.value, f.unit.clone()));
                    }
                }
            }
            Err(e) => eprintln!("parlab bench: the {name} demo failed: {e:#}"),
        }
    }
    figures
}

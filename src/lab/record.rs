//! How every lane records its spans, in every mode and in worker processes alike: cheaply (no system call, no
//! allocation per span) and boundedly (a million tiny chunks do not become millions of spans).
//!
//! The rule: a span of at least `SHORT_NS` is kept as it happened. Consecutive shorter spans of a lane are summed
//! into a window instead, and the window, once it covers `WINDOW_NS` (or a long span, or the end, comes), is kept as
//! at most one span per kind: each with the exact summed time of its kind, laid end to end from the window's start
//! in the order the kinds first appeared. Totals per kind (what `overhead_ms` and `cpu_ms` add up) stay exact; only
//! the order of things inside a window is lost. Both thresholds grow with the lane's age (1/20,000 and 1/2,000 of
//! it), so a window stays far below what one Gantt cell of the whole run shows, and a lane records a few thousand
//! windows however long it runs.

use crate::timeline::{Span, SpanKind};

/// Spans at least this long (more for a lane older than 0.4 s) are recorded one by one.
pub(crate) const SHORT_NS: u64 = 20_000;
/// A window of short spans is closed once it covers this much time (more for a lane older than 0.4 s).
pub(crate) const WINDOW_NS: u64 = 200_000;

/// One kind's share of a window.
#[derive(Clone, Copy, Debug)]
struct Part {
    kind: SpanKind,
    ns: u64,
    task: u64,
    count: u64,
    /// The chunk last added, so two spans of one chunk (an ipc read and an ipc write) count its tasks once.
    last: (u64, u64),
}

#[derive(Debug)]
struct Window {
    lane: u32,
    start_ns: u64,
    end_ns: u64,
    cpu_start: i32,
    cpu_end: i32,
}

/// Sums a lane's short spans into windows (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    window: Option<Window>,
    parts: Vec<Part>,
    /// When the first span began.
    origin_ns: Option<u64>,
}

impl Coalescer {
    pub(crate) fn new() -> Coalescer {
        Coalescer { window: None, parts: Vec::with_capacity(8), origin_ns: None }
    }

    /// Records `s`, handing finished spans to `out` in time order. Spans of one lane must come in time order.
    pub(crate) fn push(&mut self, s: Span, out: &mut impl FnMut(Span)) {
        let age = s.end_ns.saturating_sub(*self.origin_ns.get_or_insert(s.start_ns));
        let (short_ns, window_ns) = (SHORT_NS.max(age / 20_000), WINDOW_NS.max(age / 2_000));
        if s.dur_ns() >= short_ns {
            self.flush(out);
            out(s);
            return;
        }
        if self.window.as_ref().is_some_and(|w| w.lane != s.lane) {
            self.flush(out);
        }
        let w = self.window.get_or_insert(Window {
            lane: s.lane,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            cpu_start: s.cpu_start,
            cpu_end: s.cpu_end,
        });
        w.end_ns = w.end_ns.max(s.end_ns);
        w.cpu_end = s.cpu_end;
        let full = w.end_ns.saturating_sub(w.start_ns) >= window_ns;
        match self.parts.iter_mut().find(|p| p.kind == s.kind) {
            Some(p) => {
                p.ns += s.dur_ns();
                if p.last != (s.task, s.count) {
                    p.count += s.count;
                    p.last = (s.task, s.count);
                }
            }
            None => self.parts.push(Part {
                kind: s.kind,
                ns: s.dur_ns(),
                task: s.task,
                count: s.count,
                last: (s.task, s.count),
            }),
        }
        if full {
            self.flush(out);
        }
    }

    /// Hands out the open window, if any.
    pub(crate) fn flush(&mut self, out: &mut impl FnMut(Span)) {
        let Some(w) = self.window.take() else { return };
        let mut at = w.start_ns;
        for p in self.parts.drain(..) {
            let end = (at + p.ns).min(w.end_ns.max(at));
            out(Span {
                lane: w.lane,
                task: p.task,
                count: p.count,
                kind: p.kind,
                start_ns: at,
                end_ns: end,
                cpu_start: w.cpu_start,
                cpu_end: w.cpu_end,
            });
            at = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: SpanKind, task: u64, start_ns: u64, end_ns: u64) -> Span {
        Span { lane: 1, task, count: 1, kind, start_ns, end_ns, cpu_start: 0, cpu_end: 0 }
    }

    fn record(spans: &[Span]) -> Vec<Span> {
        let mut c = Coalescer::new();
        let mut out = Vec::new();
        for s in spans {
            c.push(*s, &mut |s| out.push(s));
        }
        c.flush(&mut |s| out.push(s));
        out
    }

    #[test]
    fn long_spans_are_kept_as_they_happened() {
        let spans = [span(SpanKind::Ipc, 0, 0, 5_000), span(SpanKind::Run, 0, 5_000, 1_005_000)];
        let out = record(&spans);
        assert_eq!(out, spans.to_vec(), "a short span alone is its own window, exact");
    }

    #[test]
    fn short_spans_are_summed_per_kind_with_exact_totals_and_tasks_counted_once() {
        // 100 chunks of 3 µs each: 1 µs reading, 0.5 µs running, 1.5 µs writing, back to back.
        let mut spans = Vec::new();
        for c in 0..100u64 {
            let t = c * 3_000;
            spans.push(span(SpanKind::Ipc, c, t, t + 1_000));
            spans.push(span(SpanKind::Run, c, t + 1_000, t + 1_500));
            spans.push(span(SpanKind::Ipc, c, t + 1_500, t + 3_000));
        }
        let out = record(&spans);
        assert!(out.len() <= 4, "300 short spans became {} spans", out.len());
        let total = |k: SpanKind| out.iter().filter(|s| s.kind == k).map(Span::dur_ns).sum::<u64>();
        assert_eq!(total(SpanKind::Ipc), 250_000);
        assert_eq!(total(SpanKind::Run), 50_000);
        let runs: u64 = out.iter().filter(|s| s.kind == SpanKind::Run).map(|s| s.count).sum();
        let ipcs: u64 = out.iter().filter(|s| s.kind == SpanKind::Ipc).map(|s| s.count).sum();
        assert_eq!((runs, ipcs), (100, 100));
        for w in out.windows(2) {
            assert!(w[0].end_ns <= w[1].start_ns, "recorded spans overlap: {w:?}");
        }
        assert!(out.iter().all(|s| s.end_ns <= 300_000));
    }

    #[test]
    fn a_long_lived_lane_records_a_bounded_number_of_windows() {
        // Ten seconds of 4 µs chunks (2.5 million of them), each an ipc, a run and an ipc.
        let mut c = Coalescer::new();
        let mut n = 0usize;
        let mut total = 0u64;
        for k in 0..2_500_000u64 {
            let t = k * 4_000;
            for (kind, a, b) in
                [(SpanKind::Ipc, 0, 1_500), (SpanKind::Run, 1_500, 2_000), (SpanKind::Ipc, 2_000, 4_000)]
            {
                c.push(span(kind, k, t + a, t + b), &mut |s| {
                    n += 1;
                    total += s.dur_ns();
                });
            }
        }
        c.flush(&mut |s| {
            n += 1;
            total += s.dur_ns();
        });
        assert!(n < 50_000, "7.5 million spans became {n}");
        assert_eq!(total, 10_000_000_000, "the recorded time must stay exact");
    }

    #[test]
    fn a_long_span_closes_the_window_before_it_so_time_order_holds() {
        let spans = [
            span(SpanKind::Ipc, 0, 0, 1_000),
            span(SpanKind::Ipc, 1, 1_000, 2_000),
            span(SpanKind::Run, 1, 2_000, 500_000),
        ];
        let out = record(&spans);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].kind, out[0].start_ns, out[0].end_ns, out[0].count), (SpanKind::Ipc, 0, 2_000, 2));
        assert_eq!(out[1], spans[2]);
    }
}

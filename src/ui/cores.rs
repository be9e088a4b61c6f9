//! Per-core utilization: for every core a bar with a short history, once for the whole system (sampled by the
//! monitor) and once for parlab's own run (its lab and worker processes, whose CPU time per thread the monitor
//! measures from /proc and puts on the core each thread last ran on). The gap between the two is other programs'
//! load. Labels and histories are dropped as the width shrinks; many cores are grouped into rows.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::app::{CoreSamples, RunCpu};
use crate::timeline::Timeline;

use super::theme::Theme;
use crate::digest::Digest;

/// A run to show parlab's share of: its timeline, its measured CPU, and the window `[from, to)` drawn; `live` when
/// still going.
#[derive(Clone, Copy)]
pub(crate) struct RunWindow<'a> {
    pub timeline: &'a Timeline,
    pub digest: Option<&'a Digest>,
    /// The CPU the monitor measured for the run's processes (`None`: not measured, nothing is shown).
    pub cpu: Option<&'a RunCpu>,
    pub from: u64,
    pub to: u64,
    pub live: bool,
}

pub(crate) struct CoreBars<'a> {
    sys: &'a CoreSamples,
    run: Option<RunWindow<'a>>,
    cores: usize,
    theme: Theme,
    show_system: bool,
}

/// The "now" bar of a live run covers this much of the recent past.
const RECENT_NS: u64 = 500_000_000;

impl<'a> CoreBars<'a> {
    pub(crate) fn new(sys: &'a CoreSamples, run: Option<RunWindow<'a>>, cores: u32, theme: Theme) -> CoreBars<'a> {
        let seen = run.and_then(|r| r.cpu).map_or(0, |c| c.per_core_ns.len());
        let cores = sys.latest.len().max(cores as usize).max(seen).max(1);
        CoreBars { sys, run, cores, theme, show_system: true }
    }

    /// Leave out the system columns (compare panes show only parlab's history).
    pub(crate) fn system(mut self, on: bool) -> Self {
        self.show_system = on;
        self
    }

    /// Rows wanted: a header and one per core, grouped to at most `max_rows` cores.
    pub(crate) fn wanted_height(&self, max_rows: u16) -> u16 {
        1 + (self.cores as u16).min(max_rows.max(1))
    }

    fn measured(&self) -> Option<&'a RunCpu> {
        self.run?.cpu.filter(|c| c.measured())
    }

    /// Per core, the share of the core the run's processes used: over the last half second of a live run, over
    /// the whole of a finished one.
    fn parlab_now(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.cores];
        let (Some(r), Some(cpu)) = (self.run, self.measured()) else {
            return out;
        };
        if r.live {
            let recent: Vec<_> = cpu.samples.iter().rev().take_while(|s| s.at_ns + RECENT_NS >= r.to).collect();
            let span: u64 = recent.iter().map(|s| s.interval_ns).sum();
            if span == 0 {
                return out;
            }
            for s in recent {
                for (o, v) in out.iter_mut().zip(&s.per_core_ns) {
                    *o += *v as f64 / span as f64;
                }
            }
        } else {
            let t = r.timeline;
            let last = r.digest.map_or_else(|| t.last_ns(), |d| d.last_ns(t));
            let wall = last.saturating_sub(t.t0_ns.max(r.from)).max(1);
            for (o, v) in out.iter_mut().zip(&cpu.per_core_ns) {
                *o = *v as f64 / wall as f64;
            }
        }
        out.iter_mut().for_each(|v| *v = v.min(1.0));
        out
    }

    /// Per core, the measured share in `bins` equal slices of the window: each sample's CPU spread evenly over the
    /// interval it covers.
    fn parlab_history(&self, bins: usize) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; bins]; self.cores];
        let (Some(r), Some(cpu)) = (self.run, self.measured()) else { return out };
        if bins == 0 || r.to <= r.from {
            return out;
        }
        let step = (r.to - r.from) as f64 / bins as f64;
        for s in &cpu.samples {
            let a = s.at_ns.saturating_sub(s.interval_ns).max(r.from);
            let b = s.at_ns.min(r.to);
            if b <= a || s.interval_ns == 0 {
                continue;
            }
            let share = (b - a) as f64 / s.interval_ns as f64;
            let (a, b) = ((a - r.from) as f64, (b - r.from) as f64);
            let first = ((a / step) as usize).min(bins - 1);
            let last = ((b / step) as usize).min(bins - 1);
            for (core, ns) in s.per_core_ns.iter().enumerate() {
                let Some(row) = out.get_mut(core) else { break };
                let rate = *ns as f64 * share / (b - a);
                for (k, cell) in row.iter_mut().enumerate().take(last + 1).skip(first) {
                    let lo = a.max(k as f64 * step);
                    let hi = b.min((k + 1) as f64 * step);
                    if hi > lo {
                        *cell += rate * (hi - lo) / step;
                    }
                }
            }
        }
        for row in out.iter_mut() {
            for v in row.iter_mut() {
                *v = v.min(1.0);
            }
        }
        out
    }
}

/// Rows of cores: (label, the core indices in the row).
fn groups(cores: usize, rows: usize) -> Vec<(String, Vec<usize>)> {
    let per = cores.div_ceil(rows.max(1)).max(1);
    (0..cores)
        .step_by(per)
        .map(|a| {
            let b = (a + per).min(cores);
            let label = if b - a == 1 { format!("cpu{a}") } else { format!("cpu{a}-{}", b - 1) };
            (label, (a..b).collect())
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

fn bar(buf: &mut Buffer, x: u16, y: u16, w: u16, v: f64, style: Style, theme: Theme) {
    let eighths = theme.eighths();
    let total = (v.clamp(0.0, 1.0) * w as f64 * 8.0).round() as usize;
    for i in 0..w as usize {
        let e = total.saturating_sub(i * 8).min(8);
        if e > 0 {
            buf.set_string(x + i as u16, y, eighths[e], style);
        }
    }
}

fn spark(buf: &mut Buffer, x: u16, y: u16, values: &[f64], style: Style, theme: Theme) {
    let levels = theme.spark();
    for (i, v) in values.iter().enumerate() {
        let l = (v.clamp(0.0, 1.0) * 8.0).round() as usize;
        // An idle core still shows its baseline, so an empty history reads as "measured, zero".
        let sym = if l == 0 { levels[1] } else { levels[l] };
        let st = if l == 0 { theme.dim() } else { style };
        buf.set_string(x + i as u16, y, sym, st);
    }
}

fn pct(v: f64) -> String {
    format!("{:>5}", format!("{:.0}%", (v * 100.0).clamp(0.0, 100.0)))
}

impl Widget for CoreBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < 2 || area.width < 16 {
            return;
        }
        let theme = self.theme;
        let rows = groups(self.cores, (area.height - 1) as usize);
        let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(5) as u16 + 1;
        let remaining = area.width.saturating_sub(label_w);
        let both = self.show_system && remaining >= 29;
        let group_w = if both { (remaining - 1) / 2 } else { remaining };
        // Within a group: history, space, bar, percentage (5).
        let mut b = (group_w * 2 / 5).clamp(3, 12);
        let mut h = group_w.saturating_sub(b + 6);
        if h < 3 {
            h = 0;
            b = group_w.saturating_sub(5).max(1);
        }
        let h = h.min(40);
        let hist_parlab = self.parlab_history(h as usize);
        let now_parlab = self.parlab_now();
        let sys_hist: Vec<&Vec<f32>> = self.sys.history.iter().rev().take(h as usize).rev().collect();

        let x_sys = area.x + label_w;
        let x_par = if both { x_sys + group_w + 1 } else { x_sys };
        let y = area.y;
        buf.set_string(area.x, y, "cores", theme.dim());
        if both {
            let t = if self.sys.latest.is_empty() { "system (sampling…)" } else { "system" };
            buf.set_string(x_sys, y, fit(t, group_w), theme.dim());
        }
        let measured = self.measured().is_some();
        let t = match self.run {
            Some(r) if r.live && !measured => "parlab (measuring…)",
            Some(r) if r.live => "parlab (live)",
            Some(_) if measured => "parlab (this run)",
            Some(_) => "parlab (not sampled)",
            None => "parlab (no run yet)",
        };
        buf.set_string(x_par, y, fit(t, group_w), theme.dim());

        let run_style = theme.kind_style(crate::timeline::SpanKind::Run);
        for (i, (label, cores)) in rows.iter().enumerate() {
            let y = area.y + 1 + i as u16;
            if y >= area.y + area.height {
                break;
            }
            buf.set_string(area.x, y, label, theme.text());
            if both {
                let hist: Vec<f64> = sys_hist
                    .iter()
                    .map(|s| mean(cores.iter().filter_map(|c| s.get(*c)).map(|v| *v as f64 / 100.0)))
                    .collect();
                let now = mean(cores.iter().filter_map(|c| self.sys.latest.get(*c)).map(|v| *v as f64 / 100.0));
                let mut x = x_sys;
                if h > 0 {
                    spark(buf, x + h - hist.len() as u16, y, &hist, theme.system(), theme);
                    x += h + 1;
                }
                bar(buf, x, y, b, now, theme.system(), theme);
                if !self.sys.latest.is_empty() {
                    buf.set_string(x + b, y, pct(now), theme.text());
                }
            }
            let hist: Vec<f64> = (0..h as usize).map(|k| mean(cores.iter().map(|c| hist_parlab[*c][k]))).collect();
            let now = mean(cores.iter().map(|c| now_parlab[*c]));
            let mut x = x_par;
            if h > 0 {
                if measured {
                    spark(buf, x, y, &hist, run_style, theme);
                }
                x += h + 1;
            }
            bar(buf, x, y, b, now, run_style, theme);
            if measured {
                buf.set_string(x + b, y, pct(now), theme.text());
            }
        }
    }
}

fn fit(s: &str, w: u16) -> String {
    s.chars().take(w as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::CpuSample;
    use crate::timeline::tests::span;
    use crate::timeline::{LabEvent, RunEnd, SpanKind};
    use crate::ui::gantt::buffer_lines;

    const MS: u64 = 1_000_000;

    /// Two samples of 50 ms each: core 0 busy in both, core 1 in the first only.
    fn measured() -> RunCpu {
        let mut cpu = RunCpu::default();
        cpu.add(CpuSample { at_ns: 50 * MS, interval_ns: 50 * MS, per_core_ns: vec![50 * MS, 50 * MS] });
        cpu.add(CpuSample { at_ns: 100 * MS, interval_ns: 50 * MS, per_core_ns: vec![50 * MS, 0] });
        cpu
    }

    fn draw(t: &Timeline, cpu: Option<&RunCpu>, live: bool, to: u64) -> Vec<String> {
        let mut sys = CoreSamples::default();
        for v in [[10.0, 0.0], [100.0, 50.0]] {
            sys.history.push_back(v.to_vec());
            sys.latest = v.to_vec();
        }
        let run = RunWindow { timeline: t, digest: None, cpu, from: 0, to, live };
        let area = Rect::new(0, 0, 60, 3);
        let mut buf = Buffer::empty(area);
        CoreBars::new(&sys, Some(run), 2, Theme::plain(false)).render(area, &mut buf);
        buffer_lines(&buf)
    }

    #[test]
    fn bars_show_system_load_and_parlabs_measured_cpu_per_core() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 1, t0_ns: 0, cores: 2 });
        t.ingest(LabEvent::Span(span(0, SpanKind::Run, 0, 100, 0)));
        t.ingest(LabEvent::Finished(RunEnd { t0_ns: 0, t_end_ns: 100 * MS, checksum: 0, tasks_done: 1, error: None }));
        let lines = draw(&t, Some(&measured()), false, 100 * MS);
        assert_eq!(lines[0], "cores system                     parlab (this run)");
        // cpu0: system 100% now, parlab measured busy the whole run; cpu1: 50% and half the run.
        assert!(lines[1].starts_with("cpu0"), "{lines:?}");
        assert!(lines[1].contains("100%"), "{lines:?}");
        assert!(lines[2].ends_with(" 50%"), "{lines:?}");
        assert!(lines[1].contains("▁█"), "system history ends at 100%: {lines:?}");
    }

    #[test]
    fn parlabs_column_follows_measured_cpu_not_where_spans_started() {
        // Every span says it started on cpu0, yet the measured CPU time was all on cpu1.
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 1, t0_ns: 0, cores: 2 });
        t.ingest(LabEvent::Span(span(0, SpanKind::Run, 0, 100, 0)));
        t.ingest(LabEvent::Span(span(1, SpanKind::Run, 0, 100, 0)));
        t.ingest(LabEvent::Finished(RunEnd { t0_ns: 0, t_end_ns: 100 * MS, checksum: 0, tasks_done: 2, error: None }));
        let mut cpu = RunCpu::default();
        cpu.add(CpuSample { at_ns: 100 * MS, interval_ns: 100 * MS, per_core_ns: vec![0, 100 * MS] });
        let lines = draw(&t, Some(&cpu), false, 100 * MS);
        assert!(lines[1].ends_with("  0%"), "cpu0 did none of the measured work: {lines:?}");
        assert!(lines[2].ends_with("100%"), "cpu1 did all of it: {lines:?}");
        // Without a measurement nothing is made up from the spans.
        let lines = draw(&t, None, false, 100 * MS);
        assert!(lines[0].contains("parlab (not sampled)"), "{lines:?}");
        assert_eq!(lines[1].matches('%').count(), 1, "only the system's figure: {lines:?}");
    }

    #[test]
    fn a_live_run_shows_its_latest_measured_half_second() {
        let t = Timeline::new();
        let lines = draw(&t, Some(&measured()), true, 100 * MS);
        assert!(lines[0].contains("parlab (live)"), "{lines:?}");
        assert!(lines[1].ends_with("100%") && lines[2].ends_with(" 50%"), "{lines:?}");
        let lines = draw(&t, Some(&RunCpu::default()), true, 100 * MS);
        assert!(lines[0].contains("parlab (measuring"), "{lines:?}");
    }

    #[test]
    fn many_cores_are_grouped_into_the_rows_available() {
        let g = groups(16, 4);
        assert_eq!(g.len(), 4);
        assert_eq!(g[0].0, "cpu0-3");
        assert_eq!(groups(2, 8)[1].0, "cpu1");
    }
}

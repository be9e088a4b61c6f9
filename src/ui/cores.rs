//! Per-core utilization: for every core a bar with a short history, once for the whole system (sampled by the
//! monitor) and once for parlab's own lanes (exact, from the run's spans). The gap between the two is other
//! programs' load. Labels and histories are dropped as the width shrinks; many cores are grouped into rows.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::app::CoreSamples;
use crate::timeline::Timeline;

use super::digest::{Digest, EXACT_RUN_SPANS};
use super::theme::Theme;

/// A run to show parlab's share of: its timeline and the window `[from, to)` drawn; `live` when still going.
#[derive(Clone, Copy)]
pub(crate) struct RunWindow<'a> {
    pub timeline: &'a Timeline,
    /// The timeline's digest: a run with many spans is read from its bins rather than span by span.
    pub digest: Option<&'a Digest>,
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
        let seen = run
            .map(|r| match r.digest {
                Some(d) => d.cores_seen() as i32,
                None => r.timeline.spans.iter().map(|s| s.cpu_start.max(s.cpu_end) + 1).max().unwrap_or(0),
            })
            .unwrap_or(0)
            .max(0) as usize;
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

    /// The digest to read instead of the spans: only for a run too big to read span by span every frame.
    fn binned(&self) -> Option<&'a Digest> {
        let r = self.run?;
        r.digest.filter(|_| r.timeline.spans.len() > EXACT_RUN_SPANS)
    }

    fn parlab_now(&self) -> Vec<f64> {
        let Some(r) = self.run else {
            return vec![0.0; self.cores];
        };
        let t = r.timeline;
        let (from, to) = if r.live {
            (r.to.saturating_sub(RECENT_NS).max(r.from), r.to)
        } else {
            let last = r.digest.map_or_else(|| t.last_ns(), |d| d.last_ns(t));
            (t.t0_ns.max(r.from), last.min(r.to).max(t.t0_ns + 1))
        };
        match self.binned() {
            Some(d) => d.core_busy(self.cores, from, to),
            None => t.core_busy(self.cores, from, to),
        }
    }

    /// Per core, parlab's busy share in `bins` equal slices of the window, from one pass over the spans (or from
    /// the digest's bins for a big run). The same attribution as `Timeline::core_busy`.
    fn parlab_history(&self, bins: usize) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; bins]; self.cores];
        let Some(r) = self.run else { return out };
        if bins == 0 || r.to <= r.from {
            return out;
        }
        if let Some(d) = self.binned() {
            return d.core_history(self.cores, r.from, r.to, bins);
        }
        let step = (r.to - r.from) as f64 / bins as f64;
        let mut add = |core: i32, a: f64, b: f64, share: f64| {
            let Some(row) = usize::try_from(core).ok().and_then(|c| out.get_mut(c)) else {
                return;
            };
            let first = ((a / step) as usize).min(bins - 1);
            let last = ((b / step) as usize).min(bins - 1);
            for (k, cell) in row.iter_mut().enumerate().take(last + 1).skip(first) {
                let lo = a.max(k as f64 * step);
                let hi = b.min((k + 1) as f64 * step);
                if hi > lo {
                    *cell += (hi - lo) * share / step;
                }
            }
        };
        for s in r.timeline.spans.iter().filter(|s| s.kind.is_busy()) {
            let a = s.start_ns.max(r.from);
            let b = s.end_ns.min(r.to);
            if b <= a {
                continue;
            }
            let (a, b) = ((a - r.from) as f64, (b - r.from) as f64);
            if s.cpu_start >= 0 && s.cpu_end >= 0 && s.cpu_start != s.cpu_end {
                add(s.cpu_start, a, b, 0.5);
                add(s.cpu_end, a, b, 0.5);
            } else {
                add(s.cpu_start.max(s.cpu_end), a, b, 1.0);
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
        let t = match self.run {
            Some(r) if r.live => "parlab (live)",
            Some(_) => "parlab (this run)",
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
                if self.run.is_some() {
                    spark(buf, x, y, &hist, run_style, theme);
                }
                x += h + 1;
            }
            bar(buf, x, y, b, now, run_style, theme);
            if self.run.is_some() {
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
    use crate::timeline::tests::span;
    use crate::timeline::{LabEvent, SpanKind};
    use crate::ui::gantt::buffer_lines;

    #[test]
    fn bars_show_system_and_parlab_load_per_core() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Span(span(0, SpanKind::Run, 0, 100, 0)));
        t.ingest(LabEvent::Span(span(1, SpanKind::Run, 0, 50, 1)));
        let mut sys = CoreSamples::default();
        for v in [[10.0, 0.0], [100.0, 50.0]] {
            sys.history.push_back(v.to_vec());
            sys.latest = v.to_vec();
        }
        let run = RunWindow { timeline: &t, digest: None, from: 0, to: 100_000_000, live: false };
        let area = Rect::new(0, 0, 60, 3);
        let mut buf = Buffer::empty(area);
        CoreBars::new(&sys, Some(run), 2, Theme::plain(false)).render(area, &mut buf);
        let lines = buffer_lines(&buf);
        assert_eq!(lines[0], "cores system                     parlab (this run)");
        // cpu0: system 100% now, parlab busy the whole run; cpu1: 50% and half the run.
        assert!(lines[1].starts_with("cpu0"), "{lines:?}");
        assert!(lines[1].contains("100%"), "{lines:?}");
        assert!(lines[2].contains(" 50%"), "{lines:?}");
        assert!(lines[1].contains("▁█"), "system history ends at 100%: {lines:?}");
    }

    #[test]
    fn many_cores_are_grouped_into_the_rows_available() {
        let g = groups(16, 4);
        assert_eq!(g.len(), 4);
        assert_eq!(g[0].0, "cpu0-3");
        assert_eq!(groups(2, 8)[1].0, "cpu1");
    }
}

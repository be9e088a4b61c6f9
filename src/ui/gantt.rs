//! The Gantt widget: one lane per worker on a shared time axis, spans drawn at 1/8-cell resolution and coloured by
//! kind, with a legend. The same widget draws the TUI panel and the ASCII Gantt of `parlab run`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use crate::timeline::{SPAN_KINDS, Span, SpanKind, Timeline};

use super::digest::{Digest, KINDS, kind_index};
use super::theme::Theme;

pub(crate) struct Gantt<'a> {
    timeline: &'a Timeline,
    digest: Option<&'a Digest>,
    theme: Theme,
    window: Option<(u64, u64)>,
    legend: bool,
}

impl<'a> Gantt<'a> {
    pub(crate) fn new(timeline: &'a Timeline, theme: Theme) -> Gantt<'a> {
        Gantt { timeline, digest: None, theme, window: None, legend: true }
    }

    /// Draws from the timeline's digest (kept up to date as events arrive): a frame then costs what is visible,
    /// however many spans the run has. Without one, every span is read.
    pub(crate) fn digest(mut self, digest: &'a Digest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// Draws `[from, to)` in CLOCK_MONOTONIC ns (compare views share one window); default: the whole run.
    pub(crate) fn window(mut self, from: u64, to: u64) -> Self {
        self.window = Some((from, to.max(from + 1)));
        self
    }

    pub(crate) fn legend(mut self, on: bool) -> Self {
        self.legend = on;
        self
    }

    /// The default window: from the first span (or t0) to the end of the run, at least 1 ms.
    pub(crate) fn default_window(t: &Timeline) -> (u64, u64) {
        let from = t.first_ns();
        let to = t.last_ns().max(from + 1_000_000);
        (from, to)
    }

    /// Rows this widget wants for a timeline: axis, lanes, legend.
    pub(crate) fn wanted_height(t: &Timeline) -> u16 {
        t.lanes.len() as u16 + 2
    }
}

/// A lane's label with its pid (processes) or tid (threads).
pub(crate) fn lane_label(t: &Timeline, lane: &crate::timeline::Lane) -> String {
    if lane.pid != t.lab_pid && t.lab_pid != 0 {
        format!("{} {}", lane.label, lane.pid)
    } else {
        format!("{} {}", lane.label, lane.tid)
    }
}

/// Picks a tick step (in ns) from 1-2-5 steps so ticks are at least `min_cells` apart.
fn tick_step(span_ns: u64, cells: u16, min_cells: u16) -> u64 {
    let per_cell = span_ns as f64 / cells.max(1) as f64;
    let want = per_cell * min_cells as f64;
    let mut step = 1_000u64; // 1 µs
    loop {
        for m in [1, 2, 5] {
            if (step * m) as f64 >= want {
                return step * m;
            }
        }
        step *= 10;
    }
}

pub(crate) fn format_ns(ns: i128) -> String {
    let neg = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    if a == 0 {
        "0ms".into()
    } else if a >= 1_000_000_000 && a.is_multiple_of(100_000_000) {
        let s = format!("{neg}{:.1}s", a as f64 / 1e9);
        s.replace(".0s", "s")
    } else if a >= 1_000_000 {
        format!("{neg}{}ms", trim_float(a as f64 / 1e6))
    } else {
        format!("{neg}{}µs", trim_float(a as f64 / 1e3))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Widget for Gantt<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let inner = area;
        if inner.width < 12 || inner.height == 0 {
            return;
        }
        let t = self.timeline;
        let theme = self.theme;
        let (from, to) = self.window.unwrap_or_else(|| match self.digest {
            Some(d) => {
                let from = d.first_ns(t);
                (from, d.last_ns(t).max(from + 1_000_000))
            }
            None => Gantt::default_window(t),
        });
        let labels: Vec<String> = t.lanes.iter().map(|l| lane_label(t, l)).collect();
        let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4).clamp(3, 14) as u16;
        let x0 = inner.x + label_w + 1;
        // One column is kept free on the right, so a span that ends at the window's end never touches the border.
        let cells = inner.width.saturating_sub(label_w + 2);
        if cells < 4 {
            return;
        }
        let cell_ns = (to - from) as f64 / cells as f64;

        // Axis: tick labels relative to the run's t0.
        let mut y = inner.y;
        let step = tick_step(to - from, cells, 10);
        let origin = t.t0_ns as i128;
        let first_tick = {
            let rel = from as i128 - origin;
            let s = step as i128;
            (rel.div_euclid(s) + i128::from(rel.rem_euclid(s) != 0)) * s
        };
        let mut tick = first_tick;
        let mut last_end = 0u16;
        while (origin + tick) < to as i128 {
            let col = ((origin + tick - from as i128) as f64 / cell_ns) as u16;
            let label = format_ns(tick);
            let x = x0 + col;
            if col >= last_end && col + label.chars().count() as u16 <= cells {
                buf.set_string(x, y, &label, theme.dim());
                last_end = col + label.chars().count() as u16 + 2;
            }
            tick += step as i128;
        }
        y += 1;

        let legend_rows = u16::from(self.legend);
        let rows = inner.height.saturating_sub(1 + legend_rows) as usize;
        let n = t.lanes.len();
        let shown = if n > rows { rows.saturating_sub(1) } else { n };
        let present = match self.digest {
            Some(d) => {
                for (i, lane) in t.lanes.iter().take(shown).enumerate() {
                    let y = y + i as u16;
                    let label: String = labels[i].chars().take(label_w as usize).collect();
                    buf.set_string(inner.x, y, &label, theme.text());
                    if let Some(ld) = d.lane(lane.id) {
                        // A small lane exactly from its spans; a big one from its bins.
                        let (cov, centre) = match ld.exact(t) {
                            Some(spans) => coverage(&spans, from, cell_ns, cells as usize),
                            None => d.lane_cells(ld, from, to, cells as usize),
                        };
                        paint(buf, &cov, &centre, x0, y, cell_ns, theme);
                    }
                }
                d.present()
            }
            None => self.lanes_from_spans(&labels, label_w, shown, (x0, y, cells), (from, cell_ns), buf),
        };
        y += shown as u16;
        if n > shown && rows > 0 {
            buf.set_string(inner.x, y, format!("… {} more lanes", n - shown), theme.dim());
            y += 1;
        }

        if self.legend && y < inner.y + inner.height {
            let mut x = inner.x;
            let present: Vec<SpanKind> =
                SPAN_KINDS.into_iter().zip(present).filter(|(_, p)| *p).map(|(k, _)| k).collect();
            let kinds = if present.is_empty() { vec![SpanKind::Run] } else { present };
            for k in kinds {
                let item_w = 2 + k.name().len() as u16 + 2;
                if x + item_w > inner.x + inner.width {
                    break;
                }
                buf.set_string(x, y, theme.kind_symbol(k), theme.kind_style(k));
                buf.set_string(x + 2, y, k.name(), theme.dim());
                x += item_w;
            }
        }
    }
}

impl Gantt<'_> {
    /// Without a digest: one pass sorts every span by lane, then each lane is drawn; returns the kinds present.
    fn lanes_from_spans(
        &self,
        labels: &[String],
        label_w: u16,
        shown: usize,
        (x0, y0, cells): (u16, u16, u16),
        (from, cell_ns): (u64, f64),
        buf: &mut Buffer,
    ) -> [bool; KINDS] {
        let t = self.timeline;
        let theme = self.theme;
        let x = x0 - label_w - 1;
        let mut by_lane: Vec<Vec<&Span>> = vec![Vec::new(); shown];
        // Lane ids are small numbers: index by id rather than hash. The same pass notes the kinds present.
        let max_id = t.lanes.iter().map(|l| l.id as usize).max().unwrap_or(0).min(1 << 16);
        let mut index = vec![usize::MAX; max_id + 1];
        for (i, l) in t.lanes.iter().take(shown).enumerate() {
            if let Some(slot) = index.get_mut(l.id as usize) {
                *slot = i;
            }
        }
        let mut present = [false; SPAN_KINDS.len()];
        for s in &t.spans {
            if let Some(k) = SPAN_KINDS.iter().position(|k| *k == s.kind) {
                present[k] = true;
            }
            let i = match index.get(s.lane as usize) {
                Some(&i) => i,
                None => t.lanes.iter().take(shown).position(|l| l.id == s.lane).unwrap_or(usize::MAX),
            };
            if let Some(v) = by_lane.get_mut(i) {
                v.push(s);
            }
        }
        for (i, spans) in by_lane.iter().enumerate() {
            let y = y0 + i as u16;
            let label: String = labels[i].chars().take(label_w as usize).collect();
            buf.set_string(x, y, &label, theme.text());
            let (cov, centre) = coverage(spans, from, cell_ns, cells as usize);
            paint(buf, &cov, &centre, x0, y, cell_ns, theme);
        }
        present
    }
}

/// Per cell of a lane: covered time per kind, and the run time weighted by where in the cell it lies (to tell
/// left- from right-aligned partial cells).
fn coverage(spans: &[&Span], from: u64, cell_ns: f64, n: usize) -> (Vec<[f64; KINDS]>, Vec<f64>) {
    let mut cov = vec![[0f64; KINDS]; n];
    let mut run_centre = vec![0f64; n];
    let end_all = from as f64 + cell_ns * n as f64;
    for s in spans {
        let a = (s.start_ns as f64).max(from as f64);
        let b = (s.end_ns as f64).min(end_all);
        if b <= a {
            continue;
        }
        let k = kind_index(s.kind);
        let c0 = ((a - from as f64) / cell_ns) as usize;
        let c1 = (((b - from as f64) / cell_ns) as usize).min(n - 1);
        for (c, cell) in cov.iter_mut().enumerate().take(c1 + 1).skip(c0) {
            let ca = from as f64 + c as f64 * cell_ns;
            let cb = ca + cell_ns;
            let oa = a.max(ca);
            let ob = b.min(cb);
            if ob > oa {
                cell[k] += ob - oa;
                if s.kind == SpanKind::Run {
                    run_centre[c] += (ob - oa) * (((oa + ob) / 2.0 - ca) / cell_ns);
                }
            }
        }
    }
    (cov, run_centre)
}

/// Draws one lane's cells: the kind that covers most of a cell wins it; run time at 1/8-cell resolution.
fn paint(buf: &mut Buffer, cov: &[[f64; KINDS]], run_centre: &[f64], x0: u16, y: u16, cell_ns: f64, theme: Theme) {
    let eighths = theme.eighths();
    // One symbol per cell: set cells directly (`set_string` measures graphemes, which shows at 60 lanes × 200).
    let mut put = |x: u16, sym: &str, style: Style| {
        if let Some(cell) = buf.cell_mut((x, y)) {
            cell.set_symbol(sym).set_style(style);
        }
    };
    for (c, cell) in cov.iter().enumerate() {
        let (best, amount) =
            cell.iter().enumerate().fold((0usize, 0f64), |acc, (k, v)| if *v > acc.1 { (k, *v) } else { acc });
        if amount <= 0.0 {
            continue;
        }
        let kind = SPAN_KINDS[best];
        let frac = (amount / cell_ns).min(1.0);
        let x = x0 + c as u16;
        let style = theme.kind_style(kind);
        if kind == SpanKind::Run {
            let e = (frac * 8.0).round() as usize;
            if e == 0 {
                continue;
            }
            if e >= 8 {
                put(x, eighths[8], style);
                continue;
            }
            let centre = run_centre[c] / amount;
            match (centre > 0.5, theme.kind_color(kind)) {
                (true, Some(color)) => {
                    // Right-aligned coverage: draw the empty left part in the background colour on a run-coloured cell.
                    let empty = 8 - e;
                    let st = Style::default().bg(color).fg(ratatui::style::Color::Reset);
                    put(x, eighths[empty], st);
                    if empty == 0 {
                        put(x, eighths[8], style);
                    }
                }
                _ => put(x, eighths[e], style),
            }
        } else if frac >= 0.3 {
            put(x, theme.kind_symbol(kind), style);
        }
    }
}

/// Renders the Gantt into plain text lines (for `parlab run`).
pub(crate) fn to_text(t: &Timeline, width: u16, window: Option<(u64, u64)>, ascii: bool) -> Vec<String> {
    let height = Gantt::wanted_height(t).min(40);
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    let mut g = Gantt::new(t, Theme::plain(ascii));
    if let Some((a, b)) = window {
        g = g.window(a, b);
    }
    g.render(area, &mut buf);
    buffer_lines(&buf)
}

/// The text of a buffer, one string per row, trailing spaces trimmed.
pub(crate) fn buffer_lines(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            let mut line = String::new();
            for x in 0..area.width {
                line.push_str(buf[(area.x + x, area.y + y)].symbol());
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::span;
    use crate::timeline::{LabEvent, Lane};
    use crate::ui::digest::Digest;

    fn two_lane_gil() -> Timeline {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 100, t0_ns: 0, cores: 2 });
        for id in 0..2 {
            t.ingest(LabEvent::Lane(Lane { id, pid: 100, tid: 200 + id, label: format!("t{}", id + 1) }));
        }
        for i in 0..4u64 {
            let (run, wait) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
            t.ingest(LabEvent::Span(span(run, SpanKind::Run, i * 10, i * 10 + 10, run as i32)));
            t.ingest(LabEvent::Span(span(wait, SpanKind::GilWait, i * 10, i * 10 + 10, wait as i32)));
        }
        t
    }

    #[test]
    fn gantt_draws_alternating_gil_lanes_with_axis_and_legend() {
        let t = two_lane_gil();
        let lines = to_text(&t, 48, Some((0, 40_000_000)), false);
        assert_eq!(
            lines,
            vec![
                "       0ms       10ms      20ms      30ms",
                "t1 200 ██████████▒▒▒▒▒▒▒▒▒▒██████████▒▒▒▒▒▒▒▒▒▒",
                "t2 201 ▒▒▒▒▒▒▒▒▒▒██████████▒▒▒▒▒▒▒▒▒▒██████████",
                "█ run  ▒ gil-wait",
            ]
        );
    }

    #[test]
    fn partial_cells_use_eighth_blocks() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Lane(Lane { id: 0, pid: 1, tid: 1, label: "m".into() }));
        // 0..10.5 ms on a 1 ms-per-cell axis: ten full cells and a half cell.
        let mut s = span(0, SpanKind::Run, 0, 10, 0);
        s.end_ns = 10_500_000;
        t.ingest(LabEvent::Span(s));
        let lines = to_text(&t, 5 + 20, Some((0, 20_000_000)), false);
        assert_eq!(lines[1], "m 1 ██████████▌");
        let ascii = to_text(&t, 25, Some((0, 20_000_000)), true);
        assert_eq!(ascii[1], "m 1 ###########");
    }

    #[test]
    fn too_many_lanes_are_summarised() {
        let mut t = Timeline::new();
        for id in 0..10 {
            t.ingest(LabEvent::Lane(Lane { id, pid: 1, tid: id, label: format!("x{id}") }));
            t.ingest(LabEvent::Span(span(id, SpanKind::Idle, 0, 5, 0)));
        }
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 6));
        Gantt::new(&t, Theme::plain(false)).render(buf.area, &mut buf);
        let lines = buffer_lines(&buf);
        assert!(lines[4].starts_with("… 7 more lanes"), "{lines:?}");
    }

    #[test]
    fn big_lanes_draw_from_the_digest_as_they_do_from_their_spans() {
        // Two lanes of 1500 spans of 4 ms each (far more than are drawn span by span), taking turns every 400 ms,
        // then a stretch where lane 0 runs alone; cells of 100 ms.
        let mut t = Timeline::new();
        for id in 0..2 {
            t.ingest(LabEvent::Lane(Lane { id, pid: 1, tid: 10 + id, label: format!("t{id}") }));
        }
        let mut d = Digest::default();
        let mut add = |t: &mut Timeline, s: Span| {
            t.ingest(LabEvent::Span(s));
            d.add_span(t, t.spans.len() - 1);
        };
        for i in 0..1500u64 {
            let (run, wait) = if (i / 100) % 2 == 0 { (0, 1) } else { (1, 0) };
            add(&mut t, span(run, SpanKind::Run, i * 4, i * 4 + 4, 0));
            add(&mut t, span(wait, SpanKind::GilWait, i * 4, i * 4 + 4, 1));
        }
        add(&mut t, span(0, SpanKind::Run, 6_000, 9_000, 0));
        assert!(d.lane(0).unwrap().exact(&t).is_none());
        let area = Rect::new(0, 0, 90, 4);
        let draw = |digest: Option<&Digest>| {
            let mut buf = Buffer::empty(area);
            let mut g = Gantt::new(&t, Theme::plain(false)).window(0, 8_300_000_000);
            if let Some(d) = digest {
                g = g.digest(d);
            }
            g.render(area, &mut buf);
            buffer_lines(&buf)
        };
        let (exact, binned) = (draw(None), draw(Some(&d)));
        assert_eq!(exact, binned);
        assert!(exact[1].starts_with("t0 10 ████▒▒▒▒████"), "{exact:?}");
        assert!(exact[2].starts_with("t1 11 ▒▒▒▒████▒▒▒▒"), "{exact:?}");
        assert!(exact[1].ends_with("████████████████████"), "{exact:?}");
    }

    #[test]
    fn time_labels_read_naturally() {
        assert_eq!(format_ns(0), "0ms");
        assert_eq!(format_ns(1_500_000), "1.5ms");
        assert_eq!(format_ns(2_000_000_000), "2s");
        assert_eq!(format_ns(250_000), "250µs");
        assert_eq!(format_ns(-5_000_000), "-5ms");
    }
}

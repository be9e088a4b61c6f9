//! The Gantt widget: one lane per worker on a shared time axis, spans drawn at 1/8-cell resolution and coloured by
//! kind, with a legend. The same widget draws the TUI panel and the ASCII Gantt of `parlab run`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use unicode_width::UnicodeWidthChar;

use crate::timeline::{Lane, SPAN_KINDS, Span, SpanKind, Timeline};
use crate::units::format_ns;

use super::markdown::text_width;
use super::theme::Theme;
use crate::digest::{Digest, KINDS, kind_index};

pub(crate) struct Gantt<'a> {
    timeline: &'a Timeline,
    digest: Option<&'a Digest>,
    theme: Theme,
    window: Option<(u64, u64)>,
    legend: bool,
    axis: bool,
    label_width: Option<u16>,
    clip: Option<u64>,
    cursor: Option<(u64, Option<u32>)>,
}

impl<'a> Gantt<'a> {
    pub(crate) fn new(timeline: &'a Timeline, theme: Theme) -> Gantt<'a> {
        Gantt {
            timeline,
            digest: None,
            theme,
            window: None,
            legend: true,
            axis: true,
            label_width: None,
            clip: None,
            cursor: None,
        }
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

    /// Without its own axis row (the compare view draws one axis for every run).
    pub(crate) fn axis(mut self, on: bool) -> Self {
        self.axis = on;
        self
    }

    /// Draws only what happened before `at` (CLOCK_MONOTONIC ns): a replay's playhead, a paused live view.
    pub(crate) fn clip(mut self, at: u64) -> Self {
        self.clip = Some(at);
        self
    }

    /// Marks the cursor's column at `at` (CLOCK_MONOTONIC ns), and the lane it reads (by lane id) in its label.
    pub(crate) fn cursor(mut self, at: u64, lane: Option<u32>) -> Self {
        self.cursor = Some((at, lane));
        self
    }

    /// Labels take exactly `w` cells, so lanes of several runs line up on one axis.
    pub(crate) fn label_width(mut self, w: u16) -> Self {
        self.label_width = Some(w);
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

    /// The label width this widget picks for a timeline in `width` cells (see `label_width`).
    pub(crate) fn natural_label_width(t: &Timeline, width: u16) -> u16 {
        let labels = t.lanes.iter().map(|l| (text_width(&l.label), text_width(&lane_ids(l))));
        let (name, ids) = labels.fold((0, 0), |(n, i), (ln, li)| (n.max(ln + 1 + li), i.max(li)));
        label_cap(name, ids, width)
    }
}

/// Labels take what they need, up to a third of the width; always room for the ids and a letter of the name.
fn label_cap(longest: usize, ids: usize, width: u16) -> u16 {
    let cap = (width as usize / 3).max(ids + 3);
    longest.min(cap).max(3).min(u16::MAX as usize) as u16
}

/// A lane's ids (see `Lane::ids`).
pub(crate) fn lane_ids(lane: &Lane) -> String {
    lane.ids()
}

/// A lane's label (see `Lane::full_label`).
pub(crate) fn lane_label(lane: &Lane) -> String {
    lane.full_label()
}

/// A label in `w` cells: the ids are kept whole and the name gives way, marked with `…`.
fn fit_label(lane: &Lane, w: usize, theme: Theme) -> String {
    let full = lane_label(lane);
    if text_width(&full) <= w {
        return full;
    }
    let ids = lane_ids(lane);
    let mark = if theme.ascii { "~" } else { "…" };
    let room = w.saturating_sub(text_width(&ids) + 1 + 1);
    let mut name = String::new();
    let mut used = 0;
    for ch in lane.label.chars() {
        let cw = ch.width().unwrap_or(0);
        if used + cw > room {
            break;
        }
        used += cw;
        name.push(ch);
    }
    let fitted = format!("{}{mark} {ids}", name.trim_end());
    if text_width(&fitted) <= w { fitted } else { ids }
}

/// Lanes in reading order (see `timeline::lane_order`).
pub(crate) fn lane_order(t: &Timeline) -> Vec<usize> {
    crate::timeline::lane_order(&t.lanes)
}

/// The time axis in one row from `x0` over `cells` cells: 1-2-5 ticks labelled relative to `origin`.
fn draw_axis(buf: &mut Buffer, (x0, y, cells): (u16, u16, u16), (from, to): (u64, u64), origin: i128, theme: Theme) {
    let cell_ns = (to - from) as f64 / cells as f64;
    let step = tick_step(to - from, cells, 10);
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
        let lw = text_width(&label) as u16;
        if col >= last_end && col + lw <= cells {
            buf.set_string(x0 + col, y, &label, theme.dim());
            last_end = col + lw + 2;
        }
        tick += step as i128;
    }
}

/// A shared axis for lanes drawn with `label_width(label_w)` in an area `width` wide at `(x, y)`: `[from, to)` ns
/// after each run's first span (each run's lanes are drawn from their first span).
pub(crate) fn shared_axis(
    buf: &mut Buffer,
    (x, y, width): (u16, u16, u16),
    label_w: u16,
    (from, to): (u64, u64),
    theme: Theme,
) {
    let cells = width.saturating_sub(label_w + 2);
    if cells >= 4 {
        draw_axis(buf, (x + label_w + 1, y, cells), (from, to.max(from + 1)), 0, theme);
    }
}

/// The legend in one row: a symbol and a name for each kind present (run when none is), as many as fit.
pub(crate) fn draw_legend(buf: &mut Buffer, area: Rect, present: [bool; KINDS], theme: Theme) {
    let mut x = area.x;
    let kinds: Vec<SpanKind> = SPAN_KINDS.into_iter().zip(present).filter(|(_, p)| *p).map(|(k, _)| k).collect();
    let kinds = if kinds.is_empty() { vec![SpanKind::Run] } else { kinds };
    for k in kinds {
        let item_w = 2 + k.name().len() as u16 + 2;
        if x + item_w > area.x + area.width {
            break;
        }
        buf.set_string(x, area.y, theme.kind_symbol(k), theme.kind_style(k));
        buf.set_string(x + 2, area.y, k.name(), theme.dim());
        x += item_w;
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
        let order = lane_order(t);
        let label_w = self.label_width.unwrap_or_else(|| Gantt::natural_label_width(t, inner.width));
        let labels: Vec<String> = order.iter().map(|&i| fit_label(&t.lanes[i], label_w as usize, theme)).collect();
        let x0 = inner.x + label_w + 1;
        // One column is kept free on the right, so a span that ends at the window's end never touches the border.
        let cells = inner.width.saturating_sub(label_w + 2);
        if cells < 4 {
            return;
        }
        let cell_ns = (to - from) as f64 / cells as f64;

        let mut y = inner.y;
        if self.axis {
            // Tick labels relative to the run's t0.
            draw_axis(buf, (x0, y, cells), (from, to), t.t0_ns as i128, theme);
            y += 1;
        }

        let legend_rows = u16::from(self.legend);
        let rows = inner.height.saturating_sub(u16::from(self.axis) + legend_rows) as usize;
        let n = t.lanes.len();
        let shown = if n > rows { rows.saturating_sub(1) } else { n };
        let present = match self.digest.filter(|_| self.clip.is_none()) {
            Some(d) => {
                for (row, &i) in order.iter().take(shown).enumerate() {
                    let y = y + row as u16;
                    buf.set_string(inner.x, y, &labels[row], theme.text());
                    if let Some(ld) = d.lane(t.lanes[i].id) {
                        // A small lane exactly from its spans; a big one from its bins.
                        let (cov, centre) = match ld.exact(t) {
                            Some(spans) => coverage(&spans, from, cell_ns, cells as usize, f64::INFINITY),
                            None => d.lane_cells(ld, from, to, cells as usize),
                        };
                        paint(buf, &cov, &centre, x0, y, cell_ns, theme);
                    }
                }
                d.present()
            }
            None => self.lanes_from_spans(&order, &labels, shown, (inner.x, x0, y, cells), (from, cell_ns), buf),
        };
        if let Some((at, lane)) = self.cursor
            && at >= from
            && at < to
        {
            let x = x0 + ((at - from) as f64 / cell_ns) as u16;
            let lanes_y = y;
            // On the axis row only where no tick label is.
            if self.axis
                && lanes_y > inner.y
                && let Some(cell) = buf.cell_mut((x, lanes_y - 1)).filter(|c| c.symbol() == " ")
            {
                cell.set_symbol(if theme.ascii { "v" } else { "▾" }).set_style(theme.accent());
            }
            for (row, &i) in order.iter().take(shown).enumerate() {
                let yy = lanes_y + row as u16;
                if let Some(cell) = buf.cell_mut((x, yy)) {
                    if cell.symbol() == " " {
                        cell.set_symbol(if theme.ascii { "|" } else { "│" }).set_style(theme.accent());
                    } else {
                        cell.modifier.insert(ratatui::style::Modifier::REVERSED);
                    }
                }
                if lane == Some(t.lanes[i].id) {
                    buf.set_style(Rect::new(inner.x, yy, label_w, 1), theme.accent());
                }
            }
        }
        y += shown as u16;
        if n > shown && rows > 0 {
            buf.set_string(inner.x, y, format!("… {} more lanes", n - shown), theme.dim());
            y += 1;
        }

        if self.legend && y < inner.y + inner.height {
            draw_legend(buf, Rect::new(inner.x, y, inner.width, 1), present, theme);
        }
    }
}

impl Gantt<'_> {
    /// Without a digest: one pass sorts every span by lane, then each lane is drawn; returns the kinds present.
    fn lanes_from_spans(
        &self,
        order: &[usize],
        labels: &[String],
        shown: usize,
        (x, x0, y0, cells): (u16, u16, u16, u16),
        (from, cell_ns): (u64, f64),
        buf: &mut Buffer,
    ) -> [bool; KINDS] {
        let t = self.timeline;
        let theme = self.theme;
        let mut by_lane: Vec<Vec<&Span>> = vec![Vec::new(); shown];
        // Lane ids are small numbers: index by id rather than hash. The same pass notes the kinds present.
        let max_id = t.lanes.iter().map(|l| l.id as usize).max().unwrap_or(0).min(1 << 16);
        let mut index = vec![usize::MAX; max_id + 1];
        for (row, &i) in order.iter().take(shown).enumerate() {
            if let Some(slot) = index.get_mut(t.lanes[i].id as usize) {
                *slot = row;
            }
        }
        let mut present = [false; SPAN_KINDS.len()];
        for s in &t.spans {
            if let Some(k) = SPAN_KINDS.iter().position(|k| *k == s.kind) {
                present[k] = true;
            }
            let row = match index.get(s.lane as usize) {
                Some(&row) => row,
                None => order.iter().take(shown).position(|&i| t.lanes[i].id == s.lane).unwrap_or(usize::MAX),
            };
            if let Some(v) = by_lane.get_mut(row) {
                v.push(s);
            }
        }
        for (row, spans) in by_lane.iter().enumerate() {
            let y = y0 + row as u16;
            buf.set_string(x, y, &labels[row], theme.text());
            let clip = self.clip.map_or(f64::INFINITY, |c| c as f64);
            let (cov, centre) = coverage(spans, from, cell_ns, cells as usize, clip);
            paint(buf, &cov, &centre, x0, y, cell_ns, theme);
        }
        present
    }
}

/// Per cell of a lane: covered time per kind, and the run time weighted by where in the cell it lies (to tell
/// left- from right-aligned partial cells).
fn coverage(spans: &[&Span], from: u64, cell_ns: f64, n: usize, clip: f64) -> (Vec<[f64; KINDS]>, Vec<f64>) {
    let mut cov = vec![[0f64; KINDS]; n];
    let mut run_centre = vec![0f64; n];
    let end_all = (from as f64 + cell_ns * n as f64).min(clip);
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
    use crate::digest::Digest;
    use crate::timeline::tests::span;
    use crate::timeline::{LabEvent, Lane};

    /// Two threads of one process taking turns under the GIL; the lab announced t2 before t1.
    fn two_lane_gil() -> Timeline {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 100, t0_ns: 0, cores: 2 });
        for (id, n) in [(0, 2), (1, 1)] {
            t.ingest(LabEvent::Lane(Lane { id, pid: 100, tid: 199 + n, label: format!("t{n}") }));
        }
        for i in 0..4u64 {
            let (run, wait) = if i % 2 == 0 { (1, 0) } else { (0, 1) };
            t.ingest(LabEvent::Span(span(run, SpanKind::Run, i * 10, i * 10 + 10, run as i32)));
            t.ingest(LabEvent::Span(span(wait, SpanKind::GilWait, i * 10, i * 10 + 10, wait as i32)));
        }
        t
    }

    #[test]
    fn gantt_draws_alternating_gil_lanes_with_axis_and_legend() {
        let t = two_lane_gil();
        let mut buf = Buffer::empty(Rect::new(0, 0, 52, 4));
        Gantt::new(&t, Theme::plain(false)).window(0, 40_000_000).render(buf.area, &mut buf);
        // Both threads show their one pid and their own tid, t1 first though the lab announced t2 first.
        assert_eq!(
            buf,
            Buffer::with_lines([
                "           0ms       10ms      20ms      30ms       ",
                "t1 100/200 ██████████▒▒▒▒▒▒▒▒▒▒██████████▒▒▒▒▒▒▒▒▒▒ ",
                "t2 100/201 ▒▒▒▒▒▒▒▒▒▒██████████▒▒▒▒▒▒▒▒▒▒██████████ ",
                "█ run  ▒ gil-wait                                   ",
            ])
        );
    }

    #[test]
    fn process_lanes_show_their_pid_and_lanes_are_in_natural_order() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 100, t0_ns: 0, cores: 2 });
        let lanes = [("p10", 4130), ("p2", 4122), ("p1", 4121)];
        for (id, (label, pid)) in lanes.iter().enumerate() {
            t.ingest(LabEvent::Lane(Lane { id: id as u32, pid: *pid, tid: *pid, label: label.to_string() }));
            t.ingest(LabEvent::Span(span(id as u32, SpanKind::Run, 0, 10, 0)));
        }
        let lines = to_text(&t, 24, Some((0, 10_000_000)), false);
        assert_eq!(&lines[1..4], ["p1 4121  ██████████████", "p2 4122  ██████████████", "p10 4130 ██████████████"]);
    }

    #[test]
    fn lanes_named_alike_stay_together_in_number_order() {
        let mut t = Timeline::new();
        let labels = ["loop", "task 10", "task 2", "parent", "task 1", "child 2", "child 1"];
        for (id, label) in labels.iter().enumerate() {
            t.ingest(LabEvent::Lane(Lane { id: id as u32, pid: 1, tid: 1, label: label.to_string() }));
        }
        let order: Vec<&str> = lane_order(&t).into_iter().map(|i| labels[i]).collect();
        assert_eq!(order, ["loop", "task 1", "task 2", "task 10", "parent", "child 1", "child 2"]);
    }

    #[test]
    fn long_lane_names_give_way_but_keep_their_ids() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Lane(Lane { id: 0, pid: 23001, tid: 23001, label: "child writes 1 byte per page".into() }));
        t.ingest(LabEvent::Lane(Lane { id: 1, pid: 23002, tid: 23002, label: "parent".into() }));
        let mut buf = Buffer::empty(Rect::new(0, 0, 60, 4));
        Gantt::new(&t, Theme::plain(false)).window(0, 1_000_000).legend(false).render(buf.area, &mut buf);
        let lines = buffer_lines(&buf);
        assert_eq!(lines[1], "child writes… 23001");
        assert_eq!(lines[2], "parent 23002");
        let mut buf = Buffer::empty(Rect::new(0, 0, 60, 4));
        Gantt::new(&t, Theme::plain(true)).window(0, 1_000_000).legend(false).render(buf.area, &mut buf);
        assert_eq!(buffer_lines(&buf)[1], "child writes~ 23001", "ASCII marks the cut with '~'");
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
        let area = Rect::new(0, 0, 92, 4);
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
        assert!(exact[1].starts_with("t0 1/10 ████▒▒▒▒████"), "{exact:?}");
        assert!(exact[2].starts_with("t1 1/11 ▒▒▒▒████▒▒▒▒"), "{exact:?}");
        assert!(exact[1].ends_with("████████████████████"), "{exact:?}");
    }

    #[test]
    fn a_clipped_gantt_draws_only_what_happened_before_the_playhead_and_marks_the_cursor() {
        let t = two_lane_gil();
        let mut buf = Buffer::empty(Rect::new(0, 0, 52, 4));
        Gantt::new(&t, Theme::plain(false))
            .window(0, 40_000_000)
            .clip(15_000_000)
            .cursor(25_000_000, Some(0))
            .render(buf.area, &mut buf);
        assert_eq!(
            buffer_lines(&buf),
            [
                "           0ms       10ms      20ms ▾    30ms",
                "t1 100/200 ██████████▒▒▒▒▒          │",
                "t2 100/201 ▒▒▒▒▒▒▒▒▒▒█████          │",
                "█ run  ▒ gil-wait",
            ]
        );
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

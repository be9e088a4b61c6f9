//! A recording's Gantt as one self-contained SVG, for slides and handouts: a title (what ran, on which machine,
//! when), then one block per run on one shared time scale (a compare's runs stacked), each with one row per lane
//! labelled like the TUI (`t1 4100/4112`), spans coloured per kind, a time axis with 1-2-5 ticks in µs / ms / s,
//! and a legend of the kinds shown. No script, no external font or image: it opens anywhere as it is.
//!
//! Spans too small to see are merged, by this rule: every span 1 px wide or more at the picture's scale is a rect
//! of its own; a span narrower than 1 px joins the rect before it on its lane when that rect ends less than 1 px
//! before the span starts and is of the span's kind or itself still narrower than 1 px. A rect that took in spans
//! of several kinds is coloured by the kind that filled most of its time. Every rect says how many spans it
//! stands for (`data-spans`) and shows them on hover (`<title>`); rects are drawn at least 0.5 px wide. So a lane
//! never has more than about two rects per pixel, whatever the number of spans.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Kind, RecordedRun, Recording};
use crate::timeline::{Lane, SPAN_KINDS, Span, SpanKind, Timeline};
use crate::units::fmt_dur_ns;
use crate::units::{fmt_ms, plural};

const WIDTH: f64 = 1200.0;
const MARGIN: f64 = 16.0;
const ROW: f64 = 18.0;
const BAR: f64 = 12.0;
/// Width of one character of the 12 px monospace font, near enough for laying out labels.
const CHAR_W: f64 = 7.2;
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// Fill colour per kind, close to the TUI's (green run, red gil-wait, blue start-up, ...), readable on white.
pub(crate) fn colour(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Run => "#2e9e44",
        SpanKind::GilWait => "#d9534f",
        SpanKind::Startup => "#3b6fd4",
        SpanKind::Ipc => "#a347c2",
        SpanKind::Serialize => "#c9a227",
        SpanKind::Idle => "#c8c8c8",
        SpanKind::Failed => "#ff1f1f",
    }
}

/// Text for XML: markup characters escaped; characters XML 1.0 forbids (most control characters) replaced.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(' '),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A lane's label as the TUI writes it (one rule for both: `Lane::full_label`).
pub(crate) fn lane_label(lane: &Lane) -> String {
    lane.full_label()
}

/// Lanes in reading order, as the TUI orders them (one rule for both: `timeline::lane_order`).
fn lane_order(t: &Timeline) -> Vec<usize> {
    crate::timeline::lane_order(&t.lanes)
}

/// The 1-2-5 step that gives at most about `target` ticks over `len_ns`.
pub(crate) fn tick_step(len_ns: u64, target: u64) -> u64 {
    let raw = (len_ns / target.max(1)).max(1);
    let mut mag = 1u64;
    loop {
        for m in [1, 2, 5] {
            if mag.saturating_mul(m) >= raw {
                return mag * m;
            }
        }
        mag = mag.saturating_mul(10);
    }
}

/// A tick's label, in the unit its step reads best in: `0`, `250 µs`, `1.5 ms`, `2 s`.
pub(crate) fn tick_label(ns: u64, step: u64) -> String {
    if ns == 0 {
        return "0".to_string();
    }
    let (unit, name) = match step.saturating_mul(2) {
        s if s >= 1_000_000_000 => (1_000_000_000u64, "s"),
        s if s >= 1_000_000 => (1_000_000, "ms"),
        s if s >= 1_000 => (1_000, "µs"),
        _ => (1, "ns"),
    };
    if step.is_multiple_of(unit) {
        format!("{} {name}", ns / unit)
    } else {
        format!("{:.1} {name}", ns as f64 / unit as f64)
    }
}

/// One drawn rect of a lane: a span, or the small spans merged into it.
#[derive(Debug)]
struct Bar {
    x0: f64,
    x1: f64,
    /// Time per kind, in the order of `SPAN_KINDS`.
    kind_ns: [u64; SPAN_KINDS.len()],
    spans: usize,
    first: Span,
}

impl Bar {
    fn kind(&self) -> SpanKind {
        let best = (0..SPAN_KINDS.len()).max_by_key(|&k| (self.kind_ns[k], std::cmp::Reverse(k))).unwrap_or(0);
        if self.spans == 1 { self.first.kind } else { SPAN_KINDS[best] }
    }

    fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    fn tooltip(&self) -> String {
        if self.spans == 1 {
            let s = &self.first;
            let task = if s.count > 1 {
                format!(" · tasks {}..{}", s.task, s.task + s.count - 1)
            } else if s.count == 1 {
                format!(" · task {}", s.task)
            } else {
                String::new()
            };
            let cpu = |c: i32| if c < 0 { "?".to_string() } else { c.to_string() };
            return format!(
                "{}{task} · {} · cpu {}→{}",
                s.kind.name(),
                fmt_dur_ns(s.dur_ns()),
                cpu(s.cpu_start),
                cpu(s.cpu_end)
            );
        }
        let parts: Vec<String> = SPAN_KINDS
            .iter()
            .zip(self.kind_ns)
            .filter(|(_, ns)| *ns > 0)
            .map(|(k, ns)| format!("{} {}", k.name(), fmt_dur_ns(ns)))
            .collect();
        format!("{} spans merged (too small to see apart): {}", self.spans, parts.join(", "))
    }
}

fn kind_index(kind: SpanKind) -> usize {
    SPAN_KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The rects of one lane's spans (sorted by start), at `px(ns)` (see the module doc for the merge rule).
fn bars(spans: &[&Span], px: &dyn Fn(u64) -> f64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    for s in spans {
        let (x0, x1) = (px(s.start_ns), px(s.end_ns));
        let narrow = x1 - x0 < 1.0;
        if let Some(b) = out.last_mut()
            && narrow
            && x0 - b.x1 < 1.0
            && (b.kind() == s.kind || b.width() < 1.0)
        {
            b.x1 = b.x1.max(x1);
            b.kind_ns[kind_index(s.kind)] += s.dur_ns();
            b.spans += 1;
            continue;
        }
        let mut kind_ns = [0; SPAN_KINDS.len()];
        kind_ns[kind_index(s.kind)] = s.dur_ns();
        out.push(Bar { x0, x1, kind_ns, spans: 1, first: **s });
    }
    out
}

fn run_heading(rec: &Recording, i: usize, r: &RecordedRun, speedup: Option<f64>) -> String {
    let mut parts = vec![match rec.kind {
        Kind::Compare => format!("{}. {}", i + 1, r.mode_name()),
        Kind::Run => r.mode_name(),
    }];
    parts.push(format!("wall {}", fmt_ms(r.wall_ms())));
    if let Some(s) = speedup {
        parts.push(format!("speedup {s:.2}×"));
    }
    let pids = {
        let mut p: Vec<u32> = r.timeline.lanes.iter().map(|l| l.pid).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    parts.push(format!("{}, {}", plural(r.timeline.lanes.len() as u64, "lane"), plural(pids as u64, "pid")));
    parts.join(" · ")
}

/// The SVG of a recording's Gantt (see the module doc).
pub(crate) fn svg(rec: &Recording) -> String {
    let longest_label =
        rec.runs.iter().flat_map(|r| r.timeline.lanes.iter().map(|l| lane_label(l).chars().count())).max().unwrap_or(4);
    let label_w = (longest_label as f64 * CHAR_W + 12.0).clamp(80.0, 320.0);
    let label_chars = ((label_w - 12.0) / CHAR_W) as usize;
    let x0 = MARGIN + label_w;
    let plot_w = WIDTH - MARGIN - x0;
    // One time scale for every run: the longest sets it.
    let windows: Vec<(u64, u64)> =
        rec.runs.iter().map(|r| (r.timeline.first_ns(), r.timeline.last_ns().max(r.timeline.first_ns()))).collect();
    let len_ns = windows.iter().map(|(a, b)| b - a).max().unwrap_or(1).max(1);
    let scale = plot_w / len_ns as f64;
    let step = tick_step(len_ns, 8);
    let speedups = rec.speedups();

    let mut body = String::new();
    let mut y = 84.0;
    let mut kinds_seen = [false; SPAN_KINDS.len()];
    for (i, r) in rec.runs.iter().enumerate() {
        let t = &r.timeline;
        let from = windows[i].0;
        let px = |ns: u64| x0 + ns.saturating_sub(from) as f64 * scale;
        let _ = writeln!(body, r#"<g class="run" data-run="{i}" data-mode="{}">"#, esc(&r.mode_name()));
        let _ = writeln!(
            body,
            r#"<text class="run-title" x="{MARGIN}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
            y + 13.0,
            esc(&cut(&run_heading(rec, i, r, speedups[i]), 150))
        );
        y += 20.0;
        if let Some(err) = r.error() {
            let _ = writeln!(
                body,
                r##"<text class="error" x="{MARGIN}" y="{:.1}" fill="#c00000">FAILED: {}</text>"##,
                y + 12.0,
                esc(&cut(err, 150))
            );
            y += 18.0;
        }
        let top = y;
        // Grouped once: a recording may hold 100,000 lanes and millions of spans.
        let mut by_lane: HashMap<u32, Vec<&Span>> = HashMap::new();
        for s in &t.spans {
            by_lane.entry(s.lane).or_default().push(s);
        }
        for (row, &li) in lane_order(t).iter().enumerate() {
            let lane = &t.lanes[li];
            let mut spans = by_lane.remove(&lane.id).unwrap_or_default();
            spans.sort_by_key(|s| (s.start_ns, s.end_ns));
            let _ = writeln!(
                body,
                r#"<g class="lane" data-lane="{}" data-pid="{}" data-tid="{}">"#,
                lane.id, lane.pid, lane.tid
            );
            if row % 2 == 1 {
                let _ = writeln!(
                    body,
                    r##"<rect class="row" x="{x0:.1}" y="{y:.1}" width="{plot_w:.1}" height="{ROW}" fill="#f3f3f3"/>"##
                );
            }
            let _ = writeln!(
                body,
                r#"<text class="label" x="{MARGIN}" y="{:.1}">{}</text>"#,
                y + 13.0,
                esc(&cut(&lane_label(lane), label_chars))
            );
            for b in bars(&spans, &px) {
                let kind = b.kind();
                kinds_seen[kind_index(kind)] = true;
                let class =
                    if b.spans > 1 { format!("span merged {}", kind.name()) } else { format!("span {}", kind.name()) };
                // A hairline of white between neighbours, so back-to-back tasks (and GIL hand-offs) read apart.
                let stroke = if kind == SpanKind::Failed {
                    r##" stroke="#000000" stroke-width="0.6""##
                } else if b.width() >= 3.0 {
                    r##" stroke="#ffffff" stroke-width="0.5""##
                } else {
                    ""
                };
                let _ = writeln!(
                    body,
                    r#"<rect class="{class}" x="{:.2}" y="{:.1}" width="{:.2}" height="{BAR}" fill="{}"{stroke} data-spans="{}"><title>{}</title></rect>"#,
                    b.x0,
                    y + (ROW - BAR) / 2.0,
                    b.width().max(0.5),
                    colour(kind),
                    b.spans,
                    esc(&b.tooltip())
                );
            }
            body.push_str("</g>\n");
            y += ROW;
        }
        // The clock starts at t0: a warm pool's start-up comes before it.
        let t0 = t.end.as_ref().map_or(t.t0_ns, |e| e.t0_ns);
        if t0 > from && t0 < windows[i].1 {
            let x = px(t0);
            let _ = writeln!(
                body,
                r##"<line class="t0" x1="{x:.2}" y1="{top:.1}" x2="{x:.2}" y2="{:.1}" stroke="#555555" stroke-dasharray="3,3"/><text x="{x:.2}" y="{:.1}" font-size="10" fill="#555555" text-anchor="middle">t0 (clock starts)</text>"##,
                y + 18.0,
                y + 28.0
            );
        }
        let _ = writeln!(body, r#"<g class="axis">"#);
        let _ = writeln!(
            body,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333333"/>"##,
            x0 + plot_w
        );
        let mut tick = 0u64;
        while tick <= len_ns {
            let x = x0 + tick as f64 * scale;
            let label = tick_label(tick, step);
            // A label that would run off the right edge ends at its tick instead.
            let anchor = if x + label.chars().count() as f64 * 3.0 > WIDTH - 2.0 { "end" } else { "middle" };
            let _ = writeln!(
                body,
                r##"<line x1="{x:.2}" y1="{y:.1}" x2="{x:.2}" y2="{:.1}" stroke="#333333"/><text class="tick" x="{x:.2}" y="{:.1}" font-size="10" text-anchor="{anchor}">{}</text>"##,
                y + 4.0,
                y + 15.0,
                esc(&label)
            );
            tick = match tick.checked_add(step) {
                Some(t) => t,
                None => break,
            };
        }
        body.push_str("</g>\n</g>\n");
        y += 38.0;
    }

    let _ = writeln!(body, r#"<g class="legend">"#);
    let mut lx = MARGIN;
    for (kind, _) in SPAN_KINDS.iter().zip(kinds_seen).filter(|(_, seen)| *seen) {
        let _ = writeln!(
            body,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y,
            colour(*kind),
            lx + 16.0,
            y + 10.5,
            kind.name()
        );
        lx += 16.0 + kind.name().len() as f64 * CHAR_W + 18.0;
    }
    body.push_str("</g>\n");
    let height = y + 12.0 + MARGIN;

    let title = format!("parlab · {}", rec.title());
    let engine = match &rec.engine.interpreter {
        Some(i) => {
            format!("{} ({} {}{})", rec.engine.name, i.path, i.version, if i.gil_enabled { "" } else { ", no GIL" })
        }
        None => rec.engine.name.clone(),
    };
    let made = rec.made.replacen('T', " ", 1).replace('Z', " UTC");
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="{FONT}" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{}</title>", esc(&cut(&title, 200)));
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let _ = writeln!(
        s,
        r#"<text class="title" x="{MARGIN}" y="30" font-size="16" font-weight="bold">{}</text>"#,
        esc(&cut(&title, 120))
    );
    let _ = writeln!(
        s,
        r##"<text class="machine" x="{MARGIN}" y="50" fill="#333333">{}</text>"##,
        esc(&cut(&rec.machine.describe(), 160))
    );
    let _ = writeln!(
        s,
        r##"<text class="made" x="{MARGIN}" y="66" fill="#333333">recorded {} · parlab {} · engine {}</text>"##,
        esc(&made),
        esc(&rec.parlab_version),
        esc(&cut(&engine, 100))
    );
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{compare_of_four, failed_run, recording_of, threads_run};
    use crate::timeline::tests::span;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not valid XML: {e}\n{svg}"))
    }

    fn class_is(n: &roxmltree::Node, class: &str) -> bool {
        n.attribute("class").is_some_and(|c| c.split(' ').next() == Some(class))
    }

    #[test]
    fn the_svg_has_one_lane_group_per_worker_and_a_rect_per_visible_span() {
        let rec = recording_of(threads_run(3, 6));
        let text = svg(&rec);
        let doc = parse(&text);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        let t = &rec.runs[0].timeline;
        let lanes: Vec<roxmltree::Node> = root.descendants().filter(|n| class_is(n, "lane")).collect();
        assert_eq!(lanes.len(), t.lanes.len());
        for lane in &lanes {
            let id: u32 = lane.attribute("data-lane").unwrap().parse().unwrap();
            let spans = t.spans.iter().filter(|s| s.lane == id).count();
            let rects = lane.children().filter(|n| class_is(n, "span")).count();
            assert_eq!(rects, spans, "lane {id}: every span here is wide enough to be drawn alone");
            let l = t.lanes.iter().find(|l| l.id == id).unwrap();
            let label = lane.children().find(|n| class_is(n, "label")).unwrap().text().unwrap();
            assert_eq!(label, format!("{} {}/{}", l.label, l.pid, l.tid));
        }
        // Self-contained: no script, no link to anything outside.
        assert!(!text.contains("<script") && !text.contains("href") && !text.contains("url("), "{text}");
    }

    #[test]
    fn a_compare_draws_one_block_per_run_on_one_time_scale() {
        let rec = compare_of_four();
        let doc_text = svg(&rec);
        let doc = parse(&doc_text);
        let runs: Vec<roxmltree::Node> = doc.root_element().children().filter(|n| class_is(n, "run")).collect();
        assert_eq!(runs.len(), 4);
        for (node, r) in runs.iter().zip(&rec.runs) {
            assert_eq!(node.attribute("data-mode"), Some(r.mode_name().as_str()));
            let lanes = node.children().filter(|n| class_is(n, "lane")).count();
            assert_eq!(lanes, r.timeline.lanes.len());
        }
        // Same scale: every axis ends with the same tick labels (the longest run's).
        let ticks = |n: &roxmltree::Node| -> Vec<String> {
            n.descendants().filter(|d| class_is(d, "tick")).map(|d| d.text().unwrap().to_string()).collect()
        };
        let first = ticks(&runs[0]);
        assert!(first.len() >= 3, "{first:?}");
        assert!(runs.iter().all(|r| ticks(r) == first));
        let title = doc.root_element().children().find(|n| class_is(n, "title")).unwrap().text().unwrap().to_string();
        assert!(title.contains("compare of 4 modes"), "{title}");
        // The baseline's speedup is 1.00×.
        assert!(doc_text.contains("1. sequential · wall 40.0 ms · speedup 1.00×"), "{doc_text}");
    }

    #[test]
    fn spans_too_small_to_see_are_merged_and_every_span_is_counted_once() {
        let mut run = threads_run(1, 1);
        let t = &mut run.timeline;
        t.spans.clear();
        // 10,000 spans of 1 µs, alternating kinds, over 20 ms; and one 10 ms span after them.
        for i in 0..10_000u64 {
            let kind = if i % 2 == 0 { SpanKind::Run } else { SpanKind::Ipc };
            let start = t.t0_ns + i * 2_000;
            t.spans.push(Span { start_ns: start, end_ns: start + 1_000, kind, ..span(0, kind, 0, 0, 0) });
        }
        let start = t.t0_ns + 20_000_000;
        t.spans.push(Span { start_ns: start, end_ns: start + 10_000_000, ..span(0, SpanKind::Run, 0, 0, 0) });
        t.end.as_mut().unwrap().t_end_ns = start + 10_000_000;
        let rec = recording_of(run);
        let text = svg(&rec);
        let doc = parse(&text);
        let rects: Vec<roxmltree::Node> = doc.descendants().filter(|n| class_is(n, "span")).collect();
        let counted: usize = rects.iter().map(|r| r.attribute("data-spans").unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(counted, 10_001);
        assert!(rects.len() <= 2 * WIDTH as usize, "{} rects for a 1200 px picture", rects.len());
        let last = rects.last().unwrap();
        assert_eq!(last.attribute("data-spans"), Some("1"), "a wide span stays a rect of its own");
        assert!(rects.iter().any(|r| r.attribute("class") == Some("span merged run")));
    }

    #[test]
    fn a_failed_span_is_drawn_in_its_colour_and_the_failure_is_said() {
        let rec = recording_of(failed_run());
        let text = svg(&rec);
        let doc = parse(&text);
        let failed: Vec<roxmltree::Node> =
            doc.descendants().filter(|n| n.attribute("class") == Some("span failed")).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].attribute("fill"), Some(colour(SpanKind::Failed)));
        let err = doc.descendants().find(|n| class_is(n, "error")).unwrap().text().unwrap().to_string();
        assert!(err.starts_with("FAILED: worker p2 (pid 4102) was killed"), "{err}");
        let legend: Vec<String> = doc
            .descendants()
            .filter(|n| class_is(n, "legend"))
            .flat_map(|g| g.descendants().filter_map(|d| d.text().map(str::to_string)).collect::<Vec<_>>())
            .filter(|s| !s.trim().is_empty())
            .collect();
        assert!(legend.contains(&"failed".to_string()) && legend.contains(&"run".to_string()), "{legend:?}");
    }

    #[test]
    fn hostile_labels_are_escaped_into_valid_xml() {
        let mut run = threads_run(1, 1);
        run.timeline.lanes[0].label = "<script>&\u{1}\"x'".to_string();
        let text = svg(&recording_of(run));
        let doc = parse(&text);
        let label = doc.descendants().find(|n| class_is(n, "label")).unwrap().text().unwrap().to_string();
        assert!(label.starts_with("<script>&\u{fffd}\"x'"), "{label}");
        assert!(!text.contains("<script>"));
    }

    #[test]
    fn ticks_step_by_one_two_five_and_read_in_the_unit_of_their_step() {
        assert_eq!(tick_step(412_000_000, 8), 100_000_000);
        assert_eq!(tick_step(40_000, 8), 5_000);
        assert_eq!(tick_step(3_000_000_000, 8), 500_000_000);
        assert_eq!(tick_label(0, 5_000), "0");
        assert_eq!(tick_label(15_000, 5_000), "15 µs");
        assert_eq!(tick_label(1_500_000, 500_000), "1.5 ms");
        assert_eq!(tick_label(200_000_000, 100_000_000), "200 ms");
        assert_eq!(tick_label(2_500_000_000, 500_000_000), "2.5 s");
        assert_eq!(tick_label(3_000_000_000, 1_000_000_000), "3 s");
    }
}

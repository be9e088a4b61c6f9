//! The compare view: 2–4 runs of the same experiment in different modes on one time scale, then the comparison
//! table: wall, speedup, efficiency, start-up, ipc, gil-wait, and what the figures may and may not be read as.
//! Each run gets its own pane (side by side, or a 2x2 grid) when every pane has room for all of its lanes; else
//! the runs are stacked in one pane on one shared time axis, so every mode keeps its lanes even at 80x24.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Compare, Run};
use crate::timeline::SPAN_KINDS;
use crate::units::fmt_ms;

use super::gantt::{self, Gantt};
use super::markdown;
use super::panel::{pane, panel_block, put, run_window};

/// The shared window length: the longest run so far (a live one counts up to now).
pub(crate) fn window_len(c: &Compare, now_ns: u64) -> u64 {
    c.runs
        .iter()
        .map(|r| {
            let (a, b) = run_window(r, now_ns);
            b - a
        })
        .max()
        .unwrap_or(1_000_000)
}

/// Efficiency above this share of the cores is flagged: CPU work cannot really beat the cores it has.
const OVER_CORES: f64 = 1.0;

pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let Some(c) = &app.compare else { return };
    let n = c.exps.len() as u16;
    let notes = notes(app, c, body.width.saturating_sub(2) as usize);
    let table_h = (3 + n + notes.len() as u16).min(body.height / 2);
    let panes = Rect::new(body.x, body.y, body.width, body.height - table_h);
    let table = Rect::new(body.x, body.y + panes.height, body.width, table_h);
    let len = window_len(c, app.now_ns);

    match boxes(c, panes) {
        Some(rects) => {
            for (i, exp) in c.exps.iter().enumerate() {
                let legend = i + 1 == c.exps.len() || rects[i].height > 6;
                pane(app, c.runs.get(i), exp.mode, len, rects[i], buf, legend);
            }
        }
        None => stacked(app, c, len, panes, buf),
    }
    draw_table(app, c, &notes, table, buf);
}

/// Rows a run's lanes take (an error line counts; a run not started yet takes one, for its note).
fn lane_rows(run: Option<&Run>) -> u16 {
    run.map_or(1, |r| (r.timeline.lanes.len() as u16 + u16::from(r.error().is_some())).max(1))
}

/// One pane per run: side by side when each gets 50 columns, a 2x2 grid for four when that fits; `None` when
/// that is too narrow, or a pane would be too short for its axis and all of its lanes.
fn boxes(c: &Compare, panes: Rect) -> Option<Vec<Rect>> {
    let n = c.exps.len() as u16;
    let rects: Vec<Rect> = if panes.width >= 50 * n {
        let w = panes.width / n;
        (0..n)
            .map(|i| {
                Rect::new(panes.x + i * w, panes.y, if i + 1 == n { panes.width - i * w } else { w }, panes.height)
            })
            .collect()
    } else if n == 4 && panes.width >= 100 {
        let w = panes.width / 2;
        let h = panes.height / 2;
        (0..4)
            .map(|i| {
                let (cx, cy) = (i % 2, i / 2);
                Rect::new(
                    panes.x + cx * w,
                    panes.y + cy * h,
                    if cx == 1 { panes.width - w } else { w },
                    if cy == 1 { panes.height - h } else { h },
                )
            })
            .collect()
    } else {
        return None;
    };
    let fits = rects.iter().enumerate().all(|(i, r)| r.height >= 2 + 1 + lane_rows(c.runs.get(i)));
    fits.then_some(rects)
}

/// Rows for each run out of `avail`: all it wants when they fit, else shared out one row at a time, so each run
/// gets a fair part (a run shown in fewer rows than lanes says how many more it has).
fn share(want: &[u16], avail: u16) -> Vec<u16> {
    let mut got = vec![0u16; want.len()];
    let mut left = avail;
    while left > 0 {
        let mut gave = false;
        for (g, w) in got.iter_mut().zip(want) {
            if left > 0 && *g < *w {
                *g += 1;
                left -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    got
}

/// Every run in one pane on one time axis (each from its own first span): a column naming the mode, then its
/// lanes, then one legend for all.
fn stacked(app: &App, c: &Compare, len: u64, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let block = panel_block(" lanes · every mode on one time axis ".into(), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 2 || inner.width < 30 {
        return;
    }
    let mode_w =
        c.exps.iter().map(|e| markdown::text_width(&e.label()) as u16 + 1).max().unwrap_or(0).min(inner.width / 4);
    let lanes_w = inner.width - mode_w;
    let label_w = c.runs.iter().map(|r| Gantt::natural_label_width(&r.timeline, lanes_w)).max().unwrap_or(3);
    let want: Vec<u16> = (0..c.exps.len()).map(|i| lane_rows(c.runs.get(i))).collect();
    let legend = inner.height > 2 + c.exps.len() as u16;
    let rows = share(&want, inner.height - 1 - u16::from(legend));

    let (a, b) = app.tl.window(len, lanes_w.saturating_sub(label_w + 2), c.live());
    gantt::shared_axis(buf, (inner.x + mode_w, inner.y, lanes_w), label_w, (a, b), theme);
    let mut y = inner.y + 1;
    let mut present = [false; SPAN_KINDS.len()];
    for (i, exp) in c.exps.iter().enumerate() {
        let h = rows[i];
        if h == 0 {
            continue;
        }
        let run = c.runs.get(i);
        let live = run.is_some_and(|r| r.live);
        let name_style = if live { theme.accent() } else { theme.text() };
        buf.set_stringn(inner.x, y, exp.label(), mode_w.saturating_sub(1) as usize, name_style);
        if h > 1
            && let Some(r) = run.filter(|r| r.succeeded())
        {
            buf.set_stringn(inner.x, y + 1, fmt_ms(r.wall_ms()), mode_w.saturating_sub(1) as usize, theme.dim());
        }
        let lanes = Rect::new(inner.x + mode_w, y, lanes_w, h);
        y += h;
        let Some(r) = run else {
            put(buf, lanes, lanes.y, &Line::styled("waiting for its turn (runs never overlap)", theme.dim()));
            continue;
        };
        let mut lanes = lanes;
        if let Some(err) = r.error() {
            let st = if r.cancelled { theme.warn() } else { theme.bad() };
            put(buf, lanes, lanes.y, &Line::styled(err, st));
            lanes = Rect { y: lanes.y + 1, height: lanes.height - 1, ..lanes };
        }
        if r.timeline.lanes.is_empty() {
            if r.live {
                put(buf, lanes, lanes.y, &Line::styled("starting the lab process…", theme.dim()));
            }
            continue;
        }
        for (p, q) in present.iter_mut().zip(r.digest.present()) {
            *p |= q;
        }
        if lanes.height == 0 {
            continue;
        }
        let from = r.digest.first_ns(&r.timeline);
        let mut g = Gantt::new(&r.timeline, theme);
        if let Some(c) = app.tl.cursor {
            g = g.cursor(from + c, None);
        }
        g.digest(&r.digest)
            .window(from + a, from + b)
            .axis(false)
            .legend(false)
            .label_width(label_w)
            .render(lanes, buf);
    }
    if legend {
        gantt::draw_legend(buf, Rect::new(inner.x + mode_w, y, lanes_w, 1), present, theme);
    }
}

/// What the table's figures may be read as, wrapped to `width`: the ceiling (CPU work only), an efficiency over
/// the cores explained, the checksums.
fn notes(app: &App, c: &Compare, width: usize) -> Vec<Line<'static>> {
    let theme = app.theme;
    let cores = app.cores;
    let first = &c.exps[0];
    let mut out = Vec::new();
    let mut note = |text: String, style: Style| {
        out.extend(markdown::wrap_marked(
            &[(text, style)],
            width,
            Span::raw(""),
            Span::raw("  "),
            markdown::more(theme),
        ))
    };
    if first.workload.is_io() {
        note(
            format!(
                "{} waits rather than computes: waiting needs no core, so speedup is not capped at {cores}× (that \
                 ceiling holds for CPU work) and efficiency against the cores does not apply (—).",
                first.workload
            ),
            theme.dim(),
        );
    } else {
        note(
            format!("the ceiling for CPU work on {cores} cores is {cores}×; efficiency = speedup ÷ cores."),
            theme.dim(),
        );
        let over = (0..c.runs.len()).any(|i| c.speedup(i).is_some_and(|s| s / cores as f64 > OVER_CORES + 0.005));
        if over {
            note(
                format!(
                    "* above 100% of {cores} cores: CPU work cannot beat its cores, so the sequential baseline was \
                     slowed (other programs on the cores, a cold cache); press c to compare again."
                ),
                theme.warn(),
            );
        }
    }
    let done: Vec<u64> =
        c.runs.iter().filter(|r| r.succeeded()).map(|r| r.timeline.end.as_ref().map_or(0, |e| e.checksum)).collect();
    if c.done() && done.len() > 1 {
        if done.windows(2).all(|w| w[0] == w[1]) {
            note(format!("checksums equal ({:#x}); overheads are summed over lanes", done[0]), theme.dim());
        } else {
            note("checksums differ between modes: a mode computed something else (a bug)".into(), theme.bad());
        }
    }
    out
}

fn draw_table(app: &App, c: &Compare, notes: &[Line<'static>], table: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let cores = app.cores as f64;
    let io = c.exps[0].workload.is_io();
    let status = if c.cancelled {
        "cancelled".to_string()
    } else if c.done() {
        "done".to_string()
    } else {
        let i = c.runs.len();
        format!("running {i} of {}: {}", c.exps.len(), c.exps[i - 1].label())
    };
    let first = &c.exps[0];
    let title = format!(" compare · {} × {} · {} · {} cores ", first.workload, first.tasks, status, app.cores);
    let block = panel_block(title, theme);
    let inner = block.inner(table);
    block.render(table, buf);
    let head = format!(
        "{:<14}{:>10}{:>9}{:>11}{:>10}{:>10}{:>10}",
        "mode", "wall", "speedup", "efficiency", "start-up", "ipc", "gil-wait"
    );
    put(buf, inner, inner.y, &Line::styled(head, theme.dim()));
    for (i, exp) in c.exps.iter().enumerate() {
        let y = inner.y + 1 + i as u16;
        let run = c.runs.get(i);
        let line = match run {
            None => Line::styled(format!("{:<14}{:>10}", exp.label(), "waiting"), theme.dim()),
            Some(r) if r.live => Line::styled(format!("{:<14}{:>10}", exp.label(), "running"), theme.accent()),
            Some(r) if r.error().is_some() => {
                let st = if r.cancelled { theme.warn() } else { theme.bad() };
                Line::styled(format!("{:<14}{}", exp.label(), r.error().unwrap_or_default()), st)
            }
            Some(r) => {
                let o = r.digest.overhead_ms();
                let (sp, eff) = match c.speedup(i) {
                    Some(s) if io => (format!("{s:.2}×"), "—".to_string()),
                    Some(s) => {
                        let e = s / cores;
                        let mark = if e > OVER_CORES + 0.005 { "*" } else { "" };
                        (format!("{s:.2}×"), format!("{:.0}%{mark}", e * 100.0))
                    }
                    None => ("—".into(), "—".into()),
                };
                Line::from(vec![
                    Span::styled(format!("{:<14}", exp.label()), theme.text()),
                    Span::styled(format!("{:>10}", fmt_ms(r.wall_ms())), theme.accent()),
                    Span::styled(
                        format!(
                            "{sp:>9}{eff:>11}{:>10}{:>10}{:>10}",
                            fmt_ms(o.startup),
                            fmt_ms(o.ipc + o.serialize),
                            fmt_ms(o.gil_wait)
                        ),
                        theme.text(),
                    ),
                ])
            }
        };
        put(buf, inner, y, &line);
    }
    let y0 = inner.y + 1 + c.exps.len() as u16;
    for (k, l) in notes.iter().enumerate() {
        put(buf, inner, y0 + k as u16, l);
    }
}

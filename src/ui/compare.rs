//! The compare view: 2–4 runs of the same experiment in different modes, side by side (or stacked when narrow)
//! on one time scale, then the comparison table: wall, speedup, efficiency, start-up, ipc, gil-wait.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Compare};

use super::panel::{fmt_ms, pane, panel_block, put, run_window};

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

pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let Some(c) = &app.compare else { return };
    let n = c.exps.len() as u16;
    let table_h = (n + 4).min(body.height / 2);
    let panes = Rect::new(body.x, body.y, body.width, body.height - table_h);
    let table = Rect::new(body.x, body.y + panes.height, body.width, table_h);
    let len = window_len(c, app.now_ns);

    // Side by side when each pane gets 50 columns, a 2x2 grid for four when that fits, else stacked.
    let rects: Vec<Rect> = if body.width >= 50 * n {
        let w = panes.width / n;
        (0..n)
            .map(|i| {
                Rect::new(panes.x + i * w, panes.y, if i + 1 == n { panes.width - i * w } else { w }, panes.height)
            })
            .collect()
    } else if n == 4 && body.width >= 100 {
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
        let h = panes.height / n;
        (0..n)
            .map(|i| {
                Rect::new(panes.x, panes.y + i * h, panes.width, if i + 1 == n { panes.height - i * h } else { h })
            })
            .collect()
    };
    for (i, exp) in c.exps.iter().enumerate() {
        let legend = i + 1 == c.exps.len() || rects[i].height > 6;
        pane(app, c.runs.get(i), exp.mode, len, rects[i], buf, legend);
    }

    // The table.
    let status = if c.cancelled {
        "cancelled".to_string()
    } else if c.done() {
        "done".to_string()
    } else {
        let i = c.runs.len();
        format!("running {i} of {}: {}", c.exps.len(), c.exps[i - 1].mode)
    };
    let first = &c.exps[0];
    let title = format!(
        " compare · {} × {} · {} · {} cores (ceiling {}×) ",
        first.workload, first.tasks, status, app.cores, app.cores
    );
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
            None => Line::styled(format!("{:<14}{:>10}", exp.mode.name(), "waiting"), theme.dim()),
            Some(r) if r.live => Line::styled(format!("{:<14}{:>10}", exp.mode.name(), "running"), theme.accent()),
            Some(r) if r.error().is_some() => {
                let st = if r.cancelled { theme.warn() } else { theme.bad() };
                Line::styled(format!("{:<14}{}", exp.mode.name(), r.error().unwrap_or_default()), st)
            }
            Some(r) => {
                let o = r.digest.overhead_ms();
                let (sp, eff) = match c.speedup(i) {
                    Some(s) => (format!("{s:.2}×"), format!("{:.0}%", s / app.cores as f64 * 100.0)),
                    None => ("—".into(), "—".into()),
                };
                Line::from(vec![
                    Span::styled(format!("{:<14}", exp.mode.name()), theme.text()),
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
    let done: Vec<u64> =
        c.runs.iter().filter(|r| r.succeeded()).map(|r| r.timeline.end.as_ref().map_or(0, |e| e.checksum)).collect();
    let y = inner.y + 1 + c.exps.len() as u16;
    if c.done() && done.len() > 1 {
        let line = if done.windows(2).all(|w| w[0] == w[1]) {
            Line::styled(
                format!("checksums equal across modes ({:#x}); overheads are summed over lanes", done[0]),
                theme.dim(),
            )
        } else {
            Line::styled("checksums differ between modes: a mode computed something else (a bug)", theme.bad())
        };
        put(buf, inner, y, &line);
    }
}

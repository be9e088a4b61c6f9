//! The replay screen: a recording labelled as a replay with its date and machine, each run in a pane (per-core bars
//! of parlab's own processes as they were at the playhead, the Gantt up to the playhead in the view's window, the
//! run's figures), then the playback line and the cursor's readout.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, CoreSamples, Run, RunCpu};
use crate::units::{fmt_ms, format_ns, plural};
use crate::view::{Replay, SPEEDS, origin_and_len, readout, speed_name};

use super::cores::{CoreBars, RunWindow};
use super::gantt::Gantt;
use super::panel::{overhead_line, panel_block, put};
use super::theme::Theme;

/// A run's samples up to `at` (absolute ns): the core bars of a replay show the run as it was then.
pub(crate) fn cpu_until(cpu: &RunCpu, at: u64) -> RunCpu {
    let mut out = RunCpu::default();
    for s in cpu.samples.iter().filter(|s| s.at_ns <= at) {
        out.add(s.clone());
    }
    out
}

/// What a run's pane title says: its mode and Python counterpart.
pub(crate) fn run_title(r: &Run) -> String {
    match (r.exp(), r.demo()) {
        (Some(e), _) => format!(" {} · {} ", e.title(), e.mode.python()),
        (_, Some(d)) => format!(" demo {} ", d.name),
        _ => " run ".to_string(),
    }
}

/// The run's figures: wall, speedup against the recording's baseline, efficiency; or what failed.
pub(crate) fn figures(r: &Run, speedup: Option<f64>, theme: Theme) -> Line<'static> {
    let sep = theme.sep();
    if let Some(err) = r.error() {
        return Line::styled(format!("FAILED: {err}"), theme.bad());
    }
    let mut spans = vec![Span::styled(format!("wall {}", fmt_ms(r.wall_ms())), theme.accent())];
    let cores = r.timeline.cores.max(1);
    if r.exp().is_some_and(|e| e.mode == crate::experiment::Mode::Sequential) {
        spans.push(Span::styled(format!("{sep}the sequential baseline"), theme.text()));
    } else if let Some(sp) = speedup {
        spans.push(Span::styled(
            format!(
                "{sep}speedup {sp:.2}×{sep}efficiency {:.0}% of {}",
                sp / f64::from(cores) * 100.0,
                plural(u64::from(cores), "core")
            ),
            theme.text(),
        ));
    } else {
        let p = r.digest.parallelism(&r.timeline);
        spans.push(Span::styled(format!("{sep}parallelism {p:.2}× (run/wall)"), theme.text()));
    }
    Line::from(spans)
}

/// The replay's window, relative, for `cells` cells.
pub(crate) fn window(app: &App, rp: &Replay, cells: u16) -> (u64, u64) {
    app.tl.window(rp.extent(), cells, false)
}

/// The lane id of the view's cursor lane in run `i` of `runs`, if it is there.
pub(crate) fn cursor_lane(runs: &[&Run], lane: usize, i: usize) -> Option<u32> {
    let before: usize = runs[..i].iter().map(|r| r.timeline.lanes.len()).sum();
    let t = &runs[i].timeline;
    let k = lane.checked_sub(before)?;
    crate::timeline::lane_order(&t.lanes).get(k).map(|&l| t.lanes[l].id)
}

/// One run's Gantt in the view's window, up to `clip`, with the cursor.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gantt<'a>(
    app: &App,
    r: &'a Run,
    (from, to): (u64, u64),
    origin: u64,
    clip: Option<u64>,
    lane: Option<u32>,
    theme: Theme,
) -> Gantt<'a> {
    let mut g = Gantt::new(&r.timeline, theme).digest(&r.digest).window(origin + from, origin + to);
    if let Some(c) = clip {
        g = g.clip(origin + c);
    }
    if let Some(c) = app.tl.cursor {
        g = g.cursor(origin + c, lane);
    }
    g
}

pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let Some(rp) = &app.replay else { return };
    let theme = app.theme;
    put(buf, body, body.y, &Line::styled(format!(" {}", rp.label()), theme.dim()));
    let bottom = 2u16;
    let panes = Rect::new(body.x, body.y + 1, body.width, body.height.saturating_sub(1 + bottom));
    let runs: Vec<&Run> = rp.runs.iter().collect();
    let n = runs.len().max(1) as u16;
    // Each pane: its lanes, an axis, a legend, the figures, its border; what is left goes to core bars. When that
    // does not fit, compact: one figure row, and one legend under the last run.
    let full: Vec<u16> = runs.iter().map(|r| r.timeline.lanes.len() as u16 + 6).collect();
    let compact = full.iter().sum::<u16>() > panes.height;
    let wants: Vec<u16> = if compact {
        let last = runs.len().saturating_sub(1);
        runs.iter().enumerate().map(|(i, r)| r.timeline.lanes.len() as u16 + 4 + u16::from(i == last)).collect()
    } else {
        full
    };
    let total: u16 = wants.iter().sum();
    let cells = body.width.saturating_sub(24);
    let (from, to) = window(app, rp, cells);
    let mut y = panes.y;
    for (i, r) in runs.iter().enumerate() {
        let core_rows = r.timeline.cores.min(4) as u16 + 1;
        let h = if total <= panes.height {
            // Room for the core bars, no more: a short run keeps its lanes together.
            let spare = ((panes.height - total) / n).min(core_rows);
            wants[i] + spare
        } else {
            (panes.height / n).max(4)
        };
        let h = h.min(panes.y + panes.height - y);
        if h < 3 {
            break;
        }
        let legend = !compact || i + 1 == runs.len();
        let fig_rows = if compact { 1 } else { 2 };
        let area = Rect::new(panes.x, y, panes.width, h);
        y += h;
        let block = panel_block(run_title(r), theme);
        let inner = block.inner(area);
        block.render(area, buf);
        let (origin, _) = origin_and_len(r, 0, None);
        let at = origin + rp.playhead;
        let lanes = r.timeline.lanes.len() as u16;
        let mut gy = inner.y;
        let room = inner.height.saturating_sub(fig_rows);
        let cpu = cpu_until(&r.cpu, at);
        if r.cpu.measured() && room >= core_rows + lanes + 2 {
            let rw = RunWindow {
                timeline: &r.timeline,
                digest: Some(&r.digest),
                cpu: Some(&cpu),
                from: origin + from,
                to: at.min(origin + to),
                live: true,
            };
            let none = CoreSamples::default();
            CoreBars::new(&none, Some(rw), r.timeline.cores, theme)
                .system(false)
                .render(Rect::new(inner.x, gy, inner.width, core_rows), buf);
            gy += core_rows;
        }
        let gh = (inner.y + inner.height).saturating_sub(gy + fig_rows);
        let lane = cursor_lane(&runs, app.tl.lane, i);
        gantt(app, r, (from, to), origin, Some(rp.playhead), lane, theme)
            .legend(legend)
            .render(Rect::new(inner.x, gy, inner.width, gh), buf);
        let fy = inner.y + inner.height - fig_rows;
        put(buf, inner, fy, &figures(r, rp.speedups.get(i).copied().flatten(), theme));
        if !compact {
            put(buf, inner, fy + 1, &overhead_line(r.digest.overhead_ms(), theme));
        }
    }
    let by = body.y + body.height - bottom;
    put(buf, body, by, &playback_line(rp, (from, to), theme));
    if let Some(c) = app.tl.cursor {
        let origins: Vec<u64> = runs.iter().map(|r| origin_and_len(r, 0, None).0).collect();
        put(buf, body, by + 1, &Line::styled(format!(" {}", readout(&runs, &origins, app.tl.lane, c)), theme.text()));
    }
}

/// `▶ playing at 1/100x · 12.3ms of 412ms · window 0ms..412ms`.
pub(crate) fn playback_line(rp: &Replay, (from, to): (u64, u64), theme: Theme) -> Line<'static> {
    let sep = theme.sep();
    let (sym, state) = match (rp.playing, theme.ascii) {
        (true, false) => ("▶", "playing"),
        (true, true) => (">", "playing"),
        (false, false) => ("⏸", "paused"),
        (false, true) => ("||", "paused"),
    };
    let f = |ns: u64| format_ns(i128::from(ns));
    Line::from(vec![
        Span::styled(format!(" {sym} replay {state} at {}", speed_name(SPEEDS[rp.speed])), theme.accent()),
        Span::styled(
            format!("{sep}{} of {}{sep}window {}..{}", f(rp.playhead), f(rp.extent()), f(from), f(to)),
            theme.text(),
        ),
    ])
}

//! The experiment panel of the lesson view: the knobs, per-core bars (system and parlab), the Gantt of the current
//! run on a live time axis, and the summary row (wall, speedup or parallelism, efficiency, overhead split), plus
//! the exercise check and prediction lines.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use crate::app::{App, Check, OTHERS_WARN_CORES, REPEATS, Run, Setup};
use crate::experiment::Mode;
use crate::experiment::demo::DemoSpec;
use crate::experiment::knob::KNOBS;
use crate::lesson::Knob;
use crate::timeline::Overhead;
use crate::units::{fmt_ms, fmt_num, format_bytes, format_interval_us, format_ns, plural};

use super::cores::{CoreBars, RunWindow};
use super::gantt::Gantt;
use super::markdown::{self, Laid, TableLook};
use super::theme::Theme;

/// The time window a run is drawn on: from its first span to now (live) or its end.
pub(crate) fn run_window(run: &Run, now_ns: u64) -> (u64, u64) {
    let t = &run.timeline;
    let d = &run.digest;
    // Before the lab's first event there is no time zero yet: start the axis now.
    let from = if t.t0_ns == 0 && t.spans.is_empty() { now_ns } else { d.first_ns(t) };
    let mut to = d.last_ns(t);
    if run.live && now_ns > to {
        to = now_ns;
    }
    (from, to.max(from + 1_000_000))
}

/// The panel's window: the run's, through the timeline view (zoom, pan, a paused live view).
pub(crate) fn view_window(app: &App, r: &Run, cells: u16) -> (u64, u64) {
    let (origin, len) = crate::view::origin_and_len(r, app.now_ns, app.tl.paused_at);
    let (a, b) = app.tl.window(len, cells, r.live);
    (origin + a, origin + b)
}

pub(crate) fn panel_block(title: String, theme: Theme) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_set(theme.border_set())
        .border_style(theme.border())
        .title(Span::styled(title, theme.accent()))
}

/// Writes a line, cut at the area's width.
pub(crate) fn put(buf: &mut Buffer, area: Rect, y: u16, line: &Line<'_>) {
    if y < area.y + area.height {
        buf.set_line(area.x, y, line, area.width);
    }
}

/// The panel's title: which block of the section it shows ("experiment 2 of 3: computing-needs-cores").
pub(crate) fn title(app: &App) -> String {
    let Some(s) = app.panel.setup.as_ref() else {
        return " experiment ".into();
    };
    let at = match app.panel_position() {
        Some((i, n)) if n > 1 => format!(" {i} of {n}"),
        _ => String::new(),
    };
    format!(" {}{at}: {} ", s.kind(), s.id)
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let setup = app.panel.setup.as_ref();
    let block = panel_block(title(app), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 4 || inner.width < 20 {
        return;
    }
    let Some(setup) = setup else {
        return draw_empty(app, inner, buf);
    };
    if let Some(demo) = &setup.demo {
        return draw_demo(app, setup, demo, inner, buf);
    }

    let mut y = inner.y;
    let knobs = super::markdown::wrap_line(&knob_line(setup, app), inner.width as usize);
    for l in knobs.iter().take(2) {
        put(buf, inner, y, l);
        y += 1;
    }

    // The bottom: summary rows, then check, prediction and note lines, as room allows.
    let mut bottom: Vec<Line> = stale_lines(app);
    bottom.extend(summary(app, app.panel.run.as_ref()));
    bottom.extend(extra_lines(app, setup));
    let bottom: Vec<Line> = bottom.iter().flat_map(|l| super::markdown::wrap_line(l, inner.width as usize)).collect();
    let mut bottom = bottom;
    let max_bottom = (inner.height / 3).max(2) as usize;
    bottom.truncate(max_bottom);

    let run = app.panel.run.as_ref();
    let window = run.map(|r| view_window(app, r, inner.width.saturating_sub(20)));
    let rw = run.zip(window).map(|(r, (from, to))| RunWindow {
        timeline: &r.timeline,
        digest: Some(&r.digest),
        cpu: Some(&r.cpu),
        from,
        to,
        live: r.live,
    });
    let bars = CoreBars::new(&app.sys, rw, app.cores, theme);
    let top = y - inner.y;
    let space_left = inner.height.saturating_sub(top + bottom.len() as u16);
    let lanes = run.map_or(2, |r| r.timeline.lanes.len().max(1) as u16);
    // Cores get up to a third of the room; the Gantt the rest.
    let core_rows = bars.wanted_height((space_left / 3).clamp(1, 8)).min(space_left.saturating_sub(3));
    let gantt_h = space_left.saturating_sub(core_rows + 1).min(lanes + 2).max(3.min(space_left));
    if core_rows >= 2 {
        bars.render(Rect::new(inner.x, y, inner.width, core_rows), buf);
        y += core_rows + 1;
    }
    let gantt_area = Rect::new(inner.x, y, inner.width, gantt_h.min((inner.y + inner.height).saturating_sub(y)));
    draw_run(app, run, window, gantt_area, buf, setup);
    let by = inner.y + inner.height - bottom.len() as u16;
    for (i, l) in bottom.iter().enumerate() {
        put(buf, inner, by + i as u16, l);
    }
}

/// A section without an experiment or exercise: say so and where the nearest one is, and keep a run that is
/// still going in view.
fn draw_empty(app: &App, inner: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let w = inner.width;
    let mut lines = wrapped("This section has no experiment.".into(), theme.dim(), w);
    if let Some(lesson) = app.lesson() {
        let s = app.view.section;
        let has = |i: usize| lesson.sections.get(i).is_some_and(|sec| !crate::app::panel_blocks(sec).is_empty());
        let next = (s + 1..lesson.sections.len()).find(|i| has(*i));
        let prev = (0..s).rev().find(|i| has(*i));
        let [l, r, _, _] = theme.arrows();
        let hint = match (next, prev) {
            (Some(n), _) => Some(format!("The next one is in section {} ({r}).", n + 1)),
            (None, Some(p)) => Some(format!("The last one was in section {} ({l}).", p + 1)),
            (None, None) => None,
        };
        if let Some(h) = hint {
            lines.extend(wrapped(h, theme.dim(), w));
        }
    }
    if let Some(r) = app.panel.run.as_ref() {
        lines.push(Line::default());
        lines.extend(wrapped(format!("The {} started in another section:", r.what()), theme.text(), w));
        for l in summary(app, Some(r)) {
            lines.extend(super::markdown::wrap_line(&l, w as usize));
        }
    }
    for (i, l) in lines.iter().take(inner.height as usize).enumerate() {
        put(buf, inner, inner.y + i as u16, l);
    }
}

/// A run shown under knobs that no longer describe it: say which setup it was.
fn stale_lines(app: &App) -> Vec<Line<'static>> {
    let Some(d) = app.stale_run() else { return Vec::new() };
    let live = app.panel.run.as_ref().is_some_and(|r| r.live);
    let end = if live { "it is still going" } else { "press r to run this setup" };
    vec![Line::styled(format!("previous run: {}; {end}", d.join(", ")), app.theme.warn())]
}

/// A demo's table in `width` columns, nothing cut: figure columns (every cell starts with a digit or is "—") are
/// never broken, since a number broken in two reads as two numbers, and are right-aligned after the first column;
/// text cells wrap inside their columns, two spaces apart (one when two do not fit); a table that cannot keep its
/// columns even so shows each row as a record (see `markdown::layout`).
pub(crate) fn fit_table(columns: &[String], rows: &[Vec<String>], width: usize, theme: Theme) -> Laid {
    let numeric = |c: &str| c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
    let cols = rows.iter().map(Vec::len).chain([columns.len()]).max().unwrap_or(0);
    let figures: Vec<bool> = (0..cols)
        .map(|i| !rows.is_empty() && rows.iter().all(|r| r.get(i).is_none_or(|c| numeric(c) || c == "—")))
        .collect();
    let look = |gap: &'static str| TableLook {
        indent: Span::raw(""),
        gap: Span::styled(gap, theme.dim()),
        cross: gap,
        rule: if theme.ascii { "-" } else { "─" },
        head: theme.dim(),
        body: theme.text(),
        label: theme.dim(),
        right: figures.iter().enumerate().map(|(i, f)| *f && i > 0).collect(),
        keep: figures.clone(),
        row_rules: false,
        inline_records: Some("; "),
    };
    let wide = look("  ");
    if markdown::fits(columns, rows, width, &wide) {
        markdown::layout(columns, rows, width, &wide)
    } else {
        markdown::layout(columns, rows, width, &look(" "))
    }
}

/// Wraps plain text to the panel's width.
fn wrapped(text: String, style: Style, width: u16) -> Vec<Line<'static>> {
    super::markdown::wrap(&[(text, style)], width as usize, Span::raw(""), Span::raw(""))
}

/// How long a live run has been going: from the lab's time zero to the latest tick.
fn elapsed_ns(app: &App, t: &crate::timeline::Timeline) -> u64 {
    if t.t0_ns == 0 {
        return 0;
    }
    match app.now_ns {
        0 => 0,
        now => now.saturating_sub(t.t0_ns),
    }
}

/// A process-internals demo: what `r` does; while it runs, its lanes live; when it ends, its table, the reading
/// of its figures and its lanes. The reading is the demo's point: when room is short the table's rows give way to
/// it and say how many are left off, and whatever else does not fit ends in a "→ more" line, never a silent cut.
fn draw_demo(app: &App, setup: &Setup, name: &str, inner: Rect, buf: &mut Buffer) {
    /// At most `h` lines: when there are more, the last one says how many are left off.
    fn clip(mut lines: Vec<Line<'static>>, h: usize, theme: Theme, w: u16) -> Vec<Line<'static>> {
        if lines.len() <= h {
            return lines;
        }
        let keep = h.saturating_sub(1);
        let left = lines.len() - keep;
        lines.truncate(keep);
        let note = format!("{}: {left} more lines at a taller terminal", markdown::more(theme));
        lines.extend(wrapped(note, theme.dim(), w).into_iter().take(h - keep));
        lines
    }
    let theme = app.theme;
    let sep = theme.sep();
    let w = inner.width;
    let more = markdown::more(theme);
    let wrap = |runs: &[(String, Style)], first: Span<'static>, rest: Span<'static>| {
        markdown::wrap_marked(runs, w as usize, first, rest, more)
    };
    // Only a run of this demo belongs here (a live run of an earlier section may still be going).
    let run = app.panel.run.as_ref().filter(|r| r.demo().is_some_and(|d| d.name.name() == name));
    let note =
        setup.note.as_ref().map(|n| wrapped(n.clone(), theme.dim().add_modifier(ratatui::style::Modifier::ITALIC), w));
    let mut top: Vec<Line<'static>> = Vec::new();
    let mut bottom: Vec<Line<'static>> = note.clone().unwrap_or_default();
    let mut gantt = false;
    match run {
        None => {
            let size = match DemoSpec::new(name, None) {
                Ok(spec) => format!("{sep}{} {}", spec.size, spec.name.size_rule().what),
                Err(e) => {
                    top.extend(wrapped(e, theme.bad(), w));
                    String::new()
                }
            };
            top.extend(wrap(
                &[("r".into(), theme.key()), (format!(" runs the {name} demo in a lab process{size}"), theme.text())],
                Span::raw(""),
                Span::raw(""),
            ));
            top.push(Line::default());
            top.extend(wrapped(
                "It measures for real on this machine: its processes and threads appear here as lanes while it                  runs, then its table and what the figures mean."
                    .into(),
                theme.dim(),
                w,
            ));
            top.push(Line::default());
            top.append(&mut bottom);
        }
        Some(r) if r.live => {
            top.extend(wrap(
                &[
                    ("running ".into(), theme.accent()),
                    (
                        format!(
                            "the {name} demo{sep}{}{sep}{} lanes{sep}Esc cancels",
                            format_ns(elapsed_ns(app, &r.timeline) as i128),
                            r.timeline.lanes.len()
                        ),
                        theme.text(),
                    ),
                ],
                Span::raw(""),
                Span::raw("  "),
            ));
            gantt = true;
        }
        Some(r) => match (r.error(), &r.timeline.demo) {
            (Some(err), _) => {
                let (text, style) = if r.cancelled {
                    ("cancelled: the lab and its processes were stopped (r runs it again)".to_string(), theme.warn())
                } else {
                    (format!("FAILED: {err}"), theme.bad())
                };
                top.extend(wrapped(text, style, w));
                gantt = true;
            }
            (None, Some(report)) => {
                top.extend(wrap(
                    &[
                        (report.title.clone(), theme.accent()),
                        (format!("{sep}{}", fmt_ms(r.wall_ms())), theme.text()),
                        (format!("{sep}r runs it again"), theme.dim()),
                    ],
                    Span::raw(""),
                    Span::raw("  "),
                ));
                top.push(Line::default());
                let mut after = vec![Line::default()];
                after.extend(wrap(
                    &[(report.reading.clone(), theme.text())],
                    Span::styled("reading: ", theme.accent()),
                    Span::raw("  "),
                ));
                for n in &r.timeline.notes {
                    after.extend(wrapped(format!("note: {n}"), theme.dim(), w));
                }
                after.push(Line::default());
                let table = fit_table(&report.columns, &report.rows, w as usize, theme);
                let room = inner.height.saturating_sub((bottom.len() as u16).min(inner.height / 3)) as usize;
                let rows_room = room.saturating_sub(top.len() + table.head.len() + after.len());
                let rows = table.rows.len();
                let marker = |left: usize| {
                    wrapped(format!("{more}: {left} more rows (`parlab demo {name}` prints them all)"), theme.dim(), w)
                };
                let (mut shown, mut used) = (0, 0);
                while shown < rows && used + table.rows[shown].len() <= rows_room {
                    used += table.rows[shown].len();
                    shown += 1;
                }
                while shown > 0 && shown < rows && used + marker(rows - shown).len() > rows_room {
                    shown -= 1;
                    used -= table.rows[shown].len();
                }
                top.extend(table.head);
                top.extend(table.rows.into_iter().take(shown).flatten());
                if shown < rows {
                    top.extend(marker(rows - shown));
                }
                top.extend(after);
                gantt = true;
            }
            (None, None) => top.extend(wrapped("the demo ended without its report".into(), theme.bad(), w)),
        },
    }
    let bottom_h = (bottom.len() as u16).min(inner.height / 3);
    let bottom = clip(bottom, bottom_h as usize, theme, w);
    let top_h = (top.len() as u16).min(inner.height - bottom_h);
    let top = clip(top, top_h as usize, theme, w);
    for (i, l) in top.iter().enumerate() {
        put(buf, inner, inner.y + i as u16, l);
    }
    let by = inner.y + inner.height - bottom_h;
    for (i, l) in bottom.iter().enumerate() {
        put(buf, inner, by + i as u16, l);
    }
    let Some(r) = run.filter(|r| gantt && !r.timeline.lanes.is_empty()) else {
        return;
    };
    // Room for the axis, a lane and the legend; an axis over "… N more lanes" alone would say nothing.
    let room = inner.height - top_h - bottom_h;
    if room < 3 + u16::from(r.timeline.lanes.len() > 1) {
        return;
    }
    let (from, to) = run_window(r, app.now_ns);
    let h = room.min(r.timeline.lanes.len() as u16 + 2);
    Gantt::new(&r.timeline, theme)
        .digest(&r.digest)
        .window(from, to)
        .render(Rect::new(inner.x, inner.y + top_h, w, h), buf);
}

fn draw_run(app: &App, run: Option<&Run>, window: Option<(u64, u64)>, area: Rect, buf: &mut Buffer, setup: &Setup) {
    let theme = app.theme;
    match (run, window) {
        (Some(r), Some((from, to))) if !r.timeline.lanes.is_empty() => {
            let (origin, _) = crate::view::origin_and_len(r, app.now_ns, app.tl.paused_at);
            let mut g = Gantt::new(&r.timeline, theme).digest(&r.digest).window(from, to);
            if let Some(p) = app.tl.paused_at.filter(|_| r.live) {
                g = g.clip(p);
            }
            if let Some(c) = app.tl.cursor {
                g = g.cursor(origin + c, super::replay::cursor_lane(&[r], app.tl.lane, 0));
            }
            g.render(area, buf);
            if let Some(c) = app.tl.cursor {
                let line = crate::view::readout(&[r], &[origin], app.tl.lane, c);
                put(buf, area, area.y + area.height.saturating_sub(1), &Line::styled(line, theme.accent()));
            }
        }
        (Some(r), _) if r.live => {
            put(buf, area, area.y, &Line::styled("starting the lab process…", theme.dim()));
        }
        _ => {
            let modes: Vec<&str> = App::compare_modes(setup).iter().map(Mode::name).collect();
            let text = format!(
                "r runs {}; R runs it {REPEATS} times (median); c compares {} one after another.",
                setup.mode,
                modes.join(", ")
            );
            let lines =
                super::markdown::wrap(&[(text, theme.dim())], area.width as usize, Span::raw(""), Span::raw(""));
            for (i, l) in lines.iter().enumerate() {
                put(buf, area, area.y + i as u16, l);
            }
        }
    }
}

/// The knobs that apply to the setup's mode, each with its keys (left out where an exercise fixes the knob).
fn knob_line(setup: &Setup, app: &App) -> Line<'static> {
    let theme = app.theme;
    let exp = setup.experiment(setup.mode, app.cores).ok();
    let mut spans: Vec<Span<'static>> = Vec::new();
    for row in KNOBS {
        let k = row.knob;
        if !setup.applies(k) {
            continue;
        }
        let value = match (k, &exp) {
            (Knob::Mode, _) => setup.mode.name().to_string(),
            (Knob::Workers, Some(e)) => plural(u64::from(e.workers), "worker"),
            (Knob::Chunksize, Some(e)) => format!("chunk {}", e.chunksize),
            (Knob::Start, Some(e)) => e.start.name().to_string(),
            (Knob::Warm, Some(e)) => if e.warm { "warm pool" } else { "cold pool" }.to_string(),
            (Knob::SwitchInterval, Some(e)) => format_interval_us(e.switch_interval_us),
            (Knob::Payload, Some(e)) if e.payload == 0 => "no payload".into(),
            (Knob::Payload, Some(e)) => format!("payload {}", format_bytes(e.payload)),
            (Knob::Size, _) => setup.workload.to_string(),
            (Knob::Tasks, _) => plural(setup.tasks, "task"),
            (_, None) => continue,
        };
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        if setup.may_change(k) {
            spans.push(Span::styled(row.short(), theme.key()));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(value, theme.text()));
    }
    Line::from(spans)
}

/// The summary rows of a run: figures when it is done, progress while it goes, the error when it failed.
pub(crate) fn summary(app: &App, run: Option<&Run>) -> Vec<Line<'static>> {
    let theme = app.theme;
    let sep = theme.sep();
    let Some(r) = run else { return Vec::new() };
    let t = &r.timeline;
    let repeat = app
        .panel
        .repeat
        .as_ref()
        .filter(|rep| app.panel.run.as_ref().is_some_and(|p| p.id == r.id) && r.exp() == Some(&rep.exp));
    if r.live {
        let elapsed = match app.now_ns {
            0 if t.t0_ns != 0 => r.wall_ns(),
            _ => elapsed_ns(app, t),
        };
        let what = match (r.exp(), r.demo()) {
            (Some(e), _) => format!("{}/{}", r.tasks_done(), plural(e.tasks, "task")),
            (None, Some(d)) => format!("the {} demo", d.name),
            (None, None) => String::new(),
        };
        let round = repeat.map_or(String::new(), |rep| format!("run {} of {}{sep}", rep.walls_ns.len() + 1, rep.want));
        return vec![Line::from(vec![
            Span::styled("running ", theme.accent()),
            Span::styled(
                format!(
                    "{round}{}{sep}{what}{sep}{}{sep}Esc cancels",
                    format_ns(elapsed as i128),
                    plural(t.lanes.len() as u64, "lane")
                ),
                theme.text(),
            ),
        ])];
    }
    if let Some(err) = r.error() {
        let what = if r.cancelled {
            "cancelled: the lab and its workers were stopped".to_string()
        } else {
            format!("FAILED: {err}")
        };
        let mut out = vec![Line::styled(what, if r.cancelled { theme.warn() } else { theme.bad() })];
        if let Some(rep) = repeat.filter(|rep| !rep.walls_ns.is_empty()) {
            out.push(Line::styled(
                format!("the repeat stopped after {} of {} runs", rep.walls_ns.len(), rep.want),
                theme.dim(),
            ));
        }
        return out;
    }
    if let Some(d) = r.demo() {
        // A demo that ended after the learner moved on: its table is drawn in its own section.
        return vec![Line::styled(
            format!(
                "the {} demo finished in {}: go back to its section to read its table",
                d.name,
                fmt_ms(r.wall_ms())
            ),
            theme.dim(),
        )];
    }
    let cores = app.cores;
    let io = r.exp().is_some_and(|e| e.workload.is_io());
    let spread = repeat.and_then(|rep| rep.spread());
    let wall = match spread {
        Some((m, lo, hi)) => format!(
            "median wall {} ({}–{}, {} runs)",
            fmt_ms(m as f64 / 1e6),
            fmt_ms(lo as f64 / 1e6),
            fmt_ms(hi as f64 / 1e6),
            repeat.map_or(0, |rep| rep.walls_ns.len())
        ),
        None => format!("wall {}", fmt_ms(r.wall_ms())),
    };
    let mut first = vec![Span::styled(wall, theme.accent())];
    if r.exp().is_some_and(|e| e.mode == Mode::Sequential) {
        first.push(Span::styled(format!("{sep}the sequential baseline"), theme.text()));
    } else if let Some(sp) = app.speedup_of(r) {
        let tail = if io {
            format!("{sep}waits overlap: the {cores}-core ceiling holds for CPU work only")
        } else if sp > f64::from(cores) * 1.05 {
            format!("{sep}above the {cores}-core ceiling: a noisy baseline? R repeats")
        } else {
            format!("{sep}efficiency {:.0}% of {}", sp / f64::from(cores) * 100.0, plural(u64::from(cores), "core"))
        };
        first.push(Span::styled(format!("{sep}speedup {sp:.2}×{tail}"), theme.text()));
    } else if io {
        // Waiting is not CPU work: what overlapped is the time the lanes spent on tasks, waits included.
        let busy = r.digest.kind_ns(crate::timeline::SpanKind::Run) + r.digest.kind_ns(crate::timeline::SpanKind::Idle);
        let overlap = busy as f64 / r.wall_ns().max(1) as f64;
        first.push(Span::styled(
            format!("{sep}overlap {overlap:.1}× (task time, waits included, per wall second){sep}c compares"),
            theme.text(),
        ));
    } else {
        let p = r.digest.parallelism(t);
        let text = if p > f64::from(cores) * 1.05 {
            // Run spans are wall time: lanes waiting for a core still count as running.
            format!("{sep}lanes running at once {p:.2}× on {cores} cores: they took turns{sep}c measures speedup")
        } else if p >= 0.01 {
            format!("{sep}parallelism {p:.2}× (run/wall){sep}press c to measure speedup")
        } else {
            format!("{sep}task work under 1% of the wall time: the rest is overhead{sep}c compares")
        };
        first.push(Span::styled(text, theme.text()));
    }
    let mut out = vec![Line::from(first), overhead_line(r.digest.overhead_ms(), theme)];
    if let Some(o) = r.others_cores().filter(|o| *o > OTHERS_WARN_CORES) {
        let tip = if spread.is_some() { "" } else { " (R repeats it)" };
        out.push(Line::styled(
            format!("other programs used {o:.1} cores during this run: figures may be low{tip}"),
            theme.warn(),
        ));
    }
    if let Some(n) = t.notes.first() {
        out.push(Line::styled(format!("note: {n}"), theme.dim()));
    }
    out
}

pub(crate) fn overhead_line(o: Overhead, theme: Theme) -> Line<'static> {
    let sep = theme.sep();
    Line::from(vec![
        Span::styled("overhead ", theme.dim()),
        Span::styled(
            format!(
                "start-up {}{sep}ipc {}{sep}gil-wait {}",
                fmt_ms(o.startup),
                fmt_ms(o.ipc + o.serialize),
                fmt_ms(o.gil_wait)
            ),
            theme.text(),
        ),
    ])
}

fn extra_lines(app: &App, setup: &Setup) -> Vec<Line<'static>> {
    let theme = app.theme;
    let mut out = Vec::new();
    if let Some(check) = &app.panel.check {
        let (right, wrong) = theme.right_wrong();
        out.push(match check {
            Check::Running { .. } => Line::styled(
                "checking: a warm-up, then the median of several runs of baseline and setup (Esc cancels)",
                theme.accent(),
            ),
            Check::Done(o) if o.passed => Line::styled(format!("{right} passed: {}", o.summary), theme.good()),
            Check::Done(o) => Line::styled(format!("{wrong} not yet: {}", o.summary), theme.bad()),
            Check::Failed(e) => Line::styled(format!("check stopped: {e}"), theme.warn()),
        });
    }
    if let Some((p, m)) = app.panel.predicted {
        let off = if m > 0.0 { ((p - m) / m * 100.0).abs() } else { 0.0 };
        out.push(Line::styled(
            format!("you predicted {}, measured {} (off by {off:.0}%)", fmt_num(p), fmt_num(m)),
            theme.accent(),
        ));
    } else if let Some(p) = &app.panel.prediction {
        let how = if p.by_check { "x checks it" } else { "r or c measures it" };
        let text = match app.current_experiment().filter(|e| *e != p.exp) {
            Some(now) => format!(
                "your prediction {} is for another setup ({}): it waits for a run of that one",
                fmt_num(p.value),
                crate::app::differences(&p.exp, &now).join(", ")
            ),
            None => format!("your prediction: {} (waiting for a measurement: {how})", fmt_num(p.value)),
        };
        out.push(Line::styled(text, theme.dim()));
    }
    if let Some(n) = &setup.note {
        out.push(Line::styled(n.clone(), theme.dim().add_modifier(ratatui::style::Modifier::ITALIC)));
    }
    out
}

/// A compact pane of one run for the compare view: parlab's per-core history and the Gantt on a shared window.
pub(crate) fn pane(
    app: &App,
    run: Option<&Run>,
    mode: Mode,
    window_len: u64,
    area: Rect,
    buf: &mut Buffer,
    legend: bool,
) {
    let theme = app.theme;
    let mut title = format!(" {mode} — {} ", mode.python());
    if let Some(r) = run.filter(|r| r.succeeded()) {
        title = format!(" {mode} · {} — {} ", fmt_ms(r.wall_ms()), mode.python());
    }
    // The Python counterpart gives way rather than being cut (the lesson and the help name it too).
    if markdown::text_width(&title) + 2 > area.width as usize {
        title = title.split(" — ").next().unwrap_or_default().to_string() + " ";
    }
    let block = panel_block(title, theme);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width < 16 {
        return;
    }
    let Some(r) = run else {
        put(buf, inner, inner.y, &Line::styled("waiting for its turn (runs never overlap)", theme.dim()));
        return;
    };
    if let Some(err) = r.error() {
        let st = if r.cancelled { theme.warn() } else { theme.bad() };
        put(buf, inner, inner.y, &Line::styled(format!("{mode}: {err}"), st));
        if r.timeline.lanes.is_empty() || inner.height < 3 {
            return;
        }
    }
    let origin = r.digest.first_ns(&r.timeline);
    // The compare's shared window through the timeline view (zoom, pan).
    let live = app.compare.as_ref().is_some_and(|c| c.live());
    let (a, b) = app.tl.window(window_len, inner.width.saturating_sub(20), live);
    let (from, to) = (origin + a, origin + b);
    let lanes = r.timeline.lanes.len() as u16;
    let mut y = inner.y + u16::from(r.error().is_some());
    let room = inner.y + inner.height - y;
    // Core history only when the lanes still fit beside it.
    let core_rows = app.cores.min(4) as u16 + 1;
    if room >= core_rows + lanes + 2 + u16::from(legend) && inner.width >= 30 {
        let rw =
            RunWindow { timeline: &r.timeline, digest: Some(&r.digest), cpu: Some(&r.cpu), from, to, live: r.live };
        CoreBars::new(&app.sys, Some(rw), app.cores, theme)
            .system(false)
            .render(Rect::new(inner.x, y, inner.width, core_rows), buf);
        y += core_rows;
    }
    if r.timeline.lanes.is_empty() {
        put(buf, inner, y, &Line::styled("starting the lab process…", theme.dim()));
        return;
    }
    let h = inner.y + inner.height - y;
    let mut g = Gantt::new(&r.timeline, theme);
    if let Some(c) = app.tl.cursor {
        g = g.cursor(origin + c, None);
    }
    g.digest(&r.digest)
        .window(from, to)
        .legend(legend && h >= lanes + 2)
        .render(Rect::new(inner.x, y, inner.width, h), buf);
}

pub(crate) fn style_or(theme: Theme, good: bool) -> Style {
    if good { theme.good() } else { theme.bad() }
}

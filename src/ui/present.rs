//! The presenter layout (`--present`, `P`): no header, footer or lesson prose; one title row, the timeline the full
//! width (every run of a compare or a replay, on one axis), and the key figures — speedup, wall, overhead and its
//! split — in block digits five rows tall, readable from the back of a room. The timeline keys work as elsewhere.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Widget;

use crate::app::{App, Run, Screen};
use crate::experiment::Mode;
use crate::view::origin_and_len;

use super::gantt::Gantt;
use super::panel::put;
use super::replay::{cursor_lane, gantt, playback_line};
use super::theme::Theme;
use crate::units::fmt_ms;

/// Rows of a block glyph.
const GLYPH_ROWS: u16 = 5;

/// A character as five rows of three cells (`#` marks a filled cell); `.` is one cell wide.
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' => ["###", "# #", "# #", "# #", "###"],
        '1' => ["## ", " # ", " # ", " # ", "###"],
        '2' => ["###", "  #", "###", "#  ", "###"],
        '3' => ["###", "  #", "###", "  #", "###"],
        '4' => ["# #", "# #", "###", "  #", "  #"],
        '5' => ["###", "#  ", "###", "  #", "###"],
        '6' => ["###", "#  ", "###", "# #", "###"],
        '7' => ["###", "  #", "  #", "  #", "  #"],
        '8' => ["###", "# #", "###", "# #", "###"],
        '9' => ["###", "# #", "###", "  #", "###"],
        '.' => [" ", " ", " ", " ", "#"],
        '-' => ["   ", "   ", "###", "   ", "   "],
        _ => ["   ", "   ", "   ", "   ", "   "],
    }
}

/// Cells `text` takes in block digits.
pub(crate) fn big_width(text: &str) -> u16 {
    text.chars().map(|c| glyph(c)[0].len() as u16 + 1).sum::<u16>().saturating_sub(1)
}

/// Draws `text` (digits, `.`, `-`) in block digits at `(x, y)`, no wider than `max` cells.
pub(crate) fn big(buf: &mut Buffer, (x, y, max): (u16, u16, u16), text: &str, theme: Theme) {
    let fill = if theme.ascii { "#" } else { "█" };
    let mut cx = x;
    for c in text.chars() {
        let g = glyph(c);
        let w = g[0].len() as u16;
        if cx + w > x + max {
            break;
        }
        for (row, line) in g.iter().enumerate() {
            for (k, b) in line.bytes().enumerate() {
                if b == b'#'
                    && let Some(cell) = buf.cell_mut((cx + k as u16, y + row as u16))
                {
                    cell.set_symbol(fill).set_style(theme.accent());
                }
            }
        }
        cx += w + 1;
    }
}

/// What the presenter shows: the runs, their speedups, the run whose figures are big, a title, and whether it is a
/// replay (then drawn up to the playhead).
struct Shown<'a> {
    runs: Vec<&'a Run>,
    speedups: Vec<Option<f64>>,
    title: String,
    replay: bool,
}

/// Whether the presenter layout has something to show: a replay, a compare, or a run in the panel. Until then (the
/// lesson list, a section not yet run) the full layout stays, so `--present` can still pick a lesson.
pub(crate) fn applies(app: &App) -> bool {
    app.present && app.screen != Screen::List && shown(app).is_some()
}

fn shown(app: &App) -> Option<Shown<'_>> {
    match app.screen {
        Screen::List => None,
        Screen::Replay => {
            let rp = app.replay.as_ref()?;
            Some(Shown {
                runs: rp.runs.iter().collect(),
                speedups: rp.speedups.clone(),
                title: format!("replay · {} · {}", rp.rec.title(), rp.label()),
                replay: true,
            })
        }
        Screen::Compare => {
            let c = app.compare.as_ref()?;
            Some(Shown {
                runs: c.runs.iter().collect(),
                speedups: (0..c.runs.len()).map(|i| c.speedup(i)).collect(),
                title: c.exps.first().map_or(String::new(), |e| format!("compare · {} × {}", e.workload, e.tasks)),
                replay: false,
            })
        }
        _ => {
            let r = app.panel.run.as_ref()?;
            Some(Shown {
                runs: vec![r],
                speedups: vec![app.speedup_of(r)],
                title: r.exp().map_or_else(|| r.what(), |e| e.title()),
                replay: false,
            })
        }
    }
}

/// The run whose figures are drawn big: the fastest that finished (a lone run: itself).
fn headline(s: &Shown) -> Option<usize> {
    let best = (0..s.runs.len())
        .filter(|&i| s.speedups[i].is_some() && s.runs[i].exp().is_some_and(|e| e.mode != Mode::Sequential))
        .max_by(|&a, &b| s.speedups[a].partial_cmp(&s.speedups[b]).unwrap_or(std::cmp::Ordering::Equal));
    best.or_else(|| s.runs.len().checked_sub(1))
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let sep = theme.sep();
    let Some(s) = shown(app) else {
        let msg = " presenter layout: nothing has run yet (r runs, c compares; P leaves this layout)";
        put(buf, area, area.y, &Line::styled(msg, theme.dim()));
        return;
    };
    put(buf, area, area.y, &Line::styled(format!(" {}", s.title), theme.accent()));
    // The figures take the bottom: labels, digits, the overhead split, the playback or cursor line.
    let fig_h = 1 + GLYPH_ROWS + 2;
    let top = area.y + 1;
    let room = area.height.saturating_sub(1 + fig_h);
    let origins: Vec<u64> = s.runs.iter().map(|r| origin_and_len(r, app.now_ns, app.tl.paused_at).0).collect();
    let lens: Vec<u64> = s.runs.iter().map(|r| origin_and_len(r, app.now_ns, app.tl.paused_at).1).collect();
    let full = lens.iter().copied().max().unwrap_or(0);
    let live = s.runs.iter().any(|r| r.live);
    let label_w = s.runs.iter().map(|r| Gantt::natural_label_width(&r.timeline, area.width)).max().unwrap_or(8);
    let cells = area.width.saturating_sub(label_w + 2);
    let (from, to) = app.tl.window(full, cells, live);
    let clip = match (s.replay, app.replay.as_ref()) {
        (true, Some(rp)) => Some(rp.playhead),
        _ => app.tl.paused_at.map(|p| p.saturating_sub(origins.first().copied().unwrap_or(0))),
    };
    let several = s.runs.len() > 1;
    let mut y = top;
    for (i, r) in s.runs.iter().enumerate() {
        let lanes = r.timeline.lanes.len() as u16;
        let last = i + 1 == s.runs.len();
        // A label row per run of a compare; the axis on top of the first; the legend under the last.
        let want = lanes + u16::from(several) + u16::from(i == 0) + u16::from(last);
        let h = want.min((top + room).saturating_sub(y));
        if h < 2 {
            break;
        }
        if several {
            let what = r.exp().map_or_else(|| r.what(), |e| e.mode.name().to_string());
            put(buf, area, y, &Line::styled(format!(" {what}"), theme.dim()));
        }
        let gy = y + u16::from(several);
        let lane = cursor_lane(&s.runs, app.tl.lane, i);
        gantt(app, r, (from, to), origins[i], clip, lane, theme)
            .label_width(label_w)
            .axis(i == 0)
            .legend(last)
            .render(Rect::new(area.x, gy, area.width, h - u16::from(several)), buf);
        y += h;
    }

    let fy = area.y + area.height - fig_h;
    let Some(k) = headline(&s) else { return };
    let r = s.runs[k];
    let o = r.digest.overhead_ms();
    let over = o.startup + o.ipc + o.serialize + o.gil_wait;
    let num = |ms: f64| if ms >= 100.0 { format!("{ms:.0}") } else { format!("{ms:.1}") };
    let speed = match (s.speedups[k], r.exp().map(|e| e.mode)) {
        (_, Some(Mode::Sequential)) => ("baseline".to_string(), "1.00".to_string()),
        (Some(sp), _) => (
            format!(
                "speedup ×{}",
                if several { format!(" ({})", r.exp().map_or("", |e| e.mode.name())) } else { String::new() }
            ),
            format!("{sp:.2}"),
        ),
        (None, _) => ("speedup: c compares".to_string(), "-".to_string()),
    };
    let blocks = [
        (speed.0, speed.1),
        ("wall ms".to_string(), num(r.wall_ms())),
        ("overhead ms (summed over lanes)".to_string(), num(over)),
    ];
    let col = area.width / 3;
    for (i, (label, value)) in blocks.iter().enumerate() {
        let x = area.x + 1 + i as u16 * col;
        put(buf, Rect::new(x, fy, col.saturating_sub(1), 1), fy, &Line::styled(label.clone(), theme.dim()));
        let w = big_width(value).min(col.saturating_sub(2));
        big(buf, (x, fy + 1, w), value, theme);
    }
    let split = format!(
        " overhead split: start-up {}{sep}ipc {}{sep}serialize {}{sep}gil-wait {}",
        fmt_ms(o.startup),
        fmt_ms(o.ipc),
        fmt_ms(o.serialize),
        fmt_ms(o.gil_wait)
    );
    put(buf, area, fy + 1 + GLYPH_ROWS, &Line::styled(split, theme.text()));
    let last = fy + 2 + GLYPH_ROWS;
    if let (true, Some(rp)) = (s.replay, app.replay.as_ref()) {
        put(buf, area, last, &playback_line(rp, (from, to), theme));
    } else if let Some(c) = app.tl.cursor {
        put(
            buf,
            area,
            last,
            &Line::styled(format!(" {}", crate::view::readout(&s.runs, &origins, app.tl.lane, c)), theme.text()),
        );
    } else if app.tl.paused_at.is_some() {
        put(buf, area, last, &Line::styled(" view paused (f resumes); the run goes on", theme.warn()));
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::tests::app;
    use crate::app::{App, AppEvent, Key};
    use crate::record::tests::{compare_of_four, recording_of, threads_run};
    use crate::ui::theme::{Palette, Theme};

    fn presenting(rec: crate::record::Recording) -> App {
        let mut a = app();
        a.theme = Theme { palette: Palette::Contrast, color: true, ascii: false };
        a.open_replay(rec);
        a.present = true;
        a
    }

    fn draw(a: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
        a.update(AppEvent::Resize(w, h));
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| f.render_widget(&*a, f.area())).unwrap();
        terminal
    }

    #[test]
    fn presenter_layout_of_a_compare_at_80x24_in_contrast() {
        let mut a = presenting(compare_of_four());
        insta::assert_snapshot!(draw(&mut a, 80, 24).backend());
    }

    #[test]
    fn presenter_layout_of_a_compare_at_200x60_in_contrast() {
        let mut a = presenting(compare_of_four());
        insta::assert_snapshot!(draw(&mut a, 200, 60).backend());
    }

    #[test]
    fn the_presenter_shows_the_fastest_runs_speedup_in_block_digits() {
        let mut a = presenting(compare_of_four());
        let t = draw(&mut a, 120, 40);
        let text = t.backend().to_string();
        // threads and processes both ran 2.00× the sequential run; the first of them is the headline.
        assert!(text.contains("speedup × (threads)"), "{text}");
        // No header, no footer: the lesson chrome is gone.
        assert!(!text.contains("Space play") && !text.contains(" parlab · "), "{text}");
        let sp = a.replay.as_ref().unwrap().speedups[1].unwrap();
        assert_eq!(format!("{sp:.2}"), "2.00");
        // P leaves the layout.
        a.update(AppEvent::Key(Key::Char('P')));
        assert!(!a.present);
        let text = draw(&mut a, 120, 40).backend().to_string();
        assert!(text.contains(" parlab · replay · ") && text.contains("recorded 2025-03-01 10:20:00 UTC"), "{text}");
    }

    #[test]
    fn block_digits_are_five_rows_of_three_cells() {
        let mut buf = ratatui::buffer::Buffer::empty(ratatui::layout::Rect::new(0, 0, 12, 5));
        super::big(&mut buf, (0, 0, 12), "1.5", Theme::plain(true));
        let lines = crate::ui::gantt::buffer_lines(&buf);
        assert_eq!(lines, ["##    ###", " #    #", " #    ###", " #      #", "### # ###"]);
        assert_eq!(super::big_width("1.5"), 9);
        let one = recording_of(threads_run(2, 4));
        let mut a = presenting(one);
        let text = draw(&mut a, 80, 24).backend().to_string();
        assert!(text.contains("wall ms") && text.contains("overhead split"), "{text}");
    }
}

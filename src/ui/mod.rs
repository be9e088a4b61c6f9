//! Drawing: widgets that only read state (`impl Widget for &App`), shared by the TUI and headless output. The
//! screen is a header row, the body of the current screen (lesson list, lesson view, compare view), and a footer
//! with the main keys or the latest message; the help overlay and the "terminal too small" screen sit on top.
//!
//! Never imports: the lab or its client, the terminal loop (`tui`), the sampler; it reads `App` and the model only.

pub(crate) mod compare;
pub(crate) mod cores;
pub(crate) mod gantt;
pub(crate) mod lesson;
pub(crate) mod list;
pub(crate) mod markdown;
pub(crate) mod panel;
pub(crate) mod present;
pub(crate) mod replay;
pub(crate) mod theme;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::app::{App, KEYS, MIN_H, MIN_W, Screen, StatusKind};
use crate::experiment::knob::KNOBS;

use panel::{panel_block, put};

/// The body between the header and footer rows.
pub(crate) fn body_area(area: Rect) -> Rect {
    Rect::new(area.x, area.y + 1, area.width, area.height.saturating_sub(2))
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        buf.set_style(area, theme.base());
        if area.width < MIN_W || area.height < MIN_H {
            return too_small(area, buf, self);
        }
        if present::applies(self) {
            present::draw(self, area, buf);
            if self.help {
                help(self, body_area(area), buf);
            }
            if theme.ascii {
                asciify(buf, area);
            }
            return;
        }
        header(self, Rect::new(area.x, area.y, area.width, 1), buf);
        let body = body_area(area);
        match self.screen {
            Screen::List => list::draw(self, body, buf),
            Screen::Lesson => lesson::draw(self, body, buf),
            Screen::Compare => compare::draw(self, body, buf),
            Screen::Replay => replay::draw(self, body, buf),
        }
        footer(self, Rect::new(area.x, area.y + area.height - 1, area.width, 1), buf);
        if self.help {
            help(self, body, buf);
        }
        if theme.ascii {
            asciify(buf, area);
        }
    }
}

/// `--ascii`: whatever a lesson or a title contains, only ASCII reaches the terminal.
fn asciify(buf: &mut Buffer, area: Rect) {
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            let sym = cell.symbol();
            if sym.is_ascii() {
                continue;
            }
            let plain = match sym.chars().next().unwrap_or(' ') {
                '×' => "x",
                '·' | '—' | '–' | '─' | '━' => "-",
                '…' => ".",
                '“' | '”' | '„' => "\"",
                '‘' | '’' => "'",
                '→' => ">",
                '←' => "<",
                '≥' => ">",
                '≤' => "<",
                'µ' => "u",
                '│' | '┃' => "|",
                '\u{a0}' => " ",
                _ => "?",
            };
            cell.set_symbol(plain);
        }
    }
}

fn too_small(area: Rect, buf: &mut Buffer, app: &App) {
    let msg = format!("terminal too small (need {MIN_W}x{MIN_H}, have {}x{})", area.width, area.height);
    let lines = markdown::wrap(&[(msg, app.theme.warn())], area.width as usize, Span::raw(""), Span::raw(""));
    let y0 = area.y + area.height.saturating_sub(lines.len() as u16) / 2;
    for (i, l) in lines.iter().enumerate() {
        let x = area.x + area.width.saturating_sub(l.width() as u16) / 2;
        if y0 + (i as u16) < area.y + area.height {
            buf.set_line(x, y0 + i as u16, l, area.width);
        }
    }
}

/// The engine in the header, once the python engine is chosen: `· python 3.11.7 (GIL)`.
fn engine_words(app: &App) -> String {
    if app.engine.choice.uses_python() { format!("{}{}", app.theme.sep(), app.engine.header()) } else { String::new() }
}

fn header(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let sep = theme.sep();
    let (left, right) = match app.screen {
        Screen::List => {
            let done =
                (0..app.lessons.len()).filter(|&i| app.lesson_mark(i) == crate::progress::LessonMark::Done).count();
            (
                "lessons".to_string(),
                format!(
                    "{done} of {} done{sep}{}",
                    app.lessons.len(),
                    crate::units::plural(u64::from(app.cores), "core")
                ),
            )
        }
        Screen::Lesson | Screen::Compare => match app.lesson() {
            Some(l) => {
                let n = l.sections.len();
                let (on, off) = theme.pips();
                let s = app.view.section;
                let pips =
                    if n <= 20 { format!("{}{} ", on.repeat(s + 1), off.repeat(n - s - 1)) } else { String::new() };
                let what = if app.screen == Screen::Compare { "compare · " } else { "" };
                (
                    format!("{what}{}/{} {}", app.view.lesson + 1, app.lessons.len(), l.title),
                    format!("{pips}{} of {n} sections{}", s + 1, engine_words(app)),
                )
            }
            None => (String::new(), String::new()),
        },
        Screen::Replay => match &app.replay {
            Some(rp) => (format!("replay · {}", rp.rec.title()), format!("parlab {}", rp.rec.parlab_version)),
            None => (String::new(), String::new()),
        },
    };
    let right_w = right.chars().count() as u16 + 1;
    let line = Line::from(vec![
        Span::styled(" parlab", theme.accent()),
        Span::styled(sep, theme.dim()),
        Span::styled(left, theme.text()),
    ]);
    buf.set_line(area.x, area.y, &line, area.width.saturating_sub(right_w + 1));
    if area.width > right_w {
        buf.set_string(area.x + area.width - right_w, area.y, right, theme.dim());
    }
}

fn footer(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    if let Some(p) = &app.prompt {
        let line = Line::from(vec![
            Span::styled(format!(" {}: ", p.label), theme.accent()),
            Span::styled(format!("{}_", p.text), theme.text()),
            Span::styled("  Enter confirm  Esc cancel", theme.dim()),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    if let Some((kind, text)) = &app.status {
        let st = if *kind == StatusKind::Error { theme.bad() } else { theme.accent() };
        buf.set_line(area.x, area.y, &Line::styled(format!(" {text}"), st), area.width);
        return;
    }
    let [l, r, u, d] = theme.arrows();
    let ud = format!("{u}/{d}");
    let lr = format!("{l}/{r}");
    let keys: Vec<(&str, &str)> = match app.screen {
        Screen::List if app.list.searching => {
            vec![("type", "to search"), ("Enter", "open"), ("Esc", "clear")]
        }
        Screen::List => {
            vec![(&ud, "move"), ("Enter", "open"), ("/", "search"), ("t", "theme"), ("?", "help"), ("q", "quit")]
        }
        Screen::Lesson if app.is_live() => {
            let mut k: Vec<(&str, &str)> = vec![("Esc", "cancel run"), (&ud, "scroll"), (&lr, "section")];
            if several_blocks(app) {
                k.push(("Tab", "next block"));
            }
            k.extend([("?", "help"), ("q", "quit")]);
            k
        }
        Screen::Lesson if app.panel.setup.as_ref().is_some_and(|s| s.demo.is_some()) => {
            let mut k = vec![("r", "run the demo")];
            if several_blocks(app) {
                k.push(("Tab", "next block"));
            }
            k.extend([
                (ud.as_str(), "scroll"),
                (lr.as_str(), "section"),
                ("Esc", "back"),
                ("?", "help"),
                ("q", "quit"),
            ]);
            k
        }
        Screen::Lesson if app.panel.setup.is_none() => {
            let mut k: Vec<(&str, &str)> = vec![(&lr, "section"), (&ud, "scroll")];
            if several_blocks(app) {
                k.push(("Tab", "next block"));
            }
            k.extend([("Esc", "back"), ("?", "help"), ("q", "quit")]);
            k
        }
        Screen::Lesson => {
            let mut k = vec![("r", "run"), ("c", "compare")];
            if several_blocks(app) {
                k.push(("Tab", "next block"));
            }
            if app.panel.setup.as_ref().is_some_and(|s| s.exercise.is_some()) {
                k.extend([("x", "check"), ("h", "hint"), ("p", "predict")]);
            }
            k.extend([("R", "run ×3"), ("m", "mode"), (&lr, "section"), ("Esc", "back"), ("?", "help"), ("q", "quit")]);
            k
        }
        Screen::Compare if app.is_live() => vec![("Esc", "cancel"), ("?", "help"), ("q", "quit")],
        Screen::Compare => vec![("c", "compare again"), ("r", "run"), ("Esc", "back"), ("?", "help"), ("q", "quit")],
        Screen::Replay => vec![
            ("Space", "play"),
            (",/.", "slower/faster"),
            ("(/)", "step"),
            ("]/[", "zoom"),
            ("{/}", "pan"),
            ("</>", "cursor"),
            ("P", "present"),
            ("Esc", "lessons"),
            ("?", "help"),
            ("q", "quit"),
        ],
    };
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (k, what) in keys {
        let w = k.chars().count() + what.chars().count() + 3;
        if used + w > area.width as usize {
            break;
        }
        spans.push(Span::styled(format!(" {k}"), theme.key()));
        spans.push(Span::styled(format!(" {what} "), theme.dim()));
        used += w;
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

/// Whether the section has more than one block to select (Tab then matters).
fn several_blocks(app: &App) -> bool {
    app.section().is_some_and(|s| crate::app::selectable(s).len() > 1)
}

/// Every key the help lists: the general ones, then the knobs.
pub(crate) fn help_rows() -> Vec<(&'static str, &'static str, &'static str)> {
    KEYS.iter().copied().chain(KNOBS.iter().map(|k| (k.keys, k.keys, k.what))).collect()
}

fn help(app: &App, body: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let rows = help_rows();
    let w = body.width.saturating_sub(4).min(100);
    let two = w >= 76;
    let per_col = if two { rows.len().div_ceil(2) } else { rows.len() };
    let h = (per_col as u16 + 3).min(body.height);
    let area = Rect::new(body.x + (body.width - w) / 2, body.y + (body.height - h) / 2, w, h);
    Clear.render(area, buf);
    buf.set_style(area, theme.base());
    let block = panel_block(" keys (any of Esc ? q closes) ".into(), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let col_w = if two { inner.width / 2 } else { inner.width };
    let key_w = rows.iter().map(|k| if theme.ascii { k.1 } else { k.0 }.chars().count()).max().unwrap_or(8) + 1;
    for (i, (uni, ascii, what)) in rows.iter().enumerate() {
        let (col, row) = (i / per_col, i % per_col);
        let key = if theme.ascii { ascii } else { uni };
        let x = inner.x + col as u16 * col_w;
        let line = Line::from(vec![
            Span::styled(format!(" {key:<key_w$}"), theme.key()),
            Span::styled(what.to_string(), theme.text()),
        ]);
        put(buf, Rect::new(x, inner.y, col_w, inner.height), inner.y + row as u16, &line);
    }
    let note = "The UI only observes: every run happens in a separate lab process.";
    put(buf, inner, inner.y + inner.height.saturating_sub(1), &Line::styled(format!(" {note}"), theme.dim()));
}

/// Draws one frame of the app into a fresh buffer (for `parlab bench`'s frame timing).
pub(crate) fn render_frame_for_bench(app: &App, w: u16, h: u16) -> Buffer {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    app.render(area, &mut buf);
    buf
}

#[cfg(test)]
mod tests;

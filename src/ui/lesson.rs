//! The lesson view: the current section's prose on the left (Markdown, highlighted code, inline quizzes and
//! exercises) and the experiment panel on the right.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Check, ProseMeasure};
use crate::lesson::{Block, ExerciseSpec, ExperimentKind, ExperimentSpec, Lesson, Quiz};
use crate::units::fmt_num;

use super::markdown::{self, wrap};
use super::panel::{self, panel_block, put};
use super::theme::Theme;

/// Prose and panel areas inside the body.
pub(crate) fn split(body: Rect) -> (Rect, Rect) {
    let left = (body.width * 45 / 100).max(32).min(body.width);
    (Rect::new(body.x, body.y, left, body.height), Rect::new(body.x + left, body.y, body.width - left, body.height))
}

/// A section's prose at one width: the wrapped Markdown and code come shared from the markdown cache (never
/// copied per frame), the rest (quizzes, exercises, experiment lines) is built fresh, as it changes with answers
/// and hints.
#[derive(Default)]
pub(crate) struct Prose {
    parts: Vec<Part>,
    len: usize,
    /// Each block's lines: (block index in the section, first line, end line).
    pub blocks: Vec<(usize, usize, usize)>,
}

enum Part {
    Shared(markdown::Lines),
    Own(Vec<Line<'static>>),
}

impl Part {
    fn lines(&self) -> &[Line<'static>] {
        match self {
            Part::Shared(l) => l,
            Part::Own(l) => l,
        }
    }
}

impl Prose {
    fn push(&mut self, part: Part) {
        self.len += part.lines().len();
        self.parts.push(part);
    }

    fn own(&mut self, lines: Vec<Line<'static>>) {
        self.push(Part::Own(lines));
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Lines `skip..skip + take`.
    pub(crate) fn window(&self, skip: usize, take: usize) -> impl Iterator<Item = &Line<'static>> {
        self.parts.iter().flat_map(|p| p.lines().iter()).skip(skip).take(take)
    }

    /// The lines of block `b`, when the section has it.
    pub(crate) fn block(&self, b: usize) -> Option<std::ops::Range<usize>> {
        self.blocks.iter().find(|x| x.0 == b).map(|x| x.1..x.2)
    }
}

/// The prose of the current section at this width.
pub(crate) fn prose(app: &App, width: u16) -> Prose {
    let mut out = Prose::default();
    let Some(lesson) = app.lesson() else {
        return out;
    };
    let s = app.view.section.min(lesson.sections.len().saturating_sub(1));
    let Some(section) = lesson.sections.get(s) else {
        return out;
    };
    let theme = app.theme;
    let w = width as usize;
    out.own(wrap(&[(section.title.clone(), theme.heading())], w, Span::raw(""), Span::raw("")));
    let mut quiz_no = App::quiz_base(lesson, s);
    let quizzes = section.blocks.iter().filter(|b| matches!(b, Block::Quiz(_))).count();
    for (i, block) in section.blocks.iter().enumerate() {
        out.own(vec![Line::default()]);
        let first = out.len;
        let selected = app.view.block == Some(i);
        match block {
            Block::Markdown(text) => {
                let text = strip_heading(text, &section.title);
                out.push(Part::Shared(markdown::markdown(text, width, theme)));
            }
            Block::Code { lang, text, .. } => {
                let label = if lang.is_empty() { "code".to_string() } else { lang.clone() };
                out.own(vec![Line::styled(format!("  {label}"), theme.dim())]);
                out.push(Part::Shared(markdown::code(lang, text, width, theme)));
            }
            Block::Experiment(e) => out.own(experiment_lines(e, selected, w, theme)),
            Block::Quiz(q) => {
                let answer = app.view.answers.get(&quiz_no).copied();
                out.own(quiz_lines(q, answer, selected || quizzes == 1, w, theme));
                quiz_no += 1;
            }
            Block::Exercise(e) => out.own(exercise_lines(app, lesson, e, w, theme)),
            // Speaker notes are for `parlab notes`, never on the learner's screen.
            Block::Notes(_) => {}
        }
        out.blocks.push((i, first, out.len));
    }
    out
}

/// The rows the prose has on screen at the current terminal size.
pub(crate) fn prose_height(app: &App) -> u16 {
    let (w, h) = app.size;
    let body = super::body_area(Rect::new(0, 0, w, h));
    let (left, _) = split(body);
    left.height.saturating_sub(2)
}

fn prose_width(app: &App) -> u16 {
    let (w, h) = app.size;
    let body = super::body_area(Rect::new(0, 0, w, h));
    let (left, _) = split(body);
    left.width.saturating_sub(4)
}

/// The prose of the current section at the current terminal size, as the app scrolls by it: the lines in view,
/// all its lines, and where block `b` is among them.
pub(crate) fn measure(app: &App, b: Option<usize>) -> ProseMeasure {
    let prose = prose(app, prose_width(app));
    ProseMeasure { height: prose_height(app), lines: prose.len(), block: b.and_then(|b| prose.block(b)) }
}

/// The section's Markdown may repeat its `## ` heading, which is already drawn as the title.
fn strip_heading<'t>(text: &'t str, title: &str) -> &'t str {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix("## ")
        && let Some((first, after)) = rest.split_once('\n').or(Some((rest, "")))
        && first.trim() == title.trim()
    {
        return after;
    }
    text
}

fn experiment_lines(e: &ExperimentSpec, selected: bool, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let arrow = if theme.ascii { ">" } else { "▶" };
    let keys = if selected { "r run, c compare" } else { "Tab selects it" };
    let name = e.id.as_deref().map_or(String::new(), |id| format!(" {id}"));
    let text = match &e.kind {
        ExperimentKind::Run { workload, tasks, modes, .. } => {
            let modes: Vec<&str> = modes.iter().map(|m| m.name()).collect();
            format!("experiment{name}: {workload} × {tasks} in {} ({keys})", modes.join(", "))
        }
        ExperimentKind::Demo(demo) => {
            let keys = if selected { "r runs it in a lab process" } else { keys };
            if e.id.as_deref() == Some(demo.as_str()) {
                format!("demo: {demo} ({keys})")
            } else {
                format!("demo{name}: {demo} ({keys})")
            }
        }
    };
    let mut out =
        wrap(&[(text, theme.accent())], w, Span::styled(format!("{arrow} "), theme.accent()), Span::raw("  "));
    if let Some(n) = &e.note {
        out.extend(wrap(
            &[(n.clone(), theme.dim().add_modifier(Modifier::ITALIC))],
            w,
            Span::raw("  "),
            Span::raw("  "),
        ));
    }
    out
}

fn quiz_lines(q: &Quiz, answer: Option<usize>, selected: bool, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let (right, wrong) = theme.right_wrong();
    let mut out = wrap(
        &[("Quiz: ".into(), theme.accent()), (q.question.clone(), theme.text())],
        w,
        Span::raw(""),
        Span::raw("      "),
    );
    for (i, c) in q.choices.iter().enumerate() {
        let mut style = theme.text();
        let mut mark = "  ";
        if let Some(a) = answer {
            if i == q.answer {
                style = theme.good();
                mark = if a == i { right } else { "  " };
            } else if i == a {
                style = theme.bad();
                mark = wrong;
            }
        }
        let first = Span::styled(format!("{mark:>2} {}. ", i + 1), style);
        out.extend(wrap(&[(c.clone(), style)], w, first, Span::raw("      ")));
    }
    match answer {
        None if selected => out.push(Line::styled(format!("  press 1-{} to answer", q.choices.len()), theme.dim())),
        None => out.push(Line::styled(format!("  Tab selects it, then 1-{} answers", q.choices.len()), theme.dim())),
        Some(a) => {
            let verdict = if a == q.answer {
                ("Right. ".to_string(), theme.good())
            } else {
                ("Not quite. ".to_string(), theme.bad())
            };
            out.extend(wrap(&[verdict, (q.why.clone(), theme.text())], w, Span::raw("  "), Span::raw("  ")));
        }
    }
    out
}

fn exercise_lines(app: &App, lesson: &Lesson, e: &ExerciseSpec, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let _ = lesson;
    let sep = theme.sep();
    let (right, _) = theme.right_wrong();
    let passed = app.progress.exercise_passed(&e.id);
    let mut head = vec![("Exercise: ".to_string(), theme.accent()), (e.title.clone(), theme.heading())];
    if passed {
        head.push((format!(" {right} passed"), theme.good()));
    }
    let mut out = wrap(&head, w, Span::raw(""), Span::raw("  "));
    let threshold = e.goal.threshold(app.cores);
    let goal = if e.goal.per_core {
        format!(
            "{} (= {} on your {})",
            e.goal.text,
            fmt_num(threshold),
            crate::units::plural(u64::from(app.cores), "core")
        )
    } else {
        e.goal.text.clone()
    };
    out.extend(wrap(
        &[("goal ".into(), theme.dim()), (goal, theme.text()), (format!(", against {}", e.baseline), theme.text())],
        w,
        Span::raw("  "),
        Span::raw("  "),
    ));
    let knobs: Vec<&str> = e.may_change.iter().map(|k| k.label()).collect();
    out.extend(wrap(
        &[("you may change ".into(), theme.dim()), (knobs.join(", "), theme.text())],
        w,
        Span::raw("  "),
        Span::raw("  "),
    ));
    let shown = app.hints_shown(&e.id);
    for (i, h) in e.hints.iter().take(shown).enumerate() {
        out.extend(wrap(
            &[(h.clone(), theme.text())],
            w,
            Span::styled(format!("  hint {}: ", i + 1), theme.warn()),
            Span::raw("    "),
        ));
    }
    let mut keys = format!("x check{sep}p predict");
    if shown < e.hints.len() {
        keys.push_str(&format!("{sep}h hint ({} left)", e.hints.len() - shown));
    }
    out.push(Line::styled(format!("  {keys}"), theme.dim()));
    let is_current = app.panel.setup.as_ref().is_some_and(|s| s.id == e.id);
    if is_current && let Some(Check::Done(o)) = &app.panel.check {
        let style = panel::style_or(theme, o.passed);
        let verdict = if o.passed { "Passed: " } else { "Not yet: " };
        out.extend(wrap(
            &[(verdict.into(), style), (o.summary.clone(), theme.text())],
            w,
            Span::raw("  "),
            Span::raw("  "),
        ));
        if o.passed {
            out.extend(wrap(&[(e.explain.clone(), theme.text())], w, Span::raw("  "), Span::raw("  ")));
        }
    }
    out
}

/// How far the prose can scroll at the current terminal size.
pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let (left, right) = split(body);
    let theme = app.theme;
    let Some(lesson) = app.lesson() else { return };
    let n = lesson.sections.len();
    let title = format!(" {}/{} {} ", app.view.section + 1, n, lesson.sections[app.view.section.min(n - 1)].title);
    let inner_w = left.width.saturating_sub(4);
    let prose = prose(app, inner_w);
    let inner_h = left.height.saturating_sub(2);
    let max = (prose.len() as u16).saturating_sub(inner_h);
    let scroll = app.view.scroll.min(max);
    let [_, _, up, down] = theme.arrows();
    let mut block = panel_block(title, theme);
    if scroll < max {
        block = block.title_bottom(Line::styled(format!(" {down} more "), theme.dim()).right_aligned());
    }
    if scroll > 0 {
        block = block.title_bottom(Line::styled(format!(" {up} "), theme.dim()).left_aligned());
    }
    let inner = block.inner(left);
    block.render(left, buf);
    // A column of margin on each side of the prose; the left one marks the selected block.
    let text = Rect::new(inner.x + 1, inner.y, inner.width.saturating_sub(2), inner.height);
    for (i, line) in prose.window(scroll as usize, text.height as usize).enumerate() {
        put(buf, text, text.y + i as u16, line);
    }
    let several = app.section().is_some_and(|s| crate::app::selectable(s).len() > 1);
    if let Some(range) = app.view.block.filter(|_| several).and_then(|b| prose.block(b)) {
        let bar = if theme.ascii { ">" } else { "▌" };
        let top = scroll as usize;
        for row in range.start.max(top)..range.end.min(top + text.height as usize) {
            buf.set_string(inner.x, inner.y + (row - top) as u16, bar, theme.accent());
        }
    }
    panel::draw(app, right, buf);
}

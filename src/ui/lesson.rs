//! The lesson view: the current section's prose on the left (Markdown, highlighted code, inline quizzes and
//! exercises) and the experiment panel on the right.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Check, fmt_num, knob_name};
use crate::lesson::{Block, ExerciseSpec, ExperimentKind, ExperimentSpec, Lesson, Quiz};

use super::markdown::{self, wrap};
use super::panel::{self, panel_block, put};
use super::theme::Theme;

/// Prose and panel areas inside the body.
pub(crate) fn split(body: Rect) -> (Rect, Rect) {
    let left = (body.width * 45 / 100).max(32).min(body.width);
    (Rect::new(body.x, body.y, left, body.height), Rect::new(body.x + left, body.y, body.width - left, body.height))
}

/// Lines of prose the current section has at this width.
pub(crate) fn prose_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let Some(lesson) = app.lesson() else {
        return Vec::new();
    };
    let s = app.view.section.min(lesson.sections.len().saturating_sub(1));
    let Some(section) = lesson.sections.get(s) else {
        return Vec::new();
    };
    let theme = app.theme;
    let w = width as usize;
    let mut out: Vec<Line<'static>> = Vec::new();
    let heading = wrap(&[(section.title.clone(), theme.heading())], w, Span::raw(""), Span::raw(""));
    out.extend(heading);
    let mut quiz_no = App::quiz_base(lesson, s);
    for block in &section.blocks {
        out.push(Line::default());
        match block {
            Block::Markdown(text) => {
                let text = strip_heading(text, &section.title);
                out.extend(markdown::markdown(text, width, theme).iter().cloned());
            }
            Block::Code { lang, text, .. } => {
                let label = if lang.is_empty() { "code".to_string() } else { lang.clone() };
                out.push(Line::styled(format!("  {label}"), theme.dim()));
                out.extend(markdown::code(lang, text, width, theme).iter().cloned());
            }
            Block::Experiment(e) => out.extend(experiment_lines(e, w, theme)),
            Block::Quiz(q) => {
                out.extend(quiz_lines(q, app.view.answers.get(&quiz_no).copied(), w, theme));
                quiz_no += 1;
            }
            Block::Exercise(e) => out.extend(exercise_lines(app, lesson, e, w, theme)),
        }
    }
    out
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

fn experiment_lines(e: &ExperimentSpec, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let arrow = if theme.ascii { ">" } else { "▶" };
    let text = match &e.kind {
        ExperimentKind::Run { workload, tasks, modes, .. } => {
            let modes: Vec<&str> = modes.iter().map(|m| m.name()).collect();
            format!("experiment: {workload} × {tasks} in {} (r run, c compare)", modes.join(", "))
        }
        ExperimentKind::Demo(name) => format!("demo: {name} (r runs it in a lab process)"),
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

fn quiz_lines(q: &Quiz, answer: Option<usize>, w: usize, theme: Theme) -> Vec<Line<'static>> {
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
        None => out.push(Line::styled(format!("  press 1-{} to answer", q.choices.len()), theme.dim())),
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
        format!("{} (= {} on your {} cores)", e.goal.text, fmt_num(threshold), app.cores)
    } else {
        e.goal.text.clone()
    };
    out.extend(wrap(
        &[("goal ".into(), theme.dim()), (goal, theme.text()), (format!(", against {}", e.baseline), theme.text())],
        w,
        Span::raw("  "),
        Span::raw("  "),
    ));
    let knobs: Vec<&str> = e.may_change.iter().map(|k| knob_name(*k)).collect();
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
pub(crate) fn max_scroll(app: &App) -> u16 {
    let (w, h) = app.size;
    let body = super::body_area(Rect::new(0, 0, w, h));
    let (left, _) = split(body);
    let inner_w = left.width.saturating_sub(4);
    let inner_h = left.height.saturating_sub(2);
    let n = prose_lines(app, inner_w).len() as u16;
    n.saturating_sub(inner_h)
}

pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let (left, right) = split(body);
    let theme = app.theme;
    let Some(lesson) = app.lesson() else { return };
    let n = lesson.sections.len();
    let title = format!(" {}/{} {} ", app.view.section + 1, n, lesson.sections[app.view.section.min(n - 1)].title);
    let inner_w = left.width.saturating_sub(4);
    let lines = prose_lines(app, inner_w);
    let inner_h = left.height.saturating_sub(2);
    let max = (lines.len() as u16).saturating_sub(inner_h);
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
    // A column of margin on each side of the prose.
    let inner = Rect::new(inner.x + 1, inner.y, inner.width.saturating_sub(2), inner.height);
    for (i, line) in lines.iter().skip(scroll as usize).take(inner.height as usize).enumerate() {
        put(buf, inner, inner.y + i as u16, line);
    }
    panel::draw(app, right, buf);
}

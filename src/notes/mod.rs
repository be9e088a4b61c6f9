//! Speaker notes: the `notes` blocks of lessons, for an instructor. `parlab notes [LESSON]` prints them;
//! `parlab notes --follow` shows, in a second terminal, the notes of the section the presenter's TUI is on.
//!
//! The TUI side is a `Publisher` (publish.rs): a Unix socket per TUI in a private runtime folder (socket.rs), and a
//! small thread that sends every follower where the TUI is, as one JSON line per change, with the notes themselves
//! (so a follower shows what the presenter loaded, `--lessons DIR` included). The follower (follow.rs) connects to
//! the newest live TUI or `--pid N`, and when its presenter quits it says so and waits for the next one.
//!
//! This module owns the message and its text: `Showing` is what a TUI shows, `render` the lines a follower prints.

use serde::{Deserialize, Serialize};
use unicode_width::UnicodeWidthStr;

use crate::app::{App, Screen, panel_blocks};
use crate::lesson::{Block, ExperimentKind, Lesson, terminal_safe};

mod follow;
mod publish;
mod socket;
#[cfg(test)]
mod tests;

pub use follow::{follow_cmd, print_cmd};
pub(crate) use publish::Publisher;

/// The version of the messages on the socket: a follower refuses others, naming both.
pub(crate) const PROTOCOL: u32 = 1;

/// What a presenter's TUI shows, as sent to followers (one JSON line per change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Showing {
    pub v: u32,
    /// The TUI's pid: a follower checks it is the one it connected to.
    pub pid: u32,
    /// `None` while the TUI shows its lesson list.
    pub lesson: Option<ShownSection>,
}

/// A lesson's section and its notes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShownSection {
    pub id: String,
    /// 1-based, of `lessons`.
    pub number: usize,
    pub lessons: usize,
    pub title: String,
    /// 0 is the introduction; of `sections` (introduction included).
    pub section: usize,
    pub sections: usize,
    pub section_title: String,
    /// The block the panel shows: `experiment 1 of 2: fib:32 × 8 · sequential, threads, gil`.
    pub panel: Option<String>,
    pub notes: Vec<ShownNotes>,
}

/// One notes block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShownNotes {
    /// The block it is about (as `panel`), or `None`: the section.
    pub about: Option<String>,
    /// Whether it is about the block the panel shows.
    pub current: bool,
    /// (label, text) in the order they are said.
    pub fields: Vec<(String, String)>,
}

/// A panel block of a section described for the presenter: `experiment 1 of 2: fib:32 × 8 · sequential, threads`.
fn describe(lesson: &Lesson, section: usize, block: usize) -> Option<String> {
    let s = lesson.sections.get(section)?;
    let blocks = panel_blocks(s);
    let n = blocks.iter().position(|b| *b == block)? + 1;
    let of = blocks.len();
    Some(match s.blocks.get(block)? {
        Block::Experiment(e) => match &e.kind {
            ExperimentKind::Run { workload, tasks, modes, .. } => {
                let modes: Vec<&str> = modes.iter().map(|m| m.name()).collect();
                format!("experiment {n} of {of}: {workload} × {tasks} · {}", modes.join(", "))
            }
            ExperimentKind::Demo(name) => format!("experiment {n} of {of}: the {name} demo"),
        },
        Block::Exercise(x) => format!("exercise {n} of {of}: {} ({})", x.id, x.title),
        _ => return None,
    })
}

/// A section of a lesson with its notes; `panel` is the block the panel shows, if any.
pub(crate) fn section_notes(
    lesson: &Lesson,
    number: usize,
    lessons: usize,
    section: usize,
    panel: Option<usize>,
) -> ShownSection {
    let notes = lesson
        .notes(section)
        .into_iter()
        .map(|(about, n)| {
            // An exercise is checked with `x`, not run with `r`.
            let exercise = about
                .and_then(|b| lesson.sections.get(section)?.blocks.get(b))
                .is_some_and(|b| matches!(b, Block::Exercise(_)));
            let label = |l: &str| if exercise && l == "ask before r" { "ask before x".into() } else { l.to_string() };
            ShownNotes {
                about: about.and_then(|b| describe(lesson, section, b)),
                current: about.is_some() && about == panel,
                fields: n.fields().into_iter().map(|(l, t)| (label(l), t.to_string())).collect(),
            }
        })
        .collect();
    ShownSection {
        id: lesson.id.clone(),
        number,
        lessons,
        title: lesson.title.clone(),
        section,
        sections: lesson.sections.len(),
        section_title: lesson.sections.get(section).map_or(String::new(), |s| s.title.clone()),
        panel: panel.and_then(|b| describe(lesson, section, b)),
        notes,
    }
}

/// Where the TUI is, as far as notes go: (lesson, section, panel block), `None` on the lesson list. Cheap, so the
/// publisher can compare it after every event and build a message only when it changed.
pub(crate) fn position(app: &App) -> Option<(usize, usize, Option<usize>)> {
    if app.screen == Screen::List {
        return None;
    }
    let block = app.panel.setup.as_ref().filter(|s| s.section == app.view.section).map(|s| s.block);
    Some((app.view.lesson, app.view.section, block))
}

/// What the TUI shows now, as sent to followers.
pub(crate) fn showing(app: &App, pid: u32) -> Showing {
    let lesson = position(app).and_then(|(l, s, b)| {
        let lesson = app.lessons.get(l)?;
        Some(section_notes(lesson, l + 1, app.lessons.len(), s, b))
    });
    Showing { v: PROTOCOL, pid, lesson }
}

/// The lines a follower prints for what its presenter shows, wrapped to `width` columns. Every text is shown
/// terminal-safe (lint refuses control characters, but the socket is a boundary of its own).
pub(crate) fn render(s: &Showing, width: usize) -> Vec<String> {
    let width = width.clamp(30, 200);
    let mut out = fit(&format!("parlab notes · following the TUI with pid {}", s.pid), width);
    let Some(l) = &s.lesson else {
        out.push(String::new());
        out.push("The presenter is on the lesson list.".into());
        return out;
    };
    out.extend(section_lines(l, width));
    out
}

/// A section's heading lines and its notes.
fn section_lines(l: &ShownSection, width: usize) -> Vec<String> {
    let safe = |t: &str| terminal_safe(t).into_owned();
    let mut out = fit(&format!("lesson {}/{} · {} ({})", l.number, l.lessons, safe(&l.title), safe(&l.id)), width);
    let section = if l.section == 0 {
        "introduction".to_string()
    } else {
        format!("section {} of {}: {}", l.section, l.sections.saturating_sub(1), safe(&l.section_title))
    };
    out.extend(fit(&section, width));
    if let Some(p) = &l.panel {
        out.extend(fit(&format!("panel: {}", safe(p)), width));
    }
    out.push(String::new());
    if l.notes.is_empty() {
        out.push("(no notes for this section)".into());
    }
    for n in &l.notes {
        let mark = if n.current { "▶ " } else { "  " };
        let about = n.about.as_deref().map_or("the section".to_string(), safe);
        out.extend(fit(&format!("{mark}about {about}"), width));
        for (label, text) in &n.fields {
            out.extend(wrap(&format!("{}: ", safe(label)), &safe(text), width));
        }
        out.push(String::new());
    }
    out
}

/// A heading line word-wrapped to `width` columns, continuation lines indented by 4.
fn fit(line: &str, width: usize) -> Vec<String> {
    if line.width() <= width {
        return vec![line.to_string()];
    }
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    let mut lines = wrap("", rest, width.saturating_sub(indent));
    for (i, l) in lines.iter_mut().enumerate() {
        // `wrap` indents by 4 (and 6 after the first line); headings start at their own indent and hang by 4.
        let body = l.trim_start();
        *l = format!("{lead}{}{body}", if i == 0 { "" } else { "    " });
    }
    lines
}

/// `text` after `label`, word-wrapped to `width` columns, continuation lines indented under the text.
fn wrap(label: &str, text: &str, width: usize) -> Vec<String> {
    let indent = 4;
    let first = format!("{}{label}", " ".repeat(indent));
    let hang = " ".repeat(indent + 2);
    let mut lines = Vec::new();
    for (i, para) in text.split('\n').enumerate() {
        let mut line = if i == 0 { first.clone() } else { hang.clone() };
        let mut fresh = true;
        for word in para.split_whitespace() {
            let wide = line.width() + usize::from(!fresh) + word.width();
            if !fresh && wide > width {
                lines.push(std::mem::replace(&mut line, hang.clone()));
                fresh = true;
            }
            if !fresh {
                line.push(' ');
            }
            line.push_str(word);
            fresh = false;
        }
        lines.push(line);
    }
    lines
}

/// Every note of a lesson, section by section, for `parlab notes LESSON`.
pub(crate) fn lesson_lines(lesson: &Lesson, number: usize, lessons: usize, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for section in 0..lesson.sections.len() {
        let s = section_notes(lesson, number, lessons, section, None);
        if s.notes.is_empty() {
            continue;
        }
        let mut lines = section_lines(&s, width);
        if !out.is_empty() {
            // The lesson line once per lesson.
            lines.remove(0);
        }
        out.extend(lines);
    }
    if out.is_empty() {
        out.push(format!("lesson {number}/{lessons} · {} ({})", lesson.title, lesson.id));
        out.push("(no notes in this lesson)".into());
        out.push(String::new());
    }
    out
}

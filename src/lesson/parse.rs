//! One lesson file to a `Lesson`: splits the `+++` front matter off, walks the Markdown body with pulldown-cmark's
//! offset iterator (so every position is exact) into `## ` sections, prose and fenced blocks, and validates the TOML
//! of the front matter and of every `experiment`, `quiz` and `exercise` block. Every problem found is returned,
//! located in the whole file.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::error::LintError;
use super::raw::{Fields, Issue, parse_table};
use super::{Block, ExerciseSpec, Lesson, Section, validate};

/// Fence languages whose bodies are TOML blocks validated by parlab.
pub(crate) const LIVE_BLOCKS: [&str; 3] = ["experiment", "quiz", "exercise"];

/// A parsed lesson and the spans the across-files checks (unique ids) point at.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub lesson: Lesson,
    pub id_span: Range<usize>,
    pub exercise_ids: Vec<(String, Range<usize>)>,
}

/// Where the TOML text of a front matter or a block sits in the file: a list of (offset in the TOML text, offset
/// in the file, length) pieces, because pulldown-cmark hands a code block's text over line by line.
struct SourceMap {
    pieces: Vec<(usize, usize, usize)>,
    /// The block's opening line, for problems that concern the whole block.
    opening: Range<usize>,
}

impl SourceMap {
    fn contiguous(file_offset: usize, len: usize, opening: Range<usize>) -> SourceMap {
        SourceMap { pieces: vec![(0, file_offset, len)], opening }
    }

    fn offset(&self, o: usize) -> usize {
        match self.pieces.iter().rev().find(|(t, _, _)| *t <= o) {
            Some((t, f, len)) => f + (o - t).min(*len),
            None => self.opening.start,
        }
    }

    fn span(&self, issue_span: &Option<Range<usize>>) -> Range<usize> {
        match issue_span {
            Some(r) => self.offset(r.start)..self.offset(r.end).max(self.offset(r.start)),
            None => self.opening.clone(),
        }
    }
}

/// A piece of the body, in order.
enum Piece {
    Heading {
        title: String,
    },
    Prose(String),
    Fence {
        info: String,
        info_span: Range<usize>,
        text: String,
        map: SourceMap,
    },
    Indented(String),
    /// A live block inside a list or quote, where it would be silently shown as code.
    NestedLive {
        lang: String,
        span: Range<usize>,
    },
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
    errors: Vec<LintError>,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, label: Option<String>) {
        self.errors.push(LintError::at(self.path, self.text, span, message, label));
    }

    fn issues(&mut self, map: &SourceMap, issues: Vec<Issue>) {
        for issue in issues {
            let span = map.span(&issue.span);
            self.error(span, issue.message, issue.label);
        }
    }
}

/// The line containing byte `at`, without its newline.
fn line_at(text: &str, at: usize) -> Range<usize> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
}

/// Splits `+++ TOML +++` off the top: the TOML's range and where the body starts.
/// The front matter's TOML range and where the body starts, or the place and message of what is wrong.
type FrontSplit = Result<(Range<usize>, usize), (Range<usize>, &'static str)>;

fn split_front(text: &str) -> FrontSplit {
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let first = line_at(text, start);
    if text[first.clone()].trim_end() != "+++" {
        return Err((
            first,
            "a lesson must start with TOML front matter: a '+++' line, the fields, and another '+++' line",
        ));
    }
    let toml_start = (first.end + 1).min(text.len());
    let mut at = toml_start;
    while at < text.len() {
        let line = line_at(text, at);
        if text[line.clone()].trim_end() == "+++" {
            return Ok((toml_start..line.start, (line.end + 1).min(text.len())));
        }
        at = line.end + 1;
    }
    Err((first, "the front matter opened here is never closed with a '+++' line"))
}

fn trim_blank_lines(s: &str) -> &str {
    let s = s.trim_end();
    let mut start = 0;
    for line in s.split_inclusive('\n') {
        if line.trim().is_empty() {
            start += line.len();
        } else {
            break;
        }
    }
    &s[start..]
}

/// Walks the body's top-level Markdown into pieces. `base` is the body's offset in the file.
fn split_body(body: &str, base: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut prose_start = 0;
    let flush = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        let prose = trim_blank_lines(body.get(from..to).unwrap_or(""));
        if !prose.is_empty() {
            pieces.push(Piece::Prose(prose.to_string()));
        }
    };
    let mut depth = 0usize;
    let mut events = Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).into_offset_iter();
    while let Some((event, range)) = events.next() {
        match event {
            Event::Start(Tag::Heading { level: HeadingLevel::H2, .. }) if depth == 0 => {
                flush(&mut pieces, prose_start, range.start);
                let mut title = String::new();
                let mut inner = 0usize;
                for (event, _) in events.by_ref() {
                    match event {
                        Event::Text(t) | Event::Code(t) => title.push_str(&t),
                        Event::SoftBreak | Event::HardBreak => title.push(' '),
                        Event::Start(_) => inner += 1,
                        Event::End(TagEnd::Heading(_)) if inner == 0 => break,
                        Event::End(_) => inner = inner.saturating_sub(1),
                        _ => {}
                    }
                }
                pieces.push(Piece::Heading { title: title.trim().to_string() });
                prose_start = range.end;
            }
            Event::Start(Tag::CodeBlock(kind)) if depth == 0 => {
                flush(&mut pieces, prose_start, range.start);
                let mut text = String::new();
                let mut map = Vec::new();
                for (event, r) in events.by_ref() {
                    match event {
                        Event::Text(t) => {
                            map.push((text.len(), base + r.start, t.len().min(r.len())));
                            text.push_str(&t);
                        }
                        Event::End(TagEnd::CodeBlock) => break,
                        _ => {}
                    }
                }
                let opening = line_at(body, range.start);
                let opening = base + opening.start..base + opening.end;
                match kind {
                    CodeBlockKind::Fenced(info) => {
                        let map = SourceMap { pieces: map, opening: opening.clone() };
                        pieces.push(Piece::Fence { info: info.to_string(), info_span: opening, text, map });
                    }
                    CodeBlockKind::Indented => pieces.push(Piece::Indented(text)),
                }
                prose_start = range.end;
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let lang = info.split_whitespace().next().unwrap_or("").to_string();
                if LIVE_BLOCKS.contains(&lang.as_str()) {
                    let line = line_at(body, range.start);
                    let fence = line.start + (body[line.clone()].len() - body[line.clone()].trim_start().len());
                    pieces.push(Piece::NestedLive { lang, span: base + fence..base + line.end });
                }
                depth += 1;
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    flush(&mut pieces, prose_start, body.len());
    pieces
}

/// Parses and validates one lesson file. `starters` are the files in assets/exercises/ (empty: not checked).
pub(crate) fn parse_lesson(path: &str, text: &str, starters: &[&str]) -> Result<Parsed, Vec<LintError>> {
    let mut cx = Ctx { path, text, errors: Vec::new() };
    let (front, body_start) = match split_front(text) {
        Ok((toml, body_start)) => {
            let opening = line_at(text, toml.start.saturating_sub(1));
            let map = SourceMap::contiguous(toml.start, toml.len(), opening);
            let front = match parse_table(&text[toml.clone()]) {
                Ok(table) => {
                    let mut f = Fields::new(&table, "front matter");
                    let front = validate::front_matter(&mut f);
                    cx.issues(&map, f.issues);
                    front.map(|fm| {
                        let id_span = map.span(&Some(fm.id.span.clone()));
                        (fm, id_span)
                    })
                }
                Err(issue) => {
                    cx.issues(&map, vec![issue]);
                    None
                }
            };
            (front, body_start)
        }
        Err((span, message)) => {
            cx.error(span, message, None);
            (None, if text.starts_with('\u{feff}') { 3 } else { 0 })
        }
    };
    let title = front.as_ref().map_or(String::new(), |(f, _)| f.title.clone());
    let mut sections = vec![Section { title, blocks: Vec::new() }];
    let mut exercise_ids = Vec::new();
    let mut experiment_ids: Vec<String> = Vec::new();
    for piece in split_body(&text[body_start..], body_start) {
        let block = match piece {
            Piece::Heading { title } => {
                sections.push(Section { title, blocks: Vec::new() });
                continue;
            }
            Piece::Prose(p) => Block::Markdown(p),
            Piece::Indented(code) => Block::Code { lang: String::new(), text: code, runnable: false },
            Piece::NestedLive { lang, span } => {
                cx.error(
                    span,
                    format!("a '{lang}' block must start at the left margin, outside lists and quotes"),
                    Some("otherwise it would be shown as plain code".into()),
                );
                continue;
            }
            Piece::Fence { info, info_span, text: code, map } => {
                let mut words = info.split_whitespace();
                let lang = words.next().unwrap_or("").to_string();
                let options: Vec<&str> = words.collect();
                let runnable = options.contains(&"runnable");
                let allowed: &[&str] = if lang == "python" { &["runnable"] } else { &[] };
                let bad_option = options.iter().find(|o| !allowed.contains(o));
                if let Some(bad) = bad_option
                    && (lang == "python" || LIVE_BLOCKS.contains(&lang.as_str()))
                {
                    let at = text[info_span.clone()]
                        .find(bad)
                        .map_or(info_span.clone(), |i| info_span.start + i..info_span.start + i + bad.len());
                    let expected = if lang == "python" { "expected: runnable" } else { "expected none" };
                    cx.error(at, format!("unknown option '{bad}' on a '{lang}' fence ({expected})"), None);
                    continue;
                }
                if !LIVE_BLOCKS.contains(&lang.as_str()) {
                    if let Some(section) = sections.last_mut() {
                        section.blocks.push(Block::Code { lang, text: code, runnable });
                    }
                    continue;
                }
                let table = match parse_table(&code) {
                    Ok(t) => t,
                    Err(issue) => {
                        cx.issues(&map, vec![issue]);
                        continue;
                    }
                };
                let what = match lang.as_str() {
                    "experiment" => "experiment block",
                    "quiz" => "quiz block",
                    _ => "exercise block",
                };
                let mut f = Fields::new(&table, what);
                let block = match lang.as_str() {
                    "experiment" => validate::experiment(&mut f, &code).map(|(spec, id)| {
                        if let Some(id) = id {
                            if experiment_ids.contains(&id.value) {
                                f.issues.push(Issue::at(
                                    id.span,
                                    format!("experiment id '{}' is used twice in this lesson", id.value),
                                ));
                            } else {
                                experiment_ids.push(id.value);
                            }
                        }
                        Block::Experiment(spec)
                    }),
                    "quiz" => validate::quiz(&mut f).map(Block::Quiz),
                    _ => validate::exercise(&mut f, &code, starters).map(|(spec, id_span): (ExerciseSpec, _)| {
                        exercise_ids.push((spec.id.clone(), map.span(&Some(id_span))));
                        Block::Exercise(spec)
                    }),
                };
                let ok = f.issues.is_empty();
                cx.issues(&map, f.issues);
                match block {
                    Some(b) if ok => b,
                    _ => continue,
                }
            }
        };
        if let Some(section) = sections.last_mut() {
            section.blocks.push(block);
        }
    }
    if sections.len() < 2 && front.is_some() {
        let at = text[body_start..].find(|c: char| !c.is_whitespace()).map_or(body_start, |i| body_start + i);
        cx.error(
            at..at,
            "the lesson has no section: start each one with a '## ' heading",
            Some("the learner steps through sections with ←/→".into()),
        );
    }
    match front {
        Some((fm, id_span)) if cx.errors.is_empty() => Ok(Parsed {
            lesson: Lesson {
                id: fm.id.value,
                title: fm.title,
                minutes: fm.minutes,
                summary: fm.summary,
                covers: fm.covers,
                path: path.to_string(),
                sections,
            },
            id_span,
            exercise_ids,
        }),
        _ => {
            if cx.errors.is_empty() {
                cx.error(0..0, "the front matter is not valid", None);
            }
            cx.errors.sort_by_key(|e| (e.line, e.col));
            Err(cx.errors)
        }
    }
}

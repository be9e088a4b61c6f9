//! One lesson file to a `Lesson`: splits the `+++` front matter off, walks the Markdown body with pulldown-cmark's
//! offset iterator (so every position is exact) into `## ` sections, prose and fenced blocks, and validates the TOML
//! of the front matter and of every `experiment`, `quiz` and `exercise` block. Every problem found is returned,
//! located in the whole file. Before that, the text itself is checked: no control characters (they would act on
//! the learner's terminal) and no line over `MAX_LINE_CHARS`. After it, what the prose tells the learner to do with
//! the panel is checked against the blocks of its section (see `refs`).
//!
//! Work and memory stay bounded on hostile input: the first `MAX_ERRORS_PER_FILE` errors are kept (in file order)
//! and the rest only counted, and every error shares the file's one copy of the text.

use std::ops::Range;
use std::sync::Arc;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::error::LintError;
use super::raw::{Fields, Issue, parse_table};
use super::refs::{Mention, Need, Scanner, key_action};
use super::text::{first_control, make_safe, terminal_safe, visible};
use super::{Block, Broken, ExerciseSpec, Lesson, MAX_ERRORS_PER_FILE, Section, validate};

/// The longest line of a lesson file, in characters (code included): longer lines are refused, so no screen ever
/// has to wrap or measure a megabyte-long word.
pub(crate) const MAX_LINE_CHARS: usize = 10_000;
/// The longest `## ` section heading, in characters.
pub(crate) const MAX_HEADING_CHARS: usize = 100;

/// Fence languages whose bodies are TOML blocks validated by parlab.
pub(crate) const LIVE_BLOCKS: [&str; 4] = ["experiment", "quiz", "exercise", "notes"];

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
        span: Range<usize>,
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

/// An error before it is placed in the file (placing one costs a scan of the text up to it).
struct Pending {
    span: Range<usize>,
    message: String,
    label: Option<String>,
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
    /// The earliest errors found so far, at most twice the cap between trims.
    pending: Vec<Pending>,
    /// Errors dropped beyond the cap.
    more: usize,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, label: Option<String>) {
        self.pending.push(Pending { span, message: message.into(), label });
        if self.pending.len() >= 2 * MAX_ERRORS_PER_FILE {
            self.trim();
        }
    }

    /// Keeps the `MAX_ERRORS_PER_FILE` earliest errors and counts the others (a stable sort: errors at one place stay
    /// in the order they were found).
    fn trim(&mut self) {
        self.pending.sort_by_key(|p| p.span.start);
        self.more += self.pending.len().saturating_sub(MAX_ERRORS_PER_FILE);
        self.pending.truncate(MAX_ERRORS_PER_FILE);
    }

    fn has_errors(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The errors, placed in the file, sharing one copy of its text.
    fn finish(mut self) -> Broken {
        self.trim();
        let source: Arc<str> = Arc::from(self.text);
        let errors =
            self.pending.into_iter().map(|p| LintError::at(self.path, &source, p.span, p.message, p.label)).collect();
        Broken { path: terminal_safe(self.path).into_owned(), errors, more: self.more }
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

/// The body as pieces, with the problems found in its decoded text and the references its prose makes.
struct Body {
    pieces: Vec<Piece>,
    problems: Vec<(Range<usize>, String)>,
    mentions: Vec<Mention>,
}

/// Inline tags stay inside a paragraph; every other tag starts or ends one (for the reference scanner).
fn is_inline(tag: &Tag) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::Superscript
            | Tag::Subscript
    )
}

fn is_inline_end(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Superscript
            | TagEnd::Subscript
    )
}

/// A control character that Markdown decoding produced (`&#27;` is ESC) where the file itself has none (the
/// text check reports those): the TUI would send it to the terminal raw.
fn decoded_control(event: &Event<'_>, source: &str) -> Option<String> {
    let strings: Vec<&str> = match event {
        Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => vec![t],
        Event::Start(Tag::Link { dest_url, title, .. } | Tag::Image { dest_url, title, .. }) => vec![dest_url, title],
        _ => vec![],
    };
    let c = strings.iter().find_map(|s| first_control(s))?.1;
    if first_control(source).is_some() {
        return None;
    }
    Some(format!(
        "this text decodes to the control character {} (U+{:04X}), which would act on the learner's terminal",
        visible(c),
        c as u32
    ))
}

/// Walks the body's top-level Markdown into pieces. `base` is the body's offset in the file.
fn split_body(body: &str, base: usize) -> Body {
    let mut pieces = Vec::new();
    let mut problems = Vec::new();
    let mut scanner = Scanner::default();
    let mut prose_start = 0;
    let flush = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        let prose = trim_blank_lines(body.get(from..to).unwrap_or(""));
        if !prose.is_empty() {
            pieces.push(Piece::Prose(prose.to_string()));
        }
    };
    let check = |problems: &mut Vec<(Range<usize>, String)>, event: &Event<'_>, r: &Range<usize>| {
        if let Some(p) = decoded_control(event, body.get(r.clone()).unwrap_or("")) {
            problems.push((base + r.start..base + r.end, p));
        }
    };
    let mut depth = 0usize;
    // Inside a code block nested in a list or quote: its text is code, not prose.
    let mut in_code = false;
    let mut events = Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).into_offset_iter();
    while let Some((event, range)) = events.next() {
        check(&mut problems, &event, &range);
        match &event {
            Event::Start(tag) if !is_inline(tag) => scanner.flush(pieces.len()),
            Event::End(tag) if !is_inline_end(tag) => scanner.flush(pieces.len()),
            Event::Text(t) if !in_code => {
                let exact = body.get(range.clone()) == Some(&**t);
                scanner.text(t, base + range.start..base + range.end, exact);
            }
            Event::Code(c) => scanner.code(c, base + range.start..base + range.end),
            _ => {}
        }
        match event {
            Event::Start(Tag::Heading { level: HeadingLevel::H2, .. }) if depth == 0 => {
                flush(&mut pieces, prose_start, range.start);
                let mut title = String::new();
                let mut inner = 0usize;
                for (event, r) in events.by_ref() {
                    check(&mut problems, &event, &r);
                    match event {
                        Event::Text(t) | Event::Code(t) => title.push_str(&t),
                        Event::SoftBreak | Event::HardBreak => title.push(' '),
                        Event::Start(_) => inner += 1,
                        Event::End(TagEnd::Heading(_)) if inner == 0 => break,
                        Event::End(_) => inner = inner.saturating_sub(1),
                        _ => {}
                    }
                }
                let line = line_at(body, range.start);
                let span = base + line.start..base + line.end;
                pieces.push(Piece::Heading { title: title.trim().to_string(), span });
                prose_start = range.end;
            }
            Event::Start(Tag::CodeBlock(kind)) if depth == 0 => {
                flush(&mut pieces, prose_start, range.start);
                let mut text = String::new();
                let mut map = Vec::new();
                for (event, r) in events.by_ref() {
                    check(&mut problems, &event, &r);
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
            Event::Start(Tag::CodeBlock(kind)) => {
                if let CodeBlockKind::Fenced(info) = kind {
                    let lang = info.split_whitespace().next().unwrap_or("").to_string();
                    if LIVE_BLOCKS.contains(&lang.as_str()) {
                        let line = line_at(body, range.start);
                        let fence = line.start + (body[line.clone()].len() - body[line.clone()].trim_start().len());
                        pieces.push(Piece::NestedLive { lang, span: base + fence..base + line.end });
                    }
                }
                in_code = true;
                depth += 1;
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                depth = depth.saturating_sub(1);
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    scanner.flush(pieces.len());
    flush(&mut pieces, prose_start, body.len());
    Body { pieces, problems, mentions: scanner.mentions }
}

/// Refuses control characters (one error per line) and lines over `MAX_LINE_CHARS`, anywhere in the file.
fn check_text(cx: &mut Ctx) {
    let text = cx.text;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if let Some((i, c)) = first_control(line) {
            cx.error(
                start + i..start + i + c.len_utf8(),
                format!(
                    "control character {} (U+{:04X}) in the text: it would act on the learner's terminal",
                    visible(c),
                    c as u32
                ),
                Some("remove it".into()),
            );
        }
        if line.len() > MAX_LINE_CHARS {
            let chars = line.trim_end_matches(['\n', '\r']).chars().count();
            if let (true, Some((cut, _))) = (chars > MAX_LINE_CHARS, line.char_indices().nth(MAX_LINE_CHARS)) {
                cx.error(
                    start + cut..start + cut,
                    format!("this line is {chars} characters long; the limit is {MAX_LINE_CHARS}"),
                    Some("break it into shorter lines".into()),
                );
            }
        }
        start += line.len();
    }
}

/// What one section holds, for checking the references its prose makes.
#[derive(Clone, Copy, Default)]
struct Holds {
    /// Experiment blocks (valid or not), demos included.
    experiments: usize,
    /// Experiments that run a workload (an invalid one counts: its own errors are reported).
    workload_experiments: usize,
    exercises: usize,
}

/// Where a body piece is: its section, and how many experiment blocks of that section come before it.
#[derive(Clone, Copy)]
struct At {
    section: usize,
    experiments_before: usize,
}

/// The problem with a reference, if its section cannot satisfy it.
fn unmet(m: &Mention, written: &str, holds: &Holds, at: At) -> Option<String> {
    let key = m.key.as_deref().unwrap_or("");
    let says = || format!("this section says press `{key}` ({})", key_action(key));
    let n = holds.experiments;
    let after = n - at.experiments_before.min(n);
    match m.need {
        Need::Runnable if n + holds.exercises == 0 => Some(format!("{}, but it has no experiment or exercise", says())),
        Need::Setup if holds.workload_experiments + holds.exercises == 0 => {
            let demo = if n > 0 { " (a demo has no knobs and compares its own cases)" } else { "" };
            Some(format!("{}, but it has no workload experiment or exercise{demo}", says()))
        }
        Need::Exercise if holds.exercises == 0 => Some(format!("{}, but it has no exercise", says())),
        Need::Nth(k) if n < k => {
            let has = match n {
                0 => "no experiment".to_string(),
                1 => "only 1 experiment".to_string(),
                n => format!("only {n} experiments"),
            };
            Some(format!("'{written}', but this section has {has}"))
        }
        Need::Below if after == 0 => Some(format!("'{written}', but no experiment follows it in this section")),
        Need::Above if at.experiments_before == 0 => {
            Some(format!("'{written}', but no experiment comes before it in this section"))
        }
        Need::Any if n == 0 => Some(format!("'{written}', but this section has no experiment")),
        _ => None,
    }
}

/// Makes every text of a lesson terminal-safe. `lint` already refuses control characters in lesson text, so this
/// changes nothing in a lesson that loads; it keeps the guarantee where the screens are: in the loaded lesson.
fn make_lesson_safe(l: &mut Lesson) {
    make_safe(&mut l.title);
    make_safe(&mut l.summary);
    l.covers.iter_mut().for_each(make_safe);
    make_safe(&mut l.path);
    for s in &mut l.sections {
        make_safe(&mut s.title);
        for b in &mut s.blocks {
            match b {
                Block::Markdown(t) => make_safe(t),
                Block::Code { lang, text, .. } => {
                    make_safe(lang);
                    make_safe(text);
                }
                Block::Experiment(e) => {
                    if let Some(n) = &mut e.note {
                        make_safe(n);
                    }
                    e.expect.iter_mut().for_each(|x| make_safe(&mut x.goal.text));
                }
                Block::Quiz(q) => {
                    make_safe(&mut q.question);
                    q.choices.iter_mut().for_each(make_safe);
                    make_safe(&mut q.why);
                }
                Block::Notes(n) => n.make_safe(),
                Block::Exercise(x) => {
                    make_safe(&mut x.title);
                    x.hints.iter_mut().for_each(make_safe);
                    make_safe(&mut x.explain);
                    make_safe(&mut x.goal.text);
                }
            }
        }
    }
}

/// Parses and validates one lesson file. `starters` are the files in assets/exercises/ (empty: not checked).
pub(crate) fn parse_lesson(path: &str, text: &str, starters: &[&str]) -> Result<Parsed, Broken> {
    let mut cx = Ctx { path, text, pending: Vec::new(), more: 0 };
    check_text(&mut cx);
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
    let mut holds = vec![Holds::default()];
    let mut exercise_ids = Vec::new();
    let mut experiment_ids: Vec<String> = Vec::new();
    let body = split_body(&text[body_start..], body_start);
    for (span, problem) in body.problems {
        cx.error(span, problem, None);
    }
    let mut places = Vec::with_capacity(body.pieces.len());
    for piece in body.pieces {
        let section = sections.len() - 1;
        places.push(At { section, experiments_before: holds[section].experiments });
        let block = match piece {
            Piece::Heading { title, span } => {
                let len = title.chars().count();
                if len > MAX_HEADING_CHARS {
                    cx.error(
                        span,
                        format!("this section heading is {len} characters long; the limit is {MAX_HEADING_CHARS}"),
                        None,
                    );
                }
                sections.push(Section { title, blocks: Vec::new() });
                holds.push(Holds::default());
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
                let table = parse_table(&code);
                // What the section holds counts blocks with errors too, so a broken block is reported once.
                let held = &mut holds[section];
                match lang.as_str() {
                    "experiment" => {
                        held.experiments += 1;
                        let demo = table.as_ref().is_ok_and(|t| t.get("demo").is_some());
                        held.workload_experiments += usize::from(!demo);
                    }
                    "exercise" => held.exercises += 1,
                    _ => {}
                }
                let table = match table {
                    Ok(t) => t,
                    Err(issue) => {
                        cx.issues(&map, vec![issue]);
                        continue;
                    }
                };
                let what = match lang.as_str() {
                    "experiment" => "experiment block",
                    "quiz" => "quiz block",
                    "notes" => "notes block",
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
                    "notes" => validate::notes(&mut f).map(Block::Notes),
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
    let last = At { section: sections.len() - 1, experiments_before: holds[sections.len() - 1].experiments };
    for m in &body.mentions {
        let at = places.get(m.piece).copied().unwrap_or(last);
        let written = text.get(m.span.clone()).unwrap_or("");
        if let Some(problem) = unmet(m, written, &holds[at.section], at) {
            cx.error(m.span.clone(), problem, Some("the panel shows only the blocks of the section being read".into()));
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
        Some((fm, id_span)) if !cx.has_errors() => {
            let mut lesson = Lesson {
                id: fm.id.value,
                title: fm.title,
                minutes: fm.minutes,
                summary: fm.summary,
                covers: fm.covers,
                path: path.to_string(),
                sections,
            };
            make_lesson_safe(&mut lesson);
            Ok(Parsed { lesson, id_span, exercise_ids })
        }
        _ => {
            if !cx.has_errors() {
                cx.error(0..0, "the front matter is not valid", None);
            }
            Err(cx.finish())
        }
    }
}

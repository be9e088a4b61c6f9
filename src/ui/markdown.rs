//! Lesson prose into ratatui lines: Markdown (headings, emphasis, lists, inline code, quotes, tables) wrapped to a
//! width, and fenced code highlighted with syntect. Nothing is cut silently: a word longer than a line is broken,
//! a long code line goes on in rows marked `↪`, table cells wrap inside columns fitted to the width (or the table
//! becomes one record per row when its columns cannot fit), and only a paragraph or code block over
//! `MAX_PARAGRAPH` bytes is shortened, with a line saying how much is not shown. Text is measured in terminal cells
//! (`unicode-width`), never split inside a character, and every pass is linear in the text. Results are cached per
//! text, width and theme, so a frame only clones lines it already has.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use std::sync::OnceLock;

use pulldown_cmark::{Alignment, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::theme::{Palette, Theme};
use crate::units::fmt_bytes_rough;

pub(crate) type Lines = Rc<Vec<Line<'static>>>;

/// A paragraph, table cell or code block longer than this (in bytes) is shown up to here, then a line says how
/// much more there is: a lesson with a megabyte-long token must not cost a frame more than a page of text does.
pub(crate) const MAX_PARAGRAPH: usize = 64 * 1024;

thread_local! {
    static CACHE: RefCell<HashMap<u64, Lines>> = RefCell::new(HashMap::new());
}

fn cached(
    kind: u8,
    text: &str,
    lang: &str,
    width: u16,
    theme: Theme,
    make: impl FnOnce() -> Vec<Line<'static>>,
) -> Lines {
    let mut h = DefaultHasher::new();
    (kind, text, lang, width, theme.palette.name(), theme.color, theme.ascii).hash(&mut h);
    let key = h.finish();
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return hit;
    }
    let lines = Rc::new(make());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 512 {
            c.clear();
        }
        c.insert(key, Rc::clone(&lines));
    });
    lines
}

/// Markdown wrapped to `width` columns (cached).
pub(crate) fn markdown(text: &str, width: u16, theme: Theme) -> Lines {
    cached(0, text, "", width, theme, || render_markdown(text, width.max(10) as usize, theme))
}

/// A fenced code block, highlighted when colours are on, indented, and wrapped at `width` with its continuation
/// rows marked (cached).
pub(crate) fn code(lang: &str, text: &str, width: u16, theme: Theme) -> Lines {
    cached(1, text, lang, width, theme, || render_code(lang, text, width as usize, theme))
}

/// Terminal cells a text takes.
pub(crate) fn text_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn char_width(ch: char) -> usize {
    UnicodeWidthChar::width(ch).unwrap_or(0)
}

/// What stands where something goes on beyond the screen or the bound.
pub(crate) fn more(theme: Theme) -> &'static str {
    if theme.ascii { "-> more" } else { "→ more" }
}

/// The start of `s`, at most `max` bytes, ending on a character boundary.
fn head_of(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// Greedy word wrapping in one pass: each character is measured once, a word longer than a line is broken at the
/// width (never inside a character: a zero-width one stays with the character before it).
struct Wrapper {
    width: usize,
    out: Vec<Line<'static>>,
    line: Vec<Span<'static>>,
    used: usize,
    /// Nothing but the prefix on the current line yet.
    at_start: bool,
    rest: Span<'static>,
    /// A space is owed before the next word (in this style).
    space: Option<Style>,
}

impl Wrapper {
    fn new(width: usize, first: Span<'static>, rest: Span<'static>) -> Wrapper {
        Wrapper {
            width: width.max(1),
            out: Vec::new(),
            used: first.width(),
            line: vec![first],
            at_start: true,
            rest,
            space: None,
        }
    }

    fn newline(&mut self) {
        self.out.push(Line::from(std::mem::take(&mut self.line)));
        self.line.push(self.rest.clone());
        self.used = self.rest.width();
        self.at_start = true;
    }

    fn push(&mut self, text: &str, style: Style, cells: usize) {
        self.line.push(Span::styled(text.to_string(), style));
        self.used += cells;
        self.at_start = false;
    }

    fn run(&mut self, text: &str, style: Style) {
        for (pi, part) in text.split('\n').enumerate() {
            if pi > 0 {
                self.newline();
                self.space = None;
            }
            for (wi, word) in part.split(' ').enumerate() {
                if wi > 0 {
                    self.space = Some(style);
                }
                if !word.is_empty() {
                    self.word(word, style);
                }
            }
        }
    }

    fn word(&mut self, word: &str, style: Style) {
        let ww = text_width(word);
        let sp = usize::from(self.space.is_some() && !self.at_start);
        if !self.at_start && self.used + sp + ww > self.width {
            self.newline();
        }
        if let Some(st) = self.space.take()
            && !self.at_start
        {
            self.line.push(Span::styled(" ", st));
            self.used += 1;
        }
        if self.used + ww <= self.width {
            self.push(word, style, ww);
            return;
        }
        let (mut start, mut seg) = (0, 0);
        for (i, ch) in word.char_indices() {
            let cw = char_width(ch);
            // At a line's start one character is placed even if it does not fit, so the loop always advances.
            if cw > 0 && self.used + seg + cw > self.width && (seg > 0 || !self.at_start) {
                if seg > 0 {
                    self.push(&word[start..i], style, seg);
                }
                self.newline();
                (start, seg) = (i, 0);
            }
            seg += cw;
        }
        if start < word.len() {
            self.push(&word[start..], style, seg);
        }
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        if !self.at_start || self.out.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.out.push(Line::from(line));
        }
        self.out
    }
}

/// Words with their styles, wrapped greedily; `first` and `rest` prefix the first and following lines. Explicit
/// newlines break lines; a word longer than a line is broken at the width. Past `MAX_PARAGRAPH` bytes the text is
/// left off and a last line says how much.
pub(crate) fn wrap(
    runs: &[(String, Style)],
    width: usize,
    first: Span<'static>,
    rest: Span<'static>,
) -> Vec<Line<'static>> {
    wrap_marked(runs, width, first, rest, "→ more")
}

/// `wrap` with the marker a theme uses for "there is more".
pub(crate) fn wrap_marked(
    runs: &[(String, Style)],
    width: usize,
    first: Span<'static>,
    rest: Span<'static>,
    more: &str,
) -> Vec<Line<'static>> {
    let mut w = Wrapper::new(width, first, rest.clone());
    let mut left = MAX_PARAGRAPH;
    let mut cut = None;
    for (text, style) in runs {
        let shown = head_of(text, left);
        left -= shown.len();
        w.run(shown, *style);
        if shown.len() < text.len() {
            cut = Some(*style);
            break;
        }
    }
    let mut out = w.finish();
    if let Some(style) = cut {
        let total: usize = runs.iter().map(|(t, _)| t.len()).sum();
        let note = format!("{more}: {} of this paragraph not shown", fmt_bytes_rough(total - (MAX_PARAGRAPH - left)));
        let mut w = Wrapper::new(width, rest.clone(), rest);
        w.run(&note, style.add_modifier(Modifier::ITALIC));
        out.extend(w.finish());
    }
    out
}

/// A styled line wrapped to `width`, continuation lines indented by two.
pub(crate) fn wrap_line(line: &Line<'_>, width: usize) -> Vec<Line<'static>> {
    let runs: Vec<(String, Style)> =
        line.spans.iter().map(|s| (s.content.to_string(), line.style.patch(s.style))).collect();
    wrap(&runs, width, Span::raw(""), Span::raw("  "))
}

/// Styled pieces of one code line in rows of at most `width` cells, split between characters (code has no word
/// to break at): the first row starts with `gutter`, each row it goes on in with `cont`, which marks it.
fn code_rows(
    pieces: &[(String, Style)],
    width: usize,
    gutter: Span<'static>,
    cont: Span<'static>,
) -> Vec<Line<'static>> {
    let avail = width.saturating_sub(gutter.width()).max(1);
    let mut out = Vec::new();
    let mut line = vec![gutter];
    let mut used = 0;
    for (text, style) in pieces {
        let (mut start, mut seg) = (0, 0);
        for (i, ch) in text.char_indices() {
            let cw = char_width(ch);
            if cw > 0 && used + seg + cw > avail && used + seg > 0 {
                if seg > 0 {
                    line.push(Span::styled(text[start..i].to_string(), *style));
                }
                out.push(Line::from(std::mem::take(&mut line)));
                line.push(cont.clone());
                (used, seg, start) = (0, 0, i);
            }
            seg += cw;
        }
        if start < text.len() {
            line.push(Span::styled(text[start..].to_string(), *style));
            used += seg;
        }
    }
    out.push(Line::from(line));
    out
}

fn continuation(theme: Theme) -> &'static str {
    if theme.ascii { "> " } else { "↪ " }
}

/// How a table is drawn: its prefix, column gap, rules and styles, and which columns hold figures.
pub(crate) struct TableLook {
    pub indent: Span<'static>,
    /// Between two columns; its style is the rules' too.
    pub gap: Span<'static>,
    /// Where a rule crosses a gap (as wide as `gap`).
    pub cross: &'static str,
    pub rule: &'static str,
    pub head: Style,
    pub body: Style,
    /// Column names in the record layout.
    pub label: Style,
    /// Right-aligned columns.
    pub right: Vec<bool>,
    /// Columns never wrapped (figures: a number broken in two reads as two numbers).
    pub keep: Vec<bool>,
    /// Rows that wrap are told apart by a rule; without, a row starts where its first cell has text (denser, for
    /// demo tables whose first column names each row).
    pub row_rules: bool,
    /// In the record layout, a record's fields run on as one paragraph (`sep` between them) rather than one
    /// line each: denser, for tables of short figures.
    pub inline_records: Option<&'static str>,
}

/// A text column narrower than its longest word (up to this many cells) would break most of its words.
const WORD_COL: usize = 16;
/// No text column gets narrower than this, unless all of its cells are.
const MIN_COL: usize = 10;

/// A laid-out table: the header (and the rule under it), then each row's lines, each led by what sets it apart
/// from the one before (a rule when rows wrap and the look asks for one; a blank line between records).
pub(crate) struct Laid {
    pub head: Vec<Line<'static>>,
    pub rows: Vec<Vec<Line<'static>>>,
}

impl Laid {
    pub(crate) fn lines(self) -> Vec<Line<'static>> {
        let mut out = self.head;
        out.extend(self.rows.into_iter().flatten());
        out
    }
}

/// A table in `width` cells, nothing cut (see `layout`).
pub(crate) fn table(head: &[String], rows: &[Vec<String>], width: usize, look: &TableLook) -> Vec<Line<'static>> {
    layout(head, rows, width, look).lines()
}

/// Whether the table keeps its columns at `width` (else `layout` makes records of its rows).
pub(crate) fn fits(head: &[String], rows: &[Vec<String>], width: usize, look: &TableLook) -> bool {
    column_widths(head, rows, width, look).is_some()
}

/// Column widths: natural widths, the widest text columns giving way first down to about a word each; `None`
/// when even that does not fit.
fn column_widths(head: &[String], rows: &[Vec<String>], width: usize, look: &TableLook) -> Option<Vec<usize>> {
    let cols = rows.iter().map(Vec::len).chain([head.len()]).max().unwrap_or(0);
    // Widths of the whole cells and of their longest words, in the body and in the header.
    let measure = |r: &[String], natural: &mut [usize], word: &mut [usize]| {
        for (i, c) in r.iter().enumerate() {
            let c = head_of(c, MAX_PARAGRAPH);
            natural[i] = natural[i].max(text_width(c));
            word[i] = word[i].max(c.split([' ', '\n']).map(text_width).max().unwrap_or(0));
        }
    };
    let (mut body, mut body_word) = (vec![0usize; cols], vec![0usize; cols]);
    for r in rows {
        measure(r, &mut body, &mut body_word);
    }
    let (mut top, mut top_word) = (vec![0usize; cols], vec![0usize; cols]);
    measure(head, &mut top, &mut top_word);
    let natural: Vec<usize> = (0..cols).map(|i| body[i].max(top[i])).collect();
    // A figure column is never narrower than its figures (its name may wrap); a text column gives way down to
    // about its longest word.
    let floor: Vec<usize> = (0..cols)
        .map(|i| {
            if flag(&look.keep, i) {
                body[i].max(top_word[i])
            } else {
                natural[i].min(body_word[i].max(top_word[i]).clamp(MIN_COL, WORD_COL))
            }
        })
        .collect();
    let fixed = look.indent.width() + look.gap.width() * cols.saturating_sub(1);
    let budget = width.checked_sub(fixed)?;
    if floor.iter().sum::<usize>() > budget {
        return None;
    }
    // Capped first, so the loops below run at most columns × width times whatever the cells hold.
    let mut widths: Vec<usize> = natural.iter().map(|w| (*w).min(budget)).collect();
    // Width that only a column's name needs goes first (wrapping a name costs one line, a cell one per row), then
    // the widest columns give way.
    let header_only: Vec<usize> = (0..cols).map(|i| body[i].max(floor[i])).collect();
    for least in [&header_only, &floor] {
        while widths.iter().sum::<usize>() > budget {
            let Some(i) =
                (0..cols).filter(|&i| widths[i] > least[i]).max_by_key(|&i| (widths[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            widths[i] -= 1;
        }
    }
    Some(widths)
}

fn flag(v: &[bool], i: usize) -> bool {
    v.get(i).copied().unwrap_or(false)
}

/// Lays a table out in `width` cells, nothing cut: cells wrap inside their columns (`column_widths`) and a row is
/// as tall as its tallest cell. When even that does not fit, each row becomes a record: its first cell as a title,
/// then one `column: value` line per other cell.
pub(crate) fn layout(head: &[String], rows: &[Vec<String>], width: usize, look: &TableLook) -> Laid {
    let Some(widths) = column_widths(head, rows, width, look) else {
        return records(head, rows, width, look);
    };
    let cols = widths.len();
    let rule = || {
        let parts: Vec<String> = widths.iter().map(|w| look.rule.repeat(*w)).collect();
        Line::from(vec![look.indent.clone(), Span::styled(parts.join(look.cross), look.gap.style)])
    };
    let row = |cells: &[String], style: Style| -> Vec<Line<'static>> {
        let wrapped: Vec<Vec<Line<'static>>> = (0..cols)
            .map(|i| {
                let text = cells.get(i).cloned().unwrap_or_default();
                wrap(&[(text, style)], widths[i], Span::raw(""), Span::raw(""))
            })
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        (0..height)
            .map(|k| {
                let mut spans = vec![look.indent.clone()];
                for (i, lines) in wrapped.iter().enumerate() {
                    if i > 0 {
                        spans.push(look.gap.clone());
                    }
                    let (content, w) = lines.get(k).map_or((Vec::new(), 0), |l| (l.spans.clone(), l.width()));
                    let pad = " ".repeat(widths[i].saturating_sub(w));
                    if flag(&look.right, i) {
                        spans.push(Span::raw(pad));
                        spans.extend(content);
                    } else {
                        spans.extend(content);
                        if i + 1 < cols {
                            spans.push(Span::raw(pad));
                        }
                    }
                }
                Line::from(spans)
            })
            .collect()
    };
    let mut laid = Laid { head: Vec::new(), rows: Vec::new() };
    if !head.is_empty() {
        laid.head = row(head, look.head);
        laid.head.push(rule());
    }
    laid.rows = rows.iter().map(|r| row(r, look.body)).collect();
    if look.row_rules && laid.rows.iter().any(|r| r.len() > 1) {
        for r in laid.rows.iter_mut().skip(1) {
            r.insert(0, rule());
        }
    }
    laid
}

/// A table too wide for its columns, one record per row: the first cell as a title, then `column: value` lines.
fn records(head: &[String], rows: &[Vec<String>], width: usize, look: &TableLook) -> Laid {
    let indent = look.indent.clone();
    let deeper = |n: usize| Span::styled(format!("{}{}", indent.content, " ".repeat(n)), indent.style);
    let rows = rows
        .iter()
        .enumerate()
        .map(|(ri, r)| {
            let mut out = Vec::new();
            // A record in lines of its own is set apart by a blank line; a paragraph's hanging indent is enough.
            if ri > 0 && look.inline_records.is_none() {
                out.push(Line::default());
            }
            let field = |i: usize, c: &String| {
                let mut runs = Vec::new();
                if let Some(h) = head.get(i).filter(|h| !h.is_empty()) {
                    runs.push((format!("{h}: "), look.label));
                }
                runs.push((c.clone(), if i == 0 { look.head } else { look.body }));
                runs
            };
            match look.inline_records {
                Some(sep) => {
                    let mut runs = Vec::new();
                    for (i, c) in r.iter().enumerate() {
                        if i > 0 {
                            runs.push((sep.to_string(), look.label));
                        }
                        runs.extend(field(i, c));
                    }
                    out.extend(wrap(&runs, width, indent.clone(), deeper(2)));
                }
                None => {
                    for (i, c) in r.iter().enumerate() {
                        let (first, rest) = if i == 0 { (indent.clone(), deeper(2)) } else { (deeper(2), deeper(4)) };
                        out.extend(wrap(&field(i, c), width, first, rest));
                    }
                }
            }
            out
        })
        .collect();
    Laid { head: Vec::new(), rows }
}

struct Md {
    theme: Theme,
    width: usize,
    out: Vec<Line<'static>>,
    runs: Vec<(String, Style)>,
    styles: Vec<Style>,
    /// Ordered lists hold their next number.
    lists: Vec<Option<u64>>,
    /// Prefix for the first line of the paragraph being built (a list bullet).
    bullet: Option<String>,
    quote: usize,
    heading: Option<HeadingLevel>,
    /// Inside a code block: the bytes it has had so far and those left off past the bound.
    code: Option<(usize, usize)>,
    table: Option<Table>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    cell: String,
    head_rows: usize,
    in_head: bool,
    right: Vec<bool>,
}

impl Md {
    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    fn push_style(&mut self, add: Style) {
        let s = self.style().patch(add);
        self.styles.push(s);
    }

    fn indent(&self) -> String {
        let mut s = "│ ".repeat(self.quote);
        if self.theme.ascii {
            s = "| ".repeat(self.quote);
        }
        s.push_str(&"   ".repeat(self.lists.len().saturating_sub(1)));
        s
    }

    fn blank(&mut self) {
        if self.out.last().is_some_and(|l| l.width() > 0) {
            self.out.push(Line::default());
        }
    }

    fn flush(&mut self) {
        if self.runs.is_empty() && self.bullet.is_none() {
            return;
        }
        let indent = self.indent();
        let dim = self.theme.dim();
        let (first, rest) = match self.bullet.take() {
            Some(b) => {
                let pad = " ".repeat(text_width(&b));
                (Span::styled(format!("{indent}{b}"), dim), Span::raw(format!("{indent}{pad}")))
            }
            None => (Span::styled(indent.clone(), dim), Span::styled(indent, dim)),
        };
        let runs = std::mem::take(&mut self.runs);
        self.out.extend(wrap_marked(&runs, self.width, first, rest, more(self.theme)));
    }

    fn text(&mut self, t: &str) {
        if let Some(table) = self.table.as_mut() {
            table.cell.push_str(t);
            return;
        }
        if let Some((seen, cut)) = self.code.as_mut() {
            let shown = head_of(t, MAX_PARAGRAPH.saturating_sub(*seen));
            *seen += shown.len();
            *cut += t.len() - shown.len();
            let style = self.theme.code();
            let indent = self.indent();
            let dim = self.theme.dim();
            let gutter = Span::styled(format!("{indent}  "), dim);
            let cont = Span::styled(format!("{indent}{}", continuation(self.theme)), dim);
            for l in shown.lines() {
                let pieces = [(l.replace('\t', "    "), style)];
                self.out.extend(code_rows(&pieces, self.width, gutter.clone(), cont.clone()));
            }
            return;
        }
        let st = self.style();
        self.runs.push((t.to_string(), st));
    }

    fn end_code(&mut self) {
        if let Some((_, cut)) = self.code.take()
            && cut > 0
        {
            let note = format!("{}: {} of this code not shown", more(self.theme), fmt_bytes_rough(cut));
            let indent = Span::styled(format!("{}  ", self.indent()), self.theme.dim());
            self.out.extend(wrap(&[(note, self.theme.dim())], self.width, indent.clone(), indent));
        }
    }

    fn finish_table(&mut self) {
        let Some(t) = self.table.take() else { return };
        let ascii = self.theme.ascii;
        let dim = self.theme.dim();
        // Markdown has one header row.
        let mut rows = t.rows;
        let head = if t.head_rows > 0 && !rows.is_empty() { rows.remove(0) } else { Vec::new() };
        let look = TableLook {
            indent: Span::styled(self.indent(), dim),
            gap: Span::styled(if ascii { " | " } else { " │ " }, dim),
            cross: if ascii { "-+-" } else { "─┼─" },
            rule: if ascii { "-" } else { "─" },
            head: self.theme.heading(),
            body: self.theme.text(),
            label: dim,
            right: t.right,
            keep: Vec::new(),
            row_rules: true,
            inline_records: None,
        };
        self.out.extend(table(&head, &rows, self.width, &look));
    }
}

fn render_markdown(text: &str, width: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut md = Md {
        theme,
        width,
        out: Vec::new(),
        runs: Vec::new(),
        styles: vec![theme.text()],
        lists: Vec::new(),
        bullet: None,
        quote: 0,
        heading: None,
        code: None,
        table: None,
    };
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for ev in Parser::new_ext(text, opts) {
        match ev {
            Event::Start(tag) => match tag {
                Tag::Paragraph if md.bullet.is_none() => md.blank(),
                Tag::Heading { level, .. } => {
                    md.flush();
                    md.blank();
                    md.heading = Some(level);
                    md.push_style(theme.heading());
                }
                Tag::BlockQuote(_) => {
                    md.flush();
                    md.blank();
                    md.quote += 1;
                    md.push_style(theme.dim().add_modifier(Modifier::ITALIC));
                }
                Tag::CodeBlock(_) => {
                    md.flush();
                    md.blank();
                    md.code = Some((0, 0));
                }
                Tag::List(start) => {
                    md.flush();
                    if md.lists.is_empty() {
                        md.blank();
                    }
                    md.lists.push(start);
                }
                Tag::Item => {
                    md.flush();
                    let b = match md.lists.last_mut() {
                        Some(Some(n)) => {
                            let b = format!("{n}. ");
                            *n += 1;
                            b
                        }
                        _ => if theme.ascii { "- " } else { "• " }.to_string(),
                    };
                    md.bullet = Some(b);
                }
                Tag::Emphasis => md.push_style(Style::default().add_modifier(Modifier::ITALIC)),
                Tag::Strong => md.push_style(Style::default().add_modifier(Modifier::BOLD)),
                Tag::Strikethrough => md.push_style(Style::default().add_modifier(Modifier::CROSSED_OUT)),
                Tag::Link { .. } => md.push_style(theme.link()),
                Tag::Table(aligns) => {
                    md.flush();
                    md.blank();
                    let right = aligns.iter().map(|a| *a == Alignment::Right).collect();
                    md.table = Some(Table { right, ..Table::default() });
                }
                Tag::TableHead => {
                    if let Some(t) = md.table.as_mut() {
                        t.in_head = true;
                        t.rows.push(Vec::new());
                    }
                }
                Tag::TableRow => {
                    if let Some(t) = md.table.as_mut() {
                        t.rows.push(Vec::new());
                    }
                }
                Tag::TableCell => {
                    if let Some(t) = md.table.as_mut() {
                        t.cell.clear();
                    }
                }
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Paragraph => md.flush(),
                TagEnd::Heading(_) => {
                    if md.heading.take() == Some(HeadingLevel::H1) {
                        for r in md.runs.iter_mut() {
                            r.1 = r.1.add_modifier(Modifier::UNDERLINED);
                        }
                    }
                    md.flush();
                    md.styles.pop();
                }
                TagEnd::BlockQuote(_) => {
                    md.flush();
                    md.quote = md.quote.saturating_sub(1);
                    md.styles.pop();
                }
                TagEnd::CodeBlock => md.end_code(),
                TagEnd::List(_) => {
                    md.flush();
                    md.lists.pop();
                }
                TagEnd::Item => md.flush(),
                TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link => {
                    md.styles.pop();
                }
                TagEnd::TableCell => {
                    if let Some(t) = md.table.as_mut() {
                        let cell = std::mem::take(&mut t.cell).trim().to_string();
                        if let Some(r) = t.rows.last_mut() {
                            r.push(cell);
                        }
                    }
                }
                TagEnd::TableHead => {
                    if let Some(t) = md.table.as_mut() {
                        t.in_head = false;
                        t.head_rows = t.rows.len();
                    }
                }
                TagEnd::Table => md.finish_table(),
                _ => {}
            },
            Event::Text(t) => md.text(&t),
            Event::Code(t) => {
                if let Some(table) = md.table.as_mut() {
                    table.cell.push_str(&t);
                } else {
                    let st = md.style().patch(theme.code());
                    md.runs.push((t.to_string(), st));
                }
            }
            Event::SoftBreak => md.text(" "),
            Event::HardBreak => md.text("\n"),
            Event::Rule => {
                md.flush();
                md.blank();
                let rule = if theme.ascii { "-" } else { "─" };
                md.out.push(Line::styled(rule.repeat(width.min(40)), theme.dim()));
            }
            Event::TaskListMarker(done) => md.text(if done { "[x] " } else { "[ ] " }),
            Event::Html(t) | Event::InlineHtml(t) => md.text(&t),
            Event::InlineMath(t) | Event::DisplayMath(t) => md.text(&t),
            Event::FootnoteReference(t) => md.text(&format!("[{t}]")),
        }
    }
    md.flush();
    while md.out.first().is_some_and(|l| l.width() == 0) {
        md.out.remove(0);
    }
    md.out
}

struct Syntax {
    set: syntect::parsing::SyntaxSet,
    themes: syntect::highlighting::ThemeSet,
}

/// The syntax and theme sets, loaded once on first use (they take tens of milliseconds to load).
fn syntax() -> &'static Syntax {
    static SYNTAX: OnceLock<Syntax> = OnceLock::new();
    SYNTAX.get_or_init(|| Syntax {
        set: syntect::parsing::SyntaxSet::load_defaults_newlines(),
        themes: syntect::highlighting::ThemeSet::load_defaults(),
    })
}

fn render_code(lang: &str, text: &str, width: usize, theme: Theme) -> Vec<Line<'static>> {
    let shown = head_of(text, MAX_PARAGRAPH);
    let lines = highlight(lang, shown, theme)
        .unwrap_or_else(|| shown.lines().map(|l| vec![(l.replace('\t', "    "), theme.code())]).collect());
    let gutter = Span::raw("  ");
    let cont = Span::styled(continuation(theme), theme.dim());
    let mut out: Vec<Line<'static>> =
        lines.iter().flat_map(|pieces| code_rows(pieces, width, gutter.clone(), cont.clone())).collect();
    if shown.len() < text.len() {
        let note = format!("{}: {} of this code not shown", more(theme), fmt_bytes_rough(text.len() - shown.len()));
        out.extend(wrap(&[(note, theme.dim())], width, gutter.clone(), gutter));
    }
    out
}

/// Each line of `text` as syntect's styled pieces; `None` without colours or when the language is unknown.
fn highlight(lang: &str, text: &str, theme: Theme) -> Option<Vec<Vec<(String, Style)>>> {
    if !theme.color {
        return None;
    }
    let sx = syntax();
    let token = match lang {
        "console" | "shell" | "sh" | "bash" => "bash",
        "py" | "python3" => "python",
        other => other,
    };
    let syn = sx.set.find_syntax_by_token(token)?;
    let theme_name = match theme.palette {
        Palette::Dark => "base16-ocean.dark",
        Palette::Light => "InspiredGitHub",
        Palette::Contrast => "base16-eighties.dark",
    };
    let st = sx.themes.themes.get(theme_name)?;
    let mut h = syntect::easy::HighlightLines::new(syn, st);
    let mut out = Vec::new();
    for line in syntect::util::LinesWithEndings::from(text) {
        let ranges = h.highlight_line(line, &sx.set).ok()?;
        let mut pieces = Vec::new();
        for (style, piece) in ranges {
            let piece = piece.trim_end_matches(['\n', '\r']).replace('\t', "    ");
            if piece.is_empty() {
                continue;
            }
            let fg = style.foreground;
            let mut rs = Style::default().fg(Color::Rgb(fg.r, fg.g, fg.b));
            if style.font_style.contains(syntect::highlighting::FontStyle::BOLD) {
                rs = rs.add_modifier(Modifier::BOLD);
            }
            if style.font_style.contains(syntect::highlighting::FontStyle::ITALIC) {
                rs = rs.add_modifier(Modifier::ITALIC);
            }
            pieces.push((piece, rs));
        }
        out.push(pieces);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string().trim_end().to_string()).collect()
    }

    #[test]
    fn paragraphs_wrap_at_the_width_without_losing_words() {
        let md = "CPython lets one thread run Python bytecode at a time. Every 5 ms a waiting thread asks.";
        let lines = markdown(md, 30, Theme::plain(false));
        let t = text(&lines);
        assert!(t.iter().all(|l| l.chars().count() <= 30), "{t:?}");
        assert_eq!(t.join(" ").split_whitespace().collect::<Vec<_>>(), md.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn lists_quotes_and_headings_render_with_prefixes() {
        let md = "# Title\n\nIntro *text*.\n\n- one\n- two words that wrap around\n\n1. first\n2. second\n\n> quoted";
        let t = text(&markdown(md, 20, Theme::plain(false)));
        assert_eq!(
            t,
            vec![
                "Title",
                "",
                "Intro text.",
                "",
                "• one",
                "• two words that",
                "  wrap around",
                "",
                "1. first",
                "2. second",
                "",
                "│ quoted",
            ]
        );
    }

    #[test]
    fn tables_become_aligned_rows() {
        let md = "| mode | speedup |\n|---|---|\n| threads | 1.9x |\n| gil | 1.0x |\n";
        let t = text(&markdown(md, 40, Theme::plain(false)));
        assert_eq!(t, vec!["mode    │ speedup", "────────┼────────", "threads │ 1.9x", "gil     │ 1.0x"]);
        let ascii = text(&markdown(md, 40, Theme::plain(true)));
        assert_eq!(ascii[1], "--------+--------");
    }

    #[test]
    fn inline_code_and_emphasis_keep_their_styles() {
        let theme = Theme::default();
        let lines = markdown("a `drop request` and **bold**", 60, theme);
        let spans = &lines[0].spans;
        let code = spans.iter().find(|s| s.content == "drop").unwrap();
        assert_eq!(code.style.fg, theme.code().fg);
        let bold = spans.iter().find(|s| s.content == "bold").unwrap();
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn code_is_highlighted_with_colour_and_plain_without() {
        let src = "def fib(n):\n    return n\n";
        let coloured = code("python", src, 40, Theme::default());
        assert_eq!(text(&coloured), vec!["  def fib(n):", "      return n"]);
        let fgs: std::collections::HashSet<_> = coloured[0].spans.iter().map(|s| s.style.fg).collect();
        assert!(fgs.len() > 2, "keywords and names get different colours: {fgs:?}");
        let plain = code("python", src, 40, Theme::plain(false));
        assert!(plain[0].spans.iter().all(|s| s.style.fg.is_none()));
        let narrow = code("python", src, 8, Theme::plain(false));
        assert_eq!(text(&narrow), vec!["  def fi", "↪ b(n):", "      re", "↪ turn n"]);
    }

    /// The code of rendered rows without their two-cell gutter, and whether each row continues a line.
    fn code_text(lines: &[Line]) -> (String, Vec<bool>) {
        let mut code = String::new();
        let mut cont = Vec::new();
        for l in lines {
            let t = l.to_string();
            let (gutter, rest) = t.split_at(t.char_indices().nth(2).map_or(t.len(), |(i, _)| i));
            cont.push(gutter != "  ");
            if gutter == "  " && !code.is_empty() {
                code.push('\n');
            }
            code.push_str(rest);
        }
        (code, cont)
    }

    #[test]
    fn long_code_lines_wrap_into_marked_rows_and_keep_every_character() {
        let src = "print(f\"{label:>8}: wall {wall * 1000:5.0f} ms, CPU {cpu * 1000:5.0f} ms -> {kind}\")\nx = 1\n";
        for theme in [Theme::default(), Theme::plain(false)] {
            let lines = code("python", src, 30, theme);
            assert!(lines.iter().all(|l| l.width() <= 30), "{:?}", text(&lines));
            let (back, cont) = code_text(&lines);
            assert_eq!(back, src.trim_end(), "every character is kept, in order");
            assert_eq!(cont, vec![false, true, true, false], "{:?}", text(&lines));
            assert!(text(&lines)[1].starts_with("↪ "), "{:?}", text(&lines));
        }
        let ascii = code("python", src, 30, Theme::plain(true));
        assert!(text(&ascii)[1].starts_with("> "), "ASCII marks continuations with '>': {:?}", text(&ascii));
    }

    #[test]
    fn code_inside_markdown_wraps_with_marked_rows_too() {
        let md = "> quoted:\n>\n>     indented_code_that_is_much_longer_than_the_pane()\n";
        let t = text(&markdown(md, 24, Theme::plain(false)));
        assert_eq!(t, ["│ quoted:", "", "│   indented_code_that_i", "│ ↪ s_much_longer_than_t", "│ ↪ he_pane()"]);
    }

    #[test]
    fn wide_characters_are_measured_in_cells_and_never_split() {
        // Hangul syllables take two cells each: nine cells hold four of them, never half of a fifth.
        let word = "가나다라마바사아자차카타파하";
        let lines = wrap(&[(word.into(), Style::default())], 9, Span::raw(""), Span::raw(""));
        let t = text(&lines);
        assert_eq!(t, vec!["가나다라", "마바사아", "자차카타", "파하"]);
        // Decomposed jamo: a zero-width vowel stays with the consonant before it.
        let jamo = "\u{1100}\u{1161}\u{1102}\u{1161}\u{1103}\u{1161}";
        let t = text(&wrap(&[(jamo.into(), Style::default())], 4, Span::raw(""), Span::raw("")));
        assert_eq!(t, vec!["\u{1100}\u{1161}\u{1102}\u{1161}", "\u{1103}\u{1161}"]);
        // A table of Korean cells lines up in cells, not characters.
        let md = "| 모드 | 속도 |\n|---|---|\n| 스레드 | 1.9x |\n";
        let t = text(&markdown(md, 40, Theme::plain(false)));
        assert_eq!(t, vec!["모드   │ 속도", "───────┼─────", "스레드 │ 1.9x"]);
    }

    #[test]
    fn wide_tables_wrap_their_cells_inside_columns_fitted_to_the_width() {
        let md = "| the time goes into... | use | watch out for |\n|---|---|---|\n\
                  | waiting (I/O-bound) | asyncio, or threads: waiting needs no core, and a waiting thread releases the GIL | asyncio needs async libraries; one blocking call stalls it |\n\
                  | more than one machine | Celery, Dask, Ray | the same costs, over a network |\n";
        let t = text(&markdown(md, 60, Theme::plain(false)));
        assert_eq!(
            t,
            vec![
                "the time goes      │ use                │ watch out for",
                "into...            │                    │",
                "───────────────────┼────────────────────┼───────────────────",
                "waiting            │ asyncio, or        │ asyncio needs",
                "(I/O-bound)        │ threads: waiting   │ async libraries;",
                "                   │ needs no core, and │ one blocking call",
                "                   │ a waiting thread   │ stalls it",
                "                   │ releases the GIL   │",
                "───────────────────┼────────────────────┼───────────────────",
                "more than one      │ Celery, Dask, Ray  │ the same costs,",
                "machine            │                    │ over a network",
            ]
        );
        assert!(markdown(md, 60, Theme::plain(false)).iter().all(|l| l.width() <= 60));
    }

    #[test]
    fn tables_too_narrow_for_their_columns_become_one_record_per_row() {
        let md = "| mode | speedup | note |\n|---|---|---|\n| threads | 1.9x | two cores, no GIL |\n| gil | 1.0x | one lock |\n";
        let t = text(&markdown(md, 24, Theme::plain(false)));
        assert_eq!(
            t,
            vec![
                "mode: threads",
                "  speedup: 1.9x",
                "  note: two cores, no",
                "    GIL",
                "",
                "mode: gil",
                "  speedup: 1.0x",
                "  note: one lock",
            ]
        );
    }

    #[test]
    fn a_ten_megabyte_token_wraps_in_one_bounded_pass() {
        let token = "x".repeat(10_000_000);
        let lines = wrap(&[(token, Style::default())], 60, Span::raw(""), Span::raw(""));
        // The first 64 KiB in full lines of 60, then one line saying how much was left off.
        let full = MAX_PARAGRAPH / 60;
        assert_eq!(lines.len(), full + 2, "64 KiB in rows of 60, the rest of a row, the marker");
        assert!(lines[..full].iter().all(|l| l.width() == 60));
        assert_eq!(lines[full].width(), MAX_PARAGRAPH % 60);
        assert_eq!(lines[full + 1].to_string(), "→ more: 9.5 MiB of this paragraph not shown");
        // Through the Markdown parser, and as a code block, the same bound holds.
        let md = format!("Before.\n\n{}\n\nAfter.", "y".repeat(10_000_000));
        let t = text(&markdown(&md, 60, Theme::plain(false)));
        assert_eq!(t.len(), 1 + 1 + full + 2 + 1 + 1, "{:?}", &t[t.len() - 3..]);
        assert_eq!(t[t.len() - 3], "→ more: 9.5 MiB of this paragraph not shown");
        assert_eq!(t.last().unwrap(), "After.");
        let c = text(&code("text", &"z".repeat(10_000_000), 60, Theme::plain(true)));
        assert_eq!(c.len(), MAX_PARAGRAPH.div_ceil(58) + 1);
        assert_eq!(c.last().unwrap(), "  -> more: 9.5 MiB of this code not shown");
    }

    #[test]
    fn long_words_are_cut_not_lost() {
        let t = text(&markdown("aaaaaaaaaaaaaaaaaaaaaaaaa b", 10, Theme::plain(false)));
        assert_eq!(t, vec!["aaaaaaaaaa", "aaaaaaaaaa", "aaaaa b"]);
    }
}

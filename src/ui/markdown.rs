//! Lesson prose into ratatui lines: Markdown (headings, emphasis, lists, inline code, quotes, tables as aligned
//! rows) wrapped to a width, and fenced code highlighted with syntect. Both are cached per text, width and theme,
//! so a frame only clones lines it already has.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use std::sync::OnceLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::theme::{Palette, Theme};

pub(crate) type Lines = Rc<Vec<Line<'static>>>;

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

/// A fenced code block, highlighted when colours are on, indented and cut (not wrapped) at `width` (cached).
pub(crate) fn code(lang: &str, text: &str, width: u16, theme: Theme) -> Lines {
    cached(1, text, lang, width, theme, || render_code(lang, text, width as usize, theme))
}

/// Words with their styles, wrapped greedily; `first` and `rest` prefix the first and following lines. Explicit
/// newlines break lines; a word longer than a line is cut.
pub(crate) fn wrap(
    runs: &[(String, Style)],
    width: usize,
    first: Span<'static>,
    rest: Span<'static>,
) -> Vec<Line<'static>> {
    struct W {
        out: Vec<Line<'static>>,
        line: Vec<Span<'static>>,
        used: usize,
        at_start: bool,
        rest: Span<'static>,
    }
    impl W {
        fn newline(&mut self) {
            self.out.push(Line::from(std::mem::take(&mut self.line)));
            self.line.push(self.rest.clone());
            self.used = self.rest.width();
            self.at_start = true;
        }
    }
    let mut w = W { out: Vec::new(), used: first.width(), line: vec![first], at_start: true, rest };
    let mut space: Option<Style> = None;
    for (text, style) in runs {
        for (pi, part) in text.split('\n').enumerate() {
            if pi > 0 {
                w.newline();
                space = None;
            }
            for (wi, word) in part.split(' ').enumerate() {
                if wi > 0 {
                    space = Some(*style);
                }
                if word.is_empty() {
                    continue;
                }
                let ww = Span::raw(word).width();
                let sp = usize::from(space.is_some() && !w.at_start);
                if !w.at_start && w.used + sp + ww > width {
                    w.newline();
                }
                if let Some(st) = space.take()
                    && !w.at_start
                {
                    w.line.push(Span::styled(" ", st));
                    w.used += 1;
                }
                let mut left = word;
                while w.used + Span::raw(left).width() > width {
                    let avail = width.saturating_sub(w.used);
                    let mut cut = 0;
                    let mut cw = 0;
                    for (i, ch) in left.char_indices() {
                        let chw = Span::raw(&left[i..i + ch.len_utf8()]).width();
                        if cw + chw > avail {
                            break;
                        }
                        cw += chw;
                        cut = i + ch.len_utf8();
                    }
                    if cut == 0 {
                        if w.at_start {
                            // Not even one character fits: place one anyway rather than loop.
                            cut = left.chars().next().map_or(left.len(), char::len_utf8);
                        } else {
                            w.newline();
                            continue;
                        }
                    }
                    w.line.push(Span::styled(left[..cut].to_string(), *style));
                    left = &left[cut..];
                    w.newline();
                    if left.is_empty() {
                        break;
                    }
                }
                if !left.is_empty() {
                    w.used += Span::raw(left).width();
                    w.line.push(Span::styled(left.to_string(), *style));
                    w.at_start = false;
                }
            }
        }
    }
    if !w.at_start || w.out.is_empty() {
        let line = std::mem::take(&mut w.line);
        w.out.push(Line::from(line));
    }
    w.out
}

/// A styled line wrapped to `width`, continuation lines indented by two.
pub(crate) fn wrap_line(line: &Line<'_>, width: usize) -> Vec<Line<'static>> {
    let runs: Vec<(String, Style)> =
        line.spans.iter().map(|s| (s.content.to_string(), line.style.patch(s.style))).collect();
    wrap(&runs, width, Span::raw(""), Span::raw("  "))
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
    in_code: bool,
    table: Option<Table>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    cell: String,
    head_rows: usize,
    in_head: bool,
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
                let pad = " ".repeat(Span::raw(b.as_str()).width());
                (Span::styled(format!("{indent}{b}"), dim), Span::raw(format!("{indent}{pad}")))
            }
            None => (Span::styled(indent.clone(), dim), Span::styled(indent, dim)),
        };
        let runs = std::mem::take(&mut self.runs);
        self.out.extend(wrap(&runs, self.width, first, rest));
    }

    fn text(&mut self, t: &str) {
        if let Some(table) = self.table.as_mut() {
            table.cell.push_str(t);
            return;
        }
        if self.in_code {
            let style = self.theme.code();
            let indent = self.indent();
            for l in t.lines() {
                let cut: String = l.chars().take(self.width.saturating_sub(indent.len() + 2)).collect();
                self.out.push(Line::from(vec![Span::raw(format!("{indent}  ")), Span::styled(cut, style)]));
            }
            return;
        }
        let st = self.style();
        self.runs.push((t.to_string(), st));
    }

    fn finish_table(&mut self) {
        let Some(t) = self.table.take() else { return };
        let cols = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        if cols == 0 {
            return;
        }
        let mut widths = vec![0usize; cols];
        for r in &t.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(Span::raw(c.as_str()).width());
            }
        }
        // Shrink the widest columns until the row fits.
        let sep = 3;
        let indent = self.indent();
        let budget = self.width.saturating_sub(indent.len() + sep * (cols - 1)).max(cols);
        while widths.iter().sum::<usize>() > budget {
            let Some(max) = widths.iter_mut().max() else {
                break;
            };
            if *max <= 1 {
                break;
            }
            *max -= 1;
        }
        let bar = if self.theme.ascii { " | " } else { " │ " };
        for (ri, r) in t.rows.iter().enumerate() {
            let mut spans = vec![Span::styled(indent.clone(), self.theme.dim())];
            for (i, w) in widths.iter().enumerate() {
                let cell = r.get(i).map_or("", String::as_str);
                let mut text: String = String::new();
                for ch in cell.chars() {
                    if Span::raw(format!("{text}{ch}")).width() > *w {
                        break;
                    }
                    text.push(ch);
                }
                let pad = w.saturating_sub(Span::raw(text.as_str()).width());
                let style = if ri < t.head_rows { self.theme.heading() } else { self.theme.text() };
                spans.push(Span::styled(format!("{text}{}", " ".repeat(pad)), style));
                if i + 1 < cols {
                    spans.push(Span::styled(bar, self.theme.dim()));
                }
            }
            self.out.push(Line::from(spans));
            if ri + 1 == t.head_rows {
                let rule = if self.theme.ascii { "-" } else { "─" };
                let cross = if self.theme.ascii { "-+-" } else { "─┼─" };
                let parts: Vec<String> = widths.iter().map(|w| rule.repeat(*w)).collect();
                self.out.push(Line::from(vec![
                    Span::styled(indent.clone(), self.theme.dim()),
                    Span::styled(parts.join(cross), self.theme.dim()),
                ]));
            }
        }
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
        in_code: false,
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
                    md.in_code = true;
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
                Tag::Table(_) => {
                    md.flush();
                    md.blank();
                    md.table = Some(Table::default());
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
                TagEnd::CodeBlock => md.in_code = false,
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
    let indent = "  ";
    let max = width.saturating_sub(indent.len());
    let cut = |s: &str| -> String {
        let mut out = String::new();
        for ch in s.chars() {
            if Span::raw(format!("{out}{ch}")).width() > max {
                break;
            }
            out.push(ch);
        }
        out
    };
    let plain = || -> Vec<Line<'static>> {
        text.lines()
            .map(|l| Line::from(vec![Span::raw(indent), Span::styled(cut(&l.replace('\t', "    ")), theme.code())]))
            .collect()
    };
    if !theme.color {
        return plain();
    }
    let sx = syntax();
    let token = match lang {
        "console" | "shell" | "sh" | "bash" => "bash",
        "py" | "python3" => "python",
        other => other,
    };
    let Some(syn) = sx.set.find_syntax_by_token(token) else {
        return plain();
    };
    let theme_name = match theme.palette {
        Palette::Dark => "base16-ocean.dark",
        Palette::Light => "InspiredGitHub",
        Palette::Contrast => "base16-eighties.dark",
    };
    let Some(st) = sx.themes.themes.get(theme_name) else {
        return plain();
    };
    let mut h = syntect::easy::HighlightLines::new(syn, st);
    let mut out = Vec::new();
    for line in syntect::util::LinesWithEndings::from(text) {
        let Ok(ranges) = h.highlight_line(line, &sx.set) else {
            return plain();
        };
        let mut spans = vec![Span::raw(indent)];
        let mut used = 0usize;
        for (style, piece) in ranges {
            let piece = piece.trim_end_matches(['\n', '\r']).replace('\t', "    ");
            if piece.is_empty() || used >= max {
                continue;
            }
            let mut s = String::new();
            for ch in piece.chars() {
                let w = Span::raw(ch.to_string()).width();
                if used + w > max {
                    break;
                }
                used += w;
                s.push(ch);
            }
            let fg = style.foreground;
            let mut rs = Style::default().fg(Color::Rgb(fg.r, fg.g, fg.b));
            if style.font_style.contains(syntect::highlighting::FontStyle::BOLD) {
                rs = rs.add_modifier(Modifier::BOLD);
            }
            if style.font_style.contains(syntect::highlighting::FontStyle::ITALIC) {
                rs = rs.add_modifier(Modifier::ITALIC);
            }
            spans.push(Span::styled(s, rs));
        }
        out.push(Line::from(spans));
    }
    out
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
        let cut = code("python", src, 8, Theme::plain(false));
        assert_eq!(text(&cut)[0], "  def fi");
    }

    #[test]
    fn long_words_are_cut_not_lost() {
        let t = text(&markdown("aaaaaaaaaaaaaaaaaaaaaaaaa b", 10, Theme::plain(false)));
        assert_eq!(t, vec!["aaaaaaaaaa", "aaaaaaaaaa", "aaaaa b"]);
    }
}

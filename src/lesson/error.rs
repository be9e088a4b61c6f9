//! Lesson errors as people read them: `path:line:col`, the offending line, and a caret under the place, like a
//! compiler. Positions are computed from byte offsets into the whole file, whose text every error of the file
//! shares (an error holds ranges into it, never a copy). Everything shown is terminal-safe and bounded: a long line
//! is echoed as a window of at most `ECHO_COLUMNS` columns around the caret.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use unicode_width::UnicodeWidthChar;

use super::text::{is_control, shorten, terminal_safe, visible};

/// At most this many columns of an offending line are echoed; cut sides show `…`.
pub(crate) const ECHO_COLUMNS: usize = 120;
/// Columns of the line kept before the caret when the line is cut.
const ECHO_BEFORE: usize = 40;
/// Messages and labels are cut to this many characters (they quote values from the file).
const MAX_MESSAGE: usize = 400;

/// One problem in one lesson file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LintError {
    /// As shown (terminal-safe).
    pub path: String,
    /// 1-based line of the whole file; 0 for a problem with the file as a whole (it has no place in it).
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// One line, terminal-safe.
    pub message: String,
    /// Shown after the carets, e.g. `did you mean 'threads'?`.
    pub label: Option<String>,
    /// The whole file, shared by all its errors.
    source: Arc<str>,
    /// The error's line in `source`, without its line end.
    line_range: Range<usize>,
    /// What the carets underline, inside `line_range`.
    caret: Range<usize>,
}

impl LintError {
    /// An error at byte range `span` of `source` (the whole file). Out-of-range spans are clamped.
    pub(crate) fn at(
        path: &str,
        source: &Arc<str>,
        span: Range<usize>,
        message: impl Into<String>,
        label: Option<String>,
    ) -> LintError {
        let text: &str = source;
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_end = if text[line_start..line_end].ends_with('\r') { line_end - 1 } else { line_end };
        let start = start.min(line_end);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        LintError {
            path: terminal_safe(path).into_owned(),
            line: text[..start].matches('\n').count() + 1,
            col: text[line_start..start].chars().count() + 1,
            message: clean(&message.into()),
            label: label.map(|l| clean(&l)),
            source: Arc::clone(source),
            line_range: line_start..line_end,
            caret: start..end,
        }
    }

    /// A problem with the file as a whole (cannot be read, too large, not a regular file): no line, no caret.
    pub(crate) fn file(path: &str, message: impl Into<String>) -> LintError {
        LintError {
            path: terminal_safe(path).into_owned(),
            line: 0,
            col: 0,
            message: clean(&message.into()),
            label: None,
            source: Arc::from(""),
            line_range: 0..0,
            caret: 0..0,
        }
    }

    /// The one-line form used in lists: `path:line:col: message` (`path: message` for a whole-file problem).
    pub(crate) fn headline(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.path, self.message)
        } else {
            format!("{}:{}:{}: {}", self.path, self.line, self.col, self.message)
        }
    }

    /// The error's line as it is in the file (without its line end).
    pub(crate) fn source_line(&self) -> &str {
        &self.source[self.line_range.clone()]
    }

    /// How many characters the carets underline (at least 1).
    #[cfg(test)]
    pub(crate) fn width(&self) -> usize {
        self.source[self.caret.clone()].chars().count().max(1)
    }
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.headline())?;
        if self.line == 0 {
            return Ok(());
        }
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        let at = self.caret.start - self.line_range.start..self.caret.end - self.line_range.start;
        let (shown, indent, carets) = echo(self.source_line(), at);
        writeln!(f)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {shown}")?;
        let carets = "^".repeat(carets);
        let indent = " ".repeat(indent);
        match &self.label {
            Some(label) => write!(f, "{pad} | {indent}{carets} {label}"),
            None => write!(f, "{pad} | {indent}{carets}"),
        }
    }
}

impl std::error::Error for LintError {}

/// How one character of an echoed line is shown: tabs as a space, control characters as `\x1b`.
fn cell(c: char) -> (Option<String>, usize) {
    if c == '\t' {
        (Some(" ".into()), 1)
    } else if is_control(c) {
        let v = visible(c);
        let w = v.len();
        (Some(v), w)
    } else {
        (None, c.width().unwrap_or(0))
    }
}

/// The line as echoed under a message, with the caret's indent and width in columns. A line wider than
/// `ECHO_COLUMNS` is cut to a window around the caret (`ECHO_BEFORE` columns of it before the caret when there are
/// that many), and each cut side shows `…`. `caret` is a byte range inside `line`.
pub(crate) fn echo(line: &str, caret: Range<usize>) -> (String, usize, usize) {
    let (mut total, mut caret_col, mut caret_end_col) = (0usize, 0usize, 0usize);
    for (i, c) in line.char_indices() {
        if i == caret.start {
            caret_col = total;
        }
        if i < caret.end {
            caret_end_col = total + cell(c).1;
        }
        total += cell(c).1;
    }
    if caret.start >= line.len() {
        caret_col = total;
    }
    let caret_end_col = caret_end_col.max(caret_col);
    let (left, right) = if total <= ECHO_COLUMNS {
        (0, total)
    } else {
        let left = caret_col.saturating_sub(ECHO_BEFORE).min(total - ECHO_COLUMNS);
        (left, left + ECHO_COLUMNS)
    };
    // Content columns, leaving one for each `…`.
    let (lead, trail) = (left > 0, right < total);
    let (from, to) = (left + usize::from(lead), right - usize::from(trail));
    let mut shown = String::new();
    if lead {
        shown.push('…');
    }
    let (mut col, mut first) = (0usize, None);
    for c in line.chars() {
        let (text, w) = cell(c);
        if col >= from && col + w <= to {
            first.get_or_insert(col);
            match text {
                Some(t) => shown.push_str(&t),
                None => shown.push(c),
            }
        }
        col += w;
        if col >= to {
            break;
        }
    }
    if trail {
        shown.push('…');
    }
    let first = first.unwrap_or(from);
    let indent = usize::from(lead) + caret_col.saturating_sub(first);
    let visible_end = caret_end_col.min(to);
    let width = visible_end.saturating_sub(caret_col).max(1);
    (shown, indent, width)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Messages are one short, terminal-safe line: a multi-line message (from the TOML parser) is joined with "; ".
fn clean(message: &str) -> String {
    let joined = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    shorten(&terminal_safe(&joined), MAX_MESSAGE).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, span: Range<usize>) -> LintError {
        LintError::at("f.md", &Arc::from(text), span, "m", None)
    }

    #[test]
    fn renders_like_a_compiler_with_the_caret_under_the_value() {
        let text = "+++\nid = \"x\"\n+++\nmodes = [\"sequential\", \"thread\"]\n";
        let start = text.find("\"thread\"").unwrap();
        let e = LintError::at(
            "lessons/03-gil.md",
            &Arc::from(text),
            start..start + 8,
            "unknown mode 'thread'",
            Some("did you mean 'threads'?".into()),
        );
        assert_eq!((e.line, e.col, e.width()), (4, 24, 8));
        let shown = e.to_string();
        let expected = "error: lessons/03-gil.md:4:24: unknown mode 'thread'\n  |\n\
                        4 | modes = [\"sequential\", \"thread\"]\n  |                        ^^^^^^^^ did you mean 'threads'?";
        assert_eq!(shown, expected);
    }

    #[test]
    fn spans_past_the_end_or_inside_a_character_are_clamped() {
        let text = "a\nsé\n";
        let e = at(text, 4..99);
        assert_eq!((e.line, e.col, e.width()), (2, 2, 1));
        let e = at(text, 500..600);
        assert_eq!(e.line, 3);
        assert_eq!(e.source_line(), "");
    }

    #[test]
    fn errors_of_one_file_share_its_text() {
        let text: Arc<str> = Arc::from("x".repeat(100_000) + "\n");
        let errors: Vec<LintError> = (0..100).map(|i| LintError::at("f.md", &text, i..i + 1, "m", None)).collect();
        assert_eq!(Arc::strong_count(&text), 101, "every error points at the one copy");
        assert_eq!(errors[99].col, 100);
    }

    #[test]
    fn a_long_line_is_echoed_as_a_window_around_the_caret() {
        let line = format!("{}BAD{}", "a".repeat(5_000), "b".repeat(5_000));
        let e = at(&line, 5_000..5_003);
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        let echoed = lines[2].split_once(" | ").unwrap().1;
        assert_eq!(echoed.chars().count(), ECHO_COLUMNS, "{echoed}");
        assert!(echoed.starts_with('…') && echoed.ends_with('…'), "{echoed}");
        let caret_line = lines[3].split_once(" | ").unwrap().1;
        let caret = caret_line.find('^').unwrap();
        assert_eq!(caret_line.trim_start().len(), 3, "three carets: {caret_line}");
        assert_eq!(echoed.chars().skip(caret).take(3).collect::<String>(), "BAD");
        // Near the start and the end, only one side is cut.
        let (s, indent, w) = echo(&line, 0..1);
        assert!(!s.starts_with('…') && s.ends_with('…') && indent == 0 && w == 1, "{s}");
        let (s, indent, _) = echo(&line, line.len() - 1..line.len());
        assert!(s.starts_with('…') && !s.ends_with('…'), "{s}");
        assert_eq!(s.chars().nth(indent), Some('b'));
        assert_eq!(indent, ECHO_COLUMNS - 1);
    }

    #[test]
    fn echoed_lines_and_messages_are_terminal_safe_and_the_caret_still_lines_up() {
        let text = "title = \"\x1b]0;pwned\x07\" # é 漢\tx\n";
        let at_x = text.find('x').unwrap();
        let e = LintError::at("d/\x1b[2J.md", &Arc::from(text), at_x..at_x + 1, "bad \x1b[31mred", None);
        let shown = e.to_string();
        assert!(!shown.chars().any(is_control_but_newline), "{shown:?}");
        assert!(shown.starts_with("error: d/\\x1b[2J.md:1:"), "{shown}");
        assert!(shown.contains("bad \\x1b[31mred"), "{shown}");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[2], "1 | title = \"\\x1b]0;pwned\\x07\" # é 漢 x");
        // The caret sits under the x: the escape and the wide character take their real columns.
        let echoed = lines[2].split_once(" | ").unwrap().1;
        let caret = lines[3].split_once(" | ").unwrap().1.find('^').unwrap();
        let before: usize = echoed[..echoed.rfind('x').unwrap()].chars().map(|c| c.width().unwrap_or(0)).sum();
        assert_eq!(caret, before);
    }

    fn is_control_but_newline(c: char) -> bool {
        c != '\n' && is_control(c)
    }

    #[test]
    fn any_span_on_any_line_echoes_a_bounded_window_without_panicking() {
        let lines = [
            String::new(),
            "short".to_string(),
            "é漢\x1b\t".repeat(80),
            format!("{}\r", "ab漢".repeat(100)),
            "x".repeat(121),
        ];
        for line in &lines {
            let text: Arc<str> = Arc::from(format!("{line}\nnext\n"));
            for start in 0..=line.len() + 2 {
                for len in [0, 1, 3, 200] {
                    let e = LintError::at("f.md", &text, start..start + len, "m", None);
                    let shown = e.to_string();
                    let echoed = shown.lines().nth(2).map_or("", |l| l.split_once(" | ").map_or("", |x| x.1));
                    let cols: usize = echoed.chars().map(|c| c.width().unwrap_or(0)).sum();
                    assert!(cols <= ECHO_COLUMNS, "{cols} columns for {start}+{len} in {line:?}");
                }
            }
        }
    }

    #[test]
    fn whole_file_problems_have_no_place_and_no_snippet() {
        let e = LintError::file("/dev/zero", "not a regular file");
        assert_eq!(e.to_string(), "error: /dev/zero: not a regular file");
        assert_eq!(e.headline(), "/dev/zero: not a regular file");
    }

    #[test]
    fn long_messages_are_cut() {
        let e = LintError::file("f.md", format!("unknown mode '{}'", "x".repeat(10_000)));
        assert!(e.message.chars().count() <= MAX_MESSAGE && e.message.ends_with('…'), "{}", e.message.len());
    }
}

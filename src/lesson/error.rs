//! Lesson errors as people read them: `path:line:col`, the offending line, and a caret under the place, like a
//! compiler. Positions are computed from byte offsets into the whole file.

use std::fmt;
use std::ops::Range;

/// One problem in one lesson file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LintError {
    pub path: String,
    /// 1-based line of the whole file.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
    /// The line the error is on, as shown under the message (tabs shown as spaces).
    pub source_line: String,
    /// How many carets to draw (at least 1).
    pub width: usize,
    /// Shown after the carets, e.g. `did you mean 'threads'?`.
    pub label: Option<String>,
}

impl LintError {
    /// An error at byte range `span` of `text` (the whole file). Out-of-range spans are clamped.
    pub(crate) fn at(
        path: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        label: Option<String>,
    ) -> LintError {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let source_line = text[line_start..line_end].trim_end_matches('\r').replace('\t', " ");
        let col = text[line_start..start].chars().count() + 1;
        let width = text[start..end].trim_end_matches('\r').chars().count().max(1);
        LintError {
            path: path.to_string(),
            line: text[..start].matches('\n').count() + 1,
            col,
            message: one_line(&message.into()),
            source_line,
            width,
            label,
        }
    }

    /// The one-line form used in lists: `path:line:col: message`.
    pub(crate) fn headline(&self) -> String {
        format!("{}:{}:{}: {}", self.path, self.line, self.col, self.message)
    }
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "error: {}", self.headline())?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.source_line)?;
        let carets = "^".repeat(self.width);
        let indent = " ".repeat(self.col - 1);
        match &self.label {
            Some(label) => write!(f, "{pad} | {indent}{carets} {label}"),
            None => write!(f, "{pad} | {indent}{carets}"),
        }
    }
}

impl std::error::Error for LintError {}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Messages are one line: a multi-line message (from the TOML parser) is joined with "; ".
fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// Splits a trailing ` (did you mean 'x'?)` off a message from the experiment parsers, so it can go under the caret.
pub(crate) fn split_suggestion(message: &str) -> (String, Option<String>) {
    match message.rfind(" (did you mean '") {
        Some(i) if message.ends_with("'?)") => {
            let hint = message[i + 2..message.len() - 1].to_string();
            (message[..i].to_string(), Some(hint))
        }
        _ => (message.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler_with_the_caret_under_the_value() {
        let text = "+++\nid = \"x\"\n+++\nmodes = [\"sequential\", \"thread\"]\n";
        let start = text.find("\"thread\"").unwrap();
        let e = LintError::at(
            "lessons/03-gil.md",
            text,
            start..start + 8,
            "unknown mode 'thread'",
            Some("did you mean 'threads'?".into()),
        );
        assert_eq!((e.line, e.col, e.width), (4, 24, 8));
        let shown = e.to_string();
        let expected = "error: lessons/03-gil.md:4:24: unknown mode 'thread'\n  |\n\
                        4 | modes = [\"sequential\", \"thread\"]\n  |                        ^^^^^^^^ did you mean 'threads'?";
        assert_eq!(shown, expected);
    }

    #[test]
    fn spans_past_the_end_or_inside_a_character_are_clamped() {
        let text = "a\nsé\n";
        let e = LintError::at("f.md", text, 4..99, "m", None);
        assert_eq!((e.line, e.col, e.width), (2, 2, 1));
        let e = LintError::at("f.md", text, 500..600, "m", None);
        assert_eq!(e.line, 3);
        assert_eq!(e.source_line, "");
    }

    #[test]
    fn suggestions_move_under_the_caret() {
        let (m, s) = split_suggestion("unknown mode 'thread' (expected one of: a, b) (did you mean 'threads'?)");
        assert_eq!(m, "unknown mode 'thread' (expected one of: a, b)");
        assert_eq!(s.as_deref(), Some("did you mean 'threads'?"));
        assert_eq!(split_suggestion("plain").1, None);
    }
}

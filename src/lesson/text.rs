//! Text from lesson files on its way to a terminal: control characters (ESC, BEL, CSI, lone CR, ...) shown visibly
//! instead of being sent raw, where they would set the window title, clear the screen or move the cursor. Also the
//! small helpers that keep echoed text short.

use std::borrow::Cow;

/// Whether `c` must never reach a terminal raw: C0 controls other than tab and newline, DEL, and the C1 controls
/// (U+0080..=U+009F, which some terminals read as ESC sequences: U+009B is CSI). Carriage returns are judged by
/// `unsafe_at`, which allows the one before a newline.
pub(crate) fn is_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The visible form of a control character: `\x1b`, `\x07`, `\u{9b}`.
pub(crate) fn visible(c: char) -> String {
    if (c as u32) < 0x80 { format!("\\x{:02x}", c as u32) } else { format!("\\u{{{:x}}}", c as u32) }
}

/// The byte offset and character of the first control character in `s` that is not a CR ending a CRLF line.
pub(crate) fn first_control(s: &str) -> Option<(usize, char)> {
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\r' && chars.peek().is_some_and(|(_, n)| *n == '\n') {
            continue;
        }
        if is_control(c) {
            return Some((i, c));
        }
    }
    None
}

/// `s` with every control character (except tab, newline, and the CR of a CRLF) shown as an escape like `\x1b`.
/// Borrows when there is nothing to change, which is almost always.
pub(crate) fn terminal_safe(s: &str) -> Cow<'_, str> {
    let Some((first, _)) = first_control(s) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    let mut chars = s[first..].chars().peekable();
    while let Some(c) = chars.next() {
        let crlf = c == '\r' && chars.peek() == Some(&'\n');
        if is_control(c) && !crlf {
            out.push_str(&visible(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// In place: the owned form of `terminal_safe`.
pub(crate) fn make_safe(s: &mut String) {
    if let Cow::Owned(safe) = terminal_safe(s) {
        *s = safe;
    }
}

/// At most `max` characters of `s`, ending in `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s[i..].chars().nth(1).is_some() => Cow::Owned(format!("{}…", &s[..i])),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_and_plain_text_is_untouched() {
        assert_eq!(terminal_safe("\x1b]0;owned\x07 title\x1b[2J"), "\\x1b]0;owned\\x07 title\\x1b[2J");
        assert_eq!(terminal_safe("csi \u{9b}31m del \x7f nul \0"), "csi \\u{9b}31m del \\x7f nul \\x00");
        assert_eq!(terminal_safe("lone\rcr"), "lone\\x0dcr");
        assert!(matches!(terminal_safe("tabs\tand\nlines, crlf\r\n, ünïcode ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_first_control_character_is_found_but_not_the_cr_of_a_crlf() {
        assert_eq!(first_control("a\r\nb\x1bc"), Some((4, '\x1b')));
        assert_eq!(first_control("a\r\nb\tc\n"), None);
        assert_eq!(first_control("end\r"), Some((3, '\r')));
    }

    #[test]
    fn shorten_cuts_on_characters_and_marks_the_cut() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }
}

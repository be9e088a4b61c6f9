//! Terminal-safe text for what a learner's file says: tracebacks, exception messages, printed values and file
//! names reach the terminal only with their control characters escaped, so a file cannot clear the screen, set the
//! window title or hide text with escape sequences or bidirectional overrides.

/// `text` with every control character (C0, DEL, C1: ESC, CR, BS, NUL...) and every bidirectional formatting
/// character written as a visible escape (`\x1b`, `\r`, `\u{202e}`), and at most `max_chars` characters kept
/// (then `…`). One line in, one line out: a newline becomes `\n` too.
pub(crate) fn terminal_safe(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (n, c) in text.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || is_bidi(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder how a line is drawn (U+202E makes the rest of a line read backwards).
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_control_bytes_become_visible() {
        let hostile = "boom\x1b]0;pwned\x07\x1b[2J\r\u{8}\u{9b}31m\u{202e}txt.exe";
        let safe = terminal_safe(hostile, 1000);
        assert_eq!(safe, "boom\\x1b]0;pwned\\x07\\x1b[2J\\r\\x08\\u{9b}31m\\u{202e}txt.exe");
        assert!(!safe.chars().any(|c| c.is_control() || is_bidi(c)), "{safe:?}");
    }

    #[test]
    fn ordinary_text_is_left_alone_and_long_text_is_cut() {
        assert_eq!(
            terminal_safe("ZeroDivisionError: division by zero · ×", 100),
            "ZeroDivisionError: division by zero · ×"
        );
        assert_eq!(terminal_safe("a\nb\tc", 100), "a\\nb\\tc");
        assert_eq!(terminal_safe(&"x".repeat(50), 10), format!("{}…", "x".repeat(10)));
    }
}

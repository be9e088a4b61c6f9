//! What a section's prose tells the learner to do with the panel, so `lint` can refuse text that refers to a
//! block the panel cannot show. The panel only ever shows the blocks of the section being read (the learner steps
//! through them there), so every reference is checked against that section alone:
//!
//! - a key instruction: an inline-code key after the word "press" in the same sentence (``press `c` ``,
//!   ``Press `w` or `W` ``). `r` needs an experiment or exercise in the section; `c`, `p` and the knob keys
//!   (`m w W k K s i - +`) need a workload experiment or an exercise (a demo has no knobs and compares its own
//!   cases); `x` and `h` need an exercise.
//! - an experiment by position: "the first/second/third/fourth/fifth experiment" needs that many experiments in the
//!   section; "the experiment below" / "the next experiment" needs one after the sentence, "the experiment above" /
//!   "the previous experiment" one before it; "this experiment" needs one in the section.

use std::ops::Range;

/// What a reference needs from its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// `r`: an experiment of any kind, or an exercise.
    Runnable,
    /// `c`, `p`, knob keys: a workload experiment or an exercise.
    Setup,
    /// `x`, `h`.
    Exercise,
    /// The n-th experiment of the section (1-based).
    Nth(usize),
    /// An experiment after the reference.
    Below,
    /// An experiment before the reference.
    Above,
    /// Any experiment in the section.
    Any,
}

/// One reference found in prose: its place in the file, the key of a key instruction, what it needs, and which
/// body piece it is in (to tell which section it belongs to and which blocks come before it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Mention {
    pub span: Range<usize>,
    pub key: Option<String>,
    pub need: Need,
    pub piece: usize,
}

/// The keys a key instruction may name, what each does (for messages) and what it needs.
const KEYS: [(&str, &str, Need); 14] = [
    ("r", "run", Need::Runnable),
    ("c", "compare", Need::Setup),
    ("p", "predict", Need::Setup),
    ("x", "check", Need::Exercise),
    ("h", "hint", Need::Exercise),
    ("m", "mode", Need::Setup),
    ("w", "workers", Need::Setup),
    ("W", "workers", Need::Setup),
    ("k", "chunksize", Need::Setup),
    ("K", "chunksize", Need::Setup),
    ("s", "start method", Need::Setup),
    ("i", "switch interval", Need::Setup),
    ("-", "size", Need::Setup),
    ("+", "size", Need::Setup),
];

/// What a key does, for messages.
pub(crate) fn key_action(key: &str) -> &'static str {
    KEYS.iter().find(|k| k.0 == key).map_or("", |k| k.1)
}

const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

#[derive(Clone, Debug)]
enum Tok {
    /// A word, lowercased.
    Word(String, Range<usize>),
    /// An inline code span's text.
    Code(String, Range<usize>),
    /// The end of a sentence.
    Stop,
}

/// Collects the words of one paragraph (or list item, table cell, ...) and finds the references in it.
#[derive(Default)]
pub(crate) struct Scanner {
    toks: Vec<Tok>,
    pub mentions: Vec<Mention>,
}

impl Scanner {
    /// Text as decoded by the Markdown parser, at file range `range`. When the text is exactly the source there,
    /// word positions are exact; otherwise they point at the start of the range.
    pub(crate) fn text(&mut self, text: &str, range: Range<usize>, exact: bool) {
        let mut word: Option<usize> = None;
        let at = |i: usize| if exact { range.start + i } else { range.start };
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_alphanumeric() {
                word.get_or_insert(i);
                continue;
            }
            if let Some(w) = word.take() {
                let end = if exact { range.start + i } else { range.end };
                self.toks.push(Tok::Word(text[w..i].to_lowercase(), at(w)..end));
            }
            let ends_sentence = matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|(_, n)| n.is_whitespace());
            if ends_sentence {
                self.toks.push(Tok::Stop);
            }
        }
        if let Some(w) = word {
            let end = if exact { range.start + text.len() } else { range.end };
            self.toks.push(Tok::Word(text[w..].to_lowercase(), at(w)..end));
        }
    }

    pub(crate) fn code(&mut self, code: &str, range: Range<usize>) {
        self.toks.push(Tok::Code(code.trim().to_string(), range));
    }

    /// Ends the current paragraph: finds its references (they belong to body piece `piece`).
    pub(crate) fn flush(&mut self, piece: usize) {
        let toks = std::mem::take(&mut self.toks);
        let word = |i: usize| match toks.get(i) {
            Some(Tok::Word(w, r)) => Some((w.as_str(), r.clone())),
            _ => None,
        };
        let mut pressing = false;
        for (i, tok) in toks.iter().enumerate() {
            match tok {
                Tok::Stop => pressing = false,
                Tok::Code(code, range) => {
                    if let Some((_, _, need)) = KEYS.iter().find(|k| k.0 == code).filter(|_| pressing) {
                        self.mentions.push(Mention {
                            span: range.clone(),
                            key: Some(code.clone()),
                            need: *need,
                            piece,
                        });
                    }
                }
                Tok::Word(w, range) => {
                    if w == "press" {
                        pressing = true;
                    }
                    // Starts at "the" when the phrase has one.
                    let start = |j: usize| match (j.checked_sub(1).and_then(word), word(j)) {
                        (Some(("the", r)), _) => r.start,
                        (_, Some((_, r))) => r.start,
                        _ => range.start,
                    };
                    let next = word(i + 1);
                    let before_experiment = |need: Need| match &next {
                        Some(("experiment", r)) => Some((need, start(i)..r.end)),
                        _ => None,
                    };
                    let found = match w.as_str() {
                        "next" => before_experiment(Need::Below),
                        "previous" => before_experiment(Need::Above),
                        "this" => before_experiment(Need::Any),
                        "experiment" if i > 0 && matches!(word(i - 1), Some(("the", _))) => match &next {
                            Some(("below", r)) => Some((Need::Below, start(i)..r.end)),
                            Some(("above", r)) => Some((Need::Above, start(i)..r.end)),
                            _ => None,
                        },
                        _ => ORDINALS.iter().position(|o| o == w).and_then(|n| before_experiment(Need::Nth(n + 1))),
                    };
                    if let Some((need, span)) = found {
                        self.mentions.push(Mention { span, key: None, need, piece });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<(String, Need)> {
        let mut s = Scanner::default();
        // Inline code written `x` in these samples: split it out the way the Markdown parser does.
        let mut at = 0;
        for (n, part) in text.split('`').enumerate() {
            let range = at..at + part.len();
            if n % 2 == 0 {
                s.text(part, range, true);
            } else {
                s.code(part, range.start - 1..range.end + 1);
            }
            at += part.len() + 1;
        }
        s.flush(0);
        s.mentions.iter().map(|m| (text[m.span.clone()].trim_matches('`').to_string(), m.need)).collect()
    }

    #[test]
    fn keys_count_only_after_press_in_the_same_sentence() {
        assert_eq!(
            scan("Press `c` on the first experiment, then on this one."),
            [("c".into(), Need::Setup), ("the first experiment".into(), Need::Nth(1))]
        );
        assert_eq!(
            scan("Press `w` or `W` to change it, then `r`."),
            [("w".into(), Need::Setup), ("W".into(), Need::Setup), ("r".into(), Need::Runnable)]
        );
        assert!(scan("The value `x` is squared. Then `r` is a variable.").is_empty());
        assert!(scan("Press on. `x` is a name.").is_empty(), "a sentence end resets 'press'");
        assert!(scan("It was compressed with `x`.").is_empty(), "'press' is a whole word");
        assert_eq!(scan("press `x` e.g. now"), [("x".into(), Need::Exercise)]);
    }

    #[test]
    fn experiments_by_position() {
        assert_eq!(scan("The third experiment is slow."), [("The third experiment".into(), Need::Nth(3))]);
        assert_eq!(scan("Run the experiment below."), [("the experiment below".into(), Need::Below)]);
        assert_eq!(scan("as in the experiment above"), [("the experiment above".into(), Need::Above)]);
        assert_eq!(scan("The next experiment"), [("The next experiment".into(), Need::Below)]);
        assert_eq!(scan("this experiment"), [("this experiment".into(), Need::Any)]);
        assert!(scan("The first run, an experiment, and experiments in general.").is_empty());
    }
}

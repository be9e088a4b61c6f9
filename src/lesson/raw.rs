//! Raw TOML: reads the fields of a front matter or a fenced block out of a spanned TOML table, with the byte span of
//! every value, and collects problems (syntax, wrong types, unknown or missing fields) instead of stopping at the
//! first. Validation into lesson types happens in `validate`.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::text::{first_control, visible};
use crate::experiment::suggest;

/// The longest text a field may hold, in characters, and whether it must be one line. Every string a lesson gives
/// is bounded here, so no screen, table or message ever meets a 65,536-character id or title.
fn text_limit(key: &str) -> (usize, bool) {
    match key {
        "id" => (64, true),
        "title" => (100, true),
        "summary" => (200, true),
        "covers" => (80, true),
        "choices" => (300, true),
        "expect" | "goal" => (200, true),
        "note" | "question" | "hints" | "point" | "ask" => (500, false),
        "two_cores" | "eight_cores" => (300, false),
        "say" => (2000, false),
        "why" => (1000, false),
        "explain" => (2000, false),
        // Names: workload, mode(s), baseline, start, switch_interval, payload, demo, knobs, python.
        _ => (64, true),
    }
}

/// The most items a list field may hold.
fn list_limit(key: &str) -> usize {
    match key {
        "covers" => 20,
        "modes" => 6,
        "knobs" => 9,
        _ => 10, // choices, hints, expect
    }
}

/// A value with its byte span in the TOML text it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// A problem found in one TOML text. `span: None` means "the whole block" (reported at its opening line).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Issue {
    pub span: Option<Range<usize>>,
    pub message: String,
    pub label: Option<String>,
}

impl Issue {
    pub(crate) fn at(span: Range<usize>, message: impl Into<String>) -> Issue {
        Issue { span: Some(span), message: message.into(), label: None }
    }

    pub(crate) fn block(message: impl Into<String>) -> Issue {
        Issue { span: None, message: message.into(), label: None }
    }

    pub(crate) fn label(mut self, label: Option<String>) -> Issue {
        self.label = label;
        self
    }
}

/// Parses TOML text into a spanned table, or the first syntax error.
pub(crate) fn parse_table(text: &str) -> Result<DeTable<'_>, Issue> {
    match DeTable::parse(text) {
        Ok(table) => Ok(table.into_inner()),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            Err(Issue::at(span, format!("bad TOML: {}", e.message())))
        }
    }
}

/// Typed access to the fields of one table; every problem lands in `issues`.
pub(crate) struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// What the table is, for messages: `experiment block`, `front matter`, ...
    what: &'static str,
    pub issues: Vec<Issue>,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub(crate) fn new(table: &'t DeTable<'i>, what: &'static str) -> Fields<'t, 'i> {
        Fields { table, what, issues: Vec::new() }
    }

    /// Reports every field not in `known`, with a suggestion when one is close.
    pub(crate) fn check_known(&mut self, known: &[&str]) {
        let mut unknown: Vec<(Range<usize>, String)> = self
            .table
            .iter()
            .filter(|(k, _)| !known.contains(&k.get_ref().as_ref()))
            .map(|(k, _)| (k.span(), k.get_ref().to_string()))
            .collect();
        unknown.sort_by_key(|(span, _)| span.start);
        for (span, key) in unknown {
            let label = match suggest(&key, known.iter().copied()) {
                Some(s) => format!("did you mean '{s}'?"),
                None => format!("expected one of: {}", known.join(", ")),
            };
            self.issues.push(Issue::at(span, format!("unknown field '{key}' in the {}", self.what)).label(Some(label)));
        }
    }

    fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// The span of a field's key, for errors about the field itself.
    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Whether the table has no field at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    fn wrong_type(&mut self, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        self.issues.push(Issue::at(v.span(), format!("'{key}' must be {expected} (found {})", kind(v.get_ref()))));
    }

    /// Refuses text over the field's length limit, with a control character (which would reach the learner's
    /// terminal; TOML escapes like `\u001b` make them without one in the file), or with a line break where the
    /// field is one line. `what` names the field in the message (`'choices' item 3`).
    fn check_text(&mut self, key: &str, what: &str, value: &str, span: Range<usize>) -> bool {
        let (max, one_line) = text_limit(key);
        let len = value.chars().count();
        let problem = if len > max {
            format!("{what} is {len} characters long; the limit is {max}")
        } else if let Some((_, c)) = first_control(value) {
            format!(
                "{what} contains the control character {} (U+{:04X}), which would act on the terminal",
                visible(c),
                c as u32
            )
        } else if one_line && value.contains('\n') {
            format!("{what} must be one line (it contains a line break)")
        } else {
            return true;
        };
        self.issues.push(Issue::at(span, problem));
        false
    }

    pub(crate) fn string(&mut self, key: &str) -> Option<Sp<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => self
                .check_text(key, &format!("'{key}'"), s, v.span())
                .then(|| Sp { value: s.to_string(), span: v.span() }),
            _ => {
                self.wrong_type(key, v, "a string");
                None
            }
        }
    }

    pub(crate) fn int(&mut self, key: &str) -> Option<Sp<i64>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp { value: n, span: v.span() }),
                Err(_) => {
                    self.issues.push(Issue::at(v.span(), format!("'{key}' is too large a number")));
                    None
                }
            },
            _ => {
                self.wrong_type(key, v, "a whole number");
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, key: &str) -> Option<Sp<bool>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp { value: *b, span: v.span() }),
            _ => {
                self.wrong_type(key, v, "true or false");
                None
            }
        }
    }

    /// A string or an integer, as text (sizes such as `payload = 1048576` or `payload = "1MiB"`).
    pub(crate) fn text_or_int(&mut self, key: &str) -> Option<Sp<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => self
                .check_text(key, &format!("'{key}'"), s, v.span())
                .then(|| Sp { value: s.to_string(), span: v.span() }),
            DeValue::Integer(i) if i.radix() == 10 => Some(Sp { value: i.as_str().to_string(), span: v.span() }),
            _ => {
                self.wrong_type(key, v, "a number or a string");
                None
            }
        }
    }

    /// An array of strings; with `one_allowed`, a single string counts as a list of one.
    pub(crate) fn strings(&mut self, key: &str, one_allowed: bool) -> Option<Sp<Vec<Sp<String>>>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) if one_allowed => self
                .check_text(key, &format!("'{key}'"), s, v.span())
                .then(|| Sp { value: vec![Sp { value: s.to_string(), span: v.span() }], span: v.span() }),
            DeValue::Array(items) => {
                let max = list_limit(key);
                if items.len() > max {
                    self.issues
                        .push(Issue::at(v.span(), format!("'{key}' lists {} items; the limit is {max}", items.len())));
                    return None;
                }
                let mut out = Vec::new();
                let mut ok = true;
                for (n, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => {
                            let what = format!("'{key}' item {}", n + 1);
                            if self.check_text(key, &what, s, item.span()) {
                                out.push(Sp { value: s.to_string(), span: item.span() });
                            } else {
                                ok = false;
                            }
                        }
                        other => {
                            self.issues.push(Issue::at(
                                item.span(),
                                format!("'{key}' must list strings (found {})", kind(other)),
                            ));
                            return None;
                        }
                    }
                }
                ok.then_some(Sp { value: out, span: v.span() })
            }
            _ => {
                self.wrong_type(key, v, "a list of strings, like [\"a\", \"b\"]");
                None
            }
        }
    }

    /// An inline table (`solution = { workers = 2 }`), whose own fields are read with another `Fields`.
    pub(crate) fn table(&mut self, key: &str) -> Option<Sp<&'t DeTable<'i>>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Sp { value: t, span: v.span() }),
            _ => {
                self.wrong_type(key, v, "a table, like { workers = 2 }");
                None
            }
        }
    }

    /// Reports a missing required field (at the block's opening line).
    pub(crate) fn require<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.has(key) {
            self.issues.push(Issue::block(format!("the {} is missing the required field '{key}'", self.what)));
        }
        value
    }
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a whole number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// Byte span of a string's contents inside TOML `raw` text when it is a plain `"..."` or `'...'` string without
/// escapes, so positions inside the string are exact; otherwise the span of the whole string.
pub(crate) fn inner_span(raw: &str, span: &Range<usize>, value: &str) -> Option<usize> {
    let slice = raw.get(span.clone())?;
    let quote = slice.chars().next()?;
    if (quote == '"' || quote == '\'') && slice.get(1..slice.len().saturating_sub(1)) == Some(value) {
        Some(span.start + 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_carry_the_span_of_their_value() {
        let text = "tasks = 8\nmodes = [\"a\", \"bc\"]\n";
        let table = parse_table(text).unwrap();
        let mut f = Fields::new(&table, "experiment block");
        let tasks = f.int("tasks").unwrap();
        assert_eq!((tasks.value, &text[tasks.span]), (8, "8"));
        let modes = f.strings("modes", false).unwrap();
        assert_eq!(&text[modes.value[1].span.clone()], "\"bc\"");
        assert!(f.issues.is_empty());
    }

    #[test]
    fn wrong_types_unknown_and_missing_fields_are_all_collected() {
        let text = "tasks = \"8\"\nmodse = []\n";
        let table = parse_table(text).unwrap();
        let mut f = Fields::new(&table, "experiment block");
        f.check_known(&["tasks", "modes"]);
        assert!(f.int("tasks").is_none());
        let w = f.string("workload");
        assert!(f.require("workload", w).is_none());
        let messages: Vec<&str> = f.issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown field 'modse' in the experiment block",
                "'tasks' must be a whole number (found a string)",
                "the experiment block is missing the required field 'workload'"
            ]
        );
        assert_eq!(f.issues[0].label.as_deref(), Some("did you mean 'modes'?"));
    }

    #[test]
    fn syntax_errors_have_a_span() {
        let issue = parse_table("tasks = = 3\n").unwrap_err();
        assert!(issue.message.starts_with("bad TOML: "), "{}", issue.message);
        assert!(issue.span.is_some());
    }
}

//! The experiment's errors, typed: a message made of text and knob names, plus an optional "did you mean"
//! suggestion carried as data. The command line reads a knob's name as its flag (`--switch-interval`), a lesson
//! file as its key (`switch_interval`); `Display` is the command line's wording, `in_lesson` the lesson's, and the
//! linter puts `suggestion` under its caret. Model only.

use std::fmt;

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A knob or field, by its lesson-file key (`switch_interval`, `mode`, `tasks`).
    Name(&'static str),
}

/// Why an experiment, or one of its values, is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExperimentError {
    pieces: Vec<Piece>,
    /// A close known name (`threads` for `thread`).
    pub suggestion: Option<String>,
}

impl ExperimentError {
    /// A message of plain text.
    pub(crate) fn text(message: impl Into<String>) -> ExperimentError {
        ExperimentError { pieces: vec![Piece::Text(message.into())], suggestion: None }
    }

    /// Adds text.
    pub(crate) fn then(mut self, text: impl Into<String>) -> ExperimentError {
        self.pieces.push(Piece::Text(text.into()));
        self
    }

    /// Adds a knob's name.
    pub(crate) fn and(mut self, key: &'static str) -> ExperimentError {
        self.pieces.push(Piece::Name(key));
        self
    }

    /// Sets the suggestion.
    pub(crate) fn suggest(mut self, suggestion: Option<&str>) -> ExperimentError {
        self.suggestion = suggestion.map(str::to_owned);
        self
    }

    fn render(&self, name: impl Fn(&str) -> String) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Name(k) => name(k),
            })
            .collect()
    }

    /// The message without its suggestion, in the command line's words.
    pub(crate) fn message(&self) -> String {
        self.render(|k| format!("--{}", k.replace('_', "-")))
    }

    /// The message without its suggestion, in a lesson file's words (`switch_interval`, not `--switch-interval`).
    pub(crate) fn in_lesson(&self) -> String {
        self.render(str::to_owned)
    }
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        match &self.suggestion {
            Some(s) => write!(f, " (did you mean '{s}'?)"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ExperimentError {}

impl From<String> for ExperimentError {
    fn from(message: String) -> ExperimentError {
        ExperimentError::text(message)
    }
}

impl From<ExperimentError> for String {
    fn from(e: ExperimentError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_on_the_command_line_keys_in_a_lesson_and_the_suggestion_as_data() {
        let e = ExperimentError::text("")
            .and("switch_interval")
            .then(" applies only to ")
            .and("mode")
            .then(" gil, not threads");
        assert_eq!(e.to_string(), "--switch-interval applies only to --mode gil, not threads");
        assert_eq!(e.in_lesson(), "switch_interval applies only to mode gil, not threads");
        let e = ExperimentError::text("unknown mode 'thread'").suggest(Some("threads"));
        assert_eq!(e.to_string(), "unknown mode 'thread' (did you mean 'threads'?)");
        assert_eq!((e.message().as_str(), e.suggestion.as_deref()), ("unknown mode 'thread'", Some("threads")));
    }
}

//! The claim grammar shared by experiment `expect` lines and exercise goals: `[MODE.]METRIC (>=|<=) NUMBER
//! [* cores]`. Errors carry the byte range inside the claim text so the caret lands on the bad part.

use std::ops::Range;

use super::{Goal, Metric, Op};
use crate::experiment::{Mode, suggest};

/// Metric names as written in lessons.
pub(crate) const METRICS: [(&str, Metric); 4] = [
    ("speedup", Metric::Speedup),
    ("efficiency", Metric::Efficiency),
    ("wall_ms", Metric::WallMs),
    ("overhead_share", Metric::OverheadShare),
];

impl Metric {
    pub(crate) fn name(&self) -> &'static str {
        METRICS.iter().find(|(_, m)| m == self).map_or("?", |(n, _)| n)
    }
}

impl Op {
    pub(crate) fn symbol(&self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
        }
    }
}

/// A parsed claim: the optional mode (with its range in the text) and the goal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Claim {
    pub mode: Option<(Mode, Range<usize>)>,
    pub goal: Goal,
}

/// What is wrong with a claim, and where in its text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClaimError {
    pub range: Range<usize>,
    pub message: String,
    pub label: Option<String>,
}

fn err(range: Range<usize>, message: impl Into<String>, label: Option<String>) -> ClaimError {
    ClaimError { range, message: message.into(), label }
}

/// `text[range]` without surrounding whitespace, and its range.
fn trimmed(text: &str, range: Range<usize>) -> (&str, Range<usize>) {
    let part = &text[range.clone()];
    let start = range.start + (part.len() - part.trim_start().len());
    let end = range.end - (part.len() - part.trim_end().len());
    if start >= end { ("", range.start..range.start) } else { (&text[start..end], start..end) }
}

const EXAMPLE: &str = "write e.g. 'threads.speedup >= 0.7 * cores'";

/// Parses `[MODE.]METRIC (>=|<=) NUMBER [* cores]`.
pub(crate) fn parse_claim(text: &str) -> Result<Claim, ClaimError> {
    let whole = 0..text.len();
    let (at, op) = match (text.find(">="), text.find("<=")) {
        (Some(a), None) => (a, Op::AtLeast),
        (None, Some(b)) => (b, Op::AtMost),
        (Some(a), Some(b)) => {
            let second = a.max(b);
            return Err(err(second..second + 2, format!("'{text}' has two comparisons"), Some(EXAMPLE.into())));
        }
        (None, None) => {
            return Err(match text.find(['<', '>', '=']) {
                Some(i) => err(
                    i..i + 1,
                    format!("'{text}' compares with '{}'", &text[i..i + 1]),
                    Some("use '>=' or '<='".into()),
                ),
                None => err(whole, format!("'{text}' has no comparison ('>=' or '<=')"), Some(EXAMPLE.into())),
            });
        }
    };
    let (left, left_range) = trimmed(text, 0..at);
    if left.is_empty() {
        return Err(err(
            at..at + 2,
            format!("'{text}' names no metric before '{}'", op.symbol()),
            Some(EXAMPLE.into()),
        ));
    }
    let (mode, metric_text, metric_range) = match left.find('.') {
        Some(dot) => {
            let (mode_text, mode_range) = trimmed(text, left_range.start..left_range.start + dot);
            let mode = mode_text.parse::<Mode>().map_err(|e| {
                let s = e.suggestion.as_ref().map(|s| format!("did you mean '{s}'?"));
                err(if mode_range.is_empty() { left_range.clone() } else { mode_range.clone() }, e.message(), s)
            })?;
            let (metric, range) = trimmed(text, left_range.start + dot + 1..left_range.end);
            (Some((mode, mode_range)), metric, range)
        }
        None => (None, left, left_range.clone()),
    };
    let names: Vec<&str> = METRICS.iter().map(|m| m.0).collect();
    let Some(&(_, metric)) = METRICS.iter().find(|(n, _)| *n == metric_text) else {
        let label = match suggest(metric_text, names.iter().copied()) {
            Some(s) => format!("did you mean '{s}'?"),
            None => format!("expected one of: {}", names.join(", ")),
        };
        let range = if metric_range.is_empty() { left_range } else { metric_range };
        return Err(err(range, format!("unknown metric '{metric_text}'"), Some(label)));
    };
    let right_range = at + 2..text.len();
    let (num_range, cores_range) = match text[right_range.clone()].find('*') {
        Some(star) => (right_range.start..right_range.start + star, Some(right_range.start + star..text.len())),
        None => (right_range.clone(), None),
    };
    let (num_text, num_range) = trimmed(text, num_range);
    let value: f64 = match num_text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ if num_text.is_empty() => {
            return Err(err(
                at..at + 2,
                format!("'{text}' has no number after '{}'", op.symbol()),
                Some(EXAMPLE.into()),
            ));
        }
        _ => {
            return Err(err(num_range, format!("'{num_text}' is not a number of 0 or more"), None));
        }
    };
    let per_core = match cores_range {
        Some(range) => {
            let after_star = range.start + 1..range.end;
            let (word, word_range) = trimmed(text, after_star);
            if word != "cores" {
                let range = if word_range.is_empty() { range } else { word_range };
                return Err(err(range, format!("expected '* cores' after the number, found '* {word}'"), None));
            }
            if metric != Metric::Speedup {
                return Err(err(word_range, format!("'* cores' only applies to speedup, not {}", metric.name()), None));
            }
            true
        }
        None => false,
    };
    if metric == Metric::OverheadShare && value > 1.0 {
        return Err(err(num_range, format!("overhead_share is a share from 0 to 1, not {num_text}"), None));
    }
    Ok(Claim { mode, goal: Goal { metric, op, value, per_core, text: text.trim().to_string() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_with_and_without_a_mode() {
        let c = parse_claim("threads.speedup >= 0.7 * cores").unwrap();
        assert_eq!(c.mode.as_ref().map(|m| m.0), Some(Mode::Threads));
        assert_eq!(c.mode.unwrap().1, 0..7);
        assert_eq!(
            c.goal,
            Goal {
                metric: Metric::Speedup,
                op: Op::AtLeast,
                value: 0.7,
                per_core: true,
                text: "threads.speedup >= 0.7 * cores".into()
            }
        );
        let c = parse_claim("overhead_share<=0.5").unwrap();
        assert_eq!(
            (c.mode, c.goal.metric, c.goal.op, c.goal.per_core),
            (None, Metric::OverheadShare, Op::AtMost, false)
        );
        let c = parse_claim("async-offload.wall_ms <= 900").unwrap();
        assert_eq!(c.mode.unwrap().0, Mode::AsyncOffload);
        assert!(c.goal.holds(899.0, 2) && !c.goal.holds(901.0, 2));
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let at = |text: &str| {
            let e = parse_claim(text).unwrap_err();
            (text[e.range.clone()].to_string(), e.message, e.label)
        };
        let (part, msg, label) = at("thread.speedup >= 1");
        assert_eq!(part, "thread");
        assert!(msg.starts_with("unknown mode 'thread'"), "{msg}");
        assert_eq!(label.as_deref(), Some("did you mean 'threads'?"));
        let (part, msg, label) = at("threads.speedp >= 1");
        assert_eq!((part.as_str(), msg.as_str()), ("speedp", "unknown metric 'speedp'"));
        assert_eq!(label.as_deref(), Some("did you mean 'speedup'?"));
        assert_eq!(at("speedup > 1").0, ">");
        assert_eq!(at("speedup >= fast").0, "fast");
        assert_eq!(at("speedup >= 1 * cpus").0, "cpus");
        assert_eq!(at("wall_ms <= 3 * cores").1, "'* cores' only applies to speedup, not wall_ms");
        assert_eq!(at("overhead_share <= 5").0, "5");
        assert!(at("speedup").1.contains("no comparison"));
        assert!(at("speedup >=").1.contains("no number"));
        assert!(at(">= 2").1.contains("names no metric"));
    }

    #[test]
    fn per_core_thresholds_scale_with_cores() {
        let g = parse_claim("speedup >= 0.75 * cores").unwrap().goal;
        assert_eq!(g.threshold(2), 1.5);
        assert_eq!(g.threshold(0), 0.75);
    }
}

//! Validation of one TOML table (front matter, `experiment`, `quiz`, `exercise`) into the lesson types: names,
//! ranges, knobs that fit the modes, and the claim grammar. Problems are collected as `Issue`s with spans into the
//! TOML text; `parse` turns them into file positions.

use std::ops::Range;

use super::cost;
use super::goal::{Claim, parse_claim};
use super::raw::{Fields, Issue, Sp, inner_span};
use super::{ExerciseSpec, Expect, ExperimentKind, ExperimentSpec, Knob, Notes, Quiz, SOLUTIONS_DIR, Solution};
use crate::experiment::demo::DemoName;
use crate::experiment::{
    Api, Engine, Experiment, ExperimentError, Fit, Knobs, MAX_PAYLOAD, MAX_TASKS, MAX_WORKERS, MODES, Mode,
    StartMethod, Workload, parse_bytes, parse_interval_us, suggest,
};

/// Lowercase letters, digits and single dashes: `beat-the-gil`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

fn check_id(f: &mut Fields, id: &Option<Sp<String>>) {
    if let Some(id) = id
        && !valid_id(&id.value)
    {
        f.issues.push(Issue::at(
            id.span.clone(),
            format!("id '{}' must be lowercase letters, digits and single '-' (like 'beat-the-gil')", id.value),
        ));
    }
}

fn non_empty(f: &mut Fields, key: &str, value: Option<Sp<String>>) -> Option<Sp<String>> {
    let v = value?;
    if v.value.trim().is_empty() {
        f.issues.push(Issue::at(v.span.clone(), format!("'{key}' must not be empty")));
        return None;
    }
    Some(v)
}

/// An integer field in `min..=max`.
fn ranged(f: &mut Fields, key: &str, min: i64, max: i64) -> Option<Sp<i64>> {
    let v = f.int(key)?;
    if v.value < min || v.value > max {
        f.issues.push(Issue::at(v.span.clone(), format!("{key} {} is out of range (allowed {min}..={max})", v.value)));
        return None;
    }
    Some(v)
}

/// A name parsed with one of the experiment parsers; the suggestion goes under the caret.
fn named<T, E: Into<ExperimentError>>(
    f: &mut Fields,
    v: Option<Sp<String>>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<Sp<T>> {
    let v = v?;
    match parse(&v.value) {
        Ok(value) => Some(Sp { value, span: v.span }),
        Err(e) => {
            let e: ExperimentError = e.into();
            let label = e.suggestion.as_ref().map(|s| format!("did you mean '{s}'?"));
            f.issues.push(Issue::at(v.span, e.in_lesson()).label(label));
            None
        }
    }
}

/// The validated front matter.
pub(crate) struct Front {
    pub id: Sp<String>,
    pub title: String,
    pub minutes: u32,
    pub summary: String,
    pub covers: Vec<String>,
}

pub(crate) fn front_matter(f: &mut Fields) -> Option<Front> {
    f.check_known(&["id", "title", "minutes", "summary", "covers"]);
    let id = f.string("id");
    check_id(f, &id);
    let id = f.require("id", id);
    let title = f.string("title");
    let title = non_empty(f, "title", title);
    let title = f.require("title", title);
    let minutes = ranged(f, "minutes", 1, 60);
    let minutes = f.require("minutes", minutes);
    let summary = f.string("summary");
    let summary = non_empty(f, "summary", summary);
    let summary = f.require("summary", summary);
    let covers = f.strings("covers", false);
    let covers = f.require("covers", covers);
    Some(Front {
        id: id?,
        title: title?.value,
        minutes: minutes?.value as u32,
        summary: summary?.value,
        covers: covers?.value.into_iter().map(|c| c.value).collect(),
    })
}

/// The knob fields an experiment or exercise may set, each with the span of its key (for "does not fit" errors).
struct GivenKnobs {
    knobs: Knobs,
    given: Vec<(Knob, Range<usize>)>,
    /// Where `api` was given: a fixed field (not a knob a learner turns), for processes only.
    api: Option<Range<usize>>,
}

fn mark(f: &Fields, knob: Knob, key: &str, given: &mut Vec<(Knob, Range<usize>)>) {
    if let Some(span) = f.key_span(key) {
        given.push((knob, span));
    }
}

fn knob_fields(f: &mut Fields) -> GivenKnobs {
    let mut knobs = Knobs::default();
    let mut given = Vec::new();
    if let Some(w) = ranged(f, "workers", 1, i64::from(MAX_WORKERS)) {
        knobs.workers = Some(w.value as u32);
        mark(f, Knob::Workers, "workers", &mut given);
    }
    if let Some(c) = ranged(f, "chunksize", 1, MAX_TASKS as i64) {
        knobs.chunksize = Some(c.value as u64);
        mark(f, Knob::Chunksize, "chunksize", &mut given);
    }
    let start = f.string("start");
    if let Some(s) = named(f, start, |s| s.parse::<StartMethod>()) {
        knobs.start = Some(s.value);
        mark(f, Knob::Start, "start", &mut given);
    }
    let interval = f.string("switch_interval");
    if let Some(us) = named(f, interval, parse_interval_us) {
        knobs.switch_interval_us = Some(us.value);
        mark(f, Knob::SwitchInterval, "switch_interval", &mut given);
    }
    if let Some(p) = f.text_or_int("payload") {
        match parse_bytes(&p.value) {
            Ok(bytes) if bytes > MAX_PAYLOAD => f.issues.push(Issue::at(
                p.span,
                format!("payload {bytes} bytes is too large (allowed 0..={MAX_PAYLOAD} bytes, 256 MiB, per task)"),
            )),
            Ok(bytes) => {
                knobs.payload = Some(bytes);
                mark(f, Knob::Payload, "payload", &mut given);
            }
            Err(e) => f.issues.push(Issue::at(p.span, e)),
        }
    }
    if let Some(w) = f.boolean("warm") {
        knobs.warm = w.value;
        if w.value {
            mark(f, Knob::Warm, "warm", &mut given);
        }
    }
    let api = f.string("api");
    let api = named(f, api, |s| s.parse::<Api>()).map(|a| {
        knobs.api = Some(a.value);
        a.span
    });
    GivenKnobs { knobs, given, api: api.and_then(|_| f.key_span("api")) }
}

/// Reports an `api` given where no mode is processes.
fn check_api_fit(f: &mut Fields, knobs: &GivenKnobs, modes: &[Mode]) {
    if let Some(span) = &knobs.api
        && !modes.contains(&Mode::Processes)
    {
        let names: Vec<&str> = modes.iter().map(Mode::name).collect();
        f.issues.push(Issue::at(
            span.clone(),
            format!("'api' has no effect here: it applies to processes, and the modes are {}", names.join(", ")),
        ));
    }
}

/// Reports every given knob that fits none of `modes`.
fn check_fit(f: &mut Fields, given: &[(Knob, Range<usize>)], modes: &[Mode], workload: Workload) {
    for (knob, span) in given {
        if !modes.iter().any(|m| knob.fits(*m, workload)) {
            let names: Vec<&str> = modes.iter().map(Mode::name).collect();
            f.issues.push(Issue::at(
                span.clone(),
                format!(
                    "'{}' has no effect here: it applies to {}, and the modes are {}",
                    knob.name(),
                    knob.applies_to(),
                    names.join(", ")
                ),
            ));
        }
    }
}

/// The last word on ranges (e.g. payload x tasks): builds each mode's run as a lesson would.
fn check_build(f: &mut Fields, workload: Workload, tasks: u64, modes: &[Mode], knobs: &Knobs) {
    for mode in modes {
        if let Err(e) = Experiment::build(workload, tasks, *mode, knobs, Fit::Lenient, 2) {
            f.issues.push(Issue::block(e.in_lesson()));
            return;
        }
    }
}

/// Refuses a block whose sequential run is estimated beyond `cost::MAX_SEQUENTIAL_NS`.
fn check_cost(f: &mut Fields, what: &str, workload: Workload, tasks: u64) {
    if let Err(e) = cost::check(what, workload, tasks) {
        f.issues.push(Issue::block(e));
    }
}

/// A claim string from the TOML: parse it and map errors to the exact place inside the string.
fn claim(f: &mut Fields, raw: &str, s: &Sp<String>) -> Option<(Claim, Range<usize>)> {
    let base = inner_span(raw, &s.span, &s.value);
    let locate = |r: Range<usize>| match base {
        Some(b) => b + r.start..b + r.end,
        None => s.span.clone(),
    };
    match parse_claim(&s.value) {
        Ok(c) => {
            let mode_span = c.mode.as_ref().map_or(s.span.clone(), |(_, r)| locate(r.clone()));
            Some((c, mode_span))
        }
        Err(e) => {
            f.issues.push(Issue::at(locate(e.range), e.message).label(e.label));
            None
        }
    }
}

fn workload_and_tasks(f: &mut Fields) -> (Option<Sp<Workload>>, Option<u64>) {
    let w = f.string("workload");
    let w = f.require("workload", w);
    let workload = named(f, w, |s| s.parse::<Workload>());
    let tasks = ranged(f, "tasks", 1, MAX_TASKS as i64);
    let tasks = f.require("tasks", tasks).map(|t| t.value as u64);
    (workload, tasks)
}

const EXPERIMENT_FIELDS: [&str; 15] = [
    "id",
    "demo",
    "workload",
    "tasks",
    "modes",
    "workers",
    "chunksize",
    "start",
    "switch_interval",
    "payload",
    "warm",
    "api",
    "engines",
    "expect",
    "note",
];

pub(crate) fn experiment(f: &mut Fields, raw: &str) -> Option<(ExperimentSpec, Option<Sp<String>>)> {
    f.check_known(&EXPERIMENT_FIELDS);
    let id = f.string("id");
    check_id(f, &id);
    let note = f.string("note").map(|n| n.value);
    if f.has("demo") {
        let demo = f.string("demo");
        let demo = named(f, demo, |s| s.parse::<DemoName>().map(|d| d.name().to_string()));
        for key in EXPERIMENT_FIELDS.iter().filter(|k| !["id", "demo", "note"].contains(k)) {
            if let Some(span) = f.key_span(key) {
                f.issues.push(Issue::at(span, format!("'{key}' does not apply to a demo experiment (demo = \"...\")")));
            }
        }
        let spec = ExperimentSpec {
            id: id.clone().map(|i| i.value),
            kind: ExperimentKind::Demo(demo?.value),
            expect: vec![],
            note,
        };
        return Some((spec, id));
    }
    let (workload, tasks) = workload_and_tasks(f);
    let modes_raw = f.strings("modes", false);
    let modes_raw = f.require("modes", modes_raw);
    let mut modes: Vec<Mode> = Vec::new();
    if let Some(list) = &modes_raw {
        if list.value.is_empty() {
            f.issues.push(Issue::at(list.span.clone(), "'modes' needs at least one mode (the first is what 'r' runs)"));
        }
        for m in &list.value {
            if let Some(mode) = named(f, Some(m.clone()), |s| s.parse::<Mode>()) {
                if modes.contains(&mode.value) {
                    f.issues.push(Issue::at(m.span.clone(), format!("mode '{}' is listed twice", mode.value)));
                } else {
                    modes.push(mode.value);
                }
            }
        }
    }
    let all_modes_valid = modes_raw.as_ref().is_some_and(|l| l.value.len() == modes.len() && !modes.is_empty());
    let mut knobs = knob_fields(f);
    knobs.knobs.engines = engines_field(f, &modes);
    let mut expect = Vec::new();
    if let Some(lines) = f.strings("expect", true) {
        for line in &lines.value {
            let Some((c, mode_span)) = claim(f, raw, line) else {
                continue;
            };
            match c.mode {
                None => f.issues.push(
                    Issue::at(line.span.clone(), format!("expect line '{}' names no mode", c.goal.text))
                        .label(Some("write MODE.METRIC, e.g. 'threads.speedup >= 0.7 * cores'".into())),
                ),
                Some((mode, _)) if !modes.contains(&mode) && all_modes_valid => {
                    let names: Vec<&str> = modes.iter().map(Mode::name).collect();
                    f.issues.push(Issue::at(
                        mode_span,
                        format!(
                            "expect names mode '{mode}', which is not in this experiment's modes ({})",
                            names.join(", ")
                        ),
                    ));
                }
                Some((mode, _)) => expect.push(Expect { mode, goal: c.goal }),
            }
        }
    }
    let (workload, tasks) = (workload?, tasks?);
    if !all_modes_valid {
        return None;
    }
    check_fit(f, &knobs.given, &modes, workload.value);
    check_api_fit(f, &knobs, &modes);
    check_build(f, workload.value, tasks, &modes, &knobs.knobs);
    check_cost(f, "experiment", workload.value, tasks);
    let kind = ExperimentKind::Run { workload: workload.value, tasks, modes, knobs: knobs.knobs };
    Some((ExperimentSpec { id: id.clone().map(|i| i.value), kind, expect, note }, id))
}

/// `engines = ["native", "python"]`: the engines an experiment runs on (default: native). Every mode must run on
/// one of them (gil is the native engine's, interpreters, dask and ray the python engine's).
fn engines_field(f: &mut Fields, modes: &[Mode]) -> Vec<Engine> {
    let mut engines = Vec::new();
    let Some(list) = f.strings("engines", false) else {
        if let (Some(m), Some(span)) = (modes.iter().find(|m| m.python_only()), f.key_span("modes")) {
            f.issues.push(
                Issue::at(span, format!("mode '{m}' runs only on the python engine"))
                    .label(Some("add engines = [\"python\"] (or [\"native\", \"python\"])".into())),
            );
        }
        return engines;
    };
    if list.value.is_empty() {
        f.issues.push(Issue::at(list.span.clone(), "'engines' needs at least one engine (native, python)"));
    }
    for e in &list.value {
        if let Some(engine) = named(f, Some(e.clone()), |s| s.parse::<Engine>()) {
            if engines.contains(&engine.value) {
                f.issues.push(Issue::at(e.span.clone(), format!("engine '{}' is listed twice", engine.value)));
            } else {
                engines.push(engine.value);
            }
        }
    }
    let on = if engines.is_empty() { vec![Engine::Native] } else { engines.clone() };
    for m in modes {
        if !on.iter().any(|e| m.runs_on(*e)) {
            let names: Vec<&str> = on.iter().map(Engine::name).collect();
            let fix = if m.python_only() { "add \"python\" to engines" } else { "add \"native\" to engines" };
            f.issues.push(
                Issue::at(list.span.clone(), format!("mode '{m}' runs on none of the engines ({})", names.join(", ")))
                    .label(Some(fix.into())),
            );
        }
    }
    engines
}

/// The fields of a `notes` block, in the order `parlab notes` shows them.
pub(crate) const NOTES_FIELDS: [&str; 5] = ["say", "point", "ask", "two_cores", "eight_cores"];

pub(crate) fn notes(f: &mut Fields) -> Option<Notes> {
    f.check_known(&NOTES_FIELDS);
    let mut text = |key: &str| {
        let v = f.string(key);
        non_empty(f, key, v).map(|v| v.value)
    };
    let notes = Notes {
        say: text("say"),
        point: text("point"),
        ask: text("ask"),
        two_cores: text("two_cores"),
        eight_cores: text("eight_cores"),
    };
    // Unknown fields alone are reported as such (with a suggestion); an empty block is this.
    if f.is_empty() {
        f.issues.push(Issue::block(format!("a notes block needs at least one of: {}", NOTES_FIELDS.join(", "))));
    }
    Some(notes)
}

pub(crate) fn quiz(f: &mut Fields) -> Option<Quiz> {
    f.check_known(&["question", "choices", "answer", "why"]);
    let question = f.string("question");
    let question = non_empty(f, "question", question);
    let question = f.require("question", question);
    let choices = f.strings("choices", false);
    let choices = f.require("choices", choices);
    if let Some(c) = &choices
        && c.value.len() < 2
    {
        f.issues.push(Issue::at(c.span.clone(), format!("a quiz needs at least 2 choices (found {})", c.value.len())));
    }
    let answer = f.int("answer");
    let answer = f.require("answer", answer);
    if let (Some(a), Some(c)) = (&answer, &choices)
        && (a.value < 0 || a.value as usize >= c.value.len())
        && !c.value.is_empty()
    {
        f.issues.push(Issue::at(
            a.span.clone(),
            format!(
                "answer {} is out of range: choices are numbered from 0, so allowed 0..={}",
                a.value,
                c.value.len() - 1
            ),
        ));
    }
    let why = f.string("why");
    let why = non_empty(f, "why", why);
    let why = f.require("why", why);
    let (choices, answer) = (choices?, answer?);
    if choices.value.len() < 2 || answer.value < 0 || answer.value as usize >= choices.value.len() {
        return None;
    }
    Some(Quiz {
        question: question?.value,
        choices: choices.value.into_iter().map(|c| c.value).collect(),
        answer: answer.value as usize,
        why: why?.value,
    })
}

/// The validated exercise and the span of its id (for the across-lessons uniqueness check).
pub(crate) fn exercise(f: &mut Fields, raw: &str, starters: &[&str]) -> Option<(ExerciseSpec, Range<usize>)> {
    f.check_known(&[
        "id",
        "title",
        "workload",
        "tasks",
        "baseline",
        "mode",
        "workers",
        "chunksize",
        "start",
        "switch_interval",
        "payload",
        "warm",
        "api",
        "knobs",
        "goal",
        "hints",
        "explain",
        "python",
        "engines",
        "solution",
    ]);
    let id = f.string("id");
    check_id(f, &id);
    let id = f.require("id", id);
    let title = f.string("title");
    let title = non_empty(f, "title", title);
    let title = f.require("title", title);
    let (workload, tasks) = workload_and_tasks(f);
    let baseline = f.string("baseline");
    let baseline = match baseline {
        Some(b) => named(f, Some(b), |s| s.parse::<Mode>()).map(|m| m.value),
        None => Some(Mode::Sequential),
    };
    let mode = f.string("mode");
    let mode = f.require("mode", mode);
    let mode = named(f, mode, |s| s.parse::<Mode>()).map(|m| m.value);
    let mut knobs = knob_fields(f);
    let on: Vec<Mode> = [baseline, mode].into_iter().flatten().collect();
    knobs.knobs.engines = engines_field(f, &on);
    let list = f.strings("knobs", false);
    let list = f.require("knobs", list);
    let mut may_change: Vec<(Knob, Range<usize>)> = Vec::new();
    let issues_before_knobs = f.issues.len();
    for k in list.iter().flat_map(|l| l.value.iter()) {
        let names = Knob::names();
        let found = named(f, Some(k.clone()), |s| {
            Knob::from_name(s).ok_or_else(|| {
                ExperimentError::text(format!("unknown knob '{s}' (expected one of: {})", names.join(", ")))
                    .suggest(suggest(s, names.iter().copied()))
            })
        });
        if let Some(knob) = found {
            if may_change.iter().any(|(k, _)| *k == knob.value) {
                f.issues.push(Issue::at(k.span.clone(), format!("knob '{}' is listed twice", knob.value.name())));
            } else {
                may_change.push((knob.value, knob.span));
            }
        }
    }
    // A knob name that did not parse is reported once, not again as each solution knob it would have allowed.
    let knobs_complete = list.is_some() && f.issues.len() == issues_before_knobs;
    let goal = f.string("goal");
    let goal = f.require("goal", goal);
    let goal = match goal.as_ref().and_then(|g| claim(f, raw, g)) {
        Some((c, mode_span)) if c.mode.is_some() => {
            f.issues.push(
                Issue::at(mode_span, format!("an exercise goal must not name a mode ('{}')", c.goal.text)).label(Some(
                    "the goal is measured on the learner's setup: write e.g. 'speedup >= 0.7 * cores'".into(),
                )),
            );
            None
        }
        Some((c, _)) => Some(c.goal),
        None => None,
    };
    let hints = f.strings("hints", false).map(|h| h.value.into_iter().map(|h| h.value).collect()).unwrap_or_default();
    let explain = f.string("explain");
    let explain = non_empty(f, "explain", explain);
    let explain = f.require("explain", explain);
    let python = f.string("python");
    if let Some(p) = &python
        && !starters.is_empty()
    {
        let have: Vec<&str> = starters.iter().copied().filter(|s| !s.starts_with(SOLUTIONS_DIR)).collect();
        if !have.contains(&p.value.as_str()) {
            f.issues.push(Issue::at(
                p.span.clone(),
                format!("python starter '{}' is not in assets/exercises/ (have: {})", p.value, have.join(", ")),
            ));
        } else if !starters.contains(&format!("{SOLUTIONS_DIR}{}", p.value).as_str()) {
            f.issues.push(Issue::at(
                p.span.clone(),
                format!(
                    "python starter '{}' has no solution: add assets/exercises/{SOLUTIONS_DIR}{} (lint --verify \
                     checks that the starter fails and the solution passes)",
                    p.value, p.value
                ),
            ));
        }
    }
    let solution_table = f.table("solution");
    if solution_table.is_none() && !f.has("solution") {
        f.issues.push(Issue::block(
            "the exercise block is missing the required field 'solution': the intended fix, e.g. \
             solution = { mode = \"processes\", workers = 2 } (lint --verify checks that the start fails and it passes)",
        ));
    }
    let (workload, tasks, baseline, mode) = (workload?, tasks?, baseline?, mode?);
    let may: Vec<Knob> = may_change.iter().map(|(k, _)| *k).collect();
    let start = Start { mode, workload: workload.value, tasks, knobs: &knobs.knobs, may: &may, knobs_complete };
    let solution = solution_table.and_then(|t| solution(f, t, &start));
    let reachable: Vec<Mode> =
        if may_change.iter().any(|(k, _)| *k == Knob::Mode) { MODES.iter().map(|m| m.1).collect() } else { vec![mode] };
    check_fit(f, &knobs.given, &reachable, workload.value);
    check_api_fit(f, &knobs, &reachable);
    check_fit(f, &may_change, &reachable, workload.value);
    check_build(f, workload.value, tasks, &[baseline, mode], &knobs.knobs);
    check_cost(f, "exercise", workload.value, tasks);
    let spec = ExerciseSpec {
        id: id.as_ref()?.value.clone(),
        title: title?.value,
        workload: workload.value,
        tasks,
        baseline,
        mode,
        knobs: knobs.knobs,
        may_change: may_change.into_iter().map(|(k, _)| k).collect(),
        goal: goal?,
        hints,
        explain: explain?.value,
        python: python.map(|p| p.value),
        solution: Box::new(solution?),
    };
    Some((spec, id?.span))
}

/// The fields a `solution` table may set: the exercise's knobs (`api` is fixed, not a knob).
const SOLUTION_FIELDS: [&str; 9] =
    ["mode", "workers", "chunksize", "start", "switch_interval", "payload", "warm", "size", "tasks"];

/// What a solution is checked against: the exercise's starting setup and the knobs it lets the learner change.
struct Start<'a> {
    mode: Mode,
    workload: Workload,
    tasks: u64,
    knobs: &'a Knobs,
    may: &'a [Knob],
    /// Whether every name in `knobs = [...]` parsed (otherwise `may` is partial and already reported).
    knobs_complete: bool,
}

/// An exercise's `solution = { ... }`: only knobs the exercise lets the learner change, each fitting the solution's
/// mode, together changing something, and building a run.
fn solution(f: &mut Fields, table: Sp<&toml::de::DeTable<'_>>, start: &Start) -> Option<Solution> {
    let (may, workload, tasks) = (start.may, start.workload, start.tasks);
    let mut sub = Fields::new(table.value, "solution");
    sub.check_known(&SOLUTION_FIELDS);
    let GivenKnobs { knobs, mut given, .. } = knob_fields(&mut sub);
    let mode = sub.string("mode");
    let mode = named(&mut sub, mode, |s| s.parse::<Mode>());
    if let Some(m) = &mode {
        given.push((Knob::Mode, sub.key_span("mode").unwrap_or(m.span.clone())));
    }
    let size = sub.int("size");
    if size.is_some()
        && let Some(span) = sub.key_span("size")
    {
        given.push((Knob::Size, span));
    }
    let new_tasks = ranged(&mut sub, "tasks", 1, MAX_TASKS as i64);
    if new_tasks.is_some()
        && let Some(span) = sub.key_span("tasks")
    {
        given.push((Knob::Tasks, span));
    }
    let mut ok = sub.issues.is_empty();
    f.issues.append(&mut sub.issues);
    given.sort_by_key(|(_, span)| span.start);
    let allowed =
        if may.is_empty() { "nothing".to_string() } else { may.iter().map(Knob::name).collect::<Vec<_>>().join(", ") };
    // A mode the learner may not choose is reported as such, and the other knobs are judged in the start's mode.
    let mode = mode.filter(|_| may.contains(&Knob::Mode)).map_or(start.mode, |m| m.value);
    for (knob, span) in &given {
        if !may.contains(knob) {
            ok = false;
            if !start.knobs_complete {
                continue;
            }
            f.issues.push(Issue::at(
                span.clone(),
                format!(
                    "the solution changes '{}', which this exercise does not let the learner change (knobs: {allowed})",
                    knob.name()
                ),
            ));
        } else if !knob.fits(mode, workload) {
            ok = false;
            f.issues.push(Issue::at(
                span.clone(),
                format!(
                    "the solution's '{}' has no effect: it applies to {}, and the solution runs {mode}",
                    knob.name(),
                    knob.applies_to()
                ),
            ));
        }
    }
    if ok && given.is_empty() {
        f.issues.push(Issue::at(table.span.clone(), "the solution changes nothing: it is the starting setup"));
        return None;
    }
    let workload = match &size {
        Some(s) => {
            let resized = format!("{}:{}", workload.name(), s.value).parse::<Workload>();
            match resized {
                Ok(w) => w,
                Err(e) => {
                    f.issues.push(Issue::at(s.span.clone(), format!("the solution's size: {e}")));
                    return None;
                }
            }
        }
        None => workload,
    };
    if !ok {
        return None;
    }
    let s = start.knobs;
    let merged = Knobs {
        workers: knobs.workers.or(s.workers),
        chunksize: knobs.chunksize.or(s.chunksize),
        start: knobs.start.or(s.start),
        switch_interval_us: knobs.switch_interval_us.or(s.switch_interval_us),
        payload: knobs.payload.or(s.payload),
        warm: knobs.warm || s.warm,
        api: s.api,
        engines: s.engines.clone(),
    };
    let tasks = new_tasks.as_ref().map_or(tasks, |t| t.value as u64);
    if let Err(e) = Experiment::build(workload, tasks, mode, &merged, Fit::Lenient, 2) {
        f.issues.push(Issue::at(table.span.clone(), format!("the solution does not make a run: {e}")));
        return None;
    }
    if size.is_some() || new_tasks.is_some() {
        check_cost(f, "exercise's solution", workload, tasks);
    }
    Some(Solution {
        mode: given.iter().any(|(k, _)| *k == Knob::Mode).then_some(mode),
        knobs: Knobs { api: None, engines: Vec::new(), ..knobs },
        size: size.map(|s| s.value as u64),
        tasks: new_tasks.map(|t| t.value as u64),
    })
}

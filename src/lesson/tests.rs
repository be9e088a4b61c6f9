//! Parser tests on the shipped lessons and on small synthetic files, plus a deterministic fuzz of a real lesson.

use super::*;
use crate::experiment::{StartMethod, Workload};

const GOOD: &str = r#"+++
id = "demo-lesson"
title = "A demo lesson"
minutes = 5
summary = "One line."
covers = ["a", "b"]
+++

Intro text.

| a | b |
|---|---|
| 1 | 2 |

## First section

Some prose.

```python runnable
print("hi")
```

More prose.

```experiment
id = "one"
workload = "fib:20"
tasks = 4
modes = ["sequential", "processes"]
start = "fork"
payload = "1KiB"
expect = "processes.speedup >= 0.5 * cores"
```

## Second `section`

```quiz
question = "Q?"
choices = ["a", "b"]
answer = 1
why = "Because."
```

```exercise
id = "ex-one"
title = "An exercise"
workload = "sleep:10"
tasks = 8
mode = "gil"
workers = 2
knobs = ["workers", "mode"]
goal = "speedup >= 3"
hints = ["h1"]
explain = "E."
solution = { workers = 20 }
```
"#;

fn parse(text: &str) -> Result<Lesson, Vec<LintError>> {
    parse_lesson("t.md", text, &[]).map(|p| p.lesson).map_err(|b| b.errors)
}

fn errors(text: &str) -> Vec<String> {
    parse(text).expect_err("should not parse").iter().map(LintError::headline).collect()
}

#[test]
fn a_lesson_splits_into_an_introduction_and_sections_of_blocks() {
    let l = parse(GOOD).unwrap();
    assert_eq!((l.id.as_str(), l.title.as_str(), l.minutes), ("demo-lesson", "A demo lesson", 5));
    let titles: Vec<&str> = l.sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["A demo lesson", "First section", "Second section"]);
    // The table stays in the introduction's prose.
    assert!(
        matches!(&l.sections[0].blocks[..], [Block::Markdown(m)] if m.starts_with("Intro") && m.ends_with("| 1 | 2 |"))
    );
    let first = &l.sections[1].blocks;
    assert_eq!(first.len(), 4);
    assert_eq!(first[0], Block::Markdown("Some prose.".into()));
    assert_eq!(first[1], Block::Code { lang: "python".into(), text: "print(\"hi\")\n".into(), runnable: true });
    let Block::Experiment(e) = &first[3] else { panic!("{:?}", first[3]) };
    assert_eq!(e.id.as_deref(), Some("one"));
    let ExperimentKind::Run { workload, tasks, modes, knobs } = &e.kind else { panic!() };
    assert_eq!((*workload, *tasks), (Workload::Fib { lo: 20, hi: 20 }, 4));
    assert_eq!(modes, &[Mode::Sequential, Mode::Processes]);
    assert_eq!((knobs.start, knobs.payload), (Some(StartMethod::Fork), Some(1024)));
    assert_eq!(e.expect.len(), 1);
    assert_eq!(e.expect[0].mode, Mode::Processes);
    assert!(e.expect[0].goal.per_core);
    let second = &l.sections[2].blocks;
    assert!(matches!(&second[0], Block::Quiz(q) if q.answer == 1 && q.choices.len() == 2));
    let Block::Exercise(x) = &second[1] else { panic!() };
    assert_eq!((x.baseline, x.mode, x.knobs.workers), (Mode::Sequential, Mode::Gil, Some(2)));
    assert_eq!(x.may_change, [Knob::Workers, Knob::Mode]);
}

#[test]
fn every_shipped_lesson_loads() {
    let set = load_embedded();
    let broken: Vec<String> = set.broken.iter().flat_map(|b| &b.errors).map(ToString::to_string).collect();
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
    assert!(set.lessons.len() >= 12);
    let files: Vec<&str> = set.lessons.iter().map(|l| l.path.as_str()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert!(files.iter().all(|f| f.starts_with("lessons/") && f.ends_with(".md")));
    assert!(set.find("gil").is_some_and(|l| l.sections.len() > 2));
    assert!(set.exercises().any(|(l, e)| l.id == "gil" && e.id == "beat-the-gil"));
    assert!(set.lessons.iter().all(|l| l.sections.len() >= 2));
}

#[test]
fn every_shipped_exercise_has_a_solution_and_every_python_one_a_solution_file() {
    let set = load_embedded();
    let exercises: Vec<&ExerciseSpec> = set.exercises().map(|(_, e)| e).collect();
    assert!(exercises.len() >= 12, "the twelve lessons have at least 12 exercises: {}", exercises.len());
    for e in exercises {
        assert_ne!(*e.solution, Solution::default(), "{} has no solution", e.id);
        if let Some(name) = &e.python {
            let (starter, fix) = (starter(name), python_solution(name));
            assert!(starter.is_some() && fix.is_some(), "{}: starter {name} or its solution is not embedded", e.id);
            assert_ne!(starter, fix, "{}: the solution of {name} is the starter itself", e.id);
        }
    }
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = GOOD
        .replace("minutes = 5", "minutes = 500")
        .replace("answer = 1", "answer = 2")
        .replace("\"sequential\", \"processes\"]", "\"sequential\", \"proceses\"]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0], "t.md:4:11: minutes 500 is out of range (allowed 1..=60)");
    assert!(errs[1].starts_with("t.md:29:24: unknown mode 'proceses'"), "{}", errs[1]);
    assert!(errs[2].starts_with("t.md:40:10: answer 2 is out of range"), "{}", errs[2]);
}

#[test]
fn errors_inside_a_claim_point_into_the_string() {
    let text = GOOD.replace("processes.speedup >= 0.5 * cores", "processes.speedup >= 0.5 * cpus");
    assert_eq!(errors(&text), ["t.md:32:38: expected '* cores' after the number, found '* cpus'"]);
}

#[test]
fn a_missing_python_starter_is_reported_once_starters_exist() {
    let text = GOOD.replace("explain = \"E.\"", "explain = \"E.\"\npython = \"nope.py\"");
    assert!(parse_lesson("t.md", &text, &[]).is_ok(), "no starters yet: not checked");
    let errs: Vec<String> =
        parse_lesson("t.md", &text, &["fib_pool.py"]).unwrap_err().errors.iter().map(LintError::headline).collect();
    assert_eq!(errs, ["t.md:55:10: python starter 'nope.py' is not in assets/exercises/ (have: fib_pool.py)"]);
    let errs: Vec<String> = parse_lesson("t.md", &text.replace("nope.py", "fib_pool.py"), &["fib_pool.py"])
        .unwrap_err()
        .errors
        .iter()
        .map(LintError::headline)
        .collect();
    assert_eq!(
        errs,
        ["t.md:55:10: python starter 'fib_pool.py' has no solution: add assets/exercises/solutions/fib_pool.py \
             (lint --verify checks that the starter fails and the solution passes)"]
    );
    let both = ["fib_pool.py", "solutions/fib_pool.py"];
    assert!(parse_lesson("t.md", &text.replace("nope.py", "fib_pool.py"), &both).is_ok());
}

#[test]
fn a_solution_is_read_as_the_flags_a_learner_would_give() {
    let text = GOOD.replace("solution = { workers = 20 }", "solution = { mode = \"threads\", workers = 20 }");
    let lesson = parse(&text).unwrap();
    let spec = lesson.exercises().next().unwrap();
    assert_eq!(spec.solution.mode, Some(Mode::Threads));
    assert_eq!(spec.solution.knobs.workers, Some(20));
    assert_eq!((spec.solution.size, spec.solution.tasks, spec.solution.knobs.chunksize), (None, None, None));
}

#[test]
fn a_solution_must_change_something_and_only_what_the_exercise_allows() {
    let with = |s: &str| errors(&GOOD.replace("solution = { workers = 20 }", s));
    assert_eq!(with("solution = {}"), ["t.md:55:12: the solution changes nothing: it is the starting setup"]);
    assert_eq!(
        with("solution = { size = 12 }"),
        [
            "t.md:55:14: the solution changes 'size', which this exercise does not let the learner change (knobs: workers, mode)"
        ]
    );
    assert_eq!(
        with("solution = { mode = \"processes\", chunksize = 2, warm = true }"),
        [
            "t.md:55:34: the solution changes 'chunksize', which this exercise does not let the learner change (knobs: workers, mode)",
            "t.md:55:49: the solution changes 'warm', which this exercise does not let the learner change (knobs: workers, mode)",
        ]
    );
    assert_eq!(
        with("solution = { mode = \"async\", workers = 4 }"),
        [
            "t.md:55:30: the solution's 'workers' has no effect: it applies to threads, gil, processes and async-offload, and the solution runs async"
        ]
    );
    assert_eq!(with("solution = { wrkers = 4 }"), ["t.md:55:14: unknown field 'wrkers' in the solution"]);
    assert_eq!(
        with("solution = 4"),
        ["t.md:55:12: 'solution' must be a table, like { workers = 2 } (found a whole number)"]
    );
}

#[test]
fn ids_must_be_unique_across_files_and_the_later_file_is_the_broken_one() {
    let other = GOOD.replace("id = \"one\"", "id = \"two\"");
    let files = vec![
        ("b/02-b.md".to_string(), Ok(other.clone())),
        ("a/01-a.md".to_string(), Ok(GOOD.to_string())),
        ("c/03-c.md".to_string(), Ok(other.replace("demo-lesson", "third"))),
    ];
    let set = LessonSet::from_files(files);
    assert_eq!(set.lessons.len(), 1);
    assert_eq!(set.lessons[0].path, "a/01-a.md");
    let b: Vec<String> = set.broken[0].errors.iter().map(LintError::headline).collect();
    assert_eq!(
        b,
        [
            "b/02-b.md:2:6: lesson id 'demo-lesson' is already used by a/01-a.md",
            "b/02-b.md:45:6: exercise id 'ex-one' is already used by a/01-a.md"
        ]
    );
    assert_eq!(set.broken[1].errors.len(), 1, "third has only the exercise id clash");
    assert_eq!(set.error_count(), 3);
}

#[test]
fn demo_experiments_take_a_known_name_and_nothing_else() {
    let text = GOOD.replace("workload = \"fib:20\"\ntasks = 4\nmodes = [\"sequential\", \"processes\"]\nstart = \"fork\"\npayload = \"1KiB\"\nexpect = \"processes.speedup >= 0.5 * cores\"", "demo = \"cow\"");
    let l = parse(&text).unwrap();
    assert!(l.experiments().any(|e| e.kind == ExperimentKind::Demo("cow".into())));
    let errs = errors(&text.replace("demo = \"cow\"", "demo = \"coww\"\ntasks = 3"));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("unknown demo 'coww'"));
    assert!(errs[1].contains("'tasks' does not apply to a demo experiment"));
}

#[test]
fn live_blocks_inside_lists_are_refused() {
    let text = GOOD.replace("Some prose.", "- item\n\n  ```quiz\n  question = \"x\"\n  ```");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("t.md:19:3: a 'quiz' block must start at the left margin"), "{}", errs[0]);
}

#[test]
fn file_positions_stay_exact_with_crlf_line_ends() {
    let text = GOOD.replace("\"sequential\", \"processes\"]", "\"sequential\", \"thread\"]").replace('\n', "\r\n");
    let errs = parse(&text).unwrap_err();
    assert_eq!((errs[0].line, errs[0].col, errs[0].width()), (29, 24, 8));
    assert!(!errs[0].source_line().ends_with('\r'));
}

/// A tiny deterministic generator (xorshift), so the fuzz cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_lessons_never_panic_the_parser() {
    let seeds: Vec<&str> = embedded::EMBEDDED_LESSONS.iter().take(3).map(|(_, t)| *t).chain([GOOD]).collect();
    let specials: &[u8] = b"+=\"'[]{}`#\n\r\t .-*<>:\\0";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0;
    for seed in &seeds {
        let bytes = seed.as_bytes();
        // Truncations at many points, including inside multi-byte characters (made valid with from_utf8_lossy).
        for i in 0..60 {
            let cut = bytes.len() * i / 60 + rng.below(7);
            let text = String::from_utf8_lossy(&bytes[..cut.min(bytes.len())]).into_owned();
            let _ = parse_lesson("f.md", &text, &["a.py"]);
            cases += 1;
        }
        // Random flips, insertions and deletions of syntax characters.
        for _ in 0..120 {
            let mut b = bytes.to_vec();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(b.len());
                match rng.below(4) {
                    0 => b[at] = specials[rng.below(specials.len())],
                    1 => b.insert(at, specials[rng.below(specials.len())]),
                    2 => {
                        b.remove(at);
                    }
                    _ => b[at] ^= 1 << rng.below(8),
                }
            }
            let text = String::from_utf8_lossy(&b).into_owned();
            let _ = parse_lesson("f.md", &text, &["a.py"]);
            cases += 1;
        }
    }
    assert!(cases >= 500);
}

#[test]
fn the_authors_readme_examples_are_valid_blocks() {
    let readme = include_str!("../../lessons/README.md");
    let mut text = String::from(
        "+++\nid = \"readme\"\ntitle = \"README\"\nminutes = 1\nsummary = \"s\"\ncovers = []\n+++\n\n## Blocks\n\n",
    );
    let mut kinds = Vec::new();
    // Fences open and close at line starts, so every other piece between "\n```" is a block's info line and body.
    for part in readme.split("\n```").skip(1).step_by(2) {
        let lang = part.lines().next().unwrap_or("");
        if parse::LIVE_BLOCKS.contains(&lang) {
            kinds.push(lang.to_string());
            text.push_str(&format!("```{part}\n```\n\n"));
        }
    }
    assert_eq!(kinds, ["experiment", "quiz", "exercise", "notes"], "the README shows one block of each kind");
    let names = asset_names();
    let starters: Vec<&str> = names.iter().map(String::as_str).collect();
    match parse_lesson("README.md", &text, &starters) {
        Ok(p) => assert_eq!(p.lesson.blocks().count(), 4),
        Err(b) => panic!("{}", b.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n\n")),
    }
}

#[test]
fn only_the_first_errors_of_a_file_are_kept_in_file_order_and_the_rest_counted() {
    // 300 empty quizzes: 4 errors each, found block by block.
    let text = GOOD.replace("## Second `section`", &format!("## Many\n\n{}## Second", "```quiz\n```\n\n".repeat(300)));
    let broken = parse_lesson("t.md", &text, &[]).unwrap_err();
    assert_eq!(broken.errors.len(), MAX_ERRORS_PER_FILE);
    assert_eq!(broken.count(), 1200);
    let lines: Vec<usize> = broken.errors.iter().map(|e| e.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert_eq!(lines[0], 37);
    assert!(broken.errors[0].message.ends_with("'question'"));
    // An early error found last (the lesson's missing sections come after the blocks) is still kept.
    let late = text.replace("minutes = 5", "minutes = 500");
    let broken = parse_lesson("t.md", &late, &[]).unwrap_err();
    assert_eq!(broken.errors[0].headline(), "t.md:4:11: minutes 500 is out of range (allowed 1..=60)");
    assert_eq!(broken.count(), 1201);
}

#[test]
fn every_string_field_is_bounded_and_named_in_the_message() {
    let long = "x".repeat(600);
    let cases = [
        (
            "summary = \"One line.\"",
            format!("summary = \"{long}\""),
            "'summary' is 600 characters long; the limit is 200",
        ),
        ("covers = [\"a\", \"b\"]", format!("covers = [\"a\", \"{long}\"]"), "'covers' item 2 is 600 characters long"),
        ("question = \"Q?\"", format!("question = \"{long}\""), "'question' is 600 characters long; the limit is 500"),
        (
            "hints = [\"h1\"]",
            format!("hints = [\"{long}\"]"),
            "'hints' item 1 is 600 characters long; the limit is 500",
        ),
        (
            "workload = \"sleep:10\"",
            format!("workload = \"{long}\""),
            "'workload' is 600 characters long; the limit is 64",
        ),
        (
            "title = \"An exercise\"",
            "title = \"Two\\nlines\"".into(),
            "'title' must be one line (it contains a line break)",
        ),
        ("why = \"Because.\"", "why = \"Bell\\u0007\"".into(), "'why' contains the control character \\x07 (U+0007)"),
    ];
    for (old, new, message) in cases {
        let errs = errors(&GOOD.replacen(old, &new, 1));
        assert!(errs.len() == 1 && errs[0].contains(message), "{old}: {errs:?}");
    }
    let many = format!("covers = [{}]", vec!["\"t\""; 21].join(", "));
    assert!(
        errors(&GOOD.replace("covers = [\"a\", \"b\"]", &many))[0]
            .ends_with("'covers' lists 21 items; the limit is 20")
    );
    // Newlines stay allowed where text is prose.
    assert!(parse(&GOOD.replace("why = \"Because.\"", "why = \"\"\"Two\nlines.\"\"\"")).is_ok());
}

#[test]
fn control_characters_are_refused_raw_in_toml_escapes_and_in_markdown_references() {
    let errs = errors(&GOOD.replace("Some prose.", "Some \x1b[2J prose.\r\nand a [link](http://x/&#7;)."));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("t.md:17:6: control character \\x1b (U+001B)"), "{}", errs[0]);
    assert!(errs[1].starts_with("t.md:18:7: this text decodes to the control character \\x07"), "{}", errs[1]);
    // Tabs and CRLF line ends are fine.
    assert!(parse(&GOOD.replace("Some prose.", "Some\tprose.").replace('\n', "\r\n")).is_ok());
}

#[test]
fn prose_may_only_send_the_learner_to_blocks_of_its_own_section() {
    let first = "## First section\n\nSome prose.";
    let err = |prose: &str| errors(&GOOD.replace(first, &format!("## First section\n\n{prose}")));
    // The first section has one workload experiment after its prose, and no exercise.
    for ok in ["Press `r`, `c` or `w`.", "The experiment below.", "This experiment.", "The first experiment."] {
        assert!(parse(&GOOD.replace(first, &format!("## First section\n\n{ok}"))).is_ok(), "{ok}");
    }
    let e = err("Now press `x`.");
    assert_eq!(e, ["t.md:17:11: this section says press `x` (check), but it has no exercise"]);
    assert_eq!(
        err("Press `h` for a hint.")[0],
        "t.md:17:7: this section says press `h` (hint), but it has no exercise"
    );
    assert_eq!(
        err("The experiment above.")[0],
        "t.md:17:1: 'The experiment above', but no experiment comes before it in this section"
    );
    assert_eq!(
        err("The second experiment.")[0],
        "t.md:17:1: 'The second experiment', but this section has only 1 experiment"
    );
    // The second section has a quiz and an exercise, no experiment.
    let second = "## Second `section`\n\n";
    let err2 = |prose: &str| errors(&GOOD.replace(second, &format!("{second}{prose}\n\n")));
    assert!(parse(&GOOD.replace(second, &format!("{second}Press `x`, `r` or `c`.\n\n"))).is_ok());
    assert_eq!(
        err2("The next experiment.")[0],
        "t.md:37:1: 'The next experiment', but no experiment follows it in this section"
    );
    // A demo runs, but has no knobs to turn and nothing to compare.
    let demo = GOOD.replace(
        "workload = \"fib:20\"\ntasks = 4\nmodes = [\"sequential\", \"processes\"]\nstart = \"fork\"\npayload = \"1KiB\"\nexpect = \"processes.speedup >= 0.5 * cores\"",
        "demo = \"cow\"",
    );
    assert!(parse(&demo.replace(first, "## First section\n\nPress `r`.")).is_ok());
    let e = errors(&demo.replace(first, "## First section\n\nPress `c`."));
    assert_eq!(
        e,
        [
            "t.md:17:7: this section says press `c` (compare), but it has no workload experiment or exercise (a demo has no knobs and compares its own cases)"
        ]
    );
    // A broken experiment still counts as one, so only its own error is reported.
    let e = errors(&GOOD.replace(first, "## First section\n\nPress `c`.").replace("tasks = 4", "tasks = 0"));
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn file_names_are_shown_terminal_safe() {
    let set = LessonSet::from_files(vec![
        ("d/\x1b]0;x\x07.md".to_string(), Ok(GOOD.to_string())),
        ("d/\x1b[2J.md".to_string(), Ok(GOOD.replace("minutes = 5", "minutes = 0"))),
    ]);
    assert_eq!(set.lessons[0].path, "d/\\x1b]0;x\\x07.md");
    assert_eq!(set.broken[0].path, "d/\\x1b[2J.md");
    assert!(set.broken[0].errors[0].headline().starts_with("d/\\x1b[2J.md:4:11: "));
}

#[test]
fn engines_are_checked_against_the_modes_they_must_run() {
    let modes = "modes = [\"sequential\", \"processes\"]";
    let good = GOOD.replace("expect = \"processes.speedup >= 0.5 * cores\"\n", "");
    let dask = good.replace(modes, "modes = [\"sequential\", \"dask\"]");
    let errs = errors(&dask);
    assert!(errs.iter().any(|e| e.contains("mode 'dask' runs only on the python engine")), "{errs:#?}");
    assert!(parse(&dask.replace("start = \"fork\"\n", "engines = [\"python\"]\n")).is_ok());
    let both = good.replace(modes, "modes = [\"sequential\", \"gil\"]\nengines = [\"native\", \"python\"]");
    let l = parse(&both.replace("start = \"fork\"\n", "")).unwrap();
    let spec = l.experiments().next().unwrap();
    let ExperimentKind::Run { knobs, .. } = &spec.kind else { panic!() };
    assert_eq!(knobs.engines, vec![crate::experiment::Engine::Native, crate::experiment::Engine::Python]);
    let gil_on_python = good.replace(modes, "modes = [\"sequential\", \"gil\"]\nengines = [\"python\"]");
    let errs = errors(&gil_on_python.replace("start = \"fork\"\n", ""));
    assert!(errs.iter().any(|e| e.contains("mode 'gil' runs on none of the engines (python)")), "{errs:#?}");
    let errs = errors(&good.replace(modes, "modes = [\"sequential\"]\nengines = [\"pyhton\"]"));
    assert!(errs.iter().any(|e| e.contains("unknown engine 'pyhton' (expected one of: native, python)")), "{errs:#?}");
}

/// GOOD with notes: one about the section (before any experiment), one about the experiment before it.
fn with_notes(notes: &str) -> String {
    GOOD.replacen("Some prose.", "Some prose.\n\n```notes\nsay = \"Open with the story.\"\n```", 1).replacen(
        "expect = \"processes.speedup >= 0.5 * cores\"\n```",
        &format!("expect = \"processes.speedup >= 0.5 * cores\"\n```\n\n```notes\n{notes}\n```"),
        1,
    )
}

#[test]
fn notes_blocks_belong_to_the_experiment_before_them_or_to_the_section() {
    let l =
        parse(&with_notes("point = \"The lanes.\"\nask = \"How fast?\"\ntwo_cores = \"1.9x\"\neight_cores = \"7x\""))
            .unwrap();
    let notes = l.notes(1);
    assert_eq!(notes.len(), 2);
    assert_eq!((notes[0].0, notes[0].1.say.as_deref()), (None, Some("Open with the story.")));
    let experiment = l.sections[1].blocks.iter().position(|b| matches!(b, Block::Experiment(_)));
    assert_eq!(notes[1].0, experiment);
    assert_eq!(
        notes[1].1.fields(),
        [("point at", "The lanes."), ("ask before r", "How fast?"), ("on 2 cores", "1.9x"), ("on 8 cores", "7x")]
    );
    assert!(l.notes(2).is_empty() && l.notes(9).is_empty());
}

#[test]
fn a_bad_notes_block_is_refused_with_the_field_and_the_limit() {
    let long = "x".repeat(301);
    let cases = [
        ("pointt = \"x\"".to_string(), "t.md:40:1: unknown field 'pointt' in the notes block"),
        (String::new(), "t.md:39:1: a notes block needs at least one of: say, point, ask, two_cores, eight_cores"),
        (format!("two_cores = \"{long}\""), "t.md:40:13: 'two_cores' is 301 characters long; the limit is 300"),
        (
            "ask = \"Bell\\u0007\"".into(),
            "t.md:40:7: 'ask' contains the control character \\x07 (U+0007), which would act on the terminal",
        ),
        ("say = \"  \"".into(), "t.md:40:7: 'say' must not be empty"),
        ("point = 3".into(), "t.md:40:9: 'point' must be a string (found a whole number)"),
    ];
    for (body, message) in cases {
        assert_eq!(errors(&with_notes(&body)), [message], "{body}");
    }
}

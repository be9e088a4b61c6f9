//! Tests of the app: screens, runs, compare, exercises and the state machine's effects.

use super::lesson::experiment_setup;
use super::*;
use crate::experiment::MODES;
use crate::lesson::{ExperimentSpec, Goal, Op, Section, Solution};
use crate::timeline::{Lane, Span, SpanKind};

pub(crate) fn quiz() -> Quiz {
    Quiz {
        question: "Two CPU-bound threads under the GIL on 2 cores: how much faster than one?".into(),
        choices: vec!["2x".into(), "About the same".into(), "Half as fast".into()],
        answer: 1,
        why: "Only the thread holding the GIL runs bytecode.".into(),
    }
}

pub(crate) fn exercise() -> ExerciseSpec {
    ExerciseSpec {
        id: "beat-the-gil".into(),
        title: "Beat the GIL on CPU work".into(),
        workload: "fib:20".parse().unwrap(),
        tasks: 8,
        baseline: Mode::Sequential,
        mode: Mode::Gil,
        knobs: Knobs { workers: Some(2), ..Knobs::default() },
        may_change: vec![Knob::Mode, Knob::Workers],
        goal: Goal {
            metric: Metric::Speedup,
            op: Op::AtLeast,
            value: 0.75,
            per_core: true,
            text: "speedup >= 0.75 * cores".into(),
        },
        hints: vec!["Which mode is not bound by the GIL?".into(), "Processes each have their own GIL.".into()],
        explain: "Each process has its own interpreter and GIL.".into(),
        python: None,
        solution: Box::new(Solution { mode: Some(Mode::Processes), ..Solution::default() }),
    }
}

/// Two synthetic lessons: one with prose, code, an experiment and a quiz; one with an exercise.
pub(crate) fn lessons() -> Vec<Lesson> {
    let gil = Lesson {
        id: "gil".into(),
        title: "The GIL: why threads don't speed up Python".into(),
        minutes: 12,
        summary: "One lock, many threads: measured.".into(),
        covers: vec!["GIL".into(), "switch interval".into()],
        path: "lessons/03-the-gil.md".into(),
        sections: vec![
            Section {
                title: "The GIL: why threads don't speed up Python".into(),
                blocks: vec![Block::Markdown(
                    "CPython lets **one thread** run Python bytecode at a time. This lesson shows *why*.\n\n\
                     - threads share one lock\n- processes each have their own\n"
                        .into(),
                )],
            },
            Section {
                title: "Two threads, one lock".into(),
                blocks: vec![
                    Block::Markdown(
                        "## Two threads, one lock\n\nEvery 5 ms a waiting thread asks for the lock with \
                         a `drop request`.\n\n| mode | speedup |\n|---|---|\n| threads | 1.9x |\n| gil | 1.0x |\n"
                            .into(),
                    ),
                    Block::Code {
                        lang: "python".into(),
                        text: "with ThreadPoolExecutor(2) as pool:\n    pool.map(fib, [32] * 8)\n".into(),
                        runnable: false,
                    },
                    Block::Experiment(ExperimentSpec {
                        id: Some("gil-threads".into()),
                        kind: ExperimentKind::Run {
                            workload: "fib:20".parse().unwrap(),
                            tasks: 8,
                            modes: vec![Mode::Gil, Mode::Threads, Mode::Sequential],
                            knobs: Knobs { workers: Some(2), ..Knobs::default() },
                        },
                        expect: Vec::new(),
                        note: Some("Watch the gil lanes take turns.".into()),
                    }),
                    Block::Quiz(quiz()),
                ],
            },
        ],
    };
    let procs = Lesson {
        id: "multiprocessing".into(),
        title: "Multiprocessing".into(),
        minutes: 15,
        summary: "Worker processes, their start-up and their messages.".into(),
        covers: vec!["Pool".into()],
        path: "lessons/04-multiprocessing.md".into(),
        sections: vec![Section {
            title: "Beat the GIL".into(),
            blocks: vec![Block::Markdown("Make it faster.".into()), Block::Exercise(exercise())],
        }],
    };
    vec![gil, procs]
}

/// Fresh progress that is never saved (the folder is gone before the test uses it).
pub(crate) fn progress() -> Progress {
    let dir = tempfile::tempdir().unwrap();
    let (p, warning) = Progress::load_from(dir.path());
    assert_eq!(warning, None);
    p
}

pub(crate) fn app() -> App {
    let mut app = App::new(lessons(), Vec::new(), progress(), Theme::plain(false), 2)
        .with_prose_layout(crate::ui::lesson::measure);
    app.update(AppEvent::Resize(100, 30));
    app
}

/// The app with a third lesson whose experiment is the `cow` demo, opened.
pub(crate) fn app_on_a_demo() -> App {
    let mut app = app();
    app.lessons.push(Lesson {
        id: "start-methods".into(),
        title: "Start methods".into(),
        minutes: 10,
        summary: "spawn, fork, forkserver.".into(),
        covers: vec!["copy-on-write".into()],
        path: "lessons/05-start-methods.md".into(),
        sections: vec![Section {
            title: "Copy-on-write".into(),
            blocks: vec![
                Block::Markdown("A forked child shares its parent's pages until it writes.".into()),
                Block::Experiment(ExperimentSpec {
                    id: Some("cow".into()),
                    kind: ExperimentKind::Demo("cow".into()),
                    expect: Vec::new(),
                    note: Some("Only written pages are copied.".into()),
                }),
            ],
        }],
    });
    key(&mut app, Key::End);
    key(&mut app, Key::Enter);
    assert_eq!(app.panel.setup.as_ref().unwrap().demo.as_deref(), Some("cow"));
    app
}

/// Feeds a demo's lanes (a parent and three forked children) and spans; with `report`, its report and the end.
pub(crate) fn feed_demo(app: &mut App, id: u64, report: bool) {
    let ms = 1_000_000;
    let t0 = 2_000 * ms;
    let ev = |app: &mut App, e: LabEvent| {
        app.update(AppEvent::Lab(id, e));
    };
    ev(app, LabEvent::Started { lab_pid: 700, t0_ns: t0, cores: 2 });
    let lanes = ["parent", "child does nothing", "child reads all 64 MiB", "child writes 1 byte per page"];
    for (i, label) in lanes.iter().enumerate() {
        let i = i as u32;
        let pid = 700 + i * 11;
        ev(app, LabEvent::Lane(Lane { id: i, pid, tid: pid, label: label.to_string() }));
        let (a, b) = if i == 0 { (0, 30) } else { (30 + 20 * u64::from(i - 1), 45 + 20 * u64::from(i - 1)) };
        if i > 0 {
            let sp = Span {
                lane: i,
                task: 0,
                count: 0,
                kind: SpanKind::Startup,
                start_ns: t0 + a * ms,
                end_ns: t0 + (a + 1) * ms,
                cpu_start: 1,
                cpu_end: 1,
            };
            ev(app, LabEvent::Span(sp));
        }
        let sp = Span {
            lane: i,
            task: 0,
            count: 0,
            kind: SpanKind::Run,
            start_ns: t0 + (a + u64::from(i > 0)) * ms,
            end_ns: t0 + b * ms,
            cpu_start: (i % 2) as i32,
            cpu_end: (i % 2) as i32,
        };
        ev(app, LabEvent::Span(sp));
    }
    app.update(AppEvent::Tick(t0 + 60 * ms));
    if !report {
        return;
    }
    let row = |a: &str, b: &str, c: &str, d: &str| vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()];
    ev(
        app,
        LabEvent::Demo(crate::timeline::DemoReport {
            name: "cow".into(),
            title: "copy-on-write after fork, 64 MiB".into(),
            columns: vec!["child".into(), "minor faults".into(), "time".into(), "private memory".into()],
            rows: vec![
                row("does nothing", "12 faults", "0.01 ms", "0.1 MiB"),
                row("reads all 64 MiB", "16,390 faults", "14.2 ms", "0.2 MiB"),
                row("writes 1 byte per page", "16,402 faults", "21.7 ms", "64.1 MiB"),
            ],
            reading: "Reading shared pages copies nothing; each written page is copied once, so the writer \
                      ends up with its own 64 MiB."
                .into(),
            figures: Vec::new(),
        }),
    );
    ev(app, LabEvent::Finished(RunEnd { t0_ns: t0, t_end_ns: t0 + 66 * ms, checksum: 0, tasks_done: 0, error: None }));
    app.update(AppEvent::LabExited { run: id, error: None, now_ns: t0 + 66 * ms });
}

fn started_demo(fx: &[Effect]) -> Option<(u64, DemoSpec)> {
    fx.iter().find_map(|e| match e {
        Effect::StartDemo { run, demo } => Some((*run, demo.clone())),
        _ => None,
    })
}

fn key(app: &mut App, k: Key) -> Vec<Effect> {
    app.update(AppEvent::Key(k))
}

fn ch(app: &mut App, c: char) -> Vec<Effect> {
    key(app, Key::Char(c))
}

fn started(fx: &[Effect]) -> Vec<(u64, Experiment)> {
    fx.iter()
        .filter_map(|e| if let Effect::Start { run, exp } = e { Some((*run, exp.clone())) } else { None })
        .collect()
}

pub(crate) fn outcome(passed: bool, measured: f64) -> CheckOutcome {
    CheckOutcome {
        passed,
        measured,
        threshold: 1.5,
        summary: format!("speedup {measured:.2}× against a threshold of 1.50×"),
        details: vec!["sequential 200 ms, your setup 105 ms (median of 3)".into()],
        metric: Metric::Speedup,
        higher_is_better: true,
        cores: 2,
        baseline_ms: 200.0,
        setup_ms: 105.0,
        reps: 3,
    }
}

/// Feeds a finished two-lane run to the app.
pub(crate) fn feed_run(app: &mut App, id: u64, wall_ms: u64) {
    let ms = 1_000_000;
    app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 500, t0_ns: 0, cores: 2 }));
    for lane in 0..2u32 {
        app.update(AppEvent::Lab(
            id,
            LabEvent::Lane(Lane { id: lane, pid: 500, tid: 501 + lane, label: format!("t{}", lane + 1) }),
        ));
        app.update(AppEvent::Lab(
            id,
            LabEvent::Span(Span {
                lane,
                task: lane as u64,
                count: 4,
                kind: SpanKind::Run,
                start_ns: 0,
                end_ns: wall_ms * ms,
                cpu_start: lane as i32,
                cpu_end: lane as i32,
            }),
        ));
    }
    app.update(AppEvent::Lab(
        id,
        LabEvent::Finished(RunEnd { t0_ns: 0, t_end_ns: wall_ms * ms, checksum: 9, tasks_done: 8, error: None }),
    ));
    app.update(AppEvent::LabExited { run: id, error: None, now_ns: wall_ms * ms });
}

#[test]
fn enter_opens_the_selected_lesson_and_marks_the_section() {
    let mut app = app();
    assert_eq!(app.screen, Screen::List);
    let fx = key(&mut app, Key::Enter);
    assert_eq!(app.screen, Screen::Lesson);
    assert!(fx.contains(&Effect::SaveProgress));
    assert_eq!(app.progress.lesson_mark("gil"), LessonMark::Started);
    // The introduction has no experiment: the panel shows none, not another section's.
    assert!(app.panel.setup.is_none());
    assert!(fx.contains(&Effect::Monitor(MonitorRate::Slow)));
    key(&mut app, Key::Right);
    assert_eq!(app.panel.setup.as_ref().unwrap().id, "gil-threads");
}

#[test]
fn arrows_step_through_sections_and_the_last_one_completes_the_lesson() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    assert_eq!(app.view.section, 1);
    assert_eq!(app.progress.lesson_mark("gil"), LessonMark::Done);
    key(&mut app, Key::Right);
    assert_eq!(app.view.section, 1, "no section after the last");
    key(&mut app, Key::Left);
    assert_eq!(app.view.section, 0);
    key(&mut app, Key::Esc);
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn search_filters_the_list_and_typing_q_does_not_quit() {
    let mut app = app();
    ch(&mut app, '/');
    for c in "multiq".chars() {
        assert!(!ch(&mut app, c).contains(&Effect::Quit));
    }
    assert!(app.visible().is_empty());
    key(&mut app, Key::Backspace);
    assert_eq!(app.visible(), vec![1]);
    key(&mut app, Key::Enter);
    assert_eq!(app.screen, Screen::Lesson);
    assert_eq!(app.view.lesson, 1);
}

#[test]
fn r_starts_a_run_whose_events_build_the_timeline() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let fx = ch(&mut app, 'r');
    let runs = started(&fx);
    assert_eq!(runs.len(), 1);
    let (id, exp) = &runs[0];
    assert_eq!(exp.mode, Mode::Gil);
    assert_eq!(exp.workers, 2);
    assert!(app.is_live());
    assert!(fx.contains(&Effect::Monitor(MonitorRate::Fast)));
    // A second r while live is refused, not queued.
    assert!(started(&ch(&mut app, 'r')).is_empty());
    assert!(app.status.as_ref().unwrap().1.contains("Esc cancels"));
    feed_run(&mut app, *id, 100);
    let run = app.panel.run.as_ref().unwrap();
    assert!(run.succeeded());
    assert_eq!(run.timeline.lanes.len(), 2);
    assert!(!app.is_live());
    assert_eq!(app.speedup_of(run), None, "no sequential baseline yet");
}

#[test]
fn a_stalled_run_is_shown_on_the_status_line_and_goes_on() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
    app.update(AppEvent::Lab(id, LabEvent::Stalled("the lab 7 is stopped".into())));
    assert_eq!(app.status, Some((StatusKind::Error, "the lab 7 is stopped".to_string())));
    assert!(app.is_live(), "the run goes on when the process is continued");
}

#[test]
fn esc_cancels_a_live_run_and_late_events_are_ignored() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
    let fx = key(&mut app, Key::Esc);
    assert!(fx.contains(&Effect::Cancel { run: id }));
    assert_eq!(app.screen, Screen::Lesson, "the first Esc only cancels");
    assert!(!app.is_live());
    app.update(AppEvent::Lab(id, LabEvent::Note("late".into())));
    assert!(app.panel.run.as_ref().unwrap().timeline.notes.is_empty());
    assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("cancelled"));
}

#[test]
fn knobs_change_the_next_run_and_respect_the_mode() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    ch(&mut app, 'W');
    ch(&mut app, 'i');
    ch(&mut app, '+');
    let setup = app.panel.setup.clone().unwrap();
    assert_eq!(setup.knobs.workers, Some(3));
    assert_eq!(setup.knobs.switch_interval_us, Some(10_000));
    assert_eq!(setup.workload.to_string(), "fib:21");
    ch(&mut app, 's');
    assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error, "start method needs processes");
    ch(&mut app, 'm');
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Processes);
    ch(&mut app, 's');
    let (_, exp) = started(&ch(&mut app, 'r'))[0].clone();
    assert_eq!(exp.mode, Mode::Processes);
    assert_eq!(exp.start, crate::experiment::StartMethod::Fork);
    assert_eq!(exp.workers, 3);
}

#[test]
fn compare_runs_modes_one_after_another_with_a_sequential_baseline() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let fx = ch(&mut app, 'c');
    assert_eq!(app.screen, Screen::Compare);
    let first = started(&fx);
    assert_eq!(first.len(), 1, "one run at a time");
    assert_eq!(first[0].1.mode, Mode::Sequential);
    let c = app.compare.as_ref().unwrap();
    let modes: Vec<Mode> = c.exps.iter().map(|e| e.mode).collect();
    assert_eq!(modes, vec![Mode::Sequential, Mode::Gil, Mode::Threads]);
    let mut id = first[0].0;
    for (i, wall) in [(0, 200), (1, 190), (2, 100)] {
        let _ = i;
        feed_run(&mut app, id, wall);
        let next = app.compare.as_ref().unwrap().runs.last().unwrap().clone();
        if next.live {
            id = next.id;
        }
    }
    let c = app.compare.as_ref().unwrap();
    assert!(c.done());
    assert_eq!(c.runs.len(), 3);
    let sp = c.speedup(2).unwrap();
    assert!((sp - 2.0).abs() < 1e-9);
    // The sequential run is now the baseline for single runs of the same workload.
    key(&mut app, Key::Esc);
    assert_eq!(app.screen, Screen::Lesson);
    let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
    feed_run(&mut app, id, 50);
    let run = app.panel.run.clone().unwrap();
    assert!((app.speedup_of(&run).unwrap() - 4.0).abs() < 1e-9);
}

#[test]
fn a_lab_that_dies_early_shows_as_a_failed_run_and_the_next_run_works() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
    app.update(AppEvent::LabExited { run: id, error: Some("worker killed (signal 9)".into()), now_ns: 5 });
    let run = app.panel.run.as_ref().unwrap();
    assert_eq!(run.error(), Some("worker killed (signal 9)"));
    assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error);
    assert_eq!(started(&ch(&mut app, 'r')).len(), 1);
}

#[test]
fn r_runs_a_demo_in_a_lab_and_keeps_its_report() {
    let mut app = app_on_a_demo();
    let fx = ch(&mut app, 'r');
    let (id, demo) = started_demo(&fx).expect("r starts the demo in a lab");
    assert!(started(&fx).is_empty(), "a demo is not an experiment run");
    assert_eq!(demo, DemoSpec::new("cow", None).unwrap());
    assert!(app.is_live());
    assert!(fx.contains(&Effect::Monitor(MonitorRate::Fast)));
    // While it runs: no second run, no compare, no knobs.
    assert!(started_demo(&ch(&mut app, 'r')).is_none());
    assert!(app.status.as_ref().unwrap().1.contains("Esc cancels"));
    feed_demo(&mut app, id, false);
    let run = app.panel.run.as_ref().unwrap();
    assert_eq!(run.timeline.lanes.len(), 4, "lanes stream in while it runs");
    assert!(run.live);
    feed_demo(&mut app, id, true);
    let run = app.panel.run.as_ref().unwrap();
    assert!(run.succeeded(), "{:?}", run.error());
    assert_eq!(run.timeline.demo.as_ref().unwrap().rows.len(), 3);
    assert!(!app.is_live());
    assert_eq!(app.speedup_of(run), None);
    assert!(ch(&mut app, 'c').is_empty());
    assert!(app.status.as_ref().unwrap().1.contains("r runs it"));
    ch(&mut app, '+');
    assert!(app.status.as_ref().unwrap().1.contains("--size"));
    // And it runs again.
    assert!(started_demo(&ch(&mut app, 'r')).is_some());
}

#[test]
fn a_demo_that_ends_in_another_section_is_shown_back_in_its_own() {
    let mut app = app_on_a_demo();
    let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
    // A second section with an experiment: the learner moves on while the demo runs, and back once it ended.
    app.lessons[2].sections.push(Section {
        title: "After".into(),
        blocks: vec![Block::Experiment(ExperimentSpec {
            id: Some("after".into()),
            kind: ExperimentKind::Run {
                workload: "fib:20".parse().unwrap(),
                tasks: 4,
                modes: vec![Mode::Threads],
                knobs: Knobs::default(),
            },
            expect: Vec::new(),
            note: None,
        })],
    });
    key(&mut app, Key::Right);
    assert_eq!(app.panel.setup.as_ref().unwrap().id, "after");
    assert!(app.panel.run.as_ref().is_some_and(|r| r.live), "the live demo goes on");
    feed_demo(&mut app, id, true);
    key(&mut app, Key::Left);
    let run = app.panel.run.as_ref().expect("the demo's run is back with its section");
    assert!(run.timeline.demo.is_some());
    key(&mut app, Key::Right);
    assert!(app.panel.run.is_none(), "a finished demo is not carried to another experiment");
}

#[test]
fn esc_cancels_a_live_demo_and_a_demo_without_its_report_fails() {
    let mut app = app_on_a_demo();
    let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
    feed_demo(&mut app, id, false);
    let fx = key(&mut app, Key::Esc);
    assert!(fx.contains(&Effect::Cancel { run: id }));
    assert_eq!(app.screen, Screen::Lesson, "the first Esc only cancels");
    assert!(!app.is_live());
    assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("cancelled"));
    feed_demo(&mut app, id, true);
    assert!(app.panel.run.as_ref().unwrap().timeline.demo.is_none(), "late events are ignored");

    let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
    app.update(AppEvent::Lab(
        id,
        LabEvent::Finished(RunEnd { t0_ns: 1, t_end_ns: 2, checksum: 0, tasks_done: 0, error: None }),
    ));
    app.update(AppEvent::LabExited { run: id, error: None, now_ns: 3 });
    assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("the demo ended without its report"));
    let (kind, msg) = app.status.clone().unwrap();
    assert_eq!(kind, StatusKind::Error);
    assert!(msg.contains("the cow demo failed"), "{msg}");
}

#[test]
fn quiz_answers_are_recorded_with_their_correctness() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let fx = ch(&mut app, '1');
    assert!(fx.contains(&Effect::SaveProgress));
    assert_eq!(app.view.answers.get(&0), Some(&0));
    ch(&mut app, '2');
    assert_eq!(app.view.answers.get(&0), Some(&1), "the learner may answer again");
    ch(&mut app, '7');
    assert_eq!(app.status.as_ref().unwrap().1, "choose 1 to 3");
}

#[test]
fn exercises_limit_knobs_reveal_hints_and_check_in_the_background() {
    let mut app = app();
    key(&mut app, Key::Down);
    key(&mut app, Key::Enter);
    assert_eq!(app.panel.setup.as_ref().unwrap().id, "beat-the-gil");
    ch(&mut app, '+');
    assert!(app.status.as_ref().unwrap().1.contains("fixes the workload size"));
    ch(&mut app, 'h');
    ch(&mut app, 'h');
    ch(&mut app, 'h');
    assert_eq!(app.hints_shown("beat-the-gil"), 2);
    ch(&mut app, 'm');
    ch(&mut app, 'p');
    for c in "1.8".chars() {
        ch(&mut app, c);
    }
    key(&mut app, Key::Enter);
    assert_eq!(app.panel.prediction.as_ref().map(|p| p.value), Some(1.8));
    let fx = ch(&mut app, 'x');
    let Some(Effect::Check { run, setup, .. }) = fx.iter().find(|e| matches!(e, Effect::Check { .. })).cloned() else {
        panic!("x must start a check: {fx:?}")
    };
    assert_eq!(setup.mode, Mode::Processes);
    assert!(app.is_live());
    let outcome = outcome(true, 1.9);
    let fx = app.update(AppEvent::CheckDone { run, result: Ok(outcome) });
    assert!(fx.contains(&Effect::SaveProgress));
    assert!(app.progress.exercise_passed("beat-the-gil"));
    assert_eq!(app.panel.predicted, Some((1.8, 1.9)));
}

#[test]
fn quit_cancels_live_runs_and_signals_quit() {
    let mut app = app();
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
    let fx = app.update(AppEvent::Signal);
    assert!(fx.contains(&Effect::Cancel { run: id }));
    assert!(fx.contains(&Effect::Quit));
    assert!(app.quitting());
    let mut app2 = self::app();
    assert!(app2.update(AppEvent::Key(Key::CtrlC)).contains(&Effect::Quit));
}

#[test]
fn help_opens_and_closes_and_swallows_other_keys() {
    let mut app = app();
    ch(&mut app, '?');
    assert!(app.help);
    assert!(!ch(&mut app, 'r').iter().any(|e| matches!(e, Effect::Start { .. })));
    key(&mut app, Key::Esc);
    assert!(!app.help);
}

#[test]
fn compare_modes_are_two_to_four_with_sequential_first() {
    let app = app();
    let mut setup = experiment_setup(
        &app.lessons[0],
        1,
        2,
        match &app.lessons[0].sections[1].blocks[2] {
            Block::Experiment(e) => e,
            _ => unreachable!(),
        },
    );
    setup.modes = vec![Mode::Sequential];
    setup.mode = Mode::Sequential;
    assert_eq!(App::compare_modes(&setup), vec![Mode::Sequential, Mode::Threads, Mode::Processes]);
    setup.modes = MODES.iter().map(|m| m.1).collect();
    assert_eq!(App::compare_modes(&setup).len(), MAX_COMPARE);
}

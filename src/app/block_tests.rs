//! Tests of block stepping, per-block panels, quizzes, knob keys, repeats, stale runs and predictions.

use super::tests::{feed_run, outcome, progress, quiz};
use super::*;
use crate::lesson::{ExperimentSpec, Section};

fn experiment(id: Option<&str>, workload: &str, modes: Vec<Mode>) -> Block {
    Block::Experiment(ExperimentSpec {
        id: id.map(String::from),
        kind: ExperimentKind::Run {
            workload: workload.parse().unwrap(),
            tasks: 8,
            modes,
            knobs: Knobs { workers: Some(2), ..Knobs::default() },
        },
        expect: Vec::new(),
        note: Some(format!("note of {}", id.unwrap_or("the second"))),
    })
}

/// A lesson whose second section has two experiments (one without an id), two quizzes and an exercise, between
/// two sections of prose only.
fn blocks_lesson() -> Lesson {
    let mut ex = super::tests::exercise();
    ex.id = "warm-it".into();
    ex.mode = Mode::Processes;
    ex.may_change = vec![Knob::Warm, Knob::Payload, Knob::Tasks];
    let mut q2 = quiz();
    q2.question = "Second question?".into();
    q2.answer = 0;
    Lesson {
        id: "blocks".into(),
        title: "Blocks".into(),
        minutes: 5,
        summary: "Many blocks in one section.".into(),
        covers: vec!["tab".into()],
        path: "lessons/99-blocks.md".into(),
        sections: vec![
            Section { title: "Blocks".into(), blocks: vec![Block::Markdown("Intro.".into())] },
            Section {
                title: "See it live".into(),
                blocks: vec![
                    Block::Markdown("First the waits.".into()),
                    experiment(Some("waits"), "sleep:100", vec![Mode::Sequential, Mode::Threads]),
                    Block::Markdown("Then the work.".into()),
                    experiment(None, "fib:20", vec![Mode::Threads, Mode::Sequential]),
                    Block::Quiz(quiz()),
                    Block::Quiz(q2),
                    Block::Exercise(ex),
                ],
            },
            Section { title: "Summing up".into(), blocks: vec![Block::Markdown("Done.".into())] },
        ],
    }
}

/// The app on the blocks lesson's second section.
pub(crate) fn on_blocks() -> App {
    let mut app = App::new(vec![blocks_lesson()], Vec::new(), progress(), Theme::plain(false), 2)
        .with_prose_layout(crate::ui::lesson::measure);
    app.update(AppEvent::Resize(100, 30));
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    app
}

fn key(app: &mut App, k: Key) -> Vec<Effect> {
    app.update(AppEvent::Key(k))
}

fn ch(app: &mut App, c: char) -> Vec<Effect> {
    key(app, Key::Char(c))
}

fn started(fx: &[Effect]) -> Option<(u64, Experiment)> {
    fx.iter().find_map(|e| if let Effect::Start { run, exp } = e { Some((*run, exp.clone())) } else { None })
}

fn panel_id(app: &App) -> Option<String> {
    app.panel.setup.as_ref().map(|s| s.id.clone())
}

#[test]
fn tab_steps_through_every_block_of_a_section_and_the_panel_shows_each_experiment() {
    let mut app = on_blocks();
    assert_eq!(app.view.block, Some(1), "the section opens on its first block");
    assert_eq!(panel_id(&app).as_deref(), Some("waits"));
    assert_eq!(app.panel_position(), Some((1, 3)));
    key(&mut app, Key::Tab);
    assert_eq!(panel_id(&app).as_deref(), Some("blocks#1.3"), "the second experiment, which has no id");
    assert_eq!(app.panel_position(), Some((2, 3)));
    assert_eq!(app.status.as_ref().unwrap().1, "experiment 2 of 3: blocks#1.3");
    // A quiz is selected in the prose; the panel keeps the experiment it showed.
    key(&mut app, Key::Tab);
    assert_eq!(app.view.block, Some(4));
    assert_eq!(panel_id(&app).as_deref(), Some("blocks#1.3"));
    key(&mut app, Key::Tab);
    assert_eq!(app.view.block, Some(5));
    key(&mut app, Key::Tab);
    assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
    assert_eq!(app.panel_position(), Some((3, 3)));
    // Round the end, and back.
    key(&mut app, Key::Tab);
    assert_eq!(panel_id(&app).as_deref(), Some("waits"));
    key(&mut app, Key::BackTab);
    assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
}

#[test]
fn a_section_without_an_experiment_shows_none_of_another_sections() {
    let mut app = on_blocks();
    key(&mut app, Key::Right);
    assert_eq!(app.view.section, 2);
    assert!(app.panel.setup.is_none(), "no experiment and no note of section 2");
    key(&mut app, Key::Tab);
    assert!(app.status.as_ref().unwrap().1.contains("no experiment, exercise or quiz"));
    assert!(ch(&mut app, 'r').is_empty());
    assert_eq!(app.status.as_ref().unwrap().1, "this section has no experiment to run");
}

#[test]
fn a_live_run_stays_in_view_in_a_section_without_an_experiment() {
    let mut app = on_blocks();
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    key(&mut app, Key::Right);
    assert!(app.panel.setup.is_none());
    assert!(app.panel.run.as_ref().is_some_and(|r| r.id == id && r.live), "the run goes on and is shown");
    assert!(key(&mut app, Key::Esc).contains(&Effect::Cancel { run: id }), "and Esc still cancels it");
}

#[test]
fn each_block_keeps_its_knobs_and_its_last_run_while_another_is_shown() {
    let mut app = on_blocks();
    ch(&mut app, 'm');
    let (id, exp) = started(&ch(&mut app, 'r')).unwrap();
    assert_eq!(exp.workload.to_string(), "sleep:100");
    feed_run(&mut app, id, 50);
    key(&mut app, Key::Tab);
    assert!(app.panel.run.is_none(), "the second experiment has no run yet");
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads, "its own first mode");
    key(&mut app, Key::BackTab);
    let setup = app.panel.setup.as_ref().unwrap();
    assert_eq!(setup.mode, Mode::Threads, "the first experiment's turned knob came back");
    assert_eq!(app.panel.run.as_ref().map(|r| r.id), Some(id), "with its run");
}

#[test]
fn number_keys_answer_the_selected_quiz_so_each_can_be_answered_again() {
    let mut app = on_blocks();
    // With an experiment selected, a number answers the first quiz not answered yet and selects it.
    ch(&mut app, '1');
    assert_eq!(app.view.answers.get(&0), Some(&0), "quiz 1 answered wrong");
    assert_eq!(app.view.block, Some(4));
    ch(&mut app, '2');
    assert_eq!(app.view.answers.get(&0), Some(&1), "the wrong first answer is corrected");
    assert_eq!(app.view.answers.get(&1), None, "quiz 2 was not answered by the correction");
    key(&mut app, Key::Tab);
    ch(&mut app, '2');
    assert_eq!(app.view.answers.get(&1), Some(&1));
    ch(&mut app, '1');
    assert_eq!(app.view.answers.get(&1), Some(&0), "quiz 2 answered again");
    assert_eq!(app.view.answers.get(&0), Some(&1), "quiz 1 keeps its answer");
    let saved = app.progress.data().lessons["blocks"].quizzes.clone();
    assert!(saved[&0].correct && saved[&1].correct);
}

#[test]
fn warm_payload_and_tasks_have_keys_and_an_exercise_still_limits_knobs() {
    let mut app = on_blocks();
    // The first experiment: no limits.
    ch(&mut app, 'u');
    assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error, "warm needs processes");
    while app.panel.setup.as_ref().unwrap().mode != Mode::Processes {
        ch(&mut app, 'm');
    }
    ch(&mut app, 'u');
    ch(&mut app, 'B');
    ch(&mut app, 'B');
    ch(&mut app, 'N');
    let (_, exp) = started(&ch(&mut app, 'r')).unwrap();
    assert!(exp.warm);
    assert_eq!(exp.payload, 64 << 10);
    assert_eq!(exp.tasks, 16);
    ch(&mut app, 'b');
    assert_eq!(app.panel.setup.as_ref().unwrap().knobs.payload, Some(1 << 10));
    ch(&mut app, 'n');
    assert_eq!(app.panel.setup.as_ref().unwrap().tasks, 8);
    // The exercise allows warm, payload and tasks, and nothing else.
    for _ in 0..4 {
        key(&mut app, Key::Tab);
    }
    assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
    app.update(AppEvent::LabExited { run: 1, error: Some("stop".into()), now_ns: 1 });
    ch(&mut app, 'u');
    assert!(app.panel.setup.as_ref().unwrap().knobs.warm);
    ch(&mut app, 'N');
    assert_eq!(app.panel.setup.as_ref().unwrap().tasks, 16);
    ch(&mut app, 'W');
    let (kind, msg) = app.status.clone().unwrap();
    assert_eq!(kind, StatusKind::Error);
    assert_eq!(msg, "this exercise fixes the workers (you may change: warm, payload, tasks)");
}

/// Every knob, spelled out so a new one fails to compile here until it has a key.
fn every_knob() -> Vec<Knob> {
    let all = [
        Knob::Mode,
        Knob::Workers,
        Knob::Chunksize,
        Knob::Start,
        Knob::SwitchInterval,
        Knob::Payload,
        Knob::Warm,
        Knob::Size,
        Knob::Tasks,
    ];
    for k in all {
        match k {
            Knob::Mode
            | Knob::Workers
            | Knob::Chunksize
            | Knob::Start
            | Knob::SwitchInterval
            | Knob::Payload
            | Knob::Warm
            | Knob::Size
            | Knob::Tasks => {}
        }
    }
    all.to_vec()
}

#[test]
fn every_knob_an_exercise_may_allow_is_turned_by_a_key_the_help_lists() {
    let help = crate::ui::help_rows();
    for knob in every_knob() {
        let row = crate::experiment::knob::KNOBS
            .iter()
            .find(|k| k.knob == knob)
            .unwrap_or_else(|| panic!("{knob:?} has no key"));
        assert!(help.iter().any(|h| h.0 == row.keys), "{knob:?}'s keys are in the help");
        // An exercise that allows only this knob, in the mode the knob applies to.
        let mut app = on_blocks();
        for _ in 0..4 {
            key(&mut app, Key::Tab);
        }
        let setup = app.panel.setup.as_mut().unwrap();
        setup.exercise.as_mut().unwrap().may_change = vec![knob];
        setup.mode = if knob == Knob::SwitchInterval { Mode::Gil } else { Mode::Processes };
        let before = app.panel.setup.clone().unwrap();
        // The last key of a row turns its knob up (or round).
        ch(&mut app, *row.chars.last().unwrap());
        assert_ne!(app.panel.setup.clone().unwrap(), before, "{knob:?}: the keys {} change it", row.keys);
        assert_ne!(app.status.as_ref().map(|s| s.0), Some(StatusKind::Error), "{knob:?}: {:?}", app.status);
    }
}

#[test]
fn a_knob_turned_after_a_run_marks_that_run_as_the_previous_setup() {
    let mut app = on_blocks();
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    feed_run(&mut app, id, 40);
    assert_eq!(app.stale_run(), None);
    ch(&mut app, 'm');
    assert_eq!(app.stale_run(), Some(vec!["sequential".to_string(), "1 worker".to_string()]));
    assert!(app.status.as_ref().unwrap().1.contains("the run shown is of the previous setup"));
    ch(&mut app, '+');
    assert_eq!(app.stale_run().unwrap().len(), 3, "mode, workers and workload differ now");
}

#[test]
fn back_from_a_compare_the_panel_shows_the_compare_run_of_its_setup() {
    let mut app = on_blocks();
    key(&mut app, Key::Tab);
    // A gil run first, then the knobs say threads and a compare runs sequential and threads.
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    feed_run(&mut app, id, 90);
    ch(&mut app, 'm');
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Gil);
    let mut fx = ch(&mut app, 'c');
    while let Some((id, _)) = started(&fx) {
        feed_run(&mut app, id, 30);
        fx = Vec::new();
        if let Some(r) = app.compare.as_ref().and_then(|c| c.runs.last()).filter(|r| r.live) {
            fx.push(Effect::Start { run: r.id, exp: r.exp().unwrap().clone() });
        }
    }
    assert!(app.compare.as_ref().unwrap().done());
    key(&mut app, Key::Esc);
    assert_eq!(app.screen, Screen::Lesson);
    let run = app.panel.run.as_ref().unwrap();
    assert_eq!(run.exp().unwrap().mode, Mode::Gil, "the lanes are the gil run's, like the knobs");
    assert_eq!(app.stale_run(), None);
    assert!(app.speedup_of(run).is_some(), "and its speedup comes from the compare's sequential run");
}

#[test]
fn a_prediction_is_scored_only_against_a_run_of_the_setup_it_was_made_for() {
    let mut app = on_blocks();
    key(&mut app, Key::Tab);
    // A sequential baseline, then a prediction for threads.
    while app.panel.setup.as_ref().unwrap().mode != Mode::Sequential {
        ch(&mut app, 'm');
    }
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    feed_run(&mut app, id, 100);
    ch(&mut app, 'm');
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
    ch(&mut app, 'p');
    ch(&mut app, '2');
    key(&mut app, Key::Enter);
    // A gil run is not the threads setup: the prediction waits.
    ch(&mut app, 'm');
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    feed_run(&mut app, id, 100);
    assert!(app.panel.predicted.is_none(), "a gil run does not score a threads prediction");
    assert!(app.panel.prediction.is_some());
    // Back to threads: its run scores it.
    for _ in 0..5 {
        ch(&mut app, 'm');
    }
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    feed_run(&mut app, id, 50);
    assert_eq!(app.panel.predicted, Some((2.0, 2.0)));
}

#[test]
fn capital_r_runs_the_setup_three_times_and_keeps_the_median_with_min_and_max() {
    let mut app = on_blocks();
    ch(&mut app, 'm');
    ch(&mut app, 'm');
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Gil);
    let mut fx = ch(&mut app, 'R');
    let mut exps = Vec::new();
    for wall in [100, 300, 200] {
        let (id, exp) = started(&fx).expect("the next run of the repeat starts");
        exps.push(exp);
        assert!(app.is_live());
        feed_run(&mut app, id, wall);
        fx = app.update(AppEvent::Tick(0));
        // The next run was started by the last run's exit: find it in the panel.
        if let Some(r) = app.panel.run.as_ref().filter(|r| r.live) {
            fx.push(Effect::Start { run: r.id, exp: r.exp().unwrap().clone() });
        }
    }
    assert!(started(&fx).is_none(), "three runs, then it stops");
    assert!(exps.windows(2).all(|w| w[0] == w[1]), "all of the same setup");
    let rep = app.panel.repeat.as_ref().unwrap();
    assert_eq!(rep.spread(), Some((200_000_000, 100_000_000, 300_000_000)));
    assert!(!app.is_live());
}

#[test]
fn esc_stops_a_repeat_and_a_single_run_leaves_it() {
    let mut app = on_blocks();
    let (id, _) = started(&ch(&mut app, 'R')).unwrap();
    feed_run(&mut app, id, 100);
    let live = app.panel.run.as_ref().unwrap();
    assert!(live.live, "the second run started");
    let second = live.id;
    assert!(key(&mut app, Key::Esc).contains(&Effect::Cancel { run: second }));
    assert!(app.panel.repeat.as_ref().unwrap().stopped);
    app.update(AppEvent::LabExited { run: second, error: None, now_ns: 1 });
    assert!(!app.is_live(), "no third run after a cancel");
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    assert!(app.panel.repeat.is_none(), "r is one run again");
    feed_run(&mut app, id, 100);
}

#[test]
fn measured_cpu_and_other_programs_load_reach_the_run_they_belong_to() {
    let mut app = on_blocks();
    let (id, _) = started(&ch(&mut app, 'r')).unwrap();
    app.update(AppEvent::Others(0.8));
    app.update(AppEvent::Others(0.4));
    app.update(AppEvent::RunCpu { run: id, per_core_ns: vec![10, 20], interval_ns: 100, at_ns: 1_000 });
    feed_run(&mut app, id, 50);
    // A sample that arrives after the end still belongs to the run (the last reading comes late).
    app.update(AppEvent::RunCpu { run: id, per_core_ns: vec![0, 0, 5], interval_ns: 100, at_ns: 2_000 });
    app.update(AppEvent::Others(3.0));
    let r = app.panel.run.as_ref().unwrap();
    assert_eq!(r.cpu.per_core_ns, vec![10, 20, 5]);
    assert_eq!(r.cpu.samples.len(), 2);
    assert!((r.others_cores().unwrap() - 0.6).abs() < 1e-6, "only samples taken while it ran");
}

#[test]
fn a_block_id_used_in_two_lessons_does_not_bring_one_lessons_knobs_into_the_other() {
    let mut other = blocks_lesson();
    other.id = "blocks-again".into();
    let mut app = App::new(vec![blocks_lesson(), other], Vec::new(), progress(), Theme::plain(false), 2)
        .with_prose_layout(crate::ui::lesson::measure);
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    ch(&mut app, 'm');
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
    key(&mut app, Key::Esc);
    key(&mut app, Key::Down);
    key(&mut app, Key::Enter);
    key(&mut app, Key::Right);
    assert_eq!(panel_id(&app).as_deref(), Some("waits"));
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Sequential, "the other lesson's own knobs");
}

#[test]
fn t_cycles_the_theme_and_remembers_it_in_the_progress_file() {
    let mut app = on_blocks();
    assert_eq!(app.progress.theme(), None);
    let fx = ch(&mut app, 't');
    assert_eq!(app.theme.palette, Palette::Light);
    assert!(fx.contains(&Effect::SaveProgress));
    assert_eq!(app.progress.theme().as_deref(), Some("light"));
    assert!(app.status.as_ref().unwrap().1.contains("remembered"));
}

#[test]
fn a_check_that_ends_after_the_learner_moved_on_is_recorded_for_its_own_exercise() {
    let mut app = on_blocks();
    key(&mut app, Key::BackTab);
    assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
    let fx = ch(&mut app, 'x');
    let run = fx.iter().find_map(|e| if let Effect::Check { run, .. } = e { Some(*run) } else { None }).unwrap();
    key(&mut app, Key::Tab);
    assert_eq!(panel_id(&app).as_deref(), Some("waits"));
    app.update(AppEvent::CheckDone { run, result: Ok(outcome(true, 1.9)) });
    assert!(app.progress.exercise_passed("warm-it"));
    assert!(app.status.as_ref().unwrap().1.contains("warm-it"));
    key(&mut app, Key::BackTab);
    assert!(matches!(app.panel.check, Some(Check::Done(_))), "its verdict waits with it");
}

//! Snapshots of every screen on a `TestBackend` at fixed sizes, fed synthetic lessons and timelines.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::tests::{app, app_on_a_demo, feed_demo, feed_run, outcome};
use crate::app::{App, AppEvent, Effect, Key};
use crate::timeline::{LabEvent, Lane, RunEnd, Span, SpanKind};

use super::theme::Theme;

const MS: u64 = 1_000_000;

fn draw(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    app.update(AppEvent::Resize(w, h));
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| f.render_widget(&*app, f.area())).unwrap();
    terminal
}

fn keys(app: &mut App, keys: &[Key]) -> Vec<Effect> {
    keys.iter().flat_map(|k| app.update(AppEvent::Key(*k))).collect()
}

fn started(fx: &[Effect]) -> u64 {
    fx.iter()
        .find_map(|e| if let Effect::Start { run, .. } = e { Some(*run) } else { None })
        .expect("a run was started")
}

fn cores(app: &mut App) {
    for v in [[12.0, 3.0], [40.0, 20.0], [95.0, 88.0], [100.0, 97.0], [98.0, 99.0]] {
        app.update(AppEvent::Cores(v.to_vec()));
    }
}

/// A GIL-style run: two threads of one process taking turns every 5 ms, the waiting one in gil-wait. Stops
/// at `upto_ms`; finishes (at 40 ms) only when `finish`.
fn feed_gil(app: &mut App, id: u64, upto_ms: u64, finish: bool) {
    let t0 = 1_000 * MS;
    app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 4100, t0_ns: t0, cores: 2 }));
    for lane in 0..2u32 {
        let l = Lane { id: lane, pid: 4100, tid: 4112 + lane, label: format!("t{}", lane + 1) };
        app.update(AppEvent::Lab(id, LabEvent::Lane(l)));
        let sp = Span {
            lane,
            task: 0,
            count: 0,
            kind: SpanKind::Startup,
            start_ns: t0,
            end_ns: t0 + MS / 2,
            cpu_start: lane as i32,
            cpu_end: lane as i32,
        };
        app.update(AppEvent::Lab(id, LabEvent::Span(sp)));
    }
    let mut t = MS / 2;
    let mut k = 0u64;
    while t + 5 * MS <= upto_ms * MS {
        for lane in 0..2u32 {
            let run = (k % 2) as u32 == lane;
            let sp = Span {
                lane,
                task: k,
                count: u64::from(run),
                kind: if run { SpanKind::Run } else { SpanKind::GilWait },
                start_ns: t0 + t,
                end_ns: t0 + t + 5 * MS,
                cpu_start: lane as i32,
                cpu_end: lane as i32,
            };
            app.update(AppEvent::Lab(id, LabEvent::Span(sp)));
        }
        t += 5 * MS;
        k += 1;
    }
    app.update(AppEvent::Tick(t0 + upto_ms * MS));
    if finish {
        // The monitor's readings of the lab: both threads' CPU, one core at a time as the GIL allows.
        let half = t / 2;
        for (i, core) in [(1u64, 0usize), (2, 1)] {
            let mut per_core_ns = vec![0; 2];
            per_core_ns[core] = half * 9 / 10;
            app.update(AppEvent::RunCpu { run: id, per_core_ns, interval_ns: half, at_ns: t0 + i * half });
        }
        app.update(AppEvent::Lab(id, LabEvent::Note("gil is a simulation of CPython's GIL".into())));
        let end = RunEnd { t0_ns: t0, t_end_ns: t0 + t, checksum: 9, tasks_done: 8, error: None };
        app.update(AppEvent::Lab(id, LabEvent::Finished(end)));
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: t0 + t });
    }
}

#[test]
fn list_at_80x24() {
    let mut app = app();
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn list_with_a_search_and_a_broken_file() {
    let mut app = app();
    app.broken = vec!["lessons/13-bad.md:4:9: unknown mode 'thread': this file was not loaded".into()];
    keys(&mut app, &[Key::Char('/'), Key::Char('g'), Key::Char('i'), Key::Char('l')]);
    insta::assert_snapshot!(draw(&mut app, 100, 30).backend());
}

#[test]
fn lesson_before_any_run_at_80x24() {
    let mut app = app();
    keys(&mut app, &[Key::Enter, Key::Right]);
    cores(&mut app);
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn lesson_with_a_live_gil_run() {
    let mut app = app();
    keys(&mut app, &[Key::Enter, Key::Right]);
    cores(&mut app);
    let id = started(&keys(&mut app, &[Key::Char('r')]));
    feed_gil(&mut app, id, 22, false);
    insta::assert_snapshot!(draw(&mut app, 120, 32).backend());
}

#[test]
fn lesson_with_a_finished_run_and_its_speedup() {
    let mut app = app();
    keys(&mut app, &[Key::Enter, Key::Right]);
    // A sequential run first makes the baseline, then the gil run gets a speedup.
    keys(&mut app, &[Key::Char('m'), Key::Char('m'), Key::Char('m'), Key::Char('m')]);
    assert_eq!(app.panel.setup.as_ref().unwrap().mode, crate::experiment::Mode::Sequential);
    let id = started(&keys(&mut app, &[Key::Char('r')]));
    feed_run(&mut app, id, 40);
    keys(&mut app, &[Key::Char('m'), Key::Char('m')]);
    let id = started(&keys(&mut app, &[Key::Char('r')]));
    feed_gil(&mut app, id, 40, true);
    cores(&mut app);
    insta::assert_snapshot!(draw(&mut app, 100, 30).backend());
}

#[test]
fn a_demo_before_its_run_says_what_r_does() {
    let mut app = app_on_a_demo();
    let text = format!("{}", draw(&mut app, 100, 30).backend());
    assert!(text.contains("r runs the cow demo in a lab process"), "{text}");
    assert!(text.contains("parent's buffer"), "the size and what it means: {text}");
    assert!(text.contains("r run the demo"), "the footer names the demo key: {text}");
}

fn started_demo(fx: &[Effect]) -> u64 {
    fx.iter()
        .find_map(|e| match e {
            Effect::StartDemo { run, .. } => Some(*run),
            _ => None,
        })
        .expect("a demo was started")
}

#[test]
fn a_live_demo_streams_its_lanes() {
    let mut app = app_on_a_demo();
    let id = started_demo(&keys(&mut app, &[Key::Char('r')]));
    feed_demo(&mut app, id, false);
    let text = format!("{}", draw(&mut app, 100, 30).backend());
    assert!(text.contains("running the cow demo"), "{text}");
    assert!(text.contains("Esc cancels"), "{text}");
    assert!(text.contains("child writes"), "its lanes are drawn: {text}");
}

#[test]
fn demo_tables_wrap_their_text_and_never_break_a_figure() {
    let cols: Vec<String> = ["child", "faults", "private memory"].map(String::from).to_vec();
    let rows = vec![
        ["writes one byte per page", "16,402", "64.1 MiB"].map(String::from).to_vec(),
        ["does nothing", "12", "0.1 MiB"].map(String::from).to_vec(),
    ];
    let text = |width: usize| -> Vec<String> {
        let laid = super::panel::fit_table(&cols, &rows, width, Theme::plain(false));
        laid.lines().iter().map(|l| l.to_string().trim_end().to_string()).collect()
    };
    assert_eq!(
        text(60),
        vec![
            "child                     faults  private memory",
            "────────────────────────  ──────  ──────────────",
            "writes one byte per page  16,402        64.1 MiB",
            "does nothing                  12         0.1 MiB",
        ]
    );
    // Narrower: the text wraps inside its column (a row starts where its first cell has text); figures are whole.
    assert_eq!(
        text(31),
        vec![
            "child          faults   private",
            "                         memory",
            "─────────────  ──────  ────────",
            "writes one     16,402  64.1 MiB",
            "byte per page",
            "does nothing       12   0.1 MiB",
        ]
    );
    // Too narrow for its columns: a record per row, its fields run on, nothing left off.
    assert_eq!(
        text(20),
        vec![
            "child: writes one",
            "  byte per page;",
            "  faults: 16,402;",
            "  private memory:",
            "  64.1 MiB",
            "child: does nothing;",
            "  faults: 12;",
            "  private memory:",
            "  0.1 MiB",
        ]
    );
}

#[test]
fn a_finished_demo_shows_its_table_and_reading() {
    let mut app = app_on_a_demo();
    let id = started_demo(&keys(&mut app, &[Key::Char('r')]));
    feed_demo(&mut app, id, true);
    insta::assert_snapshot!(draw(&mut app, 100, 30).backend());
}

#[test]
fn lesson_with_an_answered_quiz_scrolled_down() {
    let mut app = app();
    app.update(AppEvent::Resize(80, 24));
    keys(&mut app, &[Key::Enter, Key::Right, Key::Char('1')]);
    keys(&mut app, &[Key::End]);
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn exercise_with_hints_a_prediction_and_a_passed_check() {
    let mut app = app();
    keys(&mut app, &[Key::Down, Key::Enter, Key::Char('h')]);
    keys(&mut app, &[Key::Char('m'), Key::Char('p'), Key::Char('2'), Key::Enter]);
    let run = keys(&mut app, &[Key::Char('x')])
        .iter()
        .find_map(|e| if let Effect::Check { run, .. } = e { Some(*run) } else { None })
        .unwrap();
    app.update(AppEvent::CheckDone { run, result: Ok(outcome(true, 1.9)) });
    insta::assert_snapshot!(draw(&mut app, 100, 30).backend());
}

#[test]
fn a_failed_run_says_why() {
    let mut app = app();
    keys(&mut app, &[Key::Enter, Key::Right]);
    let id = started(&keys(&mut app, &[Key::Char('r')]));
    feed_gil(&mut app, id, 12, false);
    app.update(AppEvent::LabExited {
        run: id,
        error: Some("worker 4113 was killed by signal 9".into()),
        now_ns: 1_000 * MS + 12 * MS,
    });
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

fn compare(app: &mut App, finish_all: bool) {
    keys(app, &[Key::Enter, Key::Right]);
    cores(app);
    let mut id = started(&keys(app, &[Key::Char('c')]));
    feed_run(app, id, 40);
    id = app.compare.as_ref().unwrap().runs.last().unwrap().id;
    feed_gil(app, id, 40, true);
    id = app.compare.as_ref().unwrap().runs.last().unwrap().id;
    if finish_all {
        feed_run(app, id, 20);
        return;
    }
    // The third run has just started: its lanes exist, 3 ms have passed, no span has ended yet.
    let t0 = 1_100 * MS;
    app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 4200, t0_ns: t0, cores: 2 }));
    for lane in 0..2u32 {
        let l = Lane { id: lane, pid: 4200, tid: 4201 + lane, label: format!("t{}", lane + 1) };
        app.update(AppEvent::Lab(id, LabEvent::Lane(l)));
    }
    app.update(AppEvent::Tick(t0 + 3 * MS));
}

#[test]
fn compare_done_at_80x24() {
    let mut app = app();
    compare(&mut app, true);
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn compare_running_side_by_side_at_200x50() {
    let mut app = app();
    compare(&mut app, false);
    insta::assert_snapshot!(draw(&mut app, 200, 50).backend());
}

#[test]
fn help_overlay_at_80x24() {
    let mut app = app();
    keys(&mut app, &[Key::Enter, Key::Char('?')]);
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn too_small_terminal_says_what_it_needs() {
    let mut app = app();
    let t = draw(&mut app, 60, 20);
    insta::assert_snapshot!(t.backend());
    let text = format!("{}", t.backend());
    assert!(text.contains("terminal too small (need 80x24, have 60x20)"));
}

#[test]
fn ascii_theme_draws_only_ascii() {
    let mut app = app();
    app.theme = Theme::plain(true);
    keys(&mut app, &[Key::Enter, Key::Right]);
    let id = started(&keys(&mut app, &[Key::Char('r')]));
    feed_gil(&mut app, id, 40, true);
    let t = draw(&mut app, 80, 24);
    let text = format!("{}", t.backend());
    let odd: Vec<char> = text.chars().filter(|c| !c.is_ascii()).collect();
    assert!(odd.is_empty(), "non-ASCII under --ascii: {odd:?}\n{text}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn every_screen_draws_at_every_size_without_panicking() {
    for (w, h) in [(80, 24), (81, 25), (100, 30), (133, 41), (200, 50), (79, 24), (1, 1), (300, 90)] {
        for theme in
            [Theme::default(), Theme::plain(true), Theme { palette: super::theme::Palette::Light, ..Theme::default() }]
        {
            let mut a = app();
            a.theme = theme;
            draw(&mut a, w, h);
            compare(&mut a, false);
            draw(&mut a, w, h);
            keys(&mut a, &[Key::Esc, Key::Esc, Key::Esc]);
            draw(&mut a, w, h);
            keys(&mut a, &[Key::Char('?')]);
            draw(&mut a, w, h);
        }
    }
}

#[test]
fn colours_follow_the_theme_and_vanish_without_colour() {
    let mut a = app();
    a.theme = Theme::default();
    keys(&mut a, &[Key::Enter, Key::Right]);
    let id = started(&keys(&mut a, &[Key::Char('r')]));
    feed_gil(&mut a, id, 40, true);
    let t = draw(&mut a, 100, 30);
    let coloured = t.backend().buffer().content.iter().filter(|c| c.fg != ratatui::style::Color::Reset).count();
    assert!(coloured > 100, "the dark theme colours spans, code and bars");
    a.theme = Theme::plain(false);
    let t = draw(&mut a, 100, 30);
    let coloured = t
        .backend()
        .buffer()
        .content
        .iter()
        .filter(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
        .count();
    assert_eq!(coloured, 0, "NO_COLOR: no colour at all");
}

// ---- Nothing cut, lanes that read right (issue 15 items 4-7): compare lanes at every size, wrapped lesson
// tables and code, honest ceilings, pid/tid lane labels in natural order.

mod uiwrap {
    use super::*;
    use crate::experiment::{Knobs, Mode, Workload};
    use crate::lesson::{Block, ExperimentKind, ExperimentSpec, Lesson, Section};

    /// A decision table too wide for most panes and a code line longer than any.
    const WIDE: &str = "The decision table:\n\n\
        | the time goes into... | use | watch out for |\n|---|---|---|\n\
        | waiting (I/O-bound) | asyncio, or threads: waiting needs no core, and a waiting thread releases the GIL | \
        asyncio needs async libraries; one blocking call stalls it |\n\
        | computing in Python code (CPU-bound) | processes (`ProcessPoolExecutor`, `Pool`): one GIL each | \
        start-up, pickling, copying data |\n\
        | waiting, then computing | asyncio for the waits, `run_in_executor` with a process pool for the computing | \
        moving results between them |\n";
    const LONG_CODE: &str = "def profile(label, work):\n    \
        print(f\"{label:>8}: wall {wall * 1000:5.0f} ms, CPU {cpu * 1000:5.0f} ms -> {kind} (this line is long)\")\n";

    /// The app on a one-section lesson whose experiment compares `modes` on `workload`.
    fn app_on(workload: &str, modes: Vec<Mode>) -> App {
        let mut app = app();
        app.lessons.push(Lesson {
            id: "choosing".into(),
            title: "Choosing a model".into(),
            minutes: 15,
            summary: "A decision table.".into(),
            covers: vec!["decision table".into()],
            path: "lessons/10-choosing-a-model.md".into(),
            sections: vec![Section {
                title: "The decision table".into(),
                blocks: vec![
                    Block::Markdown(WIDE.into()),
                    Block::Code { lang: "python".into(), text: LONG_CODE.into(), runnable: false },
                    Block::Experiment(ExperimentSpec {
                        id: Some("all-models".into()),
                        kind: ExperimentKind::Run {
                            workload: workload.parse::<Workload>().unwrap(),
                            tasks: 8,
                            modes,
                            knobs: Knobs { workers: Some(2), ..Knobs::default() },
                        },
                        expect: Vec::new(),
                        note: None,
                    }),
                ],
            }],
        });
        keys(&mut app, &[Key::End, Key::Enter]);
        assert_eq!(app.lesson().unwrap().id, "choosing");
        app
    }

    /// Feeds the compare's current run, to its end: `lanes` as (label, pid, tid), announced in this order, each running `wall_ms`
    /// (gil lanes take turns instead).
    fn feed(app: &mut App, lab_pid: u32, lanes: &[(&str, u32, u32)], wall_ms: u64, gil: bool) {
        let id = next_run(app);
        let t0 = 5_000 * MS * id;
        app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid, t0_ns: t0, cores: 2 }));
        for (i, (label, pid, tid)) in lanes.iter().enumerate() {
            let lane = Lane { id: i as u32, pid: *pid, tid: *tid, label: label.to_string() };
            app.update(AppEvent::Lab(id, LabEvent::Lane(lane)));
        }
        let mut span = |lane: usize, kind: SpanKind, a: u64, b: u64| {
            let sp = Span {
                lane: lane as u32,
                task: 0,
                count: 1,
                kind,
                start_ns: t0 + a * MS,
                end_ns: t0 + b * MS,
                cpu_start: 0,
                cpu_end: 0,
            };
            app.update(AppEvent::Lab(id, LabEvent::Span(sp)));
        };
        for i in 0..lanes.len() {
            if gil {
                for k in 0..wall_ms / 5 {
                    let run = (k as usize + i).is_multiple_of(2);
                    span(i, if run { SpanKind::Run } else { SpanKind::GilWait }, k * 5, k * 5 + 5);
                }
            } else {
                span(i, SpanKind::Run, 0, wall_ms);
            }
        }
        let end = RunEnd { t0_ns: t0, t_end_ns: t0 + wall_ms * MS, checksum: 7, tasks_done: 8, error: None };
        app.update(AppEvent::Lab(id, LabEvent::Finished(end)));
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: t0 + wall_ms * MS });
    }

    fn next_run(app: &App) -> u64 {
        app.compare.as_ref().unwrap().runs.last().unwrap().id
    }

    /// Compares sequential, gil, async and processes, every run done; each mode announces its lanes out of order.
    fn four_modes() -> App {
        let mut app = app_on("fib:20", vec![Mode::Sequential, Mode::Gil, Mode::Async, Mode::Processes]);
        cores(&mut app);
        started(&keys(&mut app, &[Key::Char('c')]));
        feed(&mut app, 500, &[("main", 500, 501)], 80, false);
        feed(&mut app, 600, &[("t2", 600, 602), ("t1", 600, 601)], 80, true);
        feed(&mut app, 700, &[("loop", 700, 701), ("task 2", 700, 701), ("task 1", 700, 701)], 82, false);
        feed(&mut app, 800, &[("p2", 812, 812), ("p1", 811, 811)], 42, false);
        assert!(app.compare.as_ref().unwrap().done());
        app
    }

    /// The text of a compare view's lanes: every mode and every one of its lanes, whatever the layout.
    fn assert_every_lane_drawn(text: &str) {
        for lane in [
            "main 500/501",
            "t1 600/601",
            "t2 600/602",
            "loop 700/701",
            "task 1 700/701",
            "task 2 700/701",
            "p1 811",
            "p2 812",
        ] {
            assert!(text.contains(lane), "lane '{lane}' is drawn:\n{text}");
        }
        for mode in ["sequential", "gil", "async", "processes"] {
            assert!(text.matches(mode).count() >= 2, "{mode} has lanes and a table row:\n{text}");
        }
        assert!(text.contains("speedup") && text.contains("checksums equal"), "the table is visible:\n{text}");
    }

    #[test]
    fn compare_of_four_modes_at_80x24_stacks_every_lane_on_one_axis() {
        let mut app = four_modes();
        let t = draw(&mut app, 80, 24);
        let text = format!("{}", t.backend());
        assert_every_lane_drawn(&text);
        let at = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap();
        assert!(at("t1 600/601") < at("t2 600/602"), "t1 before t2:\n{text}");
        assert!(at("p1 811") < at("p2 812"), "p1 before p2:\n{text}");
        assert!(at("loop 700/701") < at("task 1 700/701"), "the loop before its tasks:\n{text}");
        assert!(at("task 1 700/701") < at("task 2 700/701"), "task 1 before task 2:\n{text}");
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn compare_of_four_modes_at_100x30() {
        let mut app = four_modes();
        let t = draw(&mut app, 100, 30);
        assert_every_lane_drawn(&format!("{}", t.backend()));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn compare_of_four_modes_at_200x50() {
        let mut app = four_modes();
        let t = draw(&mut app, 200, 50);
        assert_every_lane_drawn(&format!("{}", t.backend()));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn compare_with_more_lanes_than_rows_says_how_many_more() {
        let mut app = app_on("fib:20", vec![Mode::Sequential, Mode::Gil, Mode::Async, Mode::Processes]);
        started(&keys(&mut app, &[Key::Char('c')]));
        let threads: Vec<(String, u32, u32)> = (1..=8).map(|i| (format!("t{i}"), 600, 600 + i)).collect();
        let threads: Vec<(&str, u32, u32)> = threads.iter().map(|(l, p, t)| (l.as_str(), *p, *t)).collect();
        let procs: Vec<(String, u32, u32)> = (1..=8).map(|i| (format!("p{i}"), 810 + i, 810 + i)).collect();
        let procs: Vec<(&str, u32, u32)> = procs.iter().map(|(l, p, t)| (l.as_str(), *p, *t)).collect();
        feed(&mut app, 500, &[("main", 500, 501)], 80, false);
        feed(&mut app, 600, &threads, 80, true);
        feed(&mut app, 700, &[("loop", 700, 701)], 82, false);
        feed(&mut app, 800, &procs, 42, false);
        let text = format!("{}", draw(&mut app, 80, 24).backend());
        for lane in ["main 500/501", "t1 600/601", "loop 700/701", "p1 811"] {
            assert!(text.contains(lane), "every mode shows its first lane '{lane}':\n{text}");
        }
        assert!(text.matches("more lanes").count() == 2, "gil and processes say how many lanes are left:\n{text}");
    }

    #[test]
    fn the_ceiling_is_said_to_hold_for_cpu_work_and_io_efficiency_is_not_shown() {
        let mut app = app_on("sleep:50", vec![Mode::Sequential, Mode::Threads, Mode::Async]);
        started(&keys(&mut app, &[Key::Char('c')]));
        feed(&mut app, 500, &[("main", 500, 501)], 400, false);
        feed(&mut app, 600, &[("t1", 600, 601), ("t2", 600, 602)], 200, false);
        feed(&mut app, 700, &[("loop", 700, 701)], 50, false);
        let text = format!("{}", draw(&mut app, 100, 30).backend());
        assert!(!text.contains("ceiling 2×"), "no bare ceiling on I/O work:\n{text}");
        assert!(text.contains("waiting needs no core"), "{text}");
        assert!(text.contains("ceiling holds for CPU work"), "{text}");
        let row = text.lines().find(|l| l.contains("async ") && l.contains("8.00×")).expect("the async row");
        assert!(row.contains('—') && !row.contains("400%"), "efficiency is not shown for I/O: {row}");
    }

    #[test]
    fn an_efficiency_over_the_cores_on_cpu_work_is_flagged_and_explained() {
        let mut app = app_on("fib:20", vec![Mode::Sequential, Mode::Processes]);
        started(&keys(&mut app, &[Key::Char('c')]));
        feed(&mut app, 500, &[("main", 500, 501)], 100, false);
        feed(&mut app, 800, &[("p1", 811, 811), ("p2", 812, 812)], 40, false);
        let text = format!("{}", draw(&mut app, 100, 30).backend());
        assert!(text.contains("the ceiling for CPU work on 2 cores is 2×"), "{text}");
        let row = text.lines().find(|l| l.contains("processes ") && l.contains("2.50×")).expect("the row");
        assert!(row.contains("125%*"), "{row}");
        assert!(text.contains("* above 100% of 2 cores"), "{text}");
    }

    /// The lesson page: the table wraps or becomes records, the code line goes on in marked rows; no word and
    /// no character of either is lost.
    fn lesson_page(w: u16, h: u16) -> String {
        let mut app = app_on("fib:20", vec![Mode::Sequential, Mode::Gil, Mode::Async, Mode::Processes]);
        // Tall enough to hold the whole section, so every word can be looked for.
        let full = format!("{}", draw(&mut app, w, 200).backend());
        for word in WIDE.split(|c: char| c.is_whitespace() || c == '|' || c == '`').filter(|w| w.len() > 1) {
            if !word.starts_with("--") {
                assert!(full.contains(word), "'{word}' of the table is on screen at {w} columns:\n{full}");
            }
        }
        let code: String = full
            .lines()
            .filter_map(|l| l.split('│').nth(1))
            .map(|l| l.trim_end())
            .filter(|l| l.starts_with("   ") || l.starts_with(" ↪ "))
            .map(|l| &l[l.char_indices().nth(3).map_or(l.len(), |(i, _)| i)..])
            .collect();
        assert!(code.contains("(this line is long)\")"), "the end of the long line is kept:\n{full}");
        assert!(full.contains(" ↪ "), "its continuation is marked:\n{full}");
        // The top of the section, then its end.
        let top = format!("{}", draw(&mut app, w, h).backend());
        keys(&mut app, &[Key::End]);
        format!("{top}\n{}", draw(&mut app, w, h).backend())
    }

    #[test]
    fn lesson_with_a_wide_table_and_a_long_code_line_at_80x24() {
        insta::assert_snapshot!(lesson_page(80, 24));
    }

    #[test]
    fn lesson_with_a_wide_table_and_a_long_code_line_at_100x30() {
        insta::assert_snapshot!(lesson_page(100, 30));
    }

    #[test]
    fn lesson_with_a_wide_table_and_a_long_code_line_at_200x50() {
        insta::assert_snapshot!(lesson_page(200, 50));
    }
}

/// The experiment panel and prose as issue 15 found them: block stepping, honest figures, stale runs, repeats.
mod panel_blocks {
    use super::*;
    use crate::app::block_tests::on_blocks;
    use crate::experiment::Mode;

    /// The screen, wide enough that the panel's lines are not wrapped.
    fn text(app: &mut App) -> String {
        format!("{}", draw(app, 160, 40).backend())
    }

    fn run(app: &mut App, wall_ms: u64) {
        let id = started(&keys(app, &[Key::Char('r')]));
        feed_run(app, id, wall_ms);
    }

    fn set_mode(app: &mut App, mode: Mode) {
        while app.panel.setup.as_ref().unwrap().mode != mode {
            keys(app, &[Key::Char('m')]);
        }
    }

    #[test]
    fn the_panel_title_names_the_selected_block_and_the_prose_marks_it() {
        let mut app = on_blocks();
        // Tab, then a key that only clears the message it left in the footer.
        keys(&mut app, &[Key::Tab, Key::Up]);
        let t = draw(&mut app, 100, 30);
        let s = format!("{}", t.backend());
        assert!(s.contains("experiment 2 of 3: blocks#1.3"), "{s}");
        assert!(s.contains("Tab next block"), "the footer names the key: {s}");
        // The selected block's rows carry the bar in the prose's left margin, the others do not.
        let buf = t.backend().buffer();
        let marked: Vec<String> = (0..30u16)
            .filter(|y| buf[(1, *y)].symbol() == "▌")
            .map(|y| (2..44u16).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>())
            .collect();
        assert!(marked.iter().any(|l| l.contains("experiment: fib:20 × 8")), "{marked:?}");
        assert!(!marked.iter().any(|l| l.contains("waits")), "{marked:?}");
    }

    #[test]
    fn a_section_without_an_experiment_says_so_and_where_one_is() {
        let mut app = on_blocks();
        keys(&mut app, &[Key::Right]);
        let s = text(&mut app);
        assert!(s.contains("This section has no experiment."), "{s}");
        assert!(s.contains("The last one was in section 2"), "{s}");
        assert!(!s.contains("note of"), "no other section's note: {s}");
    }

    #[test]
    fn an_io_speedup_says_the_core_ceiling_holds_for_cpu_work_only() {
        let mut app = on_blocks();
        set_mode(&mut app, Mode::Sequential);
        run(&mut app, 800);
        set_mode(&mut app, Mode::Threads);
        run(&mut app, 100);
        let s = text(&mut app);
        assert!(s.contains("speedup 8.00×"), "{s}");
        assert!(s.contains("the 2-core ceiling holds for CPU work"), "{s}");
        assert!(!s.contains("efficiency"), "no 400% efficiency for waiting: {s}");
    }

    #[test]
    fn a_run_with_almost_no_task_work_does_not_read_parallelism_zero() {
        let mut app = on_blocks();
        keys(&mut app, &[Key::Tab]);
        let id = started(&keys(&mut app, &[Key::Char('r')]));
        app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 9, t0_ns: 0, cores: 2 }));
        app.update(AppEvent::Lab(id, LabEvent::Lane(Lane { id: 0, pid: 9, tid: 9, label: "p1".into() })));
        let sp = |kind, a: u64, b: u64| Span {
            lane: 0,
            task: 0,
            count: 8,
            kind,
            start_ns: a,
            end_ns: b,
            cpu_start: 0,
            cpu_end: 0,
        };
        app.update(AppEvent::Lab(id, LabEvent::Span(sp(SpanKind::Ipc, 0, 280 * MS))));
        app.update(AppEvent::Lab(id, LabEvent::Span(sp(SpanKind::Run, 280 * MS, 280 * MS + 1_000))));
        let end = RunEnd { t0_ns: 0, t_end_ns: 284 * MS, checksum: 1, tasks_done: 8, error: None };
        app.update(AppEvent::Lab(id, LabEvent::Finished(end)));
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: 284 * MS });
        let s = text(&mut app);
        assert!(!s.contains("0.00×"), "{s}");
        assert!(s.contains("task work under 1% of the wall time"), "{s}");
    }

    #[test]
    fn a_run_taken_while_other_programs_loaded_the_cores_is_flagged() {
        let mut app = on_blocks();
        let id = started(&keys(&mut app, &[Key::Char('r')]));
        app.update(AppEvent::Others(1.2));
        feed_run(&mut app, id, 100);
        let s = text(&mut app);
        assert!(s.contains("other programs used 1.2 cores during this run"), "{s}");
        // A quiet machine: no flag.
        let id = started(&keys(&mut app, &[Key::Char('r')]));
        app.update(AppEvent::Others(0.1));
        feed_run(&mut app, id, 100);
        assert!(!text(&mut app).contains("other programs used"));
    }

    #[test]
    fn one_worker_is_one_worker() {
        let mut app = on_blocks();
        keys(&mut app, &[Key::Tab, Key::Char('w'), Key::Char('w')]);
        assert_eq!(app.status.as_ref().unwrap().1, "1 worker");
        let s = text(&mut app);
        assert!(s.contains("w/W 1 worker "), "{s}");
        assert!(!s.contains("1 workers"), "{s}");
    }

    #[test]
    fn a_run_of_a_previous_setup_is_marked_with_what_it_was() {
        let mut app = on_blocks();
        keys(&mut app, &[Key::Tab]);
        run(&mut app, 40);
        keys(&mut app, &[Key::Char('m')]);
        let s = text(&mut app);
        assert!(s.contains("previous run: threads; press r to run this setup"), "{s}");
        keys(&mut app, &[Key::Char('W')]);
        assert!(text(&mut app).contains("previous run: threads, 2 workers; press r"), "the run's own values");
        run(&mut app, 40);
        assert!(!text(&mut app).contains("previous run"));
    }

    #[test]
    fn a_repeat_shows_its_progress_then_the_median_with_min_and_max() {
        let mut app = on_blocks();
        keys(&mut app, &[Key::Tab]);
        let mut id = started(&keys(&mut app, &[Key::Char('R')]));
        for (i, wall) in [100u64, 300, 200].into_iter().enumerate() {
            app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 1, t0_ns: 0, cores: 2 }));
            app.update(AppEvent::Tick(1));
            assert!(text(&mut app).contains(&format!("run {} of 3", i + 1)));
            feed_run(&mut app, id, wall);
            if let Some(r) = app.panel.run.as_ref().filter(|r| r.live) {
                id = r.id;
            }
        }
        let s = text(&mut app);
        assert!(s.contains("median wall 200 ms (100 ms–300 ms, 3 runs)"), "{s}");
    }

    #[test]
    fn the_live_task_count_counts_tasks_not_spans() {
        let mut app = on_blocks();
        let id = started(&keys(&mut app, &[Key::Char('r')]));
        app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 9, t0_ns: 0, cores: 2 }));
        app.update(AppEvent::Lab(id, LabEvent::Lane(Lane { id: 0, pid: 9, tid: 9, label: "main".into() })));
        // Sleep tasks recorded as run, idle, run each: 5 tasks begun, 4 of them done.
        for task in 0..5u64 {
            for (kind, a, b) in [(SpanKind::Run, 0, 1), (SpanKind::Idle, 1, 99), (SpanKind::Run, 99, 100)] {
                let at = task * 100;
                let sp = Span {
                    lane: 0,
                    task,
                    count: 1,
                    kind,
                    start_ns: (at + a) * MS,
                    end_ns: (at + b) * MS,
                    cpu_start: 0,
                    cpu_end: 0,
                };
                app.update(AppEvent::Lab(id, LabEvent::Span(sp)));
            }
        }
        app.update(AppEvent::Tick(500 * MS));
        let s = text(&mut app);
        assert!(s.contains("4/8 tasks"), "{s}");
    }

    #[test]
    fn ascii_marks_done_lessons_with_a_star_and_the_legend_says_so() {
        let mut app = app();
        app.theme = Theme::plain(true);
        keys(&mut app, &[Key::Enter, Key::Right, Key::Esc]);
        let s = text(&mut app);
        assert!(s.contains(" *  1 "), "{s}");
        assert!(s.contains("* done  ~ started  . not started"), "{s}");
        assert!(!s.contains(" x  1 "), "{s}");
    }
}

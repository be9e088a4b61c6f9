//! The notes a follower is sent as the app moves, their text, and that the learner's screen never shows them.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::app::{AppEvent, Key};
use crate::progress::Progress;
use crate::ui::theme::Theme;

const LESSON: &str = include_str!("../../tests/fixtures/notes/01-notes.md");

fn app() -> (App, tempfile::TempDir) {
    let lesson = crate::lesson::parse_lesson("01-notes.md", LESSON, &[]).expect("the fixture loads").lesson;
    let dir = tempfile::tempdir().unwrap();
    let (progress, _) = Progress::load_from(dir.path());
    let mut app = App::new(vec![lesson], Vec::new(), progress, Theme::plain(false), 2);
    app.update(AppEvent::Resize(100, 30));
    (app, dir)
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| f.render_widget(app, f.area())).unwrap();
    let buf = t.backend().buffer();
    (0..buf.area.height).map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n").collect()
}

#[test]
fn the_follower_is_sent_the_section_and_the_panel_block_as_the_app_moves() {
    let (mut app, _dir) = app();
    assert_eq!(showing(&app, 7), Showing { v: PROTOCOL, pid: 7, lesson: None });
    app.open_by_id("notes-e2e");
    let intro = showing(&app, 7).lesson.expect("a lesson is open");
    assert_eq!((intro.section, intro.sections, intro.panel.as_deref()), (0, 3, None));
    assert_eq!(intro.notes.len(), 1);
    assert_eq!(intro.notes[0].fields, [("say".to_string(), "Welcome the class: intro-note.".to_string())]);
    app.update(AppEvent::Key(Key::Right));
    let first = showing(&app, 7).lesson.unwrap();
    assert_eq!(first.section, 1);
    assert_eq!(first.panel.as_deref(), Some("experiment 1 of 1: fib:20 × 4 · gil, threads"));
    assert!(first.notes[0].current, "the notes of the block the panel shows are marked");
    assert_eq!(first.notes[0].fields.len(), 4);
    // Round trip through the wire form.
    let line = serde_json::to_string(&showing(&app, 7)).unwrap();
    assert_eq!(serde_json::from_str::<Showing>(&line).unwrap(), showing(&app, 7));
}

#[test]
fn the_learners_screen_never_shows_the_notes() {
    let (mut app, _dir) = app();
    app.open_by_id("notes-e2e");
    for _ in 0..3 {
        let s = screen(&app);
        for word in ["intro-note", "first-point", "first-ask", "first-two", "second-say"] {
            assert!(!s.contains(word), "'{word}' is on the learner's screen:\n{s}");
        }
        app.update(AppEvent::Key(Key::Right));
    }
    assert_eq!(app.view.section, 2, "every section was drawn");
}

#[test]
fn notes_are_wrapped_under_their_label_and_shown_terminal_safe() {
    let s = Showing {
        v: PROTOCOL,
        pid: 1,
        lesson: Some(ShownSection {
            id: "x".into(),
            number: 1,
            lessons: 2,
            title: "T\x1b]0;owned\x07".into(),
            section: 1,
            sections: 2,
            section_title: "S".into(),
            panel: None,
            notes: vec![ShownNotes {
                about: None,
                current: false,
                fields: vec![("point at".into(), "one two three four five six seven eight nine ten".into())],
            }],
        }),
    };
    let lines = render(&s, 30);
    assert!(lines.iter().any(|l| l.contains("T\\x1b]0;owned\\x07")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains('\x1b') && l.width() <= 30), "{lines:?}");
    let about = lines.iter().position(|l| l == "  about the section").expect("the notes' heading");
    assert_eq!(
        &lines[about..],
        ["  about the section", "    point at: one two three", "      four five six seven", "      eight nine ten", ""]
    );
}

#[test]
fn every_experiment_and_exercise_of_the_shipped_lessons_has_full_speaker_notes() {
    let set = crate::lesson::load_embedded();
    assert_eq!(set.lessons.len(), 12, "{:?}", set.broken);
    let mut missing = Vec::new();
    for l in &set.lessons {
        for (s, section) in l.sections.iter().enumerate() {
            let notes = l.notes(s);
            for b in panel_blocks(section) {
                let full = notes.iter().any(|(about, n)| {
                    *about == Some(b)
                        && n.point.is_some()
                        && n.ask.is_some()
                        && n.two_cores.is_some()
                        && n.eight_cores.is_some()
                });
                if !full {
                    missing.push(format!("{} §{s}: {}", l.id, describe(l, s, b).unwrap_or_default()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "blocks without point, ask, two_cores and eight_cores notes:\n{}", missing.join("\n"));
}

#[test]
fn sockets_of_dead_tuis_are_removed_and_live_ones_kept_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("notes-999999999.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let me = std::process::id();
    let _live = std::os::unix::net::UnixListener::bind(dir.path().join(format!("notes-{me}.sock"))).unwrap();
    std::fs::write(dir.path().join("notes-x.sock"), "").unwrap();
    let found: Vec<u32> = socket::presenters(dir.path()).iter().map(|p| p.pid).collect();
    assert_eq!(found.len(), 2, "only notes-PID.sock names count: {found:?}");
    socket::remove_stale(dir.path());
    assert!(!dead.exists());
    let left: Vec<u32> = socket::presenters(dir.path()).iter().map(|p| p.pid).collect();
    assert_eq!(left, [me]);
    let p = &socket::presenters(dir.path())[0];
    assert!(matches!(socket::connect(p), Ok(Some(_))), "our own live socket is followed");
}

#[test]
fn every_line_fits_the_width_and_exercise_notes_ask_before_x() {
    let set = crate::lesson::load_embedded();
    let gil = set.find("gil").expect("the gil lesson");
    let number = set.lessons.iter().position(|l| l.id == "gil").unwrap() + 1;
    for width in [30, 40, 80] {
        for line in lesson_lines(gil, number, set.lessons.len(), width) {
            assert!(line.width() <= width, "{} > {width}: {line}", line.width());
        }
    }
    let text = lesson_lines(gil, number, set.lessons.len(), 200).join("\n");
    let exercise = text.find("about exercise").expect("the gil lesson has an exercise with notes");
    assert!(text[exercise..].contains("ask before x:"), "{text}");
    assert!(text[..exercise].contains("ask before r:"), "{text}");
}

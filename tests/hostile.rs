//! Hostile lesson files against the real binary: each ends in a clear error with its exact message, within a
//! timeout (no hang), without a panic, and under `MAX_RSS_KIB` of resident memory (measured by `wait4`). Small
//! inputs live in tests/fixtures/hostile/; big ones are generated here into a temporary folder. Everything a lesson
//! file says reaches the terminal escaped.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{parlab_bounded, stderr, stdout};

const FRONT: &str = "+++\nid = \"hostile\"\ntitle = \"Hostile\"\nminutes = 5\nsummary = \"s\"\ncovers = []\n+++\n\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile").join(name)
}

/// A temporary lesson folder holding one file `name` with `text`.
fn folder_with(name: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    dir
}

fn error_lines(o: &Output) -> Vec<String> {
    stdout(o).lines().filter(|l| l.starts_with("error: ")).map(str::to_string).collect()
}

#[track_caller]
fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked") && o.status.code().is_some(), "{err}");
}

#[test]
fn twenty_thousand_repeated_modes_are_two_errors_in_bounded_memory() {
    let modes = vec!["\"sequential\""; 20_000].join(", ");
    let text = format!("{FRONT}## One\n\n```experiment\nworkload = \"fib:20\"\ntasks = 4\nmodes = [{modes}]\n```\n");
    assert!(text.len() > 200_000);
    let dir = folder_with("modes.md", &text);
    let o = parlab_bounded(dir.path(), &["lint", "modes.md"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let line = format!("modes = [{modes}]").chars().count();
    assert_eq!(
        error_lines(&o),
        [
            "error: modes.md:14:9: 'modes' lists 20000 items; the limit is 6".to_string(),
            format!("error: modes.md:14:10001: this line is {line} characters long; the limit is 10000"),
        ]
    );
    assert!(stdout(&o).len() < 2_000, "the 240 KB line is not echoed in full:\n{}", stdout(&o));
    // Loading (as `lessons`, the TUI and exercises do) is as bounded as linting.
    let o = parlab_bounded(dir.path(), &["--lessons", ".", "lessons"]);
    assert_no_panic(&o);
    assert!(stderr(&o).contains("modes.md did not load (2 errors)"), "{}", stderr(&o));
}

#[test]
fn errors_beyond_fifty_per_file_are_counted_not_printed() {
    // 20,000 empty quizzes: four missing fields each.
    let text = format!("{FRONT}## Many\n\n{}", "```quiz\n```\n\n".repeat(20_000));
    let dir = folder_with("quizzes.md", &text);
    let o = parlab_bounded(dir.path(), &["lint", "quizzes.md"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    let errors = error_lines(&o);
    assert_eq!(errors.len(), 50, "{out}");
    assert_eq!(errors[0], "error: quizzes.md:11:1: the quiz block is missing the required field 'question'");
    assert_eq!(errors[49], "error: quizzes.md:47:1: the quiz block is missing the required field 'choices'");
    assert!(out.contains("\nand 79950 more errors in quizzes.md\n"), "{}", &out[out.len().saturating_sub(300)..]);
    assert!(out.ends_with("80000 errors in 1 of 1 file\n"), "{}", &out[out.len().saturating_sub(300)..]);
    let o = parlab_bounded(dir.path(), &["--lessons", ".", "exercises"]);
    assert_no_panic(&o);
    assert!(stderr(&o).contains("did not load"), "{}", stderr(&o));
}

#[test]
fn an_id_of_65536_characters_is_refused_and_lessons_and_progress_do_not_panic() {
    let id = "a".repeat(65_536);
    let good = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons/03-the-gil.md")).unwrap();
    let text = good.replacen("id = \"gil\"", &format!("id = \"{id}\""), 1);
    let dir = folder_with("03-long-id.md", &text);
    let o = parlab_bounded(dir.path(), &["lint", "03-long-id.md"]);
    assert_eq!(
        error_lines(&o),
        [
            "error: 03-long-id.md:2:6: 'id' is 65536 characters long; the limit is 64",
            "error: 03-long-id.md:2:10001: this line is 65543 characters long; the limit is 10000",
        ]
    );
    for args in [&["--lessons", ".", "lessons"][..], &["--lessons", ".", "progress"], &["--lessons", ".", "exercises"]]
    {
        let o = parlab_bounded(dir.path(), args);
        assert_no_panic(&o);
        assert!(stdout(&o).len() < 4_000, "parlab {args:?} printed the id: {}", stdout(&o).len());
    }
}

#[test]
fn a_hundred_thousand_choices_and_a_hundred_kilobyte_line_are_refused_with_a_short_echo() {
    let choices = vec!["\"a\""; 100_000].join(", ");
    let summary = "s".repeat(100_000);
    let text = FRONT.replace("summary = \"s\"", &format!("summary = \"{summary}\""))
        + &format!(
            "## Quiz\n\n```quiz\nquestion = \"Which?\"\nchoices = [{choices}]\nanswer = 0\nwhy = \"Because.\"\n```\n"
        );
    let dir = folder_with("quiz.md", &text);
    let o = parlab_bounded(dir.path(), &["lint", "quiz.md"]);
    let out = stdout(&o);
    assert_eq!(
        error_lines(&o),
        [
            "error: quiz.md:5:11: 'summary' is 100000 characters long; the limit is 200",
            "error: quiz.md:5:10001: this line is 100012 characters long; the limit is 10000",
            "error: quiz.md:13:11: 'choices' lists 100000 items; the limit is 10",
            "error: quiz.md:13:10001: this line is 500010 characters long; the limit is 10000",
        ]
    );
    // Every echoed line is a window of at most 120 columns (plus the gutter), and the caret still points at the
    // start of the summary's value.
    assert!(out.lines().all(|l| l.chars().count() <= 130), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[2], format!("5 | summary = \"{}…", "s".repeat(108)));
    assert_eq!(lines[3], format!("  | {}{}", " ".repeat(10), "^".repeat(109)));
}

#[test]
fn lint_refuses_dev_zero_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = parlab_bounded(dir.path(), &["lint", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        error_lines(&o),
        ["error: /dev/zero: a character device, not a regular file: a lesson is a regular file of at most 1 MiB"]
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[test]
fn lint_refuses_a_fifo_without_blocking_on_it() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe.md"));
    let o = parlab_bounded(dir.path(), &["lint", "pipe.md"]);
    assert_eq!(
        error_lines(&o),
        ["error: pipe.md: a named pipe (FIFO), not a regular file: a lesson is a regular file of at most 1 MiB"]
    );
}

#[test]
fn a_sparse_gigabyte_lesson_and_one_byte_over_the_limit_are_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::File::create(dir.path().join("huge.md")).unwrap().set_len(1 << 30).unwrap();
    let mut over = FRONT.as_bytes().to_vec();
    over.resize((1 << 20) + 1, b'a');
    std::fs::write(dir.path().join("over.md"), over).unwrap();
    let o = parlab_bounded(dir.path(), &["lint", "huge.md", "over.md"]);
    assert_eq!(
        error_lines(&o),
        [
            "error: huge.md: the file is 1 GiB (1073741824 bytes); a lesson file may be at most 1 MiB (1048576 bytes)",
            "error: over.md: the file is 1 MiB (1048577 bytes); a lesson file may be at most 1 MiB (1048576 bytes)",
        ]
    );
    // A file of exactly the limit is read (and found wanting for its own reasons).
    let mut at = FRONT.as_bytes().to_vec();
    at.resize(1 << 20, b'\n');
    std::fs::write(dir.path().join("over.md"), at).unwrap();
    let o = parlab_bounded(dir.path(), &["lint", "over.md"]);
    assert_eq!(error_lines(&o), ["error: over.md:8:1: the lesson has no section: start each one with a '## ' heading"]);
}

#[test]
fn folder_entries_that_are_not_regular_files_are_skipped_with_a_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let lessons = dir.path().join("lessons");
    std::fs::create_dir(&lessons).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons/03-the-gil.md"), lessons.join("03-gil.md"))
        .unwrap();
    std::fs::create_dir(lessons.join("dir.md")).unwrap();
    mkfifo(&lessons.join("fifo.md"));
    std::os::unix::fs::symlink("loop.md", lessons.join("loop.md")).unwrap();
    std::os::unix::fs::symlink("nowhere", lessons.join("dangling.md")).unwrap();
    let warnings = [
        "warning: skipped 'lessons/dangling.md': No such file or directory (os error 2)",
        "warning: skipped 'lessons/dir.md': a directory, not a regular file",
        "warning: skipped 'lessons/fifo.md': a named pipe (FIFO), not a regular file",
        "warning: skipped 'lessons/loop.md': Too many levels of symbolic links (os error 40)",
    ];
    for args in [&["lint", "lessons"][..], &["--lessons", "lessons", "lint"], &["--lessons", "lessons", "lessons"]] {
        let o = parlab_bounded(dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "parlab {args:?}: {}{}", stdout(&o), stderr(&o));
        let err = stderr(&o);
        let got: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert_eq!(got, warnings, "parlab {args:?}");
    }
    assert!(stdout(&parlab_bounded(dir.path(), &["lint", "lessons"])).ends_with("1 lesson, 0 errors\n"));
}

/// Bytes that would act on a terminal: ESC, BEL, CSI, and a lone CR.
fn has_terminal_controls(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains(['\x1b', '\x07', '\u{9b}']) || text.replace("\r\n", "").contains('\r')
}

#[test]
fn escape_sequences_in_a_lesson_are_errors_and_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let lessons = dir.path().join("lessons");
    std::fs::create_dir(&lessons).unwrap();
    std::fs::copy(fixture("escapes-in-title.md"), lessons.join("01-escapes.md")).unwrap();
    let o = parlab_bounded(dir.path(), &["lint", "lessons"]);
    assert_eq!(
        error_lines(&o),
        [
            "error: lessons/01-escapes.md:3:10: control character \\x1b (U+001B) in the text: it would act on the \
             learner's terminal",
            "error: lessons/01-escapes.md:3:10: bad TOML: invalid basic string, expected non-double-quote visible \
             characters, `\\`",
            "error: lessons/01-escapes.md:9:6: control character \\x1b (U+001B) in the text: it would act on the \
             learner's terminal",
            "error: lessons/01-escapes.md:11:17: control character \\u{9b} (U+009B) in the text: it would act on the \
             learner's terminal",
        ]
    );
    assert!(stdout(&o).contains("3 | title = \"\\x1b]0;pwned\\x07 A title\\x1b[2J\""), "{}", stdout(&o));
    assert!(!has_terminal_controls(&o.stdout), "{:?}", stdout(&o));
    for args in [&["--lessons", "lessons", "lessons"][..], &["--lessons", "lessons", "lessons", "--json"]] {
        let o = parlab_bounded(dir.path(), args);
        assert!(!has_terminal_controls(&o.stdout) && !has_terminal_controls(&o.stderr), "{args:?}: {o:?}");
    }
}

#[test]
fn a_file_name_with_escape_sequences_is_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let lessons = dir.path().join("lessons");
    std::fs::create_dir(&lessons).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("lessons/03-the-gil.md"), lessons.join("03-\x1b]0;pwned\x07.md")).unwrap();
    std::fs::copy(root.join("tests/fixtures/lint/unknown-mode.md"), lessons.join("04-\x1b[2J.md")).unwrap();
    let o = parlab_bounded(dir.path(), &["--lessons", "lessons", "lessons", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["file"], "lessons/03-\\x1b]0;pwned\\x07.md");
    assert!(stderr(&o).contains("warning: lessons/04-\\x1b[2J.md did not load (1 error)"), "{}", stderr(&o));
    let o = parlab_bounded(dir.path(), &["lint", "lessons"]);
    assert!(stdout(&o).contains("error: lessons/04-\\x1b[2J.md:17:24: unknown mode 'thread'"), "{}", stdout(&o));
    for o in [o, parlab_bounded(dir.path(), &["--lessons", "lessons", "lessons"])] {
        assert!(!has_terminal_controls(&o.stdout) && !has_terminal_controls(&o.stderr), "{o:?}");
    }
}

#[test]
fn the_tuis_loader_refuses_the_same_files_before_the_terminal_changes() {
    let modes = vec!["\"gil\""; 20_000].join(", ");
    let text = format!("{FRONT}## One\n\n```experiment\nworkload = \"fib:20\"\ntasks = 4\nmodes = [{modes}]\n```\n");
    let dir = folder_with("modes.md", &text);
    mkfifo(&dir.path().join("pipe.md"));
    let o = parlab_bounded(dir.path(), &["--lessons", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        "error: no lesson could be loaded from '.': ./modes.md:14:9: 'modes' lists 20000 items; the limit is 6 (+1 \
         more): this file was not loaded (`parlab lint` shows every error); skipped './pipe.md': a named pipe (FIFO), \
         not a regular file"
    );
}

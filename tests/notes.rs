//! Speaker notes on the real binary: `lint` refuses a bad notes block with its exact message; `parlab notes` prints
//! a lesson's notes; the runtime folder and socket are private; and in tmux, `notes --follow` shows the notes of the
//! section the presenter's TUI is on, says so when that TUI quits and picks up the next, and with two TUIs running
//! follows only the one it was given.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    TAG_ENV, Tmux, assert_none_left, bin, no_tmux, scratch_data_dir, stderr, stdout, tagged_processes, unique_tag,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/notes");

/// Runs parlab with a runtime folder of the test's own (and no user's progress).
#[track_caller]
fn parlab_in(runtime: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("PARLAB_DATA_DIR", scratch_data_dir())
        .stdin(Stdio::null())
        .output()
        .expect("parlab runs")
}

fn lessons() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(FIXTURES).join("01-notes.md"), dir.path().join("01-notes.md")).unwrap();
    dir
}

#[test]
fn a_bad_notes_block_fails_lint_with_the_field_and_a_suggestion() {
    let run = tempfile::tempdir().unwrap();
    let file = format!("{FIXTURES}/bad-notes.md");
    let o = parlab_in(run.path(), &["lint", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o) + &stderr(&o);
    assert!(out.contains(&format!("error: {file}:19:1: unknown field 'asks' in the notes block")), "{out}");
    assert!(out.contains("did you mean 'ask'?"), "{out}");
}

#[test]
fn notes_prints_every_note_of_a_lesson_by_section_and_refuses_an_unknown_lesson() {
    let (run, dir) = (tempfile::tempdir().unwrap(), lessons());
    let dir = dir.path().to_str().unwrap();
    let o = parlab_in(run.path(), &["notes", "--lessons", dir, "notes-e2e"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let order: Vec<usize> = ["introduction", "intro-note", "section 1 of 2: First", "first-point", "first-eight"]
        .iter()
        .map(|w| out.find(w).unwrap_or_else(|| panic!("'{w}' missing from:\n{out}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
    assert!(out.contains("about experiment 1 of 1: fib:20 × 4 · gil, threads"), "{out}");
    assert!(out.contains("ask before r: first-ask"), "{out}");
    // By number, the same lesson.
    assert_eq!(stdout(&parlab_in(run.path(), &["notes", "--lessons", dir, "1"])), out);
    let follow = parlab_in(run.path(), &["notes", "--follow", "--lessons", dir]);
    assert_eq!(follow.status.code(), Some(2));
    assert!(stderr(&follow).contains("does nothing with --follow: the notes come from the TUI"), "{}", stderr(&follow));
    let bad = parlab_in(run.path(), &["notes", "--lessons", dir, "notes-e2f"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad).trim(),
        "error: no lesson 'notes-e2f' (expected an id or a number 1..=1: notes-e2e) (did you mean 'notes-e2e'?)"
    );
}

#[test]
fn the_notes_folder_is_made_private_and_a_file_in_its_place_is_refused() {
    let run = tempfile::tempdir().unwrap();
    // A folder left open to others is closed; following a pid that does not run is an error naming it.
    std::fs::create_dir(run.path().join("parlab")).unwrap();
    std::fs::set_permissions(run.path().join("parlab"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = parlab_in(run.path(), &["notes", "--follow", "--pid", "999999999"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: no parlab TUI with pid 999999999 publishes notes (running TUIs: none is running)"
    );
    let mode = std::fs::metadata(run.path().join("parlab")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // Without XDG_RUNTIME_DIR: parlab-UID under the temporary folder, created 0700.
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["notes", "--follow", "--pid", "999999999"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
    let made = tmp.path().join(format!("parlab-{uid}"));
    assert_eq!(std::fs::metadata(&made).unwrap().permissions().mode() & 0o777, 0o700);
    // Something that is not a folder where the folder goes: refused, named.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("parlab"), "x").unwrap();
    let o = parlab_in(other.path(), &["notes", "--follow"]);
    assert_eq!(o.status.code(), Some(2));
    let shown = other.path().join("parlab");
    assert_eq!(
        stderr(&o).trim(),
        format!("error: '{}' is not a directory (parlab keeps its notes sockets there): remove it", shown.display())
    );
}

fn skip() -> bool {
    no_tmux("the notes end-to-end test")
}

fn tui(tag: &str, run: &Path, lessons: &Path, data: &Path) -> String {
    format!(
        "env {TAG_ENV}={tag} XDG_RUNTIME_DIR='{}' PARLAB_DATA_DIR='{}' TERM=xterm-256color '{}' --lessons '{}'",
        run.display(),
        data.display(),
        bin().display(),
        lessons.display()
    )
}

fn follower(tag: &str, run: &Path, extra: &str) -> String {
    format!("env {TAG_ENV}={tag} XDG_RUNTIME_DIR='{}' '{}' notes --follow {extra}", run.display(), bin().display())
}

/// The pids of the tagged TUIs (parlab with `--lessons`: not labs, followers, or a python3 the TUI asks its
/// version), waiting until there are `n`.
fn tuis(tag: &str, n: usize) -> Vec<u32> {
    let end = Instant::now() + Duration::from_secs(10);
    let tui = format!("{} --lessons ", bin().display());
    loop {
        let pids: Vec<u32> =
            tagged_processes(tag).into_iter().filter(|(_, c)| c.starts_with(&tui)).map(|p| p.0).collect();
        if pids.len() >= n || Instant::now() > end {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The socket of the TUI with this pid, once it is there.
#[track_caller]
fn wait_socket(run: &Path, pid: u32) -> std::path::PathBuf {
    let sock = run.join(format!("parlab/notes-{pid}.sock"));
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "the TUI {pid} never opened {}", sock.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    sock
}

#[test]
fn notes_follow_moves_with_the_presenter_and_waits_for_the_next_when_it_quits() {
    if skip() {
        return;
    }
    let tag = unique_tag("notes-follow");
    let (run, dir, data) = (tempfile::tempdir().unwrap(), lessons(), tempfile::tempdir().unwrap());
    let mut t = Tmux::new(&tag);
    let f = t.open(&follower(&tag, run.path(), ""));
    t.wait_on(f, 15.0, "the follower to wait for a TUI", |s| s.contains("No parlab TUI is running"));
    let p = t.open(&tui(&tag, run.path(), dir.path(), data.path()));
    let pid = tuis(&tag, 1)[0];
    t.wait_on(f, 15.0, "the lesson list", |s| s.contains(&format!("TUI with pid {pid}")) && s.contains("lesson list"));
    let sock = run.path().join(format!("parlab/notes-{pid}.sock"));
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600, "the socket is private");
    assert_eq!(std::fs::metadata(run.path().join("parlab")).unwrap().permissions().mode() & 0o777, 0o700);

    t.keys_to(p, &["Enter"]);
    let s = t.wait_on(f, 15.0, "the introduction's notes", |s| s.contains("intro-note"));
    assert!(s.contains("introduction") && !s.contains("first-point"), "{s}");
    // The presenter's screen never shows the notes.
    let lesson = t.wait_on(p, 15.0, "the lesson view", |s| s.contains("Intro."));
    assert!(!lesson.contains("intro-note"), "{lesson}");
    t.keys_to(p, &["Right"]);
    let s = t.wait_on(f, 15.0, "the first section's notes", |s| s.contains("first-point"));
    assert!(s.contains("section 1 of 2: First") && s.contains("▶ about experiment 1 of 1"), "{s}");
    assert!(s.contains("panel: experiment 1 of 1: fib:20 × 4 · gil, threads"), "{s}");
    assert!(!s.contains("intro-note"), "{s}");
    assert!(s.contains("    point at: first-point: the gil lanes take turns."), "one line at 100 columns: {s}");
    // A narrower follower re-wraps the notes under their label.
    t.tmux(&["resize-window", "-t", &format!(":{f}"), "-x", "40", "-y", "30"]);
    t.wait_on(f, 15.0, "the notes re-wrapped at 40 columns", |s| s.lines().any(|l| l == "      take turns."));
    t.tmux(&["resize-window", "-t", &format!(":{f}"), "-x", "100", "-y", "30"]);
    t.wait_on(f, 15.0, "the notes on one line again", |s| s.contains("the gil lanes take turns."));
    t.keys_to(p, &["Right"]);
    t.wait_on(f, 15.0, "the second section's notes", |s| s.contains("second-say") && !s.contains("first-point"));
    t.keys_to(p, &["Left"]);
    t.wait_on(f, 15.0, "the first section again", |s| s.contains("first-point") && !s.contains("second-say"));

    t.keys_to(p, &["q"]);
    t.wait_on(p, 15.0, "the TUI to exit", |s| s.contains("EXITED 0"));
    t.wait_on(f, 15.0, "the follower to say its presenter quit", |s| {
        s.contains(&format!("The presenter (parlab pid {pid}) quit.")) && s.contains("Waiting for the next one")
    });
    assert!(!sock.exists(), "the socket is removed when the TUI quits");
    // The next presenter is picked up.
    let _p2 = t.open(&tui(&tag, run.path(), dir.path(), data.path()));
    let pid2 = *tuis(&tag, 1).iter().find(|p| **p != pid).expect("a second TUI");
    t.wait_on(f, 15.0, "the next presenter", |s| s.contains(&format!("TUI with pid {pid2}")));
    // Killed outright, it cannot remove its socket: the follower still says so, and the dead socket goes.
    let sock2 = run.path().join(format!("parlab/notes-{pid2}.sock"));
    assert!(sock2.exists());
    assert!(Command::new("kill").args(["-KILL", &pid2.to_string()]).status().unwrap().success());
    t.wait_on(f, 15.0, "the follower to say the killed presenter quit", |s| {
        s.contains(&format!("The presenter (parlab pid {pid2}) quit.")) && s.contains("Waiting for the next one")
    });
    let end = Instant::now() + Duration::from_secs(5);
    while sock2.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sock2.exists(), "the killed TUI's socket is removed by the follower");
    drop(t);
    assert_none_left(&tag);
}

#[test]
fn two_presenters_do_not_cross_talk() {
    if skip() {
        return;
    }
    let tag = unique_tag("notes-two");
    let (run, dir, data) = (tempfile::tempdir().unwrap(), lessons(), tempfile::tempdir().unwrap());
    let mut t = Tmux::new(&tag);
    let a = t.open(&tui(&tag, run.path(), dir.path(), data.path()));
    let first = tuis(&tag, 1)[0];
    // The newest is the TUI that opened its socket last: B opens after A's is there.
    wait_socket(run.path(), first);
    let b = t.open(&tui(&tag, run.path(), dir.path(), data.path()));
    let pids = tuis(&tag, 2);
    let second = *pids.iter().find(|p| **p != first).expect("two TUIs");
    wait_socket(run.path(), second);
    // The newest by default, the other by --pid.
    let newest = t.open(&follower(&tag, run.path(), ""));
    let older = t.open(&follower(&tag, run.path(), &format!("--pid {first}")));
    t.wait_on(newest, 15.0, "the newest TUI", |s| s.contains(&format!("TUI with pid {second}")));
    t.wait_on(older, 15.0, "the TUI given by pid", |s| s.contains(&format!("TUI with pid {first}")));
    t.keys_to(b, &["Enter", "Right", "Right"]);
    t.wait_on(newest, 15.0, "B's second section", |s| s.contains("second-say"));
    t.keys_to(a, &["Enter"]);
    t.wait_on(older, 15.0, "A's introduction", |s| s.contains("intro-note"));
    // B moved to its second section meanwhile; A's follower never saw it.
    let s = t.screen_of(older);
    assert!(!s.contains("second-say") && !s.contains(&format!("pid {second}")), "{s}");
    t.keys_to(a, &["q"]);
    t.wait_on(older, 15.0, "the --pid follower to stop when its TUI quits", |s| {
        s.contains(&format!("The presenter (parlab pid {first}) quit.")) && s.contains("EXITED 0")
    });
    let s = t.screen_of(newest);
    assert!(s.contains("second-say") && !s.contains("quit"), "B's follower is untouched: {s}");
    t.keys_to(b, &["q"]);
    t.wait_on(b, 15.0, "B to exit", |s| s.contains("EXITED 0"));
    drop(t);
    assert_none_left(&tag);
}

/// Runs `args` as the user `nobody` (needs root and setpriv).
fn as_nobody(program: &str, args: &[&str], runtime: &Path) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv runs")
}

/// Reads what a presenter's socket sends first, with python3 (a client that is not parlab, so no check of ours
/// on the follower's side is involved).
const READ_SOCKET: &str = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(5)\n\
    s.connect(sys.argv[1])\nprint(repr(s.recv(100)))";

#[test]
fn another_user_can_neither_enter_the_notes_folder_nor_read_a_socket_left_open() {
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap() == 0;
    let tools = Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success())
        && Path::new("/usr/bin/python3").exists();
    if !root || !tools || skip() {
        eprintln!("note: needs root, setpriv, /usr/bin/python3 and tmux to act as a second user; skipped");
        return;
    }
    let tag = unique_tag("notes-user");
    let (run, dir, data) = (tempfile::tempdir().unwrap(), lessons(), tempfile::tempdir().unwrap());
    // The runtime folder itself may be reached by others (like /tmp); parlab's folder inside it may not.
    std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut t = Tmux::new(&tag);
    t.open(&tui(&tag, run.path(), dir.path(), data.path()));
    let pid = tuis(&tag, 1)[0];
    let folder = run.path().join("parlab");
    let sock = wait_socket(run.path(), pid);
    let bin = bin();
    let o = as_nobody(bin.to_str().unwrap(), &["notes", "--follow"], run.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "error: the notes folder '{}' belongs to user id 0, not to you (65534): refusing to use it",
            folder.display()
        )
    );
    // Even with the folder and socket opened to everyone, the TUI sends another user nothing (SO_PEERCRED)...
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let sock_arg = sock.to_str().unwrap();
    let theirs = as_nobody("/usr/bin/python3", &["-c", READ_SOCKET, sock_arg], run.path());
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    assert_eq!(stdout(&theirs).trim(), "b''", "another user was sent: {}", stdout(&theirs));
    // ...while its own user gets where the TUI is.
    let ours = Command::new("/usr/bin/python3").args(["-c", READ_SOCKET, sock_arg]).output().unwrap();
    assert!(stdout(&ours).starts_with("b'{\"v\":1,"), "{}", stdout(&ours));
    drop(t);
    assert_none_left(&tag);
}

//! Every Python snippet in the lessons is correct: each ```` ```python ```` fence in lessons/*.md compiles with
//! python3, and each ```` ```python runnable ```` fence runs to exit 0 within 20 s (in its own temporary folder and
//! process group, so nothing it starts outlives it). Skipped, with a note, only when python3 is missing.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

const RUN_TIMEOUT: Duration = Duration::from_secs(20);

struct Snippet {
    /// `lessons/03-the-gil.md:56`: where the fence opens.
    place: String,
    code: String,
    runnable: bool,
}

/// Every python fence of every lesson, found with the same Markdown parser parlab uses (so fences inside lists count).
fn snippets() -> Vec<Snippet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("lessons/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md") && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("lesson is UTF-8");
        let name = format!("lessons/{}", file.file_name().unwrap().to_string_lossy());
        let mut events = Parser::new_ext(&text, Options::ENABLE_TABLES).into_offset_iter();
        while let Some((event, range)) = events.next() {
            let Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) = event else {
                continue;
            };
            let mut words = info.split_whitespace();
            if words.next() != Some("python") {
                continue;
            }
            let runnable = words.any(|w| w == "runnable");
            let mut code = String::new();
            for (event, _) in events.by_ref() {
                match event {
                    Event::Text(t) => code.push_str(&t),
                    Event::End(TagEnd::CodeBlock) => break,
                    _ => {}
                }
            }
            let line = text[..range.start].matches('\n').count() + 1;
            out.push(Snippet { place: format!("{name}:{line}"), code, runnable });
        }
    }
    out
}

fn have_python() -> bool {
    let ok = Command::new("python3").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("note: python3 is not installed; the lesson snippets were not checked");
        return false;
    }
    true
}

#[test]
fn every_python_snippet_in_the_lessons_compiles() {
    if !have_python() {
        return;
    }
    let all = snippets();
    assert!(all.len() >= 12, "expected Python snippets in the lessons, found {}", all.len());
    let items: Vec<(String, String)> = all.iter().map(|s| (s.place.clone(), s.code.clone())).collect();
    let script = "import json, sys\n\
                  for place, code in json.load(sys.stdin):\n\
                  \x20   try:\n\
                  \x20       compile(code, place, 'exec')\n\
                  \x20   except SyntaxError as e:\n\
                  \x20       print(f'{place} (+{e.lineno}): {e.msg}: {(e.text or \"\").strip()}')\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let input = serde_json::to_vec(&items).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(report.trim().is_empty(), "snippets that do not compile:\n{report}");
}

#[test]
fn every_runnable_python_snippet_runs_to_a_clean_exit() {
    if !have_python() {
        return;
    }
    let runnable: Vec<Snippet> = snippets().into_iter().filter(|s| s.runnable).collect();
    assert!(!runnable.is_empty(), "expected some ```python runnable fences in the lessons");
    let mut failures = Vec::new();
    for s in &runnable {
        if let Err(e) = run(s) {
            failures.push(format!("{}: {e}", s.place));
        }
    }
    assert!(failures.is_empty(), "runnable snippets that failed:\n{}", failures.join("\n\n"));
}

/// Runs one snippet as a script in a fresh folder, with a time limit; kills its whole process group afterwards.
fn run(s: &Snippet) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("snippet.py"), &s.code).map_err(|e| e.to_string())?;
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).map_err(|e| e.to_string());
    let mut child = Command::new("python3")
        .arg("snippet.py")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log("out.txt")?)
        .stderr(log("err.txt")?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("python3 did not start: {e}"))?;
    let pgid = child.id() as i32;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > RUN_TIMEOUT => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    // SAFETY: kill(2) on the process group we created for this snippet; nothing else is in it.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
    let err = std::fs::read_to_string(dir.path().join("err.txt")).unwrap_or_default();
    match status {
        None => Err(format!("still running after {} s", RUN_TIMEOUT.as_secs())),
        Some(st) if !st.success() => Err(format!("exited with {st}:\n{}", tail(&err))),
        Some(_) => Ok(()),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

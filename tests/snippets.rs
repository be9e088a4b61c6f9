//! Every Python snippet in the lessons is correct on the Pythons learners run: each ```` ```python ```` fence in
//! lessons/*.md compiles, and each ```` ```python runnable ```` fence runs to exit 0 within 20 s (in its own
//! temporary folder and process group, so nothing it starts outlives it), under `python3` and under every pyenv
//! 3.13 and 3.14 installed. The tests print which interpreters ran. Skipped, with a note, only when python3 is
//! missing, and never under `CI`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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

/// One Python interpreter the snippets are checked with.
struct Python {
    /// What to run: `python3` (found on PATH) or a full path.
    exe: PathBuf,
    /// Such as `Python 3.13.0`.
    version: String,
    /// The interpreter binary itself (`sys.executable` with links resolved), so one found twice runs once.
    real: String,
}

impl std::fmt::Display for Python {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.exe.display(), self.version)
    }
}

fn probe(exe: PathBuf) -> Option<Python> {
    let ask = "import os, platform, sys; print(platform.python_version()); print(os.path.realpath(sys.executable))";
    let out = Command::new(&exe).args(["-c", ask]).stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let version = format!("Python {}", lines.next()?.trim());
    let real = lines.next()?.trim().to_string();
    Some(Python { exe, version, real })
}

/// The interpreters to check the snippets with: `python3` from PATH, then every pyenv 3.13 and 3.14 that is
/// installed (learners run those; `python3` here is 3.11). Without `python3` the tests say so and skip, except
/// under `CI`, where python3 is required; the pyenv ones are optional everywhere.
fn interpreters() -> Vec<Python> {
    let Some(system) = probe(PathBuf::from("python3")) else {
        assert!(std::env::var_os("CI").is_none(), "python3 is required on CI to check the lesson snippets");
        eprintln!("note: python3 is not installed; the lesson snippets were not checked");
        return Vec::new();
    };
    let mut found = vec![system];
    let versions = std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv/versions"));
    let mut extra: Vec<PathBuf> = versions
        .and_then(|v| std::fs::read_dir(v).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("3.13") || n.starts_with("3.14")))
        .map(|e| e.path().join("bin/python3"))
        .collect();
    extra.sort();
    for exe in extra {
        if let Some(p) = probe(exe)
            && !found.iter().any(|f| f.real == p.real)
        {
            found.push(p);
        }
    }
    found
}

fn names(pythons: &[Python]) -> String {
    pythons.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
}

#[test]
fn every_python_snippet_in_the_lessons_compiles_under_each_interpreter() {
    let pythons = interpreters();
    if pythons.is_empty() {
        return;
    }
    let all = snippets();
    assert!(all.len() >= 12, "expected Python snippets in the lessons, found {}", all.len());
    let items: Vec<(String, String)> = all.iter().map(|s| (s.place.clone(), s.code.clone())).collect();
    let input = serde_json::to_vec(&items).unwrap();
    let script = "import json, sys\n\
                  for place, code in json.load(sys.stdin):\n\
                  \x20   try:\n\
                  \x20       compile(code, place, 'exec')\n\
                  \x20   except SyntaxError as e:\n\
                  \x20       print(f'{place} (+{e.lineno}): {e.msg}: {(e.text or \"\").strip()}')\n";
    let mut report = String::new();
    for py in &pythons {
        let mut child = Command::new(&py.exe)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{py} did not start: {e}"));
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{py} failed: {}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            report.push_str(&format!("{}: {line}\n", py.version));
        }
    }
    println!("{} snippets compiled with: {}", all.len(), names(&pythons));
    assert!(report.trim().is_empty(), "snippets that do not compile:\n{report}");
}

#[test]
fn every_runnable_python_snippet_runs_to_a_clean_exit_under_each_interpreter() {
    let pythons = interpreters();
    if pythons.is_empty() {
        return;
    }
    let runnable: Vec<Snippet> = snippets().into_iter().filter(|s| s.runnable).collect();
    assert!(!runnable.is_empty(), "expected some ```python runnable fences in the lessons");
    // One thread per interpreter: the snippets of one interpreter still run one at a time.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = pythons
            .iter()
            .map(|py| {
                let runnable = &runnable;
                scope.spawn(move || {
                    runnable
                        .iter()
                        .filter_map(|s| run(py, s).err().map(|e| format!("{} under {}: {e}", s.place, py.version)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().expect("a snippet runner panicked")).collect()
    });
    println!("{} runnable snippets ran with: {}", runnable.len(), names(&pythons));
    assert!(failures.is_empty(), "runnable snippets that failed:\n{}", failures.join("\n\n"));
}

/// Runs one snippet with `py` as a script in a fresh folder, with a time limit; kills its whole process group
/// afterwards.
fn run(py: &Python, s: &Snippet) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("snippet.py"), &s.code).map_err(|e| e.to_string())?;
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).map_err(|e| e.to_string());
    let mut child = Command::new(&py.exe)
        .arg("snippet.py")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log("out.txt")?)
        .stderr(log("err.txt")?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{} did not start: {e}", py.exe.display()))?;
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

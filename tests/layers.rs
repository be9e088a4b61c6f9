//! The house keeps its own rules (DESIGN.md "Architecture"): reads the `use` lines and `crate::` paths of every
//! module under src/ (its code, not its tests) and fails when a module imports across a rule, naming the file,
//! the line and the rule.

use std::path::{Path, PathBuf};

/// (which files, what they must never import, why)
const RULES: &[(&[&str], &[&str], &str)] = &[
    (
        &["lesson/", "experiment/", "workload.rs", "timeline.rs", "digest.rs", "theme.rs", "units.rs", "clock.rs"],
        &[
            "ratatui",
            "crossterm",
            "tokio",
            "sysinfo",
            "crate::app",
            "crate::ui",
            "crate::tui",
            "crate::lab",
            "crate::headless",
            "crate::monitor",
            "crate::bench",
        ],
        "the model never imports a terminal, a runtime, the sampler, the lab or the faces",
    ),
    (
        &["lab/", "worker.rs"],
        &[
            "ratatui",
            "crossterm",
            "crate::app",
            "crate::ui",
            "crate::tui",
            "crate::headless",
            "crate::bench",
            "crate::monitor",
        ],
        "the lab and its workers never import the UI, the app or the terminal",
    ),
    (
        &["app.rs", "app/"],
        &["ratatui", "crossterm", "crate::ui", "crate::tui", "crate::lab", "crate::headless", "crate::bench"],
        "the app knows no terminal, never asks the drawing code and starts no process: it returns effects",
    ),
    (
        &["ui/"],
        &["crossterm", "crate::lab", "crate::tui", "crate::monitor", "crate::headless", "crate::bench"],
        "widgets only read: they never reach the lab, the terminal loop or the sampler",
    ),
    (&["monitor.rs"], &["crate::app", "crate::ui", "crate::tui"], "the sampler knows no UI state"),
    (&["exercise/"], &["crate::headless"], "a check reaches the lab through its client"),
    (
        &["lab/sys.rs", "units.rs", "theme.rs", "stdout.rs", "clock.rs", "scratch.rs"],
        &["crate::", "super::"],
        "a leaf imports nothing of parlab's",
    ),
    (
        &["lab/forkserver.rs"],
        &["crate::worker", "super::demos", "crate::lab::demos"],
        "the fork server is handed its children's entry; it never imports the worker or the demos",
    ),
    (
        &["worker.rs"],
        &["crate::lab::client", "crate::lab::processes", "crate::lab::demos"],
        "a worker imports only the lab's leaves",
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without its tests: a `tests.rs` or `*_tests.rs` file is all tests; elsewhere everything from the first
/// `#[cfg(test)]` on (test modules sit at the end of a file, as clippy insists).
fn code_of(path: &Path, text: &str) -> String {
    if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs")) {
        return String::new();
    }
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Lines of code (comments dropped) that import or name `what`.
fn offending<'a>(code: &'a str, what: &str) -> Vec<(usize, &'a str)> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            if l.starts_with("//") {
                return false;
            }
            let code = l.split("//").next().unwrap_or(l);
            if what.starts_with("crate::") || what.starts_with("super::") {
                code.contains(what)
            } else {
                // An external crate: `use ratatui...` or a `ratatui::` path.
                code.starts_with(&format!("use {what}")) || code.contains(&format!("{what}::"))
            }
        })
        .map(|(i, l)| (i + 1, l.trim()))
        .collect()
}

#[test]
fn no_module_imports_across_the_rules() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 40, "found the sources ({} files)", files.len());
    let mut broken = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        let code = code_of(path, &text);
        for (who, never, why) in RULES {
            if !who.iter().any(|w| if w.ends_with('/') { rel.starts_with(w) } else { rel == *w }) {
                continue;
            }
            for what in *never {
                for (line, l) in offending(&code, what) {
                    broken.push(format!("src/{rel}:{line}: names {what} ({why}): {l}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "imports across the rules:\n{}", broken.join("\n"));
}

#[test]
fn the_rules_catch_an_import_across_them() {
    // The checker itself: a model file naming the UI, and a comment that does not count.
    let code = "use crate::timeline::Span;\n// crate::ui is fine in a comment\nuse crate::ui::theme::Theme;\n";
    assert_eq!(offending(code, "crate::ui"), vec![(3, "use crate::ui::theme::Theme;")]);
    assert_eq!(offending("use ratatui::style::Style;\n", "ratatui").len(), 1);
    assert!(
        code_of(Path::new("x.rs"), "fn a() {}\n#[cfg(test)]\nmod tests { use crate::ui; }").find("crate::ui").is_none()
    );
}

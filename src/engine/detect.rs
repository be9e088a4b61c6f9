//! Interpreter detection: which python a name means (a path, or a name looked up on PATH), and what it is
//! (version, GIL or free-threaded, start methods, InterpreterPoolExecutor, whether Dask and Ray import), asked of
//! the interpreter itself through the harness's probe. Missing, too old (< 3.9) and broken interpreters get one
//! line naming the path and what was expected. Free-threaded builds on PATH (python3.13t, python3.14t) are listed
//! so they can be offered.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::experiment::{Mode, PythonRef};

/// The default interpreter: `python3` on PATH.
pub(crate) const DEFAULT_PYTHON: &str = "python3";
/// The oldest Python the harness runs on.
pub(crate) const MIN_VERSION: (u32, u32) = (3, 9);
/// A probe imports Dask and Ray (about a second with both installed); a loaded machine gets far more.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// What an interpreter said about itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Interpreter {
    /// The path parlab runs (as given, or found on PATH).
    pub path: String,
    /// `sys.executable`, as the interpreter names itself.
    pub executable: String,
    pub version: String,
    pub implementation: String,
    pub gil_enabled: bool,
    pub start_methods: Vec<String>,
    pub has_interpreter_pool: bool,
    pub dask: EngineFacts,
    pub ray: EngineFacts,
}

/// Whether a distributed engine imports in the interpreter (`error` is the line to show when it does not).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub(crate) struct EngineFacts {
    #[serde(default)]
    pub available: bool,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct HelloLine {
    hello: Hello,
}

#[derive(Deserialize)]
struct Hello {
    python: Facts,
    #[serde(default)]
    engines: Engines,
}

#[derive(Deserialize)]
struct Facts {
    path: String,
    version: String,
    #[serde(default)]
    implementation: String,
    gil_enabled: bool,
    #[serde(default)]
    start_methods: Vec<String>,
    #[serde(default)]
    has_interpreter_pool: bool,
}

#[derive(Default, Deserialize)]
struct Engines {
    #[serde(default)]
    dask: EngineFacts,
    #[serde(default)]
    ray: EngineFacts,
}

impl Interpreter {
    pub(crate) fn reference(&self) -> PythonRef {
        PythonRef { path: self.path.clone(), version: self.version.clone(), gil_enabled: self.gil_enabled }
    }

    /// "Python 3.11.7 (GIL)" or "Python 3.13.0 (free-threaded)".
    pub(crate) fn describe(&self) -> String {
        format!("Python {} ({})", self.version, if self.gil_enabled { "GIL" } else { "free-threaded" })
    }

    /// Why mode `dask` or `ray` cannot run here (the install hint), or None when its engine imports.
    pub(crate) fn engine_error(&self, mode: Mode) -> Option<String> {
        let (facts, name, hint) = match mode {
            Mode::Dask => (&self.dask, "dask", "pip install 'dask[distributed]'"),
            Mode::Ray => (&self.ray, "ray", "pip install ray"),
            _ => return None,
        };
        if facts.available {
            return None;
        }
        Some(facts.error.clone().unwrap_or_else(|| format!("{name} is not installed for {}: {hint}", self.path)))
    }

    /// Modes this interpreter cannot run, each with the reason (for the TUI's mode list).
    pub(crate) fn unavailable_modes(&self) -> Vec<(Mode, String)> {
        [Mode::Interpreters, Mode::Dask, Mode::Ray]
            .into_iter()
            .filter_map(|m| super::python_refusal(m, self).map(|why| (m, why)))
            .collect()
    }
}

/// The version's (major, minor), when it reads as one.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The interpreter `given` names: a path (with a `/`), or a name looked up on PATH.
pub(crate) fn resolve(given: &str) -> Result<PathBuf, String> {
    if given.trim().is_empty() {
        return Err("--python '' names no interpreter (expected a path or a name on PATH, e.g. python3)".into());
    }
    if given.contains('/') {
        let p = Path::new(given);
        return match std::fs::metadata(p) {
            Err(_) => Err(format!("python interpreter '{given}' does not exist (expected Python 3.9 or newer)")),
            Ok(m) if m.is_dir() => {
                Err(format!("python interpreter '{given}' is a folder (expected Python 3.9 or newer)"))
            }
            Ok(_) if !executable(p) => {
                Err(format!("python interpreter '{given}' is not executable (expected Python 3.9 or newer)"))
            }
            Ok(_) => Ok(p.to_path_buf()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(given)).find(|c| executable(c)).ok_or_else(|| {
        format!(
            "python interpreter '{given}' was not found on PATH (expected Python 3.9 or newer; install it, or give \
             its path with --python)"
        )
    })
}

/// Free-threaded builds on PATH (`python3.13t`, `python3.14t`, ...), first found first, one per name.
pub(crate) fn free_threaded_on_path() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| is_free_threaded_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .filter(|p| executable(p))
            .collect();
        here.sort();
        for p in here {
            if !found.iter().any(|f| f.file_name() == p.file_name()) {
                found.push(p);
            }
        }
    }
    found
}

/// `python3.13t`, `python3.14t`: the names free-threaded builds install under.
fn is_free_threaded_name(name: &str) -> bool {
    name.strip_prefix("python3.")
        .and_then(|r| r.strip_suffix('t'))
        .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

/// Asks the interpreter `given` names what it is (cached per name for the life of the process).
pub(crate) fn detect(given: &str) -> Result<Interpreter, String> {
    static CACHE: Mutex<Vec<(String, Result<Interpreter, String>)>> = Mutex::new(Vec::new());
    if let Some((_, r)) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(g, _)| g == given) {
        return r.clone();
    }
    let r = resolve(given).and_then(|p| probe(&p));
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).push((given.to_string(), r.clone()));
    r
}

/// Runs the harness's probe in `path` and reads its hello.
pub(crate) fn probe(path: &Path) -> Result<Interpreter, String> {
    let shown = path.display().to_string();
    let mut s = super::python::spawn(path, &json!({"probe": true})).map_err(|e| format!("{e:#}"))?;
    let (tx, rx) = mpsc::channel();
    let mut results = s.results;
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = results.by_ref().take(1 << 20).read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let stderr = super::python::keep_stderr(s.stderr).map_err(|e| format!("{e:#}"))?;
    let answer = rx.recv_timeout(PROBE_TIMEOUT);
    drop(s.stdin);
    if answer.is_err() {
        // SAFETY: signalling the process group the interpreter leads (its pid), which holds only its processes.
        unsafe { libc::killpg(s.child.id() as i32, libc::SIGKILL) };
    }
    let status = s.child.wait().ok();
    drop(s.dir);
    let err = stderr.read();
    let answer = match answer {
        Ok(text) => text,
        Err(_) => {
            return Err(format!(
                "python interpreter '{shown}' did not answer within {} s (expected Python 3.9 or newer)",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    };
    let hello = answer.lines().next().and_then(|l| serde_json::from_str::<HelloLine>(l).ok());
    let Some(HelloLine { hello }) = hello else {
        let how = status.map_or_else(String::new, |s| format!(", {s}"));
        let words = super::python::last_words(&err).map_or_else(String::new, |w| format!(": {w}"));
        return Err(format!(
            "python interpreter '{shown}' is broken: it ended without answering parlab's probe{how} (expected \
             Python 3.9 or newer){words}"
        ));
    };
    interpret(path, hello)
}

fn interpret(path: &Path, hello: Hello) -> Result<Interpreter, String> {
    let shown = path.display().to_string();
    let f = hello.python;
    match major_minor(&f.version) {
        Some(v) if v >= MIN_VERSION => {}
        Some(_) => {
            return Err(format!(
                "python interpreter '{shown}' is Python {}: the python engine needs Python {}.{} or newer",
                f.version, MIN_VERSION.0, MIN_VERSION.1
            ));
        }
        None => {
            return Err(format!(
                "python interpreter '{shown}' reports version '{}', which parlab cannot read (expected Python 3.9 \
                 or newer)",
                f.version
            ));
        }
    }
    Ok(Interpreter {
        path: shown,
        executable: f.path,
        version: f.version,
        implementation: f.implementation,
        gil_enabled: f.gil_enabled,
        start_methods: f.start_methods,
        has_interpreter_pool: f.has_interpreter_pool,
        dask: hello.engines.dask,
        ray: hello.engines.ray,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: &str, gil: bool) -> Hello {
        serde_json::from_value::<HelloLine>(json!({"hello": {
            "python": {"path": "/x/python", "version": version, "implementation": "cpython", "gil_enabled": gil,
                       "start_methods": ["fork", "spawn", "forkserver"], "has_interpreter_pool": false},
            "engines": {"dask": {"available": false, "version": null,
                                 "error": "dask is not installed for /x/python: pip install 'dask[distributed]'"},
                        "ray": {"available": true, "version": "2.60.0", "error": null}},
            "pid": 1, "cores": 2}}))
        .unwrap()
        .hello
    }

    #[test]
    fn old_versions_are_refused_with_the_path_and_what_is_needed() {
        let err = interpret(Path::new("/x/python"), hello("3.8.18", true)).unwrap_err();
        assert_eq!(err, "python interpreter '/x/python' is Python 3.8.18: the python engine needs Python 3.9 or newer");
        let ok = interpret(Path::new("/x/python"), hello("3.13.0", false)).unwrap();
        assert_eq!(ok.describe(), "Python 3.13.0 (free-threaded)");
    }

    #[test]
    fn unavailable_modes_carry_the_install_hint_and_the_version_needed() {
        let py = interpret(Path::new("/x/python"), hello("3.11.7", true)).unwrap();
        let modes = py.unavailable_modes();
        assert_eq!(modes.len(), 2, "{modes:?}");
        assert_eq!(modes[0].0, Mode::Interpreters);
        assert!(modes[0].1.contains("needs Python 3.14"), "{modes:?}");
        assert_eq!(
            modes[1],
            (Mode::Dask, "dask is not installed for /x/python: pip install 'dask[distributed]'".into())
        );
    }

    #[test]
    fn free_threaded_names_are_told_apart() {
        assert!(is_free_threaded_name("python3.13t"));
        assert!(is_free_threaded_name("python3.14t"));
        assert!(!is_free_threaded_name("python3.13"));
        assert!(!is_free_threaded_name("python3.t"));
        assert!(!is_free_threaded_name("python3.13t-config"));
        assert_eq!(major_minor("3.13.0rc1"), Some((3, 13)));
        assert_eq!(major_minor("3.9"), Some((3, 9)));
        assert_eq!(major_minor("x"), None);
    }
}

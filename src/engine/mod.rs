//! The python engine: the same experiments run by a real CPython (the embedded `harness.py`), drawn on the same
//! timeline as the native lab. `detect` finds and checks interpreters, `python` starts the harness; this module
//! decides which engines a command runs and whether a mode can run on the chosen one. `sampler` measures the
//! interpreter's threads from outside, through /proc (the real GIL lane, and `parlab watch`).

pub(crate) mod bench;
pub(crate) mod detect;
pub(crate) mod python;
pub(crate) mod sampler;
pub(crate) mod state;

use anyhow::{Result, anyhow, bail};

use crate::experiment::{Engine, Experiment, Mode};
use detect::Interpreter;

/// `--engine`: one engine, or both one after the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    One(Engine),
    Both,
}

impl Choice {
    pub(crate) fn parse(text: &str) -> Result<Choice> {
        match text.trim() {
            "both" => Ok(Choice::Both),
            t => t
                .parse::<Engine>()
                .map(Choice::One)
                .map_err(|_| anyhow!("unknown engine '{t}' (expected one of: native, python, both)")),
        }
    }

    pub(crate) fn engines(&self) -> Vec<Engine> {
        match self {
            Choice::One(e) => vec![*e],
            Choice::Both => vec![Engine::Native, Engine::Python],
        }
    }

    pub(crate) fn uses_python(&self) -> bool {
        *self != Choice::One(Engine::Native)
    }
}

/// What the python engine runs for `mode`, in Python's words.
pub(crate) fn what_runs(mode: Mode, gil_enabled: bool) -> &'static str {
    match mode {
        Mode::Sequential => "a plain loop",
        Mode::Threads if gil_enabled => "ThreadPoolExecutor, under the real GIL",
        Mode::Threads => "ThreadPoolExecutor, free-threaded (no GIL)",
        Mode::Gil => "nothing: gil is the native engine's simulation",
        Mode::Processes => "multiprocessing.Pool / ProcessPoolExecutor",
        Mode::Async => "asyncio (TaskGroup / gather)",
        Mode::AsyncOffload => "asyncio + loop.run_in_executor",
        Mode::Interpreters => "InterpreterPoolExecutor (3.14+)",
        Mode::Dask => "dask.distributed (LocalCluster, or --scheduler)",
        Mode::Ray => "ray (ray.init locally, or --address)",
    }
}

/// Why `mode` cannot run on the python engine with `py`, or None when it can.
pub(crate) fn python_refusal(mode: Mode, py: &Interpreter) -> Option<String> {
    match mode {
        Mode::Gil => Some(
            "mode 'gil' is parlab's simulation of CPython's GIL and does not run on the python engine: its threads \
             ARE the GIL (use --mode threads with --engine python)"
                .to_string(),
        ),
        Mode::Interpreters if !py.has_interpreter_pool => Some(format!(
            "mode 'interpreters' needs Python 3.14 (InterpreterPoolExecutor); '{}' is Python {}",
            py.path, py.version
        )),
        Mode::Dask | Mode::Ray => py.engine_error(mode),
        _ => None,
    }
}

/// Why `mode` cannot run on the native engine, or None when it can.
pub(crate) fn native_refusal(mode: Mode) -> Option<String> {
    mode.python_only().then(|| format!("mode '{mode}' runs only on the python engine: add --engine python"))
}

/// The experiment set to run on `engine` (with `py` for the python engine), or why it cannot.
pub(crate) fn on_engine(exp: &Experiment, engine: Engine, py: Option<&Interpreter>) -> Result<Experiment> {
    let mut e = exp.clone();
    e.engine = engine;
    match engine {
        Engine::Native => {
            if let Some(why) = native_refusal(exp.mode) {
                bail!(why);
            }
            e.python = None;
        }
        Engine::Python => {
            let py = py.ok_or_else(|| anyhow!("the python engine has no interpreter"))?;
            if let Some(why) = python_refusal(exp.mode, py) {
                bail!(why);
            }
            e.python = Some(py.reference());
        }
    }
    Ok(e)
}

/// What `--engine`, `--python`, `--scheduler` and `--address` ask for, checked.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub choice: Choice,
    /// The interpreter, detected (only when the python engine is chosen).
    pub python: Option<Interpreter>,
    pub scheduler: Option<String>,
    pub address: Option<String>,
}

impl Selection {
    pub(crate) fn native() -> Selection {
        Selection { choice: Choice::One(Engine::Native), python: None, scheduler: None, address: None }
    }

    /// Reads the flags, detecting the interpreter when the python engine is chosen (a missing, old or broken one
    /// is an error naming its path).
    pub(crate) fn from_flags(
        engine: Option<&str>,
        python: Option<&str>,
        scheduler: Option<&str>,
        address: Option<&str>,
    ) -> Result<Selection> {
        let choice = match engine {
            Some(e) => Choice::parse(e)?,
            None if python.is_some() => Choice::One(Engine::Python),
            None => Choice::One(Engine::Native),
        };
        if python.is_some() && !choice.uses_python() {
            bail!("--python applies to --engine python or both, not native");
        }
        for (flag, value) in [("--scheduler", scheduler), ("--address", address)] {
            if value.is_some_and(|v| v.trim().is_empty()) {
                bail!("{flag} '' names no address (e.g. tcp://127.0.0.1:8786 for dask, 127.0.0.1:6379 for ray)");
            }
            if value.is_some() && !choice.uses_python() {
                bail!("{flag} applies to the python engine (--engine python)");
            }
        }
        let python = if choice.uses_python() {
            Some(detect::detect(python.unwrap_or(detect::DEFAULT_PYTHON)).map_err(anyhow::Error::msg)?)
        } else {
            None
        };
        Ok(Selection { choice, python, scheduler: scheduler.map(str::to_string), address: address.map(str::to_string) })
    }

    /// `--scheduler` and `--address` need their mode among the ones run.
    pub(crate) fn check_cluster_modes(&self, modes: &[Mode]) -> Result<()> {
        if self.scheduler.is_some() && !modes.contains(&Mode::Dask) {
            bail!("--scheduler applies only to --mode dask (the address of a running Dask scheduler)");
        }
        if self.address.is_some() && !modes.contains(&Mode::Ray) {
            bail!("--address applies only to --mode ray (the address of a running Ray cluster)");
        }
        Ok(())
    }

    /// Each experiment on each chosen engine, native first. With `both`, a mode one engine cannot run (gil,
    /// dask, ...) runs on the other only; a mode no chosen engine runs is an error saying why.
    pub(crate) fn expand(&self, exps: &[Experiment]) -> Result<Vec<Experiment>> {
        let mut out = Vec::new();
        for exp in exps {
            let mut exp = exp.clone();
            exp.cluster = match exp.mode {
                Mode::Dask => self.scheduler.clone(),
                Mode::Ray => self.address.clone(),
                _ => None,
            };
            let mut why = Vec::new();
            for engine in self.choice.engines() {
                match on_engine(&exp, engine, self.python.as_ref()) {
                    Ok(e) => out.push(e),
                    Err(e) => why.push(e),
                }
            }
            if why.len() == self.choice.engines().len() {
                return Err(why.swap_remove(0));
            }
        }
        Ok(out)
    }

    /// A line offering a free-threaded build on PATH when the python engine runs a GIL build.
    pub(crate) fn free_threaded_offer(&self) -> Option<String> {
        let py = self.python.as_ref().filter(|p| p.gil_enabled)?;
        let found = detect::free_threaded_on_path();
        let first = found.first()?;
        Some(format!("{} has a GIL; a free-threaded build is on PATH: --python {}", py.path, first.display()))
    }
}

/// For `lint --verify`: the experiments on each engine a lesson names (default: native), or why an engine is
/// skipped (no working python3, or a mode it cannot run). A mode one engine cannot run (gil on python) is left out
/// of that engine's runs, like `compare --engine both` does.
pub(crate) fn verify_engines(
    exps: &[Experiment],
    engines: &[Engine],
) -> Vec<(Engine, Result<Vec<Experiment>, String>)> {
    let engines = if engines.is_empty() { vec![Engine::Native] } else { engines.to_vec() };
    engines
        .into_iter()
        .map(|engine| {
            let py = match engine {
                Engine::Python => match detect::detect(detect::DEFAULT_PYTHON) {
                    Ok(py) => Some(py),
                    Err(why) => {
                        assert!(std::env::var_os("CI").is_none(), "python3 is required on CI to verify: {why}");
                        return (engine, Err(format!("the python engine is unavailable: {why}")));
                    }
                },
                Engine::Native => None,
            };
            let on: Vec<Experiment> = exps
                .iter()
                .filter(|e| e.mode.runs_on(engine))
                .filter_map(|e| on_engine(e, engine, py.as_ref()).ok())
                .collect();
            let out = if on.len() == exps.iter().filter(|e| e.mode.runs_on(engine)).count() {
                Ok(on)
            } else {
                Err(format!("a mode of it cannot run on the {engine} engine here"))
            };
            (engine, out)
        })
        .collect()
}

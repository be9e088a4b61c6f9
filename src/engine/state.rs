//! The TUI's engine choice as plain data (no I/O): which engine runs (`e` cycles native, python, both), what the
//! interpreter is (detected off the UI thread and handed in), and why the python engine or one of its modes is
//! unavailable. The app asks it to set experiments on the chosen engines.

use crate::experiment::{Engine, Experiment, Mode};

use super::detect::Interpreter;
use super::{Choice, Selection, python_refusal};

/// What is known of the python engine's interpreter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PythonStatus {
    Detecting,
    Ready(Interpreter),
    /// Why it cannot run (missing, too old, broken), one line naming the path.
    Unavailable(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EngineState {
    pub choice: Choice,
    pub python: PythonStatus,
}

impl Default for EngineState {
    fn default() -> EngineState {
        EngineState { choice: Choice::One(Engine::Native), python: PythonStatus::Detecting }
    }
}

impl EngineState {
    pub(crate) fn interpreter(&self) -> Option<&Interpreter> {
        match &self.python {
            PythonStatus::Ready(py) => Some(py),
            _ => None,
        }
    }

    /// `e`: native → python → both → native. The python engine is only chosen when its interpreter works; the
    /// message says what was chosen, or why not (the app keeps working on the native engine).
    pub(crate) fn cycle(&mut self) -> Result<String, String> {
        let next = match self.choice {
            Choice::One(Engine::Native) => Choice::One(Engine::Python),
            Choice::One(Engine::Python) => Choice::Both,
            Choice::Both => Choice::One(Engine::Native),
        };
        if next.uses_python() {
            match &self.python {
                PythonStatus::Detecting => {
                    return Err("the python engine is not ready yet: its interpreter is still being asked".into());
                }
                PythonStatus::Unavailable(why) => return Err(format!("the python engine is unavailable: {why}")),
                PythonStatus::Ready(_) => {}
            }
        }
        self.choice = next;
        Ok(match (self.choice, self.interpreter()) {
            (Choice::One(Engine::Native), _) => "engine: native (parlab's Rust kernels, the GIL simulated)".into(),
            (c, Some(py)) => {
                let both = if c == Choice::Both { "both (native and python side by side)" } else { "python" };
                let missing: Vec<String> =
                    py.unavailable_modes().into_iter().map(|(m, why)| format!("{m}: {why}")).collect();
                let missing =
                    if missing.is_empty() { String::new() } else { format!(" · unavailable: {}", missing.join("; ")) };
                format!("engine: {both} · {} {}{missing}", py.path, py.describe())
            }
            (_, None) => "engine: python".into(),
        })
    }

    /// The header's words for the engine: `native`, `python 3.11.7 (GIL)`, `native + python 3.13.0 (free-threaded)`.
    pub(crate) fn header(&self) -> String {
        let py = match &self.python {
            PythonStatus::Ready(py) => {
                format!("python {} ({})", py.version, if py.gil_enabled { "GIL" } else { "free-threaded" })
            }
            PythonStatus::Detecting => "python …".into(),
            PythonStatus::Unavailable(_) => "python unavailable".into(),
        };
        match self.choice {
            Choice::One(Engine::Native) => "native".into(),
            Choice::One(Engine::Python) => py,
            Choice::Both => format!("native + {py}"),
        }
    }

    /// Whether the `m` key should offer `mode` on the chosen engines.
    pub(crate) fn offers(&self, mode: Mode) -> bool {
        self.choice.engines().into_iter().any(|e| match e {
            Engine::Native => mode.runs_on(Engine::Native),
            Engine::Python => self.interpreter().is_some_and(|py| python_refusal(mode, py).is_none()),
        })
    }

    /// Why no chosen engine offers `mode` (the install hint, the version it needs, the engine it needs).
    pub(crate) fn why_not(&self, mode: Mode) -> String {
        let py = self.interpreter().filter(|_| self.choice.uses_python());
        py.and_then(|py| python_refusal(mode, py))
            .or_else(|| super::native_refusal(mode))
            .unwrap_or_else(|| format!("mode '{mode}' does not run on the chosen engine"))
    }

    /// The experiments on the chosen engines (each mode's engines together, native first).
    pub(crate) fn apply(&self, exps: &[Experiment]) -> Result<Vec<Experiment>, String> {
        let sel = Selection { choice: self.choice, python: self.interpreter().cloned(), ..Selection::native() };
        sel.expand(exps).map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::detect::EngineFacts;
    use crate::experiment::{Fit, Knobs};

    pub(crate) fn interpreter(gil: bool) -> Interpreter {
        Interpreter {
            path: "/usr/bin/python3".into(),
            executable: "/usr/bin/python3".into(),
            version: "3.11.7".into(),
            implementation: "cpython".into(),
            gil_enabled: gil,
            start_methods: vec!["fork".into(), "spawn".into(), "forkserver".into()],
            has_interpreter_pool: false,
            dask: EngineFacts { available: true, version: Some("2026.8.0".into()), error: None },
            ray: EngineFacts {
                available: false,
                version: None,
                error: Some("ray is not installed for /usr/bin/python3: pip install ray".into()),
            },
        }
    }

    #[test]
    fn an_unavailable_python_keeps_the_native_engine_and_says_why() {
        let mut s = EngineState::default();
        assert!(s.cycle().unwrap_err().contains("still being asked"));
        s.python = PythonStatus::Unavailable("python interpreter 'python3' was not found on PATH".into());
        assert_eq!(
            s.cycle().unwrap_err(),
            "the python engine is unavailable: python interpreter 'python3' was not found on PATH"
        );
        assert_eq!(s.choice, Choice::One(Engine::Native));
        assert_eq!(s.header(), "native");
    }

    #[test]
    fn e_cycles_native_python_both_and_names_the_unavailable_modes() {
        let mut s = EngineState { python: PythonStatus::Ready(interpreter(true)), ..EngineState::default() };
        let msg = s.cycle().unwrap();
        assert!(msg.starts_with("engine: python · /usr/bin/python3 Python 3.11.7 (GIL)"), "{msg}");
        assert!(msg.contains("interpreters: mode 'interpreters' needs Python 3.14"), "{msg}");
        assert!(msg.contains("ray: ray is not installed for /usr/bin/python3: pip install ray"), "{msg}");
        assert_eq!(s.header(), "python 3.11.7 (GIL)");
        assert!(!s.offers(Mode::Gil) && s.offers(Mode::Dask) && !s.offers(Mode::Ray));
        s.cycle().unwrap();
        assert_eq!(s.header(), "native + python 3.11.7 (GIL)");
        assert!(s.offers(Mode::Gil), "both engines: gil runs on the native one");
        let exps: Vec<Experiment> = [Mode::Sequential, Mode::Gil, Mode::Threads]
            .iter()
            .map(|m| Experiment::build("fib:5".parse().unwrap(), 2, *m, &Knobs::default(), Fit::Lenient, 2).unwrap())
            .collect();
        let runs: Vec<(Mode, Engine)> = s.apply(&exps).unwrap().iter().map(|e| (e.mode, e.engine)).collect();
        assert_eq!(
            runs,
            vec![
                (Mode::Sequential, Engine::Native),
                (Mode::Sequential, Engine::Python),
                (Mode::Gil, Engine::Native),
                (Mode::Threads, Engine::Native),
                (Mode::Threads, Engine::Python),
            ]
        );
        s.cycle().unwrap();
        assert_eq!(s.header(), "native");
        assert!(!s.offers(Mode::Dask));
    }
}

/// The engine keys in the app: `e`, the header, `r` and `c` on the chosen engines.
#[cfg(test)]
mod app_tests {
    use crate::app::tests::app;
    use crate::app::{AppEvent, Effect, Key, Screen};
    use crate::experiment::{Engine, Experiment, Mode};

    fn press(app: &mut crate::app::App, c: char) -> Vec<Effect> {
        app.update(AppEvent::Key(Key::Char(c)))
    }

    fn started(fx: &[Effect]) -> Vec<Experiment> {
        fx.iter().filter_map(|e| if let Effect::Start { exp, .. } = e { Some(exp.clone()) } else { None }).collect()
    }

    #[test]
    fn the_python_engine_runs_the_panel_refuses_gil_and_compares_both_engines_together() {
        let mut app = app();
        app.update(AppEvent::Key(Key::Enter));
        app.update(AppEvent::Key(Key::Right));
        app.update(AppEvent::Python(Err("python interpreter 'python3' was not found on PATH".into())));
        press(&mut app, 'e');
        assert!(app.status.as_ref().unwrap().1.contains("unavailable: python interpreter 'python3' was not found"));
        assert_eq!(started(&press(&mut app, 'r'))[0].engine, Engine::Native, "the app keeps working natively");
        app.update(AppEvent::Key(Key::Esc));

        app.update(AppEvent::Python(Ok(super::tests::interpreter(true))));
        press(&mut app, 'e');
        assert!(app.status.as_ref().unwrap().1.starts_with("engine: python"), "{:?}", app.status);
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Gil);
        assert!(started(&press(&mut app, 'r')).is_empty());
        assert!(app.status.as_ref().unwrap().1.contains("its threads ARE the GIL"), "{:?}", app.status);
        press(&mut app, 'm');
        let mode = app.panel.setup.as_ref().unwrap().mode;
        assert_ne!(mode, Mode::Gil, "m skips what the engine cannot run");
        let exp = started(&press(&mut app, 'r')).remove(0);
        assert_eq!((exp.mode, exp.engine), (mode, Engine::Python));
        assert_eq!(exp.python.as_ref().unwrap().version, "3.11.7");
        app.update(AppEvent::Key(Key::Esc));

        let top = |app: &crate::app::App| {
            let buf = crate::ui::render_frame_for_bench(app, 120, 30);
            (0..120).map(|x| buf[(x, 0)].symbol().to_string()).collect::<String>()
        };
        assert!(top(&app).contains("python 3.11.7 (GIL)"), "the header names the interpreter: {}", top(&app));
        press(&mut app, 'e');
        assert!(top(&app).contains("native + python 3.11.7 (GIL)"), "{}", top(&app));
        let fx = press(&mut app, 'c');
        assert_eq!(app.screen, Screen::Compare);
        let c = app.compare.as_ref().unwrap();
        let rows: Vec<(Mode, Engine)> = c.exps.iter().map(|e| (e.mode, e.engine)).collect();
        assert_eq!(
            rows,
            vec![
                (Mode::Sequential, Engine::Native),
                (Mode::Sequential, Engine::Python),
                (mode, Engine::Native),
                (mode, Engine::Python)
            ]
        );
        assert_eq!(started(&fx).len(), 1, "one run at a time");
    }
}

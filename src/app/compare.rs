//! Runs and the compare screen: starting runs (single, repeated, compared), following their events and ends.
//! Part of the app's state machine: it returns effects and starts no process itself.

use super::*;

impl Compare {
    pub(crate) fn live(&self) -> bool {
        self.runs.last().is_some_and(|r| r.live)
    }

    pub(crate) fn done(&self) -> bool {
        !self.live() && (self.cancelled || self.runs.len() == self.exps.len())
    }

    /// Speedup of run `i` against the sequential run of this compare.
    pub(crate) fn speedup(&self, i: usize) -> Option<f64> {
        let r = self.runs.get(i).filter(|r| r.succeeded())?;
        // Against the sequential run of its own engine.
        let engine = r.exp().map(|e| e.engine);
        let base = self.runs.iter().find(|b| {
            b.exp().is_some_and(|e| e.mode == Mode::Sequential && Some(e.engine) == engine) && b.succeeded()
        })?;
        (r.wall_ms() > 0.0).then(|| base.wall_ms() / r.wall_ms())
    }
}

impl App {
    pub(super) fn on_compare_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        match key {
            Key::Esc => {
                let cancelled = self.cancel_runs(fx);
                if !cancelled {
                    self.adopt_compare_run();
                    self.screen = Screen::Lesson;
                }
            }
            Key::Char('c') => self.start_compare(fx),
            Key::Char('e') => self.cycle_engine(),
            Key::Char('r') => {
                self.adopt_compare_run();
                self.screen = Screen::Lesson;
                self.run(fx);
            }
            Key::Char(c) if Knob::of_char(c).is_some() => self.knob(c),
            _ => {}
        }
    }

    /// Back from a compare: its run of the panel's current setup becomes the panel's run, so the panel's title,
    /// lanes and figures all describe one run.
    pub(super) fn adopt_compare_run(&mut self) {
        let Some(exp) = self.current_experiment() else { return };
        let Some(c) = &self.compare else { return };
        let Some(r) = c.runs.iter().rev().find(|r| r.succeeded() && r.exp() == Some(&exp)) else { return };
        if self.panel.run.as_ref().is_none_or(|p| !p.live && p.id < r.id) {
            let mut r = r.clone();
            if let Some(s) = &self.panel.setup {
                r.origin = s.id.clone();
            }
            self.panel.run = Some(r);
            self.panel.repeat = None;
        }
    }

    /// Cancels whatever is running; false when nothing was.
    pub(super) fn cancel_runs(&mut self, fx: &mut Vec<Effect>) -> bool {
        if !self.is_live() {
            return false;
        }
        self.cancel_all(fx);
        self.info("cancelled: the lab and all its workers were stopped");
        true
    }

    pub(super) fn busy_message(&self) -> Option<&'static str> {
        if matches!(self.panel.check, Some(Check::Running { .. })) {
            Some("an exercise check is running (Esc cancels it)")
        } else if self.is_live() {
            Some("a run is going (Esc cancels it)")
        } else {
            None
        }
    }

    pub(super) fn runnable_setup(&mut self) -> Option<Setup> {
        let Some(setup) = self.panel.setup.clone() else {
            self.error("this section has no experiment to run");
            return None;
        };
        if let Some(m) = self.busy_message() {
            self.error(m);
            return None;
        }
        Some(setup)
    }

    pub(super) fn next_id(&mut self) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        id
    }

    pub(super) fn run(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if let Some(name) = &setup.demo {
            // At its default size, which finishes in a few seconds (`parlab demo NAME --size N` for others).
            match DemoSpec::new(name, None) {
                Ok(demo) => {
                    let id = self.next_id();
                    self.panel.run = Some(Run::new(id, Job::Demo(demo.clone()), &setup.id));
                    fx.push(Effect::StartDemo { run: id, demo });
                }
                Err(e) => self.error(e),
            }
            return;
        }
        if self.engine.choice == crate::engine::Choice::Both {
            // Both engines: the setup's mode on each, side by side in the compare view.
            return self.compare_these(&setup, vec![setup.mode], fx);
        }
        match setup.experiment(setup.mode, self.cores).and_then(|e| self.on_engine(e)) {
            Ok(exp) => {
                self.panel.repeat = None;
                self.start_panel_run(exp, &setup.id, fx);
            }
            Err(e) => self.error(e),
        }
    }

    pub(super) fn start_panel_run(&mut self, exp: Experiment, origin: &str, fx: &mut Vec<Effect>) {
        let id = self.next_id();
        self.panel.run = Some(Run::new(id, Job::Experiment(exp.clone()), origin));
        fx.push(Effect::Start { run: id, exp });
    }

    /// `R`: the setup `REPEATS` times, one run after another; the panel then shows their median with min and max.
    pub(super) fn repeat(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if setup.demo.is_some() {
            return self.info("a demo repeats its own measurements: r runs it");
        }
        if self.engine.choice == crate::engine::Choice::Both {
            return self.error("R repeats on one engine: e chooses native or python");
        }
        match setup.experiment(setup.mode, self.cores).and_then(|e| self.on_engine(e)) {
            Ok(exp) => {
                self.panel.repeat =
                    Some(Repeat { exp: exp.clone(), want: REPEATS, walls_ns: Vec::new(), stopped: false });
                self.info(format!("running this setup {REPEATS} times, one after another (Esc cancels)"));
                self.start_panel_run(exp, &setup.id, fx);
            }
            Err(e) => self.error(e),
        }
    }

    /// The modes `c` compares: the lesson's, the current one, and the sequential baseline; 2 to 4 of them.
    pub(crate) fn compare_modes(setup: &Setup) -> Vec<Mode> {
        let mut modes = vec![Mode::Sequential];
        for m in std::iter::once(setup.mode).chain(setup.modes.iter().copied()) {
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
        if modes.len() == 1 {
            modes.extend([Mode::Threads, Mode::Processes]);
        }
        modes.truncate(MAX_COMPARE);
        modes
    }

    pub(super) fn start_compare(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if let Some(name) = &setup.demo {
            return self.info(format!("the {name} demo compares its own cases in one run: r runs it"));
        }
        let mut modes = App::compare_modes(&setup);
        if self.engine_for(&setup).choice == crate::engine::Choice::Both {
            // Each mode runs on both engines: half as many modes keep the view at most MAX_COMPARE runs.
            modes.truncate(MAX_COMPARE / 2);
        }
        self.compare_these(&setup, modes, fx);
    }

    /// Compares `modes` of `setup` on the chosen engines (each mode's engines together).
    pub(super) fn compare_these(&mut self, setup: &Setup, modes: Vec<Mode>, fx: &mut Vec<Effect>) {
        let engines = self.engine_for(setup);
        // A mode the chosen engines cannot run here (dask not installed, ...) is left out, saying why.
        let (modes, left): (Vec<Mode>, Vec<Mode>) = modes.into_iter().partition(|m| engines.offers(*m));
        let why: Vec<String> = left.iter().map(|m| engines.why_not(*m)).collect();
        if modes.is_empty() {
            return self.error(why.join("; "));
        }
        let exps: Result<Vec<Experiment>, String> = modes
            .into_iter()
            .map(|m| setup.experiment(m, self.cores))
            .collect::<Result<Vec<_>, String>>()
            .and_then(|e| engines.apply(&e));
        match exps {
            Ok(exps) => {
                let id = self.next_id();
                let first = exps[0].clone();
                self.compare = Some(Compare {
                    exps,
                    runs: vec![Run::new(id, Job::Experiment(first.clone()), &setup.id)],
                    cancelled: false,
                });
                self.screen = Screen::Compare;
                fx.push(Effect::Start { run: id, exp: first });
                if !why.is_empty() {
                    self.info(format!("left out: {}", why.join("; ")));
                }
            }
            Err(e) => self.error(e),
        }
    }

    pub(super) fn run_mut(&mut self, id: u64) -> Option<&mut Run> {
        if let Some(r) = self.panel.run.as_mut().filter(|r| r.id == id) {
            return Some(r);
        }
        self.compare.as_mut()?.runs.iter_mut().find(|r| r.id == id)
    }

    /// A run wherever it is now: the panel, the compare, or a panel waiting in the stash.
    pub(super) fn any_run_mut(&mut self, id: u64) -> Option<&mut Run> {
        let here = self.panel.run.as_ref().is_some_and(|r| r.id == id)
            || self.compare.as_ref().is_some_and(|c| c.runs.iter().any(|r| r.id == id));
        if here {
            return self.run_mut(id);
        }
        self.stash.values_mut().filter_map(|p| p.run.as_mut()).find(|r| r.id == id)
    }

    pub(super) fn on_others(&mut self, cores: f32) {
        let v = f64::from(cores.max(0.0));
        if let Some(r) = self.panel.run.as_mut().filter(|r| r.live) {
            r.others.0 += v;
            r.others.1 += 1;
        }
        if let Some(r) = self.compare.as_mut().and_then(|c| c.runs.last_mut()).filter(|r| r.live) {
            r.others.0 += v;
            r.others.1 += 1;
        }
    }

    pub(super) fn on_lab(&mut self, id: u64, ev: LabEvent) {
        if let Some(r) = self.run_mut(id).filter(|r| r.live) {
            // The lab client's watchdog: stopped processes stall the run; say so on the status line.
            let stalled = if let LabEvent::Stalled(msg) = &ev { Some(msg.clone()) } else { None };
            r.ingest(ev);
            if let Some(msg) = stalled {
                self.status = Some((StatusKind::Error, msg));
            }
        }
    }

    pub(super) fn on_lab_exit(&mut self, id: u64, error: Option<String>, now_ns: u64, fx: &mut Vec<Effect>) {
        let Some(r) = self.run_mut(id).filter(|r| r.live) else {
            return;
        };
        r.live = false;
        let mut error = error;
        if error.is_none()
            && r.demo().is_some()
            && r.timeline.is_finished()
            && r.timeline.demo.is_none()
            && r.error().is_none()
        {
            error = Some("the demo ended without its report".into());
        }
        if !r.timeline.is_finished() || error.is_some() {
            let t0 = r.timeline.t0_ns;
            let msg = error.unwrap_or_else(|| "the lab ended before the run finished".into());
            if let Some(end) = r.timeline.end.as_mut() {
                end.error.get_or_insert(msg);
            } else {
                r.timeline.ingest(LabEvent::Finished(RunEnd {
                    t0_ns: t0,
                    t_end_ns: now_ns.max(t0),
                    checksum: 0,
                    tasks_done: 0,
                    error: Some(msg),
                }));
            }
        }
        // What follows needs a few figures of the run, not a copy of its (possibly huge) timeline.
        let failed = r.error().map(|e| format!("the {} failed: {e}", r.what()));
        let succeeded = r.succeeded();
        let wall = r.wall_ns();
        let exp = r.exp().cloned();
        let origin = r.origin.clone();
        let in_compare = self.compare.as_ref().is_some_and(|c| c.runs.iter().any(|x| x.id == id));
        let in_panel = self.panel.run.as_ref().is_some_and(|r| r.id == id);

        // A repeat goes on with its next run, or ends with the median.
        let mut next_repeat = None;
        if in_panel
            && let Some(rep) = self.panel.repeat.as_mut()
            && exp.as_ref() == Some(&rep.exp)
        {
            if succeeded {
                rep.walls_ns.push(wall);
            } else {
                rep.stopped = true;
            }
            if !rep.stopped && !rep.done() {
                next_repeat = Some(rep.exp.clone());
            }
            if rep.done() && succeeded {
                let n = rep.walls_ns.len();
                self.info(format!("{n} runs of this setup done: the panel shows their median"));
            }
        }
        let repeat_median = self.panel.repeat.as_ref().filter(|_| in_panel).and_then(Repeat::spread).map(|s| s.0);
        if let Some(e) = exp.as_ref().filter(|e| e.mode == Mode::Sequential && succeeded) {
            self.remember_baseline((e.workload, e.tasks, e.payload), repeat_median.unwrap_or(wall));
        }
        if let Some(msg) = failed {
            self.error(msg);
        }
        if let Some(exp) = next_repeat {
            let n = self.panel.repeat.as_ref().map_or(0, |r| r.walls_ns.len());
            self.info(format!("run {} of {REPEATS} of this setup (Esc cancels)", n + 1));
            return self.start_panel_run(exp, &origin, fx);
        }
        if in_compare {
            self.compare_next(fx);
        } else if in_panel
            && self.panel.repeat.as_ref().is_none_or(|r| r.done() && Some(&r.exp) == exp.as_ref())
            && let Some(sp) = self.panel.run.as_ref().and_then(|r| self.speedup_of(r))
            && let Some(exp) = exp
        {
            self.prediction_met(sp, &exp, false);
        }
    }

    pub(super) fn compare_next(&mut self, fx: &mut Vec<Effect>) {
        let id = self.next_run;
        let Some(c) = self.compare.as_mut() else {
            return;
        };
        if c.cancelled || c.live() {
            return;
        }
        if c.runs.len() < c.exps.len() {
            let exp = c.exps[c.runs.len()].clone();
            let origin = c.runs[0].origin.clone();
            c.runs.push(Run::new(id, Job::Experiment(exp.clone()), &origin));
            self.next_run += 1;
            fx.push(Effect::Start { run: id, exp });
            return;
        }
        // All done: the run of the predicted setup meets a waiting prediction.
        let Some(want) = self.panel.prediction.as_ref().map(|p| p.exp.clone()) else { return };
        let sp = self
            .compare
            .as_ref()
            .and_then(|c| c.runs.iter().position(|r| r.exp() == Some(&want)).and_then(|i| c.speedup(i)));
        if let Some(sp) = sp {
            self.prediction_met(sp, &want, false);
        }
    }
}

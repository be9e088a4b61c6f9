//! Exercises: predictions, checks, hints, and the prediction prompt. Part of the app's state machine.

use super::*;

impl App {
    pub(super) fn on_prompt_key(&mut self, key: Key) {
        let Some(p) = self.prompt.as_mut() else {
            return;
        };
        match key {
            Key::Char(c) if (c.is_ascii_digit() || c == '.') && p.text.len() < 8 => p.text.push(c),
            Key::Backspace => {
                p.text.pop();
            }
            Key::Esc => self.prompt = None,
            Key::Enter => {
                let text = p.text.clone();
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => {
                        self.prompt = None;
                        let Some(exp) = self.current_experiment() else {
                            return self.error("these knobs do not make a valid experiment: change them first");
                        };
                        let by_check = self.panel.setup.as_ref().is_some_and(|s| s.exercise.is_some());
                        self.panel.prediction = Some(Prediction { value: v, exp, by_check });
                        self.panel.predicted = None;
                        let what = if by_check {
                            "x checks the exercise with these knobs"
                        } else {
                            "r runs this setup (the speedup needs a sequential run of the same workload: c compares)"
                        };
                        self.info(format!("prediction {} noted; {what}", fmt_num(v)));
                    }
                    _ => self.error(format!("'{text}' is not a positive number (type e.g. 1.8, then Enter)")),
                }
            }
            _ => {}
        }
    }

    /// A measurement of `exp`: it meets the waiting prediction only if that was made for this very setup.
    pub(super) fn prediction_met(&mut self, measured: f64, exp: &Experiment, by_check: bool) {
        if !self.panel.prediction.as_ref().is_some_and(|p| p.exp == *exp && p.by_check == by_check) {
            return;
        }
        let Some(p) = self.panel.prediction.take() else {
            return;
        };
        self.panel.predicted = Some((p.value, measured));
        if let Some(setup) = &self.panel.setup {
            let id = setup.id.clone();
            self.progress.record_prediction(&id, p.value, measured);
        }
    }

    pub(super) fn check(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.panel.setup.clone() else {
            return self.info("x checks an exercise; this section has none");
        };
        let Some(spec) = setup.exercise.clone() else {
            self.info("x checks an exercise; the selected block is not one (Tab selects another)");
            return;
        };
        if let Some(m) = self.busy_message() {
            return self.error(m);
        }
        let engines = self.engine_for(&setup);
        match setup.experiment(setup.mode, self.cores).and_then(|e| engines.apply(&[e])).map(|mut e| e.swap_remove(0)) {
            Ok(exp) => {
                let id = self.next_id();
                self.panel.check = Some(Check::Running { run: id, exercise: spec.id.clone(), setup: exp.clone() });
                fx.push(Effect::Check { run: id, spec: Box::new(spec), setup: exp });
            }
            Err(e) => self.error(e),
        }
    }

    pub(super) fn on_check_done(&mut self, run: u64, result: Result<CheckOutcome, String>, fx: &mut Vec<Effect>) {
        let Some(Check::Running { run: r, exercise, setup }) = self.panel.check.clone() else {
            return;
        };
        if r != run {
            return;
        }
        match result {
            Ok(outcome) => {
                self.progress.record_exercise(&exercise, outcome.passed, outcome.measured);
                fx.push(Effect::SaveProgress);
                let measured = outcome.measured;
                let here = self.panel.setup.as_ref().is_some_and(|s| s.id == exercise);
                if here {
                    self.panel.check = Some(Check::Done(outcome));
                    self.prediction_met(measured, &setup, true);
                } else {
                    // The learner moved on: the verdict waits with its exercise.
                    self.panel.check = None;
                    if let Some(p) = self.stash.get_mut(&exercise) {
                        p.check = Some(Check::Done(outcome));
                    }
                    let verdict = if self.progress.exercise_passed(&exercise) { "passed" } else { "not passed yet" };
                    self.info(format!("the check of {exercise} is done: {verdict}"));
                }
            }
            Err(e) => self.panel.check = Some(Check::Failed(e)),
        }
    }

    pub(super) fn hint(&mut self, fx: &mut Vec<Effect>) {
        let Some(spec) = self.panel.setup.as_ref().and_then(|s| s.exercise.clone()) else {
            self.info("h shows hints of an exercise; the panel shows none (Tab selects another block)");
            return;
        };
        let shown = self.hints_shown(&spec.id);
        if shown >= spec.hints.len() {
            self.info("no more hints");
            return;
        }
        self.view.hints.insert(spec.id.clone(), shown + 1);
        self.progress.hint_used(&spec.id, shown + 1);
        fx.push(Effect::SaveProgress);
    }

    pub(super) fn predict(&mut self) {
        let Some(setup) = &self.panel.setup else {
            return self.info("nothing to predict here: this section has no experiment");
        };
        if setup.demo.is_some() {
            return self.info("demos measure several things; predictions are for experiments and exercises");
        }
        let label = match setup.exercise.as_ref().map(|e| e.goal.metric) {
            Some(Metric::WallMs) => "predict the wall time in ms",
            Some(Metric::Efficiency) => "predict the efficiency (0..1)",
            Some(Metric::OverheadShare) => "predict the overhead share (0..1)",
            _ => "predict the speedup (×)",
        };
        self.prompt = Some(Prompt { label: label.into(), text: String::new() });
    }
}

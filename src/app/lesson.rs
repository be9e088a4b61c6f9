//! The lesson screen: sections, blocks and the panel each selects, scrolling by the face's prose measure,
//! quizzes and knob keys, and the setups lessons describe. Part of the app's state machine (no terminal, no I/O).

use super::*;
use crate::experiment::knob::{Stuck, Tuning, TurnCtx};

impl Setup {
    pub(crate) fn may_change(&self, knob: Knob) -> bool {
        self.exercise.as_ref().is_none_or(|e| e.may_change.contains(&knob))
    }

    /// The experiment these knobs describe, validated.
    pub(crate) fn experiment(&self, mode: Mode, cores: u32) -> Result<Experiment, String> {
        Experiment::build(self.workload, self.tasks, mode, &self.knobs, Fit::Lenient, cores).map_err(String::from)
    }

    /// What kind of block it is, for titles: experiment, demo or exercise.
    pub(crate) fn kind(&self) -> &'static str {
        if self.exercise.is_some() {
            "exercise"
        } else if self.demo.is_some() {
            "demo"
        } else {
            "experiment"
        }
    }

    /// Whether the knobs that apply to the mode include `knob` (the panel shows only those).
    pub(crate) fn applies(&self, knob: Knob) -> bool {
        match knob {
            // Messages to worker processes carry it; other modes share it in memory, so it shows there once set.
            Knob::Payload => {
                self.knobs.payload.unwrap_or(0) > 0
                    || match &self.exercise {
                        Some(e) => e.may_change.contains(&Knob::Payload),
                        None => (knob.spec().shown)(self.mode),
                    }
            }
            _ => (knob.spec().shown)(self.mode),
        }
    }
}

impl App {
    pub(super) fn goto_section(&mut self, section: usize) -> Vec<Effect> {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return Vec::new();
        };
        let last = lesson.sections.len().saturating_sub(1);
        let section = section.min(last);
        let id = lesson.id.clone();
        let changed = self.view.section != section || self.view.block.is_none();
        self.view.section = section;
        self.view.scroll = 0;
        if changed {
            self.view.block = lesson.sections.get(section).and_then(|s| selectable(s).first().copied());
        }
        self.progress.mark_section(&id, section);
        if section == last {
            self.progress.lesson_done(&id);
        }
        self.pick_setup();
        vec![Effect::SaveProgress]
    }

    /// Chooses what the panel shows: the selected block when it is an experiment or exercise; with a quiz
    /// selected, the section's panel block already shown, else its first; a section without any shows none (never
    /// another section's). Knobs the learner turned are kept per block while they stay in the lesson.
    pub(super) fn pick_setup(&mut self) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let s = self.view.section;
        let Some(section) = lesson.sections.get(s) else {
            return;
        };
        let setup_of = |b: usize| -> Option<Setup> {
            match section.blocks.get(b)? {
                Block::Exercise(e) => Some(exercise_setup(e, s, b)),
                Block::Experiment(e) => Some(experiment_setup(lesson, s, b, e)),
                _ => None,
            }
        };
        let here = self.panel.setup.as_ref().filter(|p| p.section == s).map(|p| p.block);
        let chosen = self
            .view
            .block
            .and_then(setup_of)
            .or_else(|| here.and_then(setup_of))
            .or_else(|| panel_blocks(section).first().copied().and_then(setup_of));
        self.switch_panel(chosen);
    }

    /// Shows another setup in the panel. The panel it leaves waits in the stash; a live run or a running check
    /// goes on and stays in view; a finished run shown away from its own setup goes back to it.
    pub(super) fn switch_panel(&mut self, chosen: Option<Setup>) {
        let same = match (&chosen, &self.panel.setup) {
            (Some(a), Some(b)) => a.id == b.id,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        let mut old = std::mem::take(&mut self.panel);
        let carried = old.run.take_if(|r| r.live);
        let repeat = if carried.is_some() { old.repeat.take() } else { None };
        let check = old.check.take_if(|c| matches!(c, Check::Running { .. }));
        let old_id = old.setup.as_ref().map(|s| s.id.clone());
        let away = old.run.take_if(|r| old_id.as_deref() != Some(r.origin.as_str()));
        if let Some(id) = old_id {
            self.stash.insert(id, old);
        }
        let mut panel = match &chosen {
            Some(s) => self.stash.remove(&s.id).unwrap_or_else(|| Panel { setup: chosen.clone(), ..Panel::default() }),
            None => Panel::default(),
        };
        if let Some(r) = away {
            if panel.setup.as_ref().is_some_and(|s| s.id == r.origin) {
                if panel.run.as_ref().is_none_or(|p| p.id < r.id) {
                    panel.run = Some(r);
                }
            } else if let Some(home) = self.stash.get_mut(&r.origin)
                && home.run.as_ref().is_none_or(|p| p.id < r.id)
            {
                home.run = Some(r);
            }
        }
        if let Some(r) = carried {
            panel.run = Some(r);
            panel.repeat = repeat;
        }
        if check.is_some() {
            panel.check = check;
        }
        self.panel = panel;
    }

    /// Tab / Shift-Tab: the next or previous selectable block of the section (round the end).
    pub(super) fn step_block(&mut self, forward: bool) {
        let Some(section) = self.section() else { return };
        let blocks = selectable(section);
        if blocks.is_empty() {
            return self.info("this section has no experiment, exercise or quiz to select");
        }
        let n = blocks.len();
        let at = self.view.block.and_then(|b| blocks.iter().position(|x| *x == b));
        let next = match (at, forward) {
            (None, true) => 0,
            (None, false) => n - 1,
            (Some(i), true) => (i + 1) % n,
            (Some(i), false) => (i + n - 1) % n,
        };
        let block = blocks[next];
        let what = match &section.blocks[block] {
            Block::Quiz(_) => {
                let quizzes: Vec<usize> = section
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| matches!(b, Block::Quiz(_)))
                    .map(|x| x.0)
                    .collect();
                let k = quizzes.iter().position(|q| *q == block).unwrap_or(0);
                let of = if quizzes.len() > 1 { format!(" {} of {}", k + 1, quizzes.len()) } else { String::new() };
                format!("quiz{of} selected: 1-9 answers it")
            }
            _ => String::new(),
        };
        self.view.block = Some(block);
        self.pick_setup();
        self.scroll_to_block(block);
        if what.is_empty() {
            if let (Some(s), Some((i, of))) = (self.panel.setup.as_ref(), self.panel_position()) {
                let text = format!("{} {i} of {of}: {}", s.kind(), s.id);
                self.info(text);
            }
        } else {
            self.info(what);
        }
    }

    /// Scrolls the prose so the block's first lines are in view.
    pub(super) fn scroll_to_block(&mut self, block: usize) {
        let prose = (self.prose_layout)(self, Some(block));
        let Some(range) = prose.block else { return };
        let h = prose.height as usize;
        let top = self.view.scroll as usize;
        let max = prose.lines.saturating_sub(h);
        let want = if range.start < top {
            range.start.saturating_sub(1)
        } else if range.end > top + h {
            // Its end into view, but never its start out of it.
            (range.end - h).min(range.start.saturating_sub(1))
        } else {
            top
        };
        self.view.scroll = want.min(max) as u16;
    }

    pub(super) fn on_scroll(&mut self, up: bool, _column: u16) {
        if self.help || self.too_small() {
            return;
        }
        match self.screen {
            Screen::List => {
                let n = self.visible().len();
                let sel = &mut self.list.selected;
                *sel = if up { sel.saturating_sub(1) } else { (*sel + 1).min(n.saturating_sub(1)) };
            }
            Screen::Lesson => self.scroll_by(if up { -3 } else { 3 }),
            Screen::Compare | Screen::Replay => {}
        }
    }

    pub(super) fn scroll_by(&mut self, delta: i32) {
        let prose = (self.prose_layout)(self, None);
        let max = (prose.lines as u16).saturating_sub(prose.height) as i32;
        self.view.scroll = (self.view.scroll as i32 + delta).clamp(0, max.max(0)) as u16;
    }

    pub(super) fn on_lesson_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        let page = self.size.1.saturating_sub(8).max(1) as i32;
        match key {
            Key::Up => self.scroll_by(-1),
            Key::Down => self.scroll_by(1),
            Key::PageUp => self.scroll_by(-page),
            Key::PageDown | Key::Char(' ') => self.scroll_by(page),
            Key::Home => self.view.scroll = 0,
            Key::End => self.scroll_by(i32::MAX / 2),
            Key::Tab => self.step_block(true),
            Key::BackTab => self.step_block(false),
            Key::Left if self.view.section > 0 => fx.extend(self.goto_section(self.view.section - 1)),
            Key::Right => {
                let n = self.lesson().map_or(0, |l| l.sections.len());
                if self.view.section + 1 < n {
                    fx.extend(self.goto_section(self.view.section + 1));
                } else {
                    self.info("this is the last section (Esc: back to the lesson list)");
                }
            }
            Key::Esc => {
                let cancelled = self.cancel_runs(fx);
                if !cancelled {
                    self.screen = Screen::List;
                }
            }
            Key::Char('r') => self.run(fx),
            Key::Char('e') => self.cycle_engine(),
            Key::Char('R') => self.repeat(fx),
            Key::Char('c') => self.start_compare(fx),
            Key::Char('x') => self.check(fx),
            Key::Char('h') => self.hint(fx),
            Key::Char('p') => self.predict(),
            Key::Char(c @ '1'..='9') => self.answer(c as usize - '1' as usize, fx),
            Key::Char(c) => self.knob(c),
            _ => {}
        }
    }

    /// A number key answers the selected quiz; with another block selected, the section's first unanswered quiz,
    /// which becomes the selected one (so the next number re-answers it, and Tab moves to the next quiz).
    pub(super) fn answer(&mut self, choice: usize, fx: &mut Vec<Effect>) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let Some(section) = lesson.sections.get(self.view.section) else { return };
        let base = App::quiz_base(lesson, self.view.section);
        let quizzes: Vec<(usize, &Quiz)> = section
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| if let Block::Quiz(q) = b { Some((i, q)) } else { None })
            .collect();
        if quizzes.is_empty() {
            return self.info("number keys answer a quiz; this section has none");
        }
        let k = match self.view.block.and_then(|b| quizzes.iter().position(|(i, _)| *i == b)) {
            Some(k) => k,
            None => (0..quizzes.len()).find(|k| !self.view.answers.contains_key(&(base + k))).unwrap_or(0),
        };
        let (block, quiz) = quizzes[k];
        if choice >= quiz.choices.len() {
            return self.error(format!("choose 1 to {}", quiz.choices.len()));
        }
        let correct = choice == quiz.answer;
        let id = lesson.id.clone();
        let n = quizzes.len();
        self.view.answers.insert(base + k, choice);
        self.progress.record_quiz(&id, base + k, choice, correct);
        fx.push(Effect::SaveProgress);
        if self.view.block != Some(block) {
            self.view.block = Some(block);
            self.scroll_to_block(block);
        }
        if n > 1 {
            let verdict = if correct { "right" } else { "not quite" };
            self.info(format!(
                "quiz {} of {n}: {verdict} (a number answers it again; Tab selects the next block)",
                k + 1
            ));
        }
    }

    pub(super) fn knob(&mut self, c: char) {
        let Some(mut setup) = self.panel.setup.clone() else {
            return;
        };
        let Some(row) = Knob::of_char(c) else { return };
        let knob = row.knob;
        if let Some(name) = &setup.demo {
            return self.info(format!(
                "a demo has no knobs here: r runs {name} at its default size (`parlab demo {name} --size N` for others)"
            ));
        }
        if !setup.may_change(knob) {
            let allowed: Vec<&str> =
                setup.exercise.as_ref().map(|e| e.may_change.iter().map(|k| k.label()).collect()).unwrap_or_default();
            return self.error(format!(
                "this exercise fixes the {} (you may change: {})",
                knob.label(),
                allowed.join(", ")
            ));
        }
        let cores = self.cores;
        let current = setup.experiment(setup.mode, cores).ok();
        let engine = &self.engine;
        let offers = |m: Mode| engine.offers(m);
        let cx = TurnCtx { current: current.as_ref(), cores, offers: &offers };
        let mut tuning = Tuning {
            workload: &mut setup.workload,
            tasks: &mut setup.tasks,
            mode: &mut setup.mode,
            knobs: &mut setup.knobs,
        };
        match (row.turn)(&mut tuning, Knob::is_up(row, c), &cx) {
            Ok(()) => {}
            Err(Stuck::End(note)) => return self.info(note),
            Err(Stuck::Refused(why)) => return self.error(why),
        }
        match setup.experiment(setup.mode, cores) {
            Ok(exp) => {
                let mut msg = knob_message(knob, &exp);
                if self.panel.run.as_ref().is_some_and(|r| !r.live && r.exp().is_some_and(|e| *e != exp)) {
                    msg.push_str(" · the run shown is of the previous setup: r runs this one");
                }
                self.info(msg);
                self.panel.setup = Some(setup);
            }
            Err(e) => self.error(e),
        }
    }
}

pub(super) fn knob_message(knob: Knob, exp: &Experiment) -> String {
    (knob.spec().describe)(exp)
}

pub(super) fn experiment_setup(
    lesson: &Lesson,
    section: usize,
    block: usize,
    e: &crate::lesson::ExperimentSpec,
) -> Setup {
    let id = e.id.clone().unwrap_or_else(|| format!("{}#{section}.{block}", lesson.id));
    match &e.kind {
        ExperimentKind::Run { workload, tasks, modes, knobs } => Setup {
            id,
            section,
            block,
            workload: *workload,
            tasks: *tasks,
            mode: modes.first().copied().unwrap_or(Mode::Sequential),
            modes: modes.clone(),
            knobs: knobs.clone(),
            note: e.note.clone(),
            demo: None,
            exercise: None,
        },
        ExperimentKind::Demo(name) => Setup {
            id,
            section,
            block,
            workload: Workload::Tiny,
            tasks: 1,
            mode: Mode::Sequential,
            modes: Vec::new(),
            knobs: Knobs::default(),
            note: e.note.clone(),
            demo: Some(name.clone()),
            exercise: None,
        },
    }
}

pub(super) fn exercise_setup(e: &ExerciseSpec, section: usize, block: usize) -> Setup {
    let mut modes = vec![e.baseline];
    if !modes.contains(&e.mode) {
        modes.push(e.mode);
    }
    Setup {
        id: e.id.clone(),
        section,
        block,
        workload: e.workload,
        tasks: e.tasks,
        mode: e.mode,
        modes,
        knobs: e.knobs.clone(),
        note: None,
        demo: None,
        exercise: Some(e.clone()),
    }
}

/// The blocks of a section a learner can select (experiments, demos, exercises, quizzes), by index.
pub(crate) fn selectable(section: &Section) -> Vec<usize> {
    section
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, Block::Experiment(_) | Block::Exercise(_) | Block::Quiz(_)))
        .map(|(i, _)| i)
        .collect()
}

/// The blocks of a section the panel can show (experiments, demos, exercises), by index.
pub(crate) fn panel_blocks(section: &Section) -> Vec<usize> {
    section
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, Block::Experiment(_) | Block::Exercise(_)))
        .map(|(i, _)| i)
        .collect()
}

/// How a run's experiment differs from another (the current knobs), in the run's own values: ["processes",
/// "2 workers"]. Empty when they are the same.
pub(crate) fn differences(run: &Experiment, now: &Experiment) -> Vec<String> {
    let mut out = Vec::new();
    if run.mode != now.mode {
        out.push(run.mode.name().to_string());
    }
    if run.workload != now.workload {
        out.push(run.workload.to_string());
    }
    if run.tasks != now.tasks {
        out.push(plural(run.tasks, "task"));
    }
    if run.workers != now.workers {
        out.push(plural(u64::from(run.workers), "worker"));
    }
    if run.chunksize != now.chunksize {
        out.push(format!("chunksize {}", run.chunksize));
    }
    if run.start != now.start {
        out.push(run.start.name().to_string());
    }
    if run.switch_interval_us != now.switch_interval_us {
        out.push(format!("switch interval {}", format_interval_us(run.switch_interval_us)));
    }
    if run.payload != now.payload {
        out.push(if run.payload == 0 { "no payload".into() } else { format!("payload {}", format_bytes(run.payload)) });
    }
    if run.warm != now.warm {
        out.push(if run.warm { "warm pool".into() } else { "cold pool".into() });
    }
    out
}

//! The one knob vocabulary: every knob a learner turns, with its name in lesson files (`key`, which dashed is its
//! command-line flag: `switch_interval` is `--switch-interval`), its label in messages, its keys in the TUI and what the help says of them. The app's key handling, the
//! help overlay, the panel's knob line, exercise messages and the lesson linter all read `KNOBS`; a new knob is a
//! row here plus its use in the lab: the row says where the knob applies, how a key turns it (its range and step)
//! and how a message names its value. Model only: imports the experiment's names and the units formatters.

use super::{Experiment, Knobs, MAX_TASKS, MAX_WORKERS, MODES, Mode, START_METHODS, Workload};
use crate::units::{format_bytes, format_interval_us, plural};

/// Switch intervals the `i` key steps through, in microseconds.
pub(crate) const INTERVALS_US: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
/// Payloads per task the `b`/`B` keys step through, in bytes.
pub(crate) const PAYLOADS: [u64; 7] = [0, 1 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20];
/// The most workers the `W` key goes to.
const KEY_MAX_WORKERS: u32 = if MAX_WORKERS < 64 { MAX_WORKERS } else { 64 };

/// The parts of a learner's setup a knob turns (the app's setup lends them).
pub(crate) struct Tuning<'a> {
    pub workload: &'a mut Workload,
    pub tasks: &'a mut u64,
    pub mode: &'a mut Mode,
    pub knobs: &'a mut Knobs,
}

/// What a turn needs to know: the experiment the setup gives now, the cores, and the modes the engines offer.
pub(crate) struct TurnCtx<'a> {
    pub current: Option<&'a Experiment>,
    pub cores: u32,
    pub offers: &'a dyn Fn(Mode) -> bool,
}

/// A turn that changed nothing: the knob is at the end of its range (a note), or does not apply (an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stuck {
    End(String),
    Refused(String),
}

/// Turns a knob one step (`up` for the second key of a pair).
type Turn = fn(&mut Tuning, bool, &TurnCtx) -> Result<(), Stuck>;

/// Knobs a learner may change (in an exercise, the ones it lists). Declared in the order lesson files document
/// them, which messages list them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Knob {
    Mode,
    Workers,
    Chunksize,
    Start,
    SwitchInterval,
    Payload,
    Warm,
    Size,
    Tasks,
}

/// One knob: its names everywhere and its keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KnobSpec {
    pub knob: Knob,
    /// As lesson files name it (an exercise's `knobs = [...]`).
    pub key: &'static str,
    /// As messages name it.
    pub label: &'static str,
    /// As the help shows its keys.
    pub keys: &'static str,
    /// The characters that turn it (down, then up, for a pair).
    pub chars: &'static [char],
    /// What the help says it does.
    pub what: &'static str,
    /// Whether changing it changes anything for a mode running a workload (the linter's rule).
    pub fits: fn(Mode, Workload) -> bool,
    /// Where it applies, for messages.
    pub applies_to: &'static str,
    /// Whether the panel's knob line shows it for a mode.
    pub shown: fn(Mode) -> bool,
    /// One step of the knob within its range.
    pub turn: Turn,
    /// Its value in a message: `chunksize 8`.
    pub describe: fn(&Experiment) -> String,
}

impl KnobSpec {
    /// The keys for the panel's knob line: `w/W`.
    pub(crate) fn short(&self) -> String {
        self.keys.replace(' ', "")
    }
}

/// Every knob, in the order of the help overlay and the panel's knob line.
pub(crate) const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        knob: Knob::Mode,
        key: "mode",
        label: "mode",
        keys: "m",
        chars: &['m'],
        what: "mode",
        fits: |_, _| true,
        applies_to: "every mode",
        shown: |_| true,
        turn: turn_mode,
        describe: |e| format!("mode {} ({})", e.mode, e.mode.python()),
    },
    KnobSpec {
        knob: Knob::Workers,
        key: "workers",
        label: "workers",
        keys: "w / W",
        chars: &['w', 'W'],
        what: "workers - / +",
        fits: |m, _| m.uses_workers(),
        applies_to: "threads, gil, processes and async-offload",
        shown: |m| m.uses_workers(),
        turn: turn_workers,
        describe: |e| plural(u64::from(e.workers), "worker"),
    },
    KnobSpec {
        knob: Knob::Chunksize,
        key: "chunksize",
        label: "chunksize",
        keys: "k / K",
        chars: &['k', 'K'],
        what: "chunksize - / +",
        fits: |m, _| m.uses_chunksize(),
        applies_to: "processes and threads",
        shown: |m| matches!(m, Mode::Processes | Mode::Threads),
        turn: turn_chunksize,
        describe: |e| format!("chunksize {}", e.chunksize),
    },
    KnobSpec {
        knob: Knob::Start,
        key: "start",
        label: "start method",
        keys: "s",
        chars: &['s'],
        what: "start method (processes)",
        fits: |m, _| m == Mode::Processes,
        applies_to: "processes",
        shown: |m| m == Mode::Processes,
        turn: turn_start,
        describe: |e| format!("start method {}", e.start),
    },
    KnobSpec {
        knob: Knob::Warm,
        key: "warm",
        label: "warm",
        keys: "u",
        chars: &['u'],
        what: "warm pool (processes)",
        fits: |m, _| m.uses_warm(),
        applies_to: "processes",
        shown: |m| m == Mode::Processes,
        turn: turn_warm,
        describe: describe_warm,
    },
    KnobSpec {
        knob: Knob::SwitchInterval,
        key: "switch_interval",
        label: "switch interval",
        keys: "i",
        chars: &['i'],
        what: "switch interval (gil)",
        fits: |m, _| m == Mode::Gil,
        applies_to: "gil",
        shown: |m| m == Mode::Gil,
        turn: turn_interval,
        describe: |e| format!("switch interval {}", format_interval_us(e.switch_interval_us)),
    },
    KnobSpec {
        knob: Knob::Payload,
        key: "payload",
        label: "payload",
        keys: "b / B",
        chars: &['b', 'B'],
        what: "payload per task - / +",
        fits: |_, _| true,
        applies_to: "every mode",
        shown: |m| m == Mode::Processes,
        turn: turn_payload,
        describe: describe_payload,
    },
    KnobSpec {
        knob: Knob::Size,
        key: "size",
        label: "workload size",
        keys: "- / +",
        chars: &['-', '+', '_', '='],
        what: "workload size - / +",
        fits: |_, w| w != Workload::Tiny,
        applies_to: "workloads with a size (not tiny)",
        shown: |_| true,
        turn: turn_size,
        describe: |e| format!("workload {}", e.workload),
    },
    KnobSpec {
        knob: Knob::Tasks,
        key: "tasks",
        label: "tasks",
        keys: "n / N",
        chars: &['n', 'N'],
        what: "tasks - / +",
        fits: |_, _| true,
        applies_to: "every mode",
        shown: |_| true,
        turn: turn_tasks,
        describe: |e| plural(e.tasks, "task"),
    },
];

fn turn_mode(t: &mut Tuning, _up: bool, cx: &TurnCtx) -> Result<(), Stuck> {
    // Only the modes the chosen engines run (gil is native's, dask and ray python's when installed).
    let i = MODES.iter().position(|(_, m)| m == t.mode).unwrap_or(0);
    let now = *t.mode;
    *t.mode = (1..=MODES.len()).map(|k| MODES[(i + k) % MODES.len()].1).find(|m| (cx.offers)(*m)).unwrap_or(now);
    Ok(())
}

fn turn_workers(t: &mut Tuning, up: bool, cx: &TurnCtx) -> Result<(), Stuck> {
    let mode = *t.mode;
    if !mode.uses_workers() {
        return Err(Stuck::Refused(format!("{mode} runs on one thread: workers apply to other modes (m)")));
    }
    let w = cx.current.map_or(cx.cores, |e| e.workers);
    t.knobs.workers = Some(if up { (w + 1).min(KEY_MAX_WORKERS) } else { w.saturating_sub(1).max(1) });
    Ok(())
}

fn turn_chunksize(t: &mut Tuning, up: bool, cx: &TurnCtx) -> Result<(), Stuck> {
    if !matches!(*t.mode, Mode::Processes | Mode::Threads) {
        return Err(Stuck::Refused("chunksize applies to processes and threads (m changes the mode)".into()));
    }
    let k = cx.current.map_or(1, |e| e.chunksize);
    t.knobs.chunksize = Some(if up { (k * 2).min(*t.tasks) } else { (k / 2).max(1) });
    Ok(())
}

fn turn_start(t: &mut Tuning, _up: bool, cx: &TurnCtx) -> Result<(), Stuck> {
    if *t.mode != Mode::Processes {
        return Err(Stuck::Refused("the start method applies to processes (m changes the mode)".into()));
    }
    let now = cx.current.map(|e| e.start);
    let i = START_METHODS.iter().position(|(_, s)| Some(*s) == now).unwrap_or(0);
    t.knobs.start = Some(START_METHODS[(i + 1) % START_METHODS.len()].1);
    Ok(())
}

fn turn_warm(t: &mut Tuning, _up: bool, _cx: &TurnCtx) -> Result<(), Stuck> {
    if *t.mode != Mode::Processes {
        return Err(Stuck::Refused("a warm pool applies to processes (m changes the mode)".into()));
    }
    t.knobs.warm = !t.knobs.warm;
    Ok(())
}

fn describe_warm(e: &Experiment) -> String {
    if e.warm {
        "warm pool: the workers start before the clock".into()
    } else {
        "cold pool: starting the workers is part of the measured time".into()
    }
}

fn turn_interval(t: &mut Tuning, _up: bool, cx: &TurnCtx) -> Result<(), Stuck> {
    if *t.mode != Mode::Gil {
        return Err(Stuck::Refused("the switch interval applies to gil (m changes the mode)".into()));
    }
    let now = cx.current.map_or(5_000, |e| e.switch_interval_us);
    t.knobs.switch_interval_us = Some(INTERVALS_US.iter().copied().find(|v| *v > now).unwrap_or(INTERVALS_US[0]));
    Ok(())
}

fn turn_payload(t: &mut Tuning, up: bool, _cx: &TurnCtx) -> Result<(), Stuck> {
    let now = t.knobs.payload.unwrap_or(0);
    let next = if up {
        PAYLOADS.iter().copied().find(|p| *p > now)
    } else {
        PAYLOADS.iter().rev().copied().find(|p| *p < now)
    };
    let Some(next) = next else {
        return Err(Stuck::End(if up { "that is the largest payload" } else { "no payload is the least" }.into()));
    };
    t.knobs.payload = (next > 0).then_some(next);
    Ok(())
}

fn describe_payload(e: &Experiment) -> String {
    if e.payload == 0 {
        "no payload".into()
    } else {
        format!("payload {} per task, there and back", format_bytes(e.payload))
    }
}

fn turn_size(t: &mut Tuning, up: bool, _cx: &TurnCtx) -> Result<(), Stuck> {
    let w = t.workload.step_size(up);
    if w == *t.workload {
        return Err(Stuck::End(format!("{} is as {} as it goes", w, if up { "large" } else { "small" })));
    }
    *t.workload = w;
    Ok(())
}

fn turn_tasks(t: &mut Tuning, up: bool, _cx: &TurnCtx) -> Result<(), Stuck> {
    let n = *t.tasks;
    let next = if up { n.saturating_mul(2).min(MAX_TASKS) } else { (n / 2).max(1) };
    if next == n {
        return Err(Stuck::End(format!("{} is as {} as it goes", plural(n, "task"), if up { "many" } else { "few" })));
    }
    *t.tasks = next;
    Ok(())
}

impl Knob {
    /// This knob's row of `KNOBS`.
    pub(crate) fn spec(&self) -> &'static KnobSpec {
        KNOBS.iter().find(|s| s.knob == *self).expect("every knob has a row in KNOBS")
    }

    /// As lesson files name it: `switch_interval`.
    pub(crate) fn name(&self) -> &'static str {
        self.spec().key
    }

    /// As messages name it: `switch interval`.
    pub(crate) fn label(&self) -> &'static str {
        self.spec().label
    }

    /// The lesson-file names of every knob, in the order messages list them.
    pub(crate) fn names() -> Vec<&'static str> {
        let mut all: Vec<&KnobSpec> = KNOBS.iter().collect();
        all.sort_by_key(|s| s.knob);
        all.iter().map(|s| s.key).collect()
    }

    /// The knob a lesson file names.
    pub(crate) fn from_name(name: &str) -> Option<Knob> {
        KNOBS.iter().find(|s| s.key == name).map(|s| s.knob)
    }

    /// The knob a key turns.
    pub(crate) fn of_char(c: char) -> Option<&'static KnobSpec> {
        KNOBS.iter().find(|k| k.chars.contains(&c))
    }

    /// Whether a key turns its knob up: the second key of each pair in `chars` (`W`, `+`, `=`).
    pub(crate) fn is_up(spec: &KnobSpec, c: char) -> bool {
        spec.chars.iter().position(|k| *k == c).is_some_and(|i| i % 2 == 1)
    }

    /// Whether changing this knob changes anything for `mode` running `workload`.
    pub(crate) fn fits(&self, mode: Mode, workload: Workload) -> bool {
        (self.spec().fits)(mode, workload)
    }

    /// Where the knob applies, for messages.
    pub(crate) fn applies_to(&self) -> &'static str {
        self.spec().applies_to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_has_one_row_and_no_key_turns_two_knobs() {
        let all = [
            Knob::Mode,
            Knob::Workers,
            Knob::Chunksize,
            Knob::Start,
            Knob::SwitchInterval,
            Knob::Payload,
            Knob::Warm,
            Knob::Size,
            Knob::Tasks,
        ];
        assert_eq!(KNOBS.len(), all.len());
        for k in all {
            assert_eq!(KNOBS.iter().filter(|s| s.knob == k).count(), 1, "{k:?}");
            assert_eq!(Knob::from_name(k.name()), Some(k));
        }
        let chars: Vec<char> = KNOBS.iter().flat_map(|s| s.chars.iter().copied()).collect();
        for c in &chars {
            assert_eq!(chars.iter().filter(|d| *d == c).count(), 1, "key '{c}' turns one knob");
        }
        assert_eq!(
            Knob::names(),
            ["mode", "workers", "chunksize", "start", "switch_interval", "payload", "warm", "size", "tasks"]
        );
    }

    /// A pair's two keys undo each other inside the range, the range ends say so, and a knob refuses the modes
    /// its row says it does not apply to.
    #[test]
    fn each_rows_turn_keeps_to_its_range_and_its_modes() {
        let offers = |_: Mode| true;
        let turn =
            |row: &KnobSpec, up: bool, mode: Mode, knobs: &mut Knobs, workload: &mut Workload, tasks: &mut u64| {
                let mut mode = mode;
                let cx = TurnCtx { current: None, cores: 2, offers: &offers };
                let mut t = Tuning { workload, tasks, mode: &mut mode, knobs };
                (row.turn)(&mut t, up, &cx).map(|()| mode)
            };
        for row in KNOBS {
            for (_, mode) in MODES {
                let (mut knobs, mut w, mut n) = (Knobs::default(), Workload::Fib { lo: 30, hi: 30 }, 8);
                let r = turn(row, true, *mode, &mut knobs, &mut w, &mut n);
                if let Err(Stuck::Refused(why)) = &r {
                    assert!(!(row.shown)(*mode) || row.knob == Knob::Payload, "{:?} refused {mode}: {why}", row.knob);
                } else {
                    assert!((row.shown)(*mode) || row.knob == Knob::Payload, "{:?} turned on {mode}", row.knob);
                }
            }
        }
        // Down after up returns where it was, for the pairs (current: None starts workers at the cores, chunksize 1).
        let (mut knobs, mut w, mut n) = (Knobs::default(), Workload::Fib { lo: 30, hi: 30 }, 8);
        let row = Knob::Tasks.spec();
        turn(row, true, Mode::Processes, &mut knobs, &mut w, &mut n).unwrap();
        assert_eq!(n, 16);
        turn(row, false, Mode::Processes, &mut knobs, &mut w, &mut n).unwrap();
        assert_eq!(n, 8);
        let row = Knob::Payload.spec();
        assert!(matches!(turn(row, false, Mode::Processes, &mut knobs, &mut w, &mut n), Err(Stuck::End(_))));
        turn(row, true, Mode::Processes, &mut knobs, &mut w, &mut n).unwrap();
        assert_eq!(knobs.payload, Some(PAYLOADS[1]));
        turn(row, false, Mode::Processes, &mut knobs, &mut w, &mut n).unwrap();
        assert_eq!(knobs.payload, None);
        let row = Knob::Workers.spec();
        turn(row, false, Mode::Processes, &mut knobs, &mut w, &mut n).unwrap();
        assert_eq!(knobs.workers, Some(1), "down from the 2 cores");
        assert!(Knob::is_up(Knob::Size.spec(), '=') && !Knob::is_up(Knob::Size.spec(), '_'));
        assert!(Knob::is_up(row, 'W') && !Knob::is_up(row, 'w'));
    }
}

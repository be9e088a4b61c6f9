//! The one knob vocabulary: every knob a learner turns, with its name in lesson files (`key`, which dashed is its
//! command-line flag: `switch_interval` is `--switch-interval`), its label in messages, its keys in the TUI and what the help says of them. The app's key handling, the
//! help overlay, the panel's knob line, exercise messages and the lesson linter all read `KNOBS`; a new knob is a
//! row here plus its use in the lab. Model only: imports nothing but the experiment's names.

use super::{Mode, Workload};

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
}

impl KnobSpec {
    /// The keys for the panel's knob line: `w/W`.
    pub(crate) fn short(&self) -> String {
        self.keys.replace(' ', "")
    }
}

/// Every knob, in the order of the help overlay and the panel's knob line.
pub(crate) const KNOBS: &[KnobSpec] = &[
    KnobSpec { knob: Knob::Mode, key: "mode", label: "mode", keys: "m", chars: &['m'], what: "mode" },
    KnobSpec {
        knob: Knob::Workers,
        key: "workers",
        label: "workers",

        keys: "w / W",
        chars: &['w', 'W'],
        what: "workers - / +",
    },
    KnobSpec {
        knob: Knob::Chunksize,
        key: "chunksize",
        label: "chunksize",

        keys: "k / K",
        chars: &['k', 'K'],
        what: "chunksize - / +",
    },
    KnobSpec {
        knob: Knob::Start,
        key: "start",
        label: "start method",

        keys: "s",
        chars: &['s'],
        what: "start method (processes)",
    },
    KnobSpec { knob: Knob::Warm, key: "warm", label: "warm", keys: "u", chars: &['u'], what: "warm pool (processes)" },
    KnobSpec {
        knob: Knob::SwitchInterval,
        key: "switch_interval",
        label: "switch interval",

        keys: "i",
        chars: &['i'],
        what: "switch interval (gil)",
    },
    KnobSpec {
        knob: Knob::Payload,
        key: "payload",
        label: "payload",

        keys: "b / B",
        chars: &['b', 'B'],
        what: "payload per task - / +",
    },
    KnobSpec {
        knob: Knob::Size,
        key: "size",
        label: "workload size",

        keys: "- / +",
        chars: &['-', '+', '_', '='],
        what: "workload size - / +",
    },
    KnobSpec {
        knob: Knob::Tasks,
        key: "tasks",
        label: "tasks",

        keys: "n / N",
        chars: &['n', 'N'],
        what: "tasks - / +",
    },
];

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

    /// Whether changing this knob changes anything for `mode` running `workload`.
    pub(crate) fn fits(&self, mode: Mode, workload: Workload) -> bool {
        match self {
            Knob::Mode | Knob::Tasks | Knob::Payload => true,
            Knob::Workers => mode.uses_workers(),
            Knob::Chunksize => mode.uses_chunksize(),
            Knob::Warm => mode.uses_warm(),
            Knob::Start => mode == Mode::Processes,
            Knob::SwitchInterval => mode == Mode::Gil,
            Knob::Size => workload != Workload::Tiny,
        }
    }

    /// Where the knob applies, for messages.
    pub(crate) fn applies_to(&self) -> &'static str {
        match self {
            Knob::Workers => "threads, gil, processes and async-offload",
            Knob::Chunksize => "processes and threads",
            Knob::Start | Knob::Warm => "processes",
            Knob::SwitchInterval => "gil",
            Knob::Size => "workloads with a size (not tiny)",
            Knob::Mode | Knob::Tasks | Knob::Payload => "every mode",
        }
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
}

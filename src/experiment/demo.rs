//! The process-internals demos by name: the one list of demos (name, what `--size` counts, its range and
//! default), and a validated request (`DemoSpec`). Model only: what each demo does is the lab's
//! (`lab/demos/NAME.rs`); the CLI, lesson files and the app read the names and limits from here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ExperimentError, suggest};

/// What a demo's `--size` means, and its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeRule {
    /// What is counted, for messages: "repetitions per start method".
    pub what: &'static str,
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

/// The one list of demos, in the order the docs list them: variant, name, what its size counts, min, max, default,
/// and whether it starts children with `forkserver` (the server must be forked before the demo's state exists).
/// A new demo is a row here plus its file in `lab/demos/`.
macro_rules! demos {
    ($($v:ident $name:literal $what:literal $min:literal $max:literal $default:literal $fs:literal;)*) => {
        /// Every demo, in the order the docs list them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub(crate) enum DemoName {
            $($v,)*
        }

        pub(crate) const DEMO_NAMES: &[DemoName] = &[$(DemoName::$v,)*];

        impl DemoName {
            pub(crate) fn name(&self) -> &'static str {
                match self {
                    $(DemoName::$v => $name,)*
                }
            }

            pub(crate) fn size_rule(&self) -> SizeRule {
                match self {
                    $(DemoName::$v => SizeRule { what: $what, min: $min, max: $max, default: $default },)*
                }
            }

            /// Demos that start children with `forkserver` need the server forked before their state exists.
            pub(crate) fn needs_forkserver(&self) -> bool {
                match self {
                    $(DemoName::$v => $fs,)*
                }
            }
        }
    };
}

demos! {
    StartCost "start-cost" "repetitions per start method" 1 200 20 true;
    Isolation "isolation" "children per start method" 1 16 3 true;
    Cow "cow" "MiB in the parent's buffer" 1 1024 64 false;
    Ipc "ipc" "MB in the largest payload" 1 256 100 false;
    QueueBatching "queue-batching" "items sent per batch size" 1_000 2_000_000 200_000 false;
    Race "race" "increments per worker" 10_000 20_000_000 1_000_000 false;
    SharedMemory "shared-memory" "MiB in the array" 1 1024 64 false;
    Convoy "convoy" "I/O operations" 10 2_000 100 false;
}

/// The demos' names, comma-separated, for help and messages.
pub(crate) fn names_list() -> String {
    DEMO_NAMES.iter().map(DemoName::name).collect::<Vec<_>>().join(", ")
}

/// `parlab demo --size`'s help, from the table: what each demo's size counts and its range.
pub(crate) fn size_help() -> String {
    let each: Vec<String> = DEMO_NAMES
        .iter()
        .map(|d| {
            let r = d.size_rule();
            format!("{d}: {} ({}..={}, default {})", r.what, r.min, r.max, r.default)
        })
        .collect();
    format!("How big: {}", each.join("; "))
}

impl fmt::Display for DemoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DemoName {
    type Err = ExperimentError;

    fn from_str(s: &str) -> Result<Self, ExperimentError> {
        DEMO_NAMES.iter().copied().find(|d| d.name() == s).ok_or_else(|| {
            let names: Vec<&str> = DEMO_NAMES.iter().map(DemoName::name).collect();
            ExperimentError::text(format!("unknown demo '{s}' (expected one of: {})", names.join(", ")))
                .suggest(suggest(s, names.iter().copied()))
        })
    }
}

/// A validated demo request: which demo and how big.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DemoSpec {
    pub name: DemoName,
    pub size: u64,
}

impl DemoSpec {
    /// Validates a demo name and an optional size (default: the demo's own, which finishes in a few seconds).
    pub(crate) fn new(name: &str, size: Option<u64>) -> Result<DemoSpec, String> {
        let name: DemoName = name.trim().parse()?;
        let rule = name.size_rule();
        let size = size.unwrap_or(rule.default);
        if size < rule.min || size > rule.max {
            return Err(format!(
                "--size {size} for the {name} demo is out of range (allowed {}..={} {})",
                rule.min, rule.max, rule.what
            ));
        }
        Ok(DemoSpec { name, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_names_match_the_lesson_contract() {
        let ours: Vec<&str> = DEMO_NAMES.iter().map(DemoName::name).collect();
        // The contract (DESIGN.md "Demos"): lesson files, the CLI and the docs use these names.
        let contract = ["start-cost", "isolation", "cow", "ipc", "queue-batching", "race", "shared-memory", "convoy"];
        assert_eq!(ours, contract);
        for &n in DEMO_NAMES {
            assert_eq!(n.name().parse::<DemoName>(), Ok(n));
            let rule = n.size_rule();
            assert!(rule.min <= rule.default && rule.default <= rule.max, "{n}");
        }
    }

    #[test]
    fn the_size_help_names_every_demo_and_its_range() {
        let help = size_help();
        for d in DEMO_NAMES {
            let r = d.size_rule();
            assert!(help.contains(&format!("{d}: {} ({}..={}", r.what, r.min, r.max)), "{help}");
        }
    }
}

//! The command line (clap derive). Names here are the contract in DESIGN.md.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "parlab",
    version,
    about = "A terminal lab for process vs thread vs async parallelism: run it live, see every worker, measure it.",
    after_help = "Without a command, parlab opens the lessons in the terminal UI.\n\
                  Examples:\n  parlab run --workload fib:35 --tasks 8 --mode processes\n  \
                  parlab compare --workload fib:35 --tasks 8 --modes threads,gil,processes,async"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Load lessons from this folder instead of the embedded ones (lessons, lint, exercises, check, progress
    /// and notes take it too).
    #[arg(long, value_name = "DIR")]
    pub lessons: Option<PathBuf>,
    /// Colour theme of the TUI.
    #[arg(long, value_name = "dark|light|contrast")]
    pub theme: Option<String>,
    /// Plain ASCII symbols instead of block characters.
    #[arg(long)]
    pub ascii: bool,
    /// Open this lesson (by id) instead of the lesson list.
    #[arg(long, value_name = "ID")]
    pub lesson: Option<String>,
    /// The presenter layout: no chrome, the timeline the full width, the key figures in large digits (P toggles).
    #[arg(long)]
    pub present: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List lessons: id, title, minutes, progress.
    Lessons {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: LessonsDir,
    },
    /// Validate lesson files or folders (default: the embedded set); exit 1 on errors.
    Lint {
        /// Lesson files (.md) or folders of them to check.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Also run every experiment and check its `expect` lines, and check that every exercise's start fails and
        /// its solution passes, on this machine.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        dir: LessonsDir,
    },
    /// Run one experiment headless and print the figures and a Gantt.
    Run {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// The mode: sequential, threads, gil, processes, async, async-offload; python engine only: interpreters,
        /// dask, ray.
        #[arg(long, default_value = "sequential")]
        mode: String,
        #[command(flatten)]
        out: OutputArgs,
        #[command(flatten)]
        stray: StrayLessons,
    },
    /// Run the same experiment in several modes, one after another, against a sequential baseline.
    Compare {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// Comma-separated modes (sequential is added if missing).
        #[arg(long, value_delimiter = ',', required = true)]
        modes: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
        #[command(flatten)]
        stray: StrayLessons,
    },
    // The names and sizes come from the one list of demos (experiment::demo).
    #[command(about = format!("Run a process-internals demo: {}", crate::experiment::demo::names_list()))]
    Demo {
        /// The demo to run (one of the names above).
        name: String,
        /// Print JSON (the figures, lanes and spans) instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "N", help = crate::experiment::demo::size_help())]
        size: Option<u64>,
        #[command(flatten)]
        stray: StrayLessons,
    },
    /// List exercises and their state; --copy ID [DIR] copies an exercise's Python starter into DIR.
    Exercises {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Copy the Python starter of exercise ID into DIR (default: the current folder); never overwrites.
        #[arg(long, value_name = "ID")]
        copy: Option<String>,
        /// Where --copy writes the starter.
        #[arg(requires = "copy", value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        lessons: LessonsDir,
    },
    /// Run an exercise's timing check headless (exit 0 pass, 1 fail); FILE is your Python solution.
    Check {
        /// The exercise's id (`parlab exercises` lists them).
        exercise: String,
        /// Your Python file with sequential() and parallel() (without it, the native setup is checked).
        file: Option<PathBuf>,
        /// The knob settings to check, like the TUI's (e.g. --mode processes --workers 2).
        #[command(flatten)]
        exp: CheckArgs,
        #[command(flatten)]
        dir: LessonsDir,
    },
    /// The performance suite: figures beside their targets (not pass/fail).
    Bench {
        /// Print JSON (`{"cores", "figures": [...]}`) instead of a table.
        #[arg(long)]
        json: bool,
        /// Fewer repetitions and smaller sizes.
        #[arg(long)]
        quick: bool,
        /// The interpreter for the python engine's figures (default python3; its Dask and Ray, where installed,
        /// give their per-task cost).
        #[arg(long, value_name = "PATH")]
        python: Option<String>,
        #[command(flatten)]
        stray: StrayLessons,
    },
    /// Show saved progress (lessons, quizzes, exercises).
    Progress {
        /// Clear all progress (asks for confirmation unless --yes).
        #[arg(long)]
        reset: bool,
        /// With --reset: clear without asking.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        dir: LessonsDir,
    },
    /// Run your own Python program and draw every thread and child process it has, live, from the scheduler
    /// alone (the program is not changed): `parlab watch my_threads.py [ARGS...]`.
    Watch {
        #[command(flatten)]
        watch: WatchArgs,
        #[command(flatten)]
        stray: StrayLessons,
    },
    /// List the recordings kept in the history of runs: N, date, experiment, modes, wall, machine.
    Runs {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Open a recording in the TUI (`last`, N from `parlab runs`, or a FILE), or export it with --trace / --svg.
    Replay {
        /// `last`, a number from `parlab runs` (1 is the newest), or a recording's file.
        #[arg(value_name = "FILE|last|N")]
        what: String,
        /// Write it as a Chrome / Perfetto trace to OUT instead of opening the TUI.
        #[arg(long, value_name = "OUT")]
        trace: Option<PathBuf>,
        /// Write its Gantt as a self-contained SVG to OUT instead of opening the TUI.
        #[arg(long, value_name = "OUT")]
        svg: Option<PathBuf>,
        /// Open in the presenter layout (P toggles it).
        #[arg(long)]
        present: bool,
        /// Colour theme of the TUI.
        #[arg(long, value_name = "dark|light|contrast")]
        theme: Option<String>,
        /// Plain ASCII symbols instead of block characters.
        #[arg(long)]
        ascii: bool,
    },
    /// Speaker notes: print a lesson's notes (or all), or --follow the section a running parlab TUI shows.
    Notes {
        /// The lesson, by id or number (default: every lesson). Not with --follow: that follows the TUI.
        #[arg(conflicts_with = "follow")]
        lesson: Option<String>,
        /// Show the notes of the section the newest parlab TUI of this user is on, following it as it moves.
        #[arg(long)]
        follow: bool,
        /// With --follow: follow the TUI with this pid instead of the newest.
        #[arg(long, requires = "follow", value_name = "PID")]
        pid: Option<u32>,
        #[command(flatten)]
        dir: LessonsDir,
    },
    #[command(hide = true, name = "__lab")]
    Lab,
    #[command(hide = true, name = "__worker")]
    Worker,
}

/// EXPERIMENT = --workload W --tasks N [--workers N] [--chunksize N] [--start M] [--switch-interval D]
/// [--payload BYTES] [--warm] [--api A]
#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Workload NAME[:SIZE]: fib:N, fib:A..B, squares:N, count:N, pi:N, primes:N, tiny, sleep:MS, logs:N.
    #[arg(long, default_value = "fib:32")]
    pub workload: String,
    /// Number of tasks.
    #[arg(long, default_value_t = 8)]
    pub tasks: u64,
    #[command(flatten)]
    pub knobs: KnobArgs,
    /// The Python pool API the processes mode models: map (Pool.map, the default), imap, imap_unordered (chunksize 1
    /// by default), executor (ProcessPoolExecutor.map: chunksize 1, a call queue of workers + 1).
    #[arg(long, value_name = "map|imap|imap_unordered|executor")]
    pub api: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--engine` and `--python` (run, compare, check): which engine runs the workloads, and with which interpreter.
#[derive(Args, Debug, Clone, Default)]
pub struct EngineArgs {
    /// What runs the workloads: native (parlab's Rust kernels, the GIL simulated), python (a real CPython running
    /// the same workloads), both (each run on both, side by side).
    #[arg(long, value_name = "native|python|both")]
    pub engine: Option<String>,
    /// The python engine's interpreter: a path, or a name on PATH (default python3), e.g. python3.13t.
    #[arg(long, value_name = "PATH")]
    pub python: Option<String>,
    /// Mode dask: the address of a running Dask scheduler (default: a LocalCluster of --workers processes).
    #[arg(long, value_name = "ADDRESS")]
    pub scheduler: Option<String>,
    /// Mode ray: the address of a running Ray cluster (default: ray.init() on this machine).
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
}

/// `--lessons DIR`, on the commands that read lessons (and only there: elsewhere it would do nothing).
#[derive(Args, Debug, Clone, Default)]
pub struct LessonsDir {
    /// Load lessons from this folder instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    pub lessons: Option<PathBuf>,
}

/// `--lessons` after a command that reads no lessons: not offered (hidden from help), only caught so that the
/// refusal says why instead of clap's guess at a similar flag.
#[derive(Args, Debug, Clone, Default)]
pub struct StrayLessons {
    #[arg(long = "lessons", hide = true, value_name = "DIR")]
    pub lessons: Option<PathBuf>,
}

impl Cli {
    /// `Some(its --lessons)` when the command reads lessons (the TUI does), `None` when it reads none.
    fn command_lessons(&self) -> Option<Option<&Path>> {
        match &self.command {
            None => Some(None),
            Some(
                Command::Lessons { dir, .. }
                | Command::Lint { dir, .. }
                | Command::Check { dir, .. }
                | Command::Progress { dir, .. }
                | Command::Notes { dir, .. }
                | Command::Exercises { lessons: dir, .. },
            ) => Some(dir.lessons.as_deref()),
            Some(_) => None,
        }
    }

    /// A `--lessons` given after a command that reads none.
    fn stray_lessons(&self) -> bool {
        match &self.command {
            Some(
                Command::Run { stray, .. }
                | Command::Compare { stray, .. }
                | Command::Demo { stray, .. }
                | Command::Bench { stray, .. }
                | Command::Watch { stray, .. },
            ) => stray.lessons.is_some(),
            _ => false,
        }
    }

    /// The lessons folder the command reads: `--lessons` given after the command's name, or before it (the TUI's
    /// own flag, kept for `parlab --lessons DIR lint`). Before a command that reads no lessons it would do nothing,
    /// so it is refused.
    pub fn lessons_dir(&self) -> Result<Option<&Path>, String> {
        let name = self.command.as_ref().map_or("parlab", Command::name);
        match (self.lessons.as_deref(), self.command_lessons()) {
            (_, None) if self.lessons.is_some() || self.stray_lessons() => Err(format!(
                "--lessons does nothing for '{name}': it is taken by the TUI (parlab without a command) and by \
                 lessons, lint, exercises, check, progress and notes"
            )),
            (Some(a), Some(Some(b))) if a != b => {
                Err(format!("--lessons is given twice ('{}' and '{}'): give it once", a.display(), b.display()))
            }
            (a, Some(b)) => Ok(b.or(a)),
            (_, None) => Ok(None),
        }
    }

    /// The TUI's flags before a command would do nothing for it: refused, naming the flag.
    pub fn leading_flags_fit(&self) -> Result<(), String> {
        let Some(cmd) = &self.command else { return Ok(()) };
        let given = [
            ("--theme", self.theme.is_some()),
            ("--ascii", self.ascii),
            ("--lesson", self.lesson.is_some()),
            ("--present", self.present),
        ];
        match given.iter().find(|(_, g)| *g) {
            Some((flag, _)) => Err(format!(
                "{flag} before a command is the TUI's (parlab without a command): it does nothing for '{}'",
                cmd.name()
            )),
            None => Ok(()),
        }
    }
}

impl Command {
    /// The command's name as typed.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Lessons { .. } => "lessons",
            Command::Lint { .. } => "lint",
            Command::Run { .. } => "run",
            Command::Compare { .. } => "compare",
            Command::Demo { .. } => "demo",
            Command::Exercises { .. } => "exercises",
            Command::Check { .. } => "check",
            Command::Bench { .. } => "bench",
            Command::Progress { .. } => "progress",
            Command::Watch { .. } => "watch",
            Command::Runs { .. } => "runs",
            Command::Replay { .. } => "replay",
            Command::Notes { .. } => "notes",
            Command::Lab => "__lab",
            Command::Worker => "__worker",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write a Chrome / Perfetto trace to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Repeat each run N times and report the median.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Plain ASCII Gantt.
    #[arg(long)]
    pub ascii: bool,
    /// Also write the run (or compare) as a recording to FILE, for `parlab replay FILE`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print only this window of the Gantt, e.g. 40ms..60ms (from the run's t0; units ns, us, ms, s).
    #[arg(long, value_name = "FROM..TO")]
    pub gantt_window: Option<String>,
}

/// Knobs for `parlab check` (the learner's setup). Each may only change what the exercise lets you change
/// (`parlab exercises --json` lists them as "knobs"); the rest keeps the exercise's own value.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckArgs {
    /// Mode of your setup: sequential, threads, gil, processes, async, async-offload.
    #[arg(long)]
    pub mode: Option<String>,
    #[command(flatten)]
    pub knobs: KnobArgs,
    /// Number of tasks (the baseline runs as many).
    #[arg(long)]
    pub tasks: Option<u64>,
    /// Size of the exercise's workload, e.g. 32 for fib:32 (the baseline does the same work).
    #[arg(long)]
    pub size: Option<u64>,
    /// With FILE: stop the Python file and every process it started after this many seconds (default 120).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Without FILE: which engine runs the setup and its baseline: native, python (a real CPython), both.
    #[arg(long, value_name = "native|python|both")]
    pub engine: Option<String>,
    /// The python engine's interpreter: a path, or a name on PATH (default python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<String>,
}

/// `parlab watch`'s arguments: its own flags come before FILE; everything after FILE is the program's.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// The Python file to run.
    #[arg(value_name = "FILE.py")]
    pub file: PathBuf,
    /// Arguments for the program, passed as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
    /// The interpreter (default: python3 on PATH).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Stop the program and every process it started after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = crate::watch::DEFAULT_TIMEOUT_S)]
    pub timeout: u64,
    /// How often the sampler reads every thread (100us..=100ms; 1 kHz by default).
    #[arg(long, value_name = "DURATION", default_value = "1ms")]
    pub sample_every: String,
    /// Print JSON (lanes, spans, processes, threads, per-core CPU, the sampler's cost) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the table and an ASCII Gantt instead of the live view.
    #[arg(long)]
    pub gantt: bool,
    /// Print the table only instead of the live view.
    #[arg(long)]
    pub table: bool,
    /// Write a Chrome / Perfetto trace to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Plain ASCII Gantt.
    #[arg(long)]
    pub ascii: bool,
}

/// The knob flags `run`, `compare` and `check` share: declared once here and parsed once (`KnobArgs::knobs`).
#[derive(Args, Debug, Clone, Default)]
pub struct KnobArgs {
    /// Threads or processes in the pool (default: the cores you have, or the exercise's).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Tasks per message to a worker (processes and threads modes; default: Python's Pool.map rule).
    #[arg(long)]
    pub chunksize: Option<u64>,
    /// How worker processes start: spawn, fork, forkserver (processes mode).
    #[arg(long)]
    pub start: Option<String>,
    /// The simulated GIL's switch interval, e.g. 5ms, 500us (gil mode).
    #[arg(long, value_name = "DURATION")]
    pub switch_interval: Option<String>,
    /// Bytes sent to and back from a worker with every task (e.g. 1048576, 1MiB).
    #[arg(long, value_name = "BYTES")]
    pub payload: Option<String>,
    /// Start the process pool before the clock starts.
    #[arg(long)]
    pub warm: bool,
}

impl KnobArgs {
    /// The knobs these flags set (the pool API and engines are not among them), or the first bad value's message.
    pub(crate) fn knobs(&self) -> Result<crate::experiment::Knobs, String> {
        use crate::experiment::{StartMethod, parse_bytes, parse_interval_us};
        Ok(crate::experiment::Knobs {
            workers: self.workers,
            chunksize: self.chunksize,
            start: self.start.as_deref().map(str::parse::<StartMethod>).transpose()?,
            switch_interval_us: self.switch_interval.as_deref().map(parse_interval_us).transpose()?,
            payload: self.payload.as_deref().map(parse_bytes).transpose()?,
            warm: self.warm,
            api: None,
            engines: Vec::new(),
        })
    }

    /// Whether any knob flag was given.
    pub(crate) fn any(&self) -> bool {
        self.workers.is_some()
            || self.chunksize.is_some()
            || self.start.is_some()
            || self.switch_interval.is_some()
            || self.payload.is_some()
            || self.warm
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;
    use crate::experiment::knob::KNOBS;

    #[test]
    fn every_knob_has_its_flag_on_check_and_the_run_flags_on_run() {
        let cli = Cli::command();
        let longs = |name: &str| -> Vec<String> {
            let sub = cli.find_subcommand(name).expect("the subcommand exists");
            sub.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect()
        };
        let (check, run) = (longs("check"), longs("run"));
        for k in KNOBS {
            // A knob's flag is its lesson-file name, dashed.
            let flag = k.key.replace('_', "-");
            assert!(check.contains(&flag), "check has --{flag}");
            if flag != "size" {
                assert!(run.contains(&flag), "run has --{flag}");
            }
        }
    }
}

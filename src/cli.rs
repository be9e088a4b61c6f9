//! The command line (clap derive). Names here are the contract in DESIGN.md.

use std::path::PathBuf;

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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Load lessons from this folder instead of the embedded ones.
    #[arg(long, global = true, value_name = "DIR")]
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
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// List lessons: id, title, minutes, progress.
    Lessons {
        #[arg(long)]
        json: bool,
    },
    /// Validate lesson files or folders (default: the embedded set); exit 1 on errors.
    Lint {
        paths: Vec<PathBuf>,
        /// Also run every experiment and check its `expect` lines on this machine.
        #[arg(long)]
        verify: bool,
    },
    /// Run one experiment headless and print the figures and a Gantt.
    Run {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// The mode: sequential, threads, gil, processes, async, async-offload.
        #[arg(long, default_value = "sequential")]
        mode: String,
        #[command(flatten)]
        out: OutputArgs,
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
    },
    /// Run a process-internals demo: start-cost, isolation, cow, ipc, queue-batching, race, shared-memory, convoy.
    Demo {
        name: String,
        #[arg(long)]
        json: bool,
        /// How big: start-cost repetitions (1..=200), isolation children per start method (1..=16), cow buffer MiB
        /// (1..=1024), ipc largest payload MB (1..=256), queue-batching items (1000..=2000000), race increments per
        /// worker (10000..=20000000), shared-memory array MiB (1..=1024), convoy I/O operations (10..=2000).
        #[arg(long, value_name = "N")]
        size: Option<u64>,
    },
    /// List exercises and their state; --copy ID [DIR] copies an exercise's Python starter into DIR.
    Exercises {
        #[arg(long)]
        json: bool,
        /// Copy the Python starter of exercise ID into DIR (default: the current folder); never overwrites.
        #[arg(long, value_name = "ID")]
        copy: Option<String>,
        /// Where --copy writes the starter.
        #[arg(requires = "copy", value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run an exercise's timing check headless (exit 0 pass, 1 fail); FILE is your Python solution.
    Check {
        exercise: String,
        file: Option<PathBuf>,
        /// The knob settings to check, like the TUI's (e.g. --mode processes --workers 2).
        #[command(flatten)]
        exp: CheckArgs,
    },
    /// The performance suite: figures beside their targets (not pass/fail).
    Bench {
        #[arg(long)]
        json: bool,
        /// Fewer repetitions and smaller sizes.
        #[arg(long)]
        quick: bool,
    },
    /// Show saved progress (lessons, quizzes, exercises).
    Progress {
        /// Clear all progress (asks for confirmation unless --yes).
        #[arg(long)]
        reset: bool,
        #[arg(long)]
        yes: bool,
    },
    #[command(hide = true, name = "__lab")]
    Lab,
    #[command(hide = true, name = "__worker")]
    Worker,
}

/// EXPERIMENT = --workload W --tasks N [--workers N] [--chunksize N] [--start M] [--switch-interval D]
/// [--payload BYTES] [--warm] [--api A] [--engine native]
#[derive(Args, Debug, Clone)]
pub(crate) struct ExperimentArgs {
    /// Workload NAME[:SIZE]: fib:N, fib:A..B, squares:N, count:N, pi:N, primes:N, tiny, sleep:MS, logs:N.
    #[arg(long, default_value = "fib:32")]
    pub workload: String,
    /// Number of tasks.
    #[arg(long, default_value_t = 8)]
    pub tasks: u64,
    /// Threads or processes in the pool (default: the cores you have).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Tasks per message to a worker process (default: Python's Pool.map rule).
    #[arg(long)]
    pub chunksize: Option<u64>,
    /// How worker processes start: spawn, fork, forkserver.
    #[arg(long)]
    pub start: Option<String>,
    /// The simulated GIL's switch interval, e.g. 5ms, 500us.
    #[arg(long, value_name = "DURATION")]
    pub switch_interval: Option<String>,
    /// Bytes sent to and back from the worker with every task (e.g. 1048576, 1MiB).
    #[arg(long, value_name = "BYTES")]
    pub payload: Option<String>,
    /// Start the process pool before the clock starts.
    #[arg(long)]
    pub warm: bool,
    /// The Python pool API the processes mode models: map (Pool.map, the default), imap, imap_unordered (chunksize 1
    /// by default), executor (ProcessPoolExecutor.map: chunksize 1, a call queue of workers + 1).
    #[arg(long, value_name = "map|imap|imap_unordered|executor")]
    pub api: Option<String>,
    /// Which engine runs the workloads (only `native` exists).
    #[arg(long, default_value = "native")]
    pub engine: String,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct OutputArgs {
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
}

/// Knobs for `parlab check` (the learner's setup).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CheckArgs {
    #[arg(long)]
    pub mode: Option<String>,
    #[arg(long)]
    pub workers: Option<u32>,
    #[arg(long)]
    pub chunksize: Option<u64>,
    #[arg(long)]
    pub start: Option<String>,
    #[arg(long, value_name = "DURATION")]
    pub switch_interval: Option<String>,
    #[arg(long, value_name = "BYTES")]
    pub payload: Option<String>,
    #[arg(long)]
    pub warm: bool,
    #[arg(long)]
    pub tasks: Option<u64>,
    #[arg(long)]
    pub size: Option<u64>,
    /// With FILE: stop the Python file after this many seconds (default 120).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

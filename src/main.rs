//! parlab: a terminal lab for process vs thread vs async parallelism.
//!
//! `main` is thin: the hidden lab and worker entry points come first (before any thread or runtime exists, so the
//! lab may fork), then the clap dispatch.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;

use parlab::cli::{Cli, Command};
use parlab::{bench, demo, exercise, headless, lab, replay, tui, watch, worker};

fn main() -> ExitCode {
    // Hidden entry points first: nothing may start a thread before the lab decides whether to fork.
    match std::env::args_os().nth(1).as_deref().and_then(|a| a.to_str()) {
        Some(lab::LAB_ARG) => return lab::lab_main(),
        Some(lab::WORKER_ARG) => return worker::worker_main(),
        Some(exercise::guard::GUARD_ARG) => return exercise::guard::guard_main(),
        _ => {}
    }
    // Workers of a cancelled lab are handed to this process, which reaps them (see `reap_orphans`).
    lab::client::become_subreaper();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    cli.leading_flags_fit().map_err(anyhow::Error::msg)?;
    let lessons = cli.lessons_dir().map_err(anyhow::Error::msg)?.map(|p| p.to_path_buf());
    let lessons = lessons.as_deref();
    match cli.command {
        Some(Command::Run { exp, mode, out, .. }) => headless::run_cmd(&exp, &mode, &out),
        Some(Command::Compare { exp, modes, out, .. }) => headless::compare_cmd(&exp, &modes, &out),
        Some(Command::Lab) | Some(Command::Worker) => bail!("internal command called out of place"),
        Some(Command::Lessons { json, .. }) => headless::lessons_cmd(lessons, json),
        Some(Command::Lint { paths, verify, .. }) => headless::lint_cmd(lessons, &paths, verify),
        Some(Command::Bench { json, quick, python, .. }) => bench::bench_cmd(json, quick, python.as_deref()),
        Some(Command::Demo { name, json, size, .. }) => demo::demo_cmd(&name, size, json),
        Some(Command::Exercises { json, copy, dir, .. }) => {
            exercise::commands::exercises_cmd(lessons, json, copy.as_deref(), dir.as_deref())
        }
        Some(Command::Check { exercise, file, exp, .. }) => {
            exercise::commands::check_cmd(lessons, &exercise, file.as_deref(), &exp)
        }
        Some(Command::Progress { reset, yes, .. }) => exercise::commands::progress_cmd(lessons, reset, yes),
        Some(Command::Watch { watch, .. }) => watch::watch_args_cmd(watch),
        Some(Command::Runs { json }) => replay::runs_cmd(json),
        Some(Command::Replay { what, trace, svg, present, theme, ascii }) => {
            replay::replay_cmd(&what, trace.as_deref(), svg.as_deref(), present, theme.as_deref(), ascii)
        }
        None => tui::run(
            lessons,
            cli.theme.as_deref(),
            cli.ascii,
            cli.lesson.as_deref(),
            replay::Opening::lessons(cli.present),
        ),
    }
}

//! `parlab notes`: print a lesson's notes, or (`--follow`) show the notes of the section a presenter's TUI is on,
//! as it moves. The follower connects to the newest live TUI of this user (or `--pid N`), redraws on every change
//! (clearing the screen when it writes to a terminal, else printing each state after a blank line), and when its
//! presenter quits it says so and waits for the next one (with `--pid`, it stops: that TUI will not come back).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use super::socket::{self, Presenter, runtime_dir};
use super::{PROTOCOL, Showing, lesson_lines, render};
use crate::experiment::suggest;
use crate::lesson;

/// How often a waiting follower looks for a presenter.
const POLL: Duration = Duration::from_millis(200);
/// The longest message line read from a presenter.
const MAX_LINE: u64 = 1 << 20;

fn width(tty: bool) -> usize {
    if tty { crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w)) } else { 80 }
}

/// Writes lines; a closed stdout (the follower piped into `head`) ends the command quietly.
fn emit(out: &mut impl Write, lines: &[String]) -> Result<bool> {
    let mut text = lines.join("\n");
    text.push('\n');
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `parlab notes [LESSON]`: the notes of one lesson (by id or number) or of all.
pub fn print_cmd(lessons: Option<&Path>, which: Option<&str>) -> Result<u8> {
    let set = lesson::load(lessons)?;
    for w in &set.skipped {
        eprintln!("warning: {w}");
    }
    for b in &set.broken {
        eprintln!("warning: '{}' did not load ({} errors; `parlab lint` shows them)", b.path, b.count());
    }
    let all = set.lessons.len();
    let chosen: Vec<(usize, &lesson::Lesson)> = match which {
        None => set.lessons.iter().enumerate().collect(),
        Some(w) => {
            let by_number = w.parse::<usize>().ok().filter(|n| (1..=all).contains(n)).map(|n| n - 1);
            match by_number.or_else(|| set.lessons.iter().position(|l| l.id == w)) {
                Some(i) => vec![(i, &set.lessons[i])],
                None => {
                    let ids: Vec<&str> = set.lessons.iter().map(|l| l.id.as_str()).collect();
                    let hint =
                        suggest(w, ids.iter().copied()).map_or(String::new(), |s| format!(" (did you mean '{s}'?)"));
                    bail!(
                        "no lesson '{}' (expected an id or a number 1..={all}: {}){hint}",
                        lesson::terminal_safe(w),
                        ids.join(", ")
                    );
                }
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let tty = out.is_terminal();
    for (i, l) in chosen {
        if !emit(&mut out, &lesson_lines(l, i + 1, all, width(tty)))? {
            break;
        }
    }
    Ok(0)
}

/// How one connection to a presenter ended.
enum Ended {
    /// The presenter closed the socket (it quit, was killed, or dropped this follower).
    Quit,
    /// Stdout closed: stop.
    OutputClosed,
}

/// `parlab notes --follow [--pid N]`.
pub fn follow_cmd(lessons: Option<&Path>, pid: Option<u32>) -> Result<u8> {
    if let Some(dir) = lessons {
        bail!(
            "--lessons '{}' does nothing with --follow: the notes come from the TUI being followed (give the TUI \
             --lessons DIR instead)",
            dir.display()
        );
    }
    let dir = runtime_dir()?;
    let mut out = std::io::stdout().lock();
    let tty = out.is_terminal();
    if let Some(pid) = pid
        && !socket::presenters(&dir).iter().any(|p| p.pid == pid)
    {
        let running: Vec<String> = live(&dir).iter().map(|p| p.pid.to_string()).collect();
        let running = if running.is_empty() { "none is running".to_string() } else { running.join(", ") };
        bail!("no parlab TUI with pid {pid} publishes notes (running TUIs: {running})");
    }
    let mut said_waiting = false;
    // Sockets that must not be followed, each said once.
    let mut refused: HashSet<PathBuf> = HashSet::new();
    loop {
        let mut found = None;
        for p in socket::presenters(&dir).into_iter().filter(|p| pid.is_none_or(|pid| p.pid == pid)) {
            match socket::connect(&p) {
                Ok(Some(stream)) => {
                    found = Some((p, stream));
                    break;
                }
                Ok(None) => {}
                // The one we were told to follow cannot be: say why and stop.
                Err(e) if pid.is_some() => return Err(e),
                Err(e) => {
                    if refused.insert(p.path.clone()) && !emit(&mut out, &[format!("warning: {e:#}")])? {
                        return Ok(0);
                    }
                }
            }
        }
        let Some((presenter, stream)) = found else {
            if let Some(pid) = pid {
                let _ = emit(&mut out, &[format!("The presenter (parlab pid {pid}) is not running.")]);
                return Ok(0);
            }
            if !said_waiting {
                let lines = [
                    format!("No parlab TUI is running for this user (looked in '{}').", dir.display()),
                    "Waiting for one: start `parlab` in another terminal (Ctrl-C stops).".to_string(),
                ];
                if !emit(&mut out, &lines)? {
                    return Ok(0);
                }
                said_waiting = true;
            }
            std::thread::sleep(POLL);
            continue;
        };
        let mut stream = stream;
        loop {
            if let Ended::OutputClosed = show(&presenter, stream, &mut out, tty)? {
                return Ok(0);
            }
            // A TUI drops a follower that falls behind (a paused terminal); if it still listens, follow it again.
            match socket::connect(&presenter) {
                Ok(Some(again)) => {
                    std::thread::sleep(POLL);
                    stream = again;
                }
                _ => break,
            }
        }
        let mut lines = vec![String::new(), format!("The presenter (parlab pid {}) quit.", presenter.pid)];
        if pid.is_none() {
            lines.push("Waiting for the next one (Ctrl-C stops).".into());
        }
        if !emit(&mut out, &lines)? || pid.is_some() {
            return Ok(0);
        }
        said_waiting = true;
    }
}

/// The presenters that accept a connection now.
fn live(dir: &Path) -> Vec<Presenter> {
    socket::presenters(dir).into_iter().filter(|p| matches!(socket::connect(p), Ok(Some(_)))).collect()
}

/// Shows what one presenter sends until it quits. On a terminal, a resize redraws the last state at the new width
/// (checked between messages, every `POLL`).
fn show(p: &Presenter, stream: std::os::unix::net::UnixStream, out: &mut impl Write, tty: bool) -> Result<Ended> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // The last state shown and the width it was drawn at.
    let mut last: Option<(Showing, usize)> = None;
    loop {
        if tty && reader.buffer().is_empty() && !readable(reader.get_ref()) {
            if let Some((s, w)) = &mut last
                && width(tty) != *w
            {
                *w = width(tty);
                if !emit(out, &[frame(&render(s, *w), tty)])? {
                    return Ok(Ended::OutputClosed);
                }
            }
            continue;
        }
        line.clear();
        let n = (&mut reader).take(MAX_LINE).read_line(&mut line);
        match n {
            Ok(0) | Err(_) => return Ok(Ended::Quit),
            Ok(_) if !line.ends_with('\n') => {
                let _ = emit(
                    out,
                    &[format!("parlab pid {} sent a message over {MAX_LINE} bytes: stopped following it", p.pid)],
                );
                return Ok(Ended::Quit);
            }
            Ok(_) => {}
        }
        let (lines, shown) = match serde_json::from_str::<Showing>(&line) {
            Ok(s) if s.v != PROTOCOL => (
                vec![format!(
                    "parlab pid {} speaks notes protocol {}, this parlab {PROTOCOL}: run the same parlab version",
                    p.pid, s.v
                )],
                None,
            ),
            // Two presenters never cross-talk: a message must come from the TUI whose socket this is.
            Ok(s) if s.pid != p.pid => {
                (vec![format!("'{}' sent notes of pid {}: ignored", p.path.display(), s.pid)], None)
            }
            Ok(s) => (render(&s, width(tty)), Some(s)),
            Err(e) => (vec![format!("parlab pid {} sent a message that is not notes: {e}", p.pid)], None),
        };
        if !emit(out, &[frame(&lines, tty)])? {
            return Ok(Ended::OutputClosed);
        }
        if let Some(s) = shown {
            last = Some((s, width(tty)));
        }
    }
}

/// One state as written: the screen cleared first on a terminal, after a blank line otherwise.
fn frame(lines: &[String], tty: bool) -> String {
    if tty { format!("\x1b[H\x1b[2J{}", lines.join("\n")) } else { format!("\n{}", lines.join("\n")) }
}

/// Whether the presenter has sent something (or closed), waiting at most `POLL`.
fn readable(stream: &std::os::unix::net::UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    // An error (EINTR from a signal) counts as readable: the read then says what happened.
    !matches!(poll(&mut fds, PollTimeout::from(POLL.as_millis() as u16)), Ok(0))
}

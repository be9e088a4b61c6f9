//! The guard around a learner's Python file: `parlab __guard PROGRAM ARGS...` runs PROGRAM (python3 and the
//! harness) so that no process the file starts can outlive the check, however it was started (a pool, a
//! `start_new_session=True` child, a double fork) and however parlab ends (a timeout, Ctrl-C, even SIGKILL).
//!
//! How: the guard is a child subreaper, so every orphan of the file's process tree is handed to it rather than to
//! pid 1, and stays findable as one of its descendants through /proc (a new session or process group does not
//! change a parent). It watches its stdin, a pipe whose other end only parlab holds: when parlab closes it (a
//! timeout, a cancel) or dies (the kernel closes it), the guard kills every descendant and exits. When PROGRAM
//! ends by itself, whatever it left running is killed too, and the guard exits as PROGRAM did. PROGRAM dies with
//! the guard (PR_SET_PDEATHSIG), and parlab sweeps the guard's tree itself if the guard is killed (`kill_tree`).
//! A cgroup would be tighter still, but needs a delegated, writable hierarchy that most machines do not give a
//! user; the subreaper works everywhere on Linux.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The hidden sub-command that turns this binary into a guard.
pub const GUARD_ARG: &str = "__guard";
/// How often the guard looks at its stdin and its parent.
const TICK_MS: i32 = 50;
/// How long a sweep keeps killing before it gives up on processes that will not die (stuck in the kernel).
const SWEEP_PATIENCE: Duration = Duration::from_secs(10);

/// Entry point of `parlab __guard PROGRAM ARGS...` (called from `main` before anything else runs).
pub fn guard_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("parlab __guard: no program to run");
        return ExitCode::from(2);
    };
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) and getpid/getppid only set a flag or read ids of this process.
    let (me, parent) = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        (libc::getpid(), libc::getppid())
    };
    let mut cmd = Command::new(program);
    cmd.args(rest).stdin(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid); nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != me {
                return Err(std::io::Error::other("the guard exited"));
            }
            Ok(())
        });
    }
    let main = match cmd.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            eprintln!("cannot start {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    // The result pipe belongs to PROGRAM now: parlab sees its end of file as soon as PROGRAM's tree is gone.
    if let Some(fd) = std::env::var(super::python::RESULT_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok())
        && fd > 2
    {
        // SAFETY: closing an fd this process inherited for its child and does not use itself.
        unsafe { libc::close(fd) };
    }
    let mut status = None;
    loop {
        reap_children(main, &mut status);
        if status.is_some() || parent_gone(parent) {
            break;
        }
    }
    kill_tree(me as u32);
    match status {
        Some(s) if libc::WIFEXITED(s) => ExitCode::from(libc::WEXITSTATUS(s) as u8),
        Some(s) if libc::WIFSIGNALED(s) => die_like(libc::WTERMSIG(s)),
        _ => ExitCode::from(3),
    }
}

/// Reaps every dead child (orphans handed to the guard included), keeping PROGRAM's status.
fn reap_children(main: i32, status: &mut Option<i32>) {
    loop {
        let mut s = 0;
        // SAFETY: waitpid on any child of ours, without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut s, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if pid == main {
            *status = Some(s);
        }
    }
}

/// Waits up to one tick for parlab to close the guard's stdin, and tells whether parlab is gone or asked to stop.
fn parent_gone(parent: i32) -> bool {
    let mut fds = [libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 }];
    // SAFETY: poll on one valid pollfd for at most one tick.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, TICK_MS) };
    if n > 0 {
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return true;
        }
        let mut byte = [0u8; 64];
        // SAFETY: reading into a local buffer of the length given.
        let got = unsafe { libc::read(0, byte.as_mut_ptr().cast(), byte.len()) };
        if got <= 0 {
            return true;
        }
    }
    // SAFETY: getppid has no preconditions. A new parent means parlab died (its orphans went to another reaper).
    unsafe { libc::getppid() != parent }
}

/// Ends the guard the way PROGRAM ended: by the same signal (without a core file), so parlab can say so.
fn die_like(sig: i32) -> ExitCode {
    // SAFETY: setrlimit, signal and raise only act on this process, which has nothing left to do.
    unsafe {
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    ExitCode::from((128 + sig).clamp(0, 255) as u8)
}

/// One line of /proc: a process, its parent and its state letter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
}

/// Every process visible in /proc.
pub(crate) fn scan_proc() -> Vec<ProcEntry> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name may hold spaces and parentheses: the fields start after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        out.push(ProcEntry { pid, ppid, state });
    }
    out
}

/// The descendants of `root` in a scan (not `root` itself), parents before their children.
pub(crate) fn descendants_in(procs: &[ProcEntry], root: u32) -> Vec<ProcEntry> {
    let mut out: Vec<ProcEntry> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent && p.pid != root) {
            if !out.iter().any(|o| o.pid == p.pid) {
                out.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    out
}

/// Kills every descendant of `root` with SIGKILL until none is left alive, and reaps those that are children of
/// the calling process. Processes forking meanwhile are found on the next pass. Returns how many were killed.
pub(crate) fn kill_tree(root: u32) -> usize {
    let me = std::process::id();
    let deadline = Instant::now() + SWEEP_PATIENCE;
    let mut killed = Vec::new();
    loop {
        let found = descendants_in(&scan_proc(), root);
        let mut live = 0;
        for p in &found {
            if p.state == 'Z' || p.state == 'X' {
                if p.ppid == me {
                    let mut s = 0;
                    // SAFETY: waitpid on a dead child of ours, by pid, without blocking.
                    unsafe { libc::waitpid(p.pid as i32, &mut s, libc::WNOHANG) };
                }
                continue;
            }
            live += 1;
            if !killed.contains(&p.pid) {
                killed.push(p.pid);
            }
            // SAFETY: kill only sends a signal, to a process found below `root` in this very pass.
            unsafe { libc::kill(p.pid as i32, libc::SIGKILL) };
        }
        if (live == 0 && found.iter().all(|p| p.ppid != me)) || Instant::now() >= deadline {
            return killed.len();
        }
        std::thread::sleep(Duration::from_millis(if live == 0 { 1 } else { 2 }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: u32, ppid: u32) -> ProcEntry {
        ProcEntry { pid, ppid, state: 'S' }
    }

    #[test]
    fn descendants_follow_the_parent_chain_through_every_generation() {
        let procs = [e(1, 0), e(10, 1), e(11, 10), e(12, 11), e(13, 10), e(20, 1), e(21, 20)];
        let mut got: Vec<u32> = descendants_in(&procs, 10).iter().map(|p| p.pid).collect();
        got.sort();
        assert_eq!(got, vec![11, 12, 13]);
        assert!(descendants_in(&procs, 12).is_empty());
    }

    #[test]
    fn a_sweep_kills_every_descendant_even_in_its_own_session() {
        // sh starts two sleepers, one in a session of its own, and waits for both: only the sweep can end it.
        let mut sh = Command::new("sh").args(["-c", "sleep 60 & setsid sleep 60 & wait"]).spawn().expect("sh runs");
        let root = sh.id();
        let found = |procs: &[ProcEntry]| descendants_in(procs, root).iter().filter(|p| p.state != 'Z').count();
        let end = Instant::now() + Duration::from_secs(10);
        while found(&scan_proc()) < 2 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(found(&scan_proc()) >= 2, "both sleepers started");
        assert!(kill_tree(root) >= 2);
        sh.wait().expect("sh ends once its children are gone");
        assert_eq!(found(&scan_proc()), 0);
    }
}

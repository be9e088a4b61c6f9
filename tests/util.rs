//! Helpers for running the real `parlab` binary in tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parlab"))
}

/// Tests that compare timings take the machine for themselves; every other run of the binary shares it.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the machine alone (for the few tests whose outcome depends on having every core).
pub fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// Shares the machine with other ordinary tests (waits while a timing test holds it).
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Runs parlab with `args` and returns its output (stdin closed).
#[track_caller]
pub fn parlab(args: &[&str]) -> Output {
    let _machine = shared();
    Command::new(bin())
        .args(args)
        .env_remove("NO_COLOR")
        .env("PARLAB_DATA_DIR", scratch_data_dir())
        .stdin(Stdio::null())
        .output()
        .expect("parlab runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs parlab, expects exit 0, and parses stdout as JSON.
#[track_caller]
pub fn json(args: &[&str]) -> serde_json::Value {
    let o = parlab(args);
    assert!(o.status.success(), "parlab {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{}", stdout(&o)))
}

/// Pids of every live process whose parent chain leads to `root` (not including root).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Field 4 (after the ")" that closes the command name) is the parent pid.
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or("");
            let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            parents.push((pid, ppid, state.to_string()));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, _) in &parents {
            if *ppid == p && !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Whether a process with this pid still exists (zombies count: they were not reaped).
pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Every pid whose command line is this test binary's parlab, with a hidden sub-command.
pub fn parlab_children_of_tests() -> Vec<u32> {
    let me = std::process::id();
    descendants(me)
}

/// A tag unique to one test, put in the environment of the parlab it starts (children inherit it).
pub fn unique_tag(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    )
}

pub const TAG_ENV: &str = "PARLAB_TEST_TAG";

/// A parlab command carrying a tag in its environment.
pub fn tagged(args: &[&str], tag: &str) -> Command {
    let mut c = Command::new(bin());
    c.args(args).env(TAG_ENV, tag).env("PARLAB_DATA_DIR", scratch_data_dir()).stdin(Stdio::null());
    c
}

/// Live processes (not zombies) whose environment carries `tag`, with their command lines.
pub fn tagged_processes(tag: &str) -> Vec<(u32, String)> {
    let needle = format!("{TAG_ENV}={tag}");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').map(|x| x.1.trim_start().chars().next().unwrap_or('?')).unwrap_or('?');
        if state == 'Z' {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push((pid, cmd));
    }
    out
}

/// Waits up to `secs` for `cond`, polling.
pub fn wait_for(secs: f64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

/// Asserts that no process carrying `tag` is left (waits a little for exits in flight).
#[track_caller]
pub fn assert_none_left(tag: &str) {
    let ok = wait_for(3.0, || tagged_processes(tag).is_empty());
    assert!(ok, "processes left behind: {:?}", tagged_processes(tag));
}

/// A data folder for progress files that is never the real user's (one per test process).
pub fn scratch_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parlab-test-data-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Whether python3 can run; without it the Python tests say so and skip (under `CI` they fail instead: CI machines
/// have it, and a silently skipped test there would hide a broken check).
pub fn python3_or_skip() -> bool {
    let ok = Command::new("python3").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if ok.is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "python3 is required on CI for the Python exercise tests");
    eprintln!("note: python3 is not installed; skipping a Python exercise test");
    false
}

/// What one measured run of a process gave: its output, its peak resident memory, and whether it had to be killed.
pub struct Measured {
    pub output: Output,
    /// Peak RSS of the process (and of its waited-for children), from `wait4`'s rusage, in KiB.
    pub peak_rss_kib: u64,
    pub timed_out: bool,
}

/// The address space a measured process may take: far above any honest run, far below what a runaway allocation
/// would take from the machine (without it, a failing test could eat every GiB of RAM before it failed).
const MEASURED_ADDRESS_SPACE: u64 = 2 << 30;

/// Runs `cmd` (stdin closed, output captured) and reports its peak RSS. It is killed after `timeout_secs` (a hang
/// is then `timed_out`, never a stuck test), and its address space is capped at 2 GiB so that a runaway allocation
/// fails fast.
pub fn run_measured(cmd: &mut Command, timeout_secs: f64) -> Measured {
    use std::io::Read;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let _machine = shared();
    // SAFETY: between fork and exec the closure calls only setrlimit, which is async-signal-safe, on a local value.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: MEASURED_ADDRESS_SPACE, rlim_max: MEASURED_ADDRESS_SPACE };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    // Reaped below with wait4 (for its rusage), not with Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the process starts");
    let pid = child.id() as libc::pid_t;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(timeout_secs);
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        // SAFETY: pid is our own child, not yet reaped (std's Child is never waited on); both pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4 failed: {e}");
            continue;
        }
        if std::time::Instant::now() > deadline {
            timed_out = true;
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        } else {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    Measured { output, peak_rss_kib: usage.ru_maxrss as u64, timed_out }
}

/// The most resident memory a parlab command may take on hostile input.
pub const MAX_RSS_KIB: u64 = 200 * 1024;

/// Runs parlab with `args` in `dir` (with an empty progress folder of its own, 20 s at most) and asserts it neither
/// hung nor took more than `MAX_RSS_KIB`.
#[track_caller]
pub fn parlab_bounded(dir: &std::path::Path, args: &[&str]) -> Output {
    let data = tempfile::tempdir().expect("a temporary folder");
    let m = run_measured(Command::new(bin()).args(args).current_dir(dir).env("PARLAB_DATA_DIR", data.path()), 20.0);
    assert!(!m.timed_out, "parlab {args:?} hung (killed after 20 s)");
    assert!(
        m.peak_rss_kib < MAX_RSS_KIB,
        "parlab {args:?} took {} MiB (limit {} MiB); stderr: {}",
        m.peak_rss_kib / 1024,
        MAX_RSS_KIB / 1024,
        stderr(&m.output)
    );
    m.output
}

/// Waits up to `secs` for a child to exit; `None` if it is still running then (the caller decides what that means).
pub fn wait_timeout(child: &mut std::process::Child, secs: f64) -> Option<std::process::ExitStatus> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs a command to its end and returns its exit status with the peak resident memory, in bytes, of the process
/// and of the descendants it waited for (wait4's ru_maxrss). Its stdout and stderr go to files, returned as text.
pub fn run_measuring_peak_rss(mut cmd: Command) -> (std::process::ExitStatus, u64, String, String) {
    use std::os::unix::process::ExitStatusExt;
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let child = cmd
        .stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"))
        .spawn()
        .expect("the command starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers; the Child is forgotten after, never waited again.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    std::mem::forget(child);
    let text = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap_or_default();
    (std::process::ExitStatus::from_raw(status), usage.ru_maxrss as u64 * 1024, text(&out), text(&err))
}

/// A private tmux server (its own `-L` socket) driving parlab's TUI, with a window per command; the server and its
/// socket file are removed when dropped. Every end-to-end test of a screen uses this one driver.
pub struct Tmux {
    socket: String,
    windows: usize,
}

impl Tmux {
    pub fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
    }

    /// A server with no window yet (`open` adds them).
    pub fn new(tag: &str) -> Tmux {
        Tmux { socket: format!("parlab-tmux-{tag}"), windows: 0 }
    }

    /// Starts `cmd` in a 100x30 session (window 0).
    pub fn start(tag: &str, cmd: &str) -> Tmux {
        Tmux::start_sized(tag, cmd, 100, 30)
    }

    pub fn start_sized(tag: &str, cmd: &str, w: u16, h: u16) -> Tmux {
        let mut t = Tmux::new(tag);
        t.open_sized(cmd, w, h);
        t
    }

    /// Runs `cmd` in a new window (the first one 100x30) and returns its number; the shell keeps the window open
    /// after `cmd` exits and prints `EXITED status`.
    pub fn open(&mut self, cmd: &str) -> usize {
        self.open_sized(cmd, 100, 30)
    }

    fn open_sized(&mut self, cmd: &str, w: u16, h: u16) -> usize {
        let shell = format!("{cmd}; echo EXITED $?; sleep 120");
        let (w, h) = (w.to_string(), h.to_string());
        let args: Vec<&str> = if self.windows == 0 {
            vec!["-f", "/dev/null", "new-session", "-d", "-x", &w, "-y", &h, "sh", "-c", &shell]
        } else {
            vec!["new-window", "-d", "sh", "-c", &shell]
        };
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(&args).output().expect("tmux starts");
        assert!(out.status.success(), "tmux failed: {}", String::from_utf8_lossy(&out.stderr));
        self.windows += 1;
        self.windows - 1
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    pub fn screen_of(&self, w: usize) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &format!(":{w}")])
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
        }
    }

    pub fn keys_to(&self, w: usize, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", &format!(":{w}"), k]);
        }
    }

    /// Polls window 0 until `pred` holds; panics with the last screen after `secs`.
    #[track_caller]
    pub fn wait(&self, secs: f64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_on(0, secs, what, pred)
    }

    /// Polls window `w` until `pred` holds; panics with the last screen after `secs`.
    #[track_caller]
    pub fn wait_on(&self, w: usize, secs: f64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
        loop {
            let s = self.screen_of(w);
            if pred(&s) {
                return s;
            }
            if std::time::Instant::now() > end {
                panic!("timed out waiting for {what}; window {w} showed:\n{s}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A tmux format variable of the session (`alternate_on`, `socket_path`).
    pub fn flag(&self, name: &str) -> String {
        self.tmux(&["display", "-p", &format!("#{{{name}}}")]).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.flag("socket_path");
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).output();
        // tmux leaves its socket file behind.
        if socket.contains(&self.socket) {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Whether to skip a tmux test: tmux is missing (a note says so). Under CI a missing tmux fails instead.
pub fn no_tmux(what: &str) -> bool {
    if Tmux::available() {
        return false;
    }
    assert!(std::env::var_os("CI").is_none(), "tmux is required on CI for {what} (.ci/run installs it)");
    eprintln!("note: tmux is not installed; skipping {what}");
    true
}

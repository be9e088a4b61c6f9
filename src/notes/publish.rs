//! The TUI's side: a socket of its own (`notes-PID.sock`), a thread that accepts followers of this user, and a
//! thread that sends each of them where the TUI is whenever that changes. The UI thread only compares a position
//! and, when it changed, hands an owned line to the sender: it never writes to a socket, so a stuck follower can
//! never slow the UI (a follower that does not take a line within `WRITE_TIMEOUT` is dropped).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use anyhow::{Context, Result};

use super::socket::{peer_uid, remove_stale, runtime_dir, socket_path, uid};
use super::{position, showing};
use crate::app::App;

const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

enum ToSender {
    /// What the TUI shows now, as a JSON line.
    Show(String),
    Follower(UnixStream),
}

type Position = Option<(usize, usize, Option<usize>)>;

/// Publishes where this TUI is to `parlab notes --follow`. Dropping it removes the socket.
pub(crate) struct Publisher {
    tx: Sender<ToSender>,
    path: PathBuf,
    pid: u32,
    /// The last position sent (`None` inside: the lesson list); `None`: nothing sent yet.
    last: Option<Position>,
}

impl Publisher {
    /// Opens this TUI's socket in the runtime folder and starts its two threads.
    pub(crate) fn start() -> Result<Publisher> {
        let dir = runtime_dir()?;
        let pid = std::process::id();
        let path = socket_path(&dir, pid)?;
        remove_stale(&dir);
        // A socket with our pid is left from a process that died before it could remove it (pids are reused).
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("cannot open the notes socket '{}'", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make the notes socket '{}' private", path.display()))?;
        let (tx, rx) = mpsc::channel::<ToSender>();
        let atx = tx.clone();
        let me = uid();
        std::thread::Builder::new().name("notes-accept".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                // Another user cannot reach the socket through the private folder; if they could, they get nothing.
                if peer_uid(&stream).ok() != Some(me) || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
                    continue;
                }
                if atx.send(ToSender::Follower(stream)).is_err() {
                    break;
                }
            }
        })?;
        std::thread::Builder::new().name("notes-send".into()).spawn(move || {
            let mut current: Option<String> = None;
            let mut followers: Vec<UnixStream> = Vec::new();
            for msg in rx {
                match msg {
                    ToSender::Show(line) => {
                        followers.retain_mut(|f| f.write_all(line.as_bytes()).is_ok());
                        current = Some(line);
                    }
                    ToSender::Follower(mut f) => {
                        if current.as_ref().is_none_or(|line| f.write_all(line.as_bytes()).is_ok()) {
                            followers.push(f);
                        }
                    }
                }
            }
        })?;
        Ok(Publisher { tx, path, pid, last: None })
    }

    /// Called after the app handled events: sends followers the TUI's section when it changed.
    pub(crate) fn follow(&mut self, app: &App) {
        let now = position(app);
        if self.last == Some(now) {
            return;
        }
        self.last = Some(now);
        if let Ok(mut line) = serde_json::to_string(&showing(app, self.pid)) {
            line.push('\n');
            let _ = self.tx.send(ToSender::Show(line));
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

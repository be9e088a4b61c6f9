//! Where presenters' sockets live and who may use them: a folder private to the user (`$XDG_RUNTIME_DIR/parlab`,
//! else `/tmp/parlab-UID`, mode 0700, owned by the user, never a symlink), one socket per TUI named by its pid
//! (`notes-PID.sock`, mode 0600), and a check of the other end's user id (SO_PEERCRED) on both sides.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// The longest socket path the kernel takes (sun_path is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

pub(crate) fn uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

/// The folder for this user's presenter sockets, created private if missing; refused (with the reason) when it
/// is not a directory, is someone else's, or is open to others and cannot be made private.
pub(crate) fn runtime_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg.join("parlab"),
        _ => std::env::temp_dir().join(format!("parlab-{}", uid())),
    };
    private_dir(&dir)?;
    Ok(dir)
}

/// Makes sure `dir` is a directory of ours that only we can enter.
fn private_dir(dir: &Path) -> Result<()> {
    let shown = dir.display();
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create the notes folder '{shown}'")),
    }
    // Not followed: a symlink planted here by someone else must not redirect our sockets.
    let meta = fs::symlink_metadata(dir).with_context(|| format!("cannot read the notes folder '{shown}'"))?;
    if !meta.file_type().is_dir() {
        bail!("'{shown}' is not a directory (parlab keeps its notes sockets there): remove it");
    }
    if meta.uid() != uid() {
        bail!(
            "the notes folder '{shown}' belongs to user id {}, not to you ({}): refusing to use it",
            meta.uid(),
            uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("the notes folder '{shown}' is open to others and cannot be made private"))?;
    }
    Ok(())
}

/// The socket of the TUI with this pid.
pub(crate) fn socket_path(dir: &Path, pid: u32) -> Result<PathBuf> {
    let path = dir.join(format!("notes-{pid}.sock"));
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "the notes socket path '{}' is longer than the {MAX_SOCKET_PATH} bytes a Unix socket may have: set \
             XDG_RUNTIME_DIR to a shorter folder",
            path.display()
        );
    }
    Ok(path)
}

/// The user id of the process at the other end of a Unix socket.
pub(crate) fn peer_uid(stream: &UnixStream) -> Result<u32> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .context("cannot read the other end's credentials (SO_PEERCRED)")?;
    Ok(cred.uid())
}

/// A presenter's socket found in the folder.
#[derive(Clone, Debug)]
pub(crate) struct Presenter {
    pub pid: u32,
    pub path: PathBuf,
    pub since: SystemTime,
}

/// Every presenter socket in the folder, newest first (by when the socket was made, then by pid).
pub(crate) fn presenters(dir: &Path) -> Vec<Presenter> {
    let mut out: Vec<Presenter> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let pid = name.to_str()?.strip_prefix("notes-")?.strip_suffix(".sock")?.parse().ok()?;
            let meta = e.metadata().ok()?;
            Some(Presenter { pid, path: e.path(), since: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH) })
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse((p.since, p.pid)));
    out
}

/// Connects to a presenter and checks it runs as this user. `Ok(None)`: nobody listens there (its TUI quit just
/// now, was killed, or is between bind and listen); the socket of a TUI that is gone is removed, so it is not
/// tried again. An error is a socket that is there but must not be followed (another user's) or cannot be reached.
pub(crate) fn connect(p: &Presenter) -> Result<Option<UnixStream>> {
    let stream = match UnixStream::connect(&p.path) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            if gone(p.pid) {
                let _ = fs::remove_file(&p.path);
            }
            return Ok(None);
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot connect to '{}'", p.path.display())),
    };
    let theirs = peer_uid(&stream)?;
    if theirs != uid() {
        bail!("'{}' is served by user id {theirs}, not by you ({}): not following it", p.path.display(), uid());
    }
    Ok(Some(stream))
}

/// Whether no process has this pid (a socket named by it has no TUI behind it).
fn gone(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return true };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
}

/// Removes the sockets of TUIs that are gone (killed before they could remove their own): nobody listens on them.
pub(crate) fn remove_stale(dir: &Path) {
    for p in presenters(dir) {
        let gone =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), None) == Err(nix::errno::Errno::ESRCH);
        if gone && UnixStream::connect(&p.path).is_err() {
            let _ = fs::remove_file(&p.path);
        }
    }
}

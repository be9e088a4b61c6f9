//! Private scratch folders under the system temp dir (`parlab-KIND-PID-N-NANOS`), removed when dropped. A parlab
//! killed with SIGKILL cannot drop its folder, so each new folder first sweeps away this user's folders of the
//! same kind whose parlab is gone (its pid no longer runs). A leaf: imports nothing of parlab's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh folder only this process uses; removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Creates `parlab-{kind}-{pid}-{n}-{nanos}` in the temp dir, after sweeping dead parlabs' folders of `kind`.
    pub(crate) fn create(kind: &str) -> std::io::Result<Scratch> {
        let tmp = std::env::temp_dir();
        sweep(&tmp, kind);
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path =
            tmp.join(format!("parlab-{kind}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        // create_dir fails if the name exists, so nobody else's folder or link is ever used.
        std::fs::create_dir(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create a temporary folder '{}': {e}", path.display()))
        })?;
        Ok(Scratch(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pid in a scratch folder's name, if the name is one of `kind`'s.
fn owner_pid(name: &str, kind: &str) -> Option<i32> {
    let rest = name.strip_prefix("parlab-")?.strip_prefix(kind)?.strip_prefix('-')?;
    rest.split('-').next()?.parse().ok().filter(|&p| p > 0)
}

/// Removes this user's real folders (not links) of `kind` in `tmp` whose parlab no longer runs.
fn sweep(tmp: &Path, kind: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner_pid(n, kind)) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == uid => {
                let _ = std::fs::remove_dir_all(&path);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_name_gives_its_pid_only_for_its_kind() {
        assert_eq!(owner_pid("parlab-engine-123-0-99", "engine"), Some(123));
        assert_eq!(owner_pid("parlab-check-123-0-99", "engine"), None);
        assert_eq!(owner_pid("parlab-engine-x-0", "engine"), None);
        assert_eq!(owner_pid("parlab-engine-0-1", "engine"), None);
        assert_eq!(owner_pid("other", "engine"), None);
    }

    #[test]
    fn a_dead_parlabs_folder_is_swept_and_a_live_ones_kept() {
        let tmp = tempfile::tempdir().expect("temp dir");
        // A pid far above pid_max cannot run; our own pid does.
        let dead = tmp.path().join("parlab-t-2147483000-0-1");
        let live = tmp.path().join(format!("parlab-t-{}-0-1", std::process::id()));
        let other = tmp.path().join("parlab-u-2147483000-0-1");
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("harness.py"), "x").unwrap();
        }
        sweep(tmp.path(), "t");
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists(), "another kind is not touched");
    }

    #[test]
    fn a_scratch_folder_is_gone_once_dropped() {
        let s = Scratch::create("scratchtest").unwrap();
        let p = s.path().to_path_buf();
        assert!(p.is_dir());
        drop(s);
        assert!(!p.exists());
    }
}

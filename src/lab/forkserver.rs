//! The `forkserver` start method: a small server process forked from the lab before any run data or demo state
//! exists. Asked over a socket, it forks a child from its own clean image and hands the lab the child's pid and
//! pipe ends (SCM_RIGHTS). The children are the server's, so the server reaps them and sends every exit status
//! back: the lab can still report how a worker died. The server is single-threaded (it may fork), dies with the
//! lab (parent-death signal) and exits when the lab closes the socket; its children die with it the same way.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};

use crate::clock::Mark;

use super::Out;
use super::sys::{self, close_from};

/// What a child forked by the server runs. The server does not know what that is: the lab hands it an `Entry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A pool worker serving chunks on its pipes (`crate::worker::serve_fds`); the request carries the pool's
    /// shared task queue, which the worker gets as its fd 3.
    Worker,
    /// A demo's child (`crate::lab::demos::child_main`).
    Demo(String),
}

impl Role {
    fn encode(&self) -> Vec<u8> {
        match self {
            Role::Worker => vec![MSG_FORK, 0],
            Role::Demo(name) => {
                let mut v = vec![MSG_FORK, 1];
                v.extend_from_slice(name.as_bytes());
                v
            }
        }
    }

    fn decode(msg: &[u8]) -> Option<Role> {
        match msg {
            [MSG_FORK, 0] => Some(Role::Worker),
            [MSG_FORK, 1, name @ ..] => std::str::from_utf8(name).ok().map(|n| Role::Demo(n.to_string())),
            _ => None,
        }
    }
}

/// What a child forked by the server runs for its role; returns its exit code. The lab's, handed to `start`, so
/// the server imports neither the worker nor the demos.
pub(crate) type Entry = fn(&Role) -> i32;

const MSG_FORK: u8 = b'F';
const MSG_READY: u8 = b'R';
const MSG_SPAWNED: u8 = b'S';
const MSG_FAILED: u8 = b'E';
const MSG_EXITED: u8 = b'X';

/// The lab's handle on its fork server.
pub(crate) struct ForkServer {
    pid: i32,
    sock: Option<OwnedFd>,
    /// Exit statuses reported by the server and not yet asked for: (pid, raw wait status).
    exits: Vec<(i32, i32)>,
    /// When the lab forked the server, and when the server said it was ready.
    pub(crate) launched: (Mark, Mark),
}

fn gone(pid: i32) -> io::Error {
    io::Error::other(format!("the forkserver (pid {pid}) is gone"))
}

/// Sends one message, with descriptors attached.
fn send(sock: RawFd, msg: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(msg)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cm: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    loop {
        match sendmsg::<()>(sock, &iov, cm, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message and the descriptors that came with it; `None` when the other side closed the socket.
fn recv(sock: RawFd) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = [0u8; 512];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(list) = c {
                // SAFETY: the kernel just installed these descriptors in this process for us; nobody else owns them.
                fds.extend(list.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Ok(None);
        }
        return Ok(Some((buf[..n].to_vec(), fds)));
    }
}

impl ForkServer {
    /// Forks the server now. Call it while the lab is single-threaded and before run data or demo state exists:
    /// everything the server's children inherit is what the lab holds at this moment.
    pub(crate) fn start(out: &mut Out, entry: Entry) -> io::Result<ForkServer> {
        out.flush();
        let (mine, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(io::Error::from)?;
        let lab = std::process::id() as i32;
        let forked = Mark::now();
        // SAFETY: the lab is single-threaded here (callers start the server before any thread), so the child gets
        // a consistent copy of every lock and allocator state; it never returns into the lab's code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(mine);
            server_main(theirs, lab, entry);
        }
        drop(theirs);
        let mut server = ForkServer { pid, sock: Some(mine), exits: Vec::new(), launched: (forked, forked) };
        match server.recv()? {
            Some((msg, _)) if msg.first() == Some(&MSG_READY) => {
                server.launched.1 = Mark::now();
                Ok(server)
            }
            _ => Err(gone(pid)),
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    fn sock(&self) -> io::Result<RawFd> {
        self.sock.as_ref().map(|s| s.as_raw_fd()).ok_or_else(|| gone(self.pid))
    }

    fn recv(&mut self) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        recv(self.sock()?)
    }

    /// Notes an exit report; true if the message was one.
    fn keep_exit(&mut self, msg: &[u8]) -> bool {
        if msg.len() == 9 && msg[0] == MSG_EXITED {
            let pid = i32::from_le_bytes(msg[1..5].try_into().unwrap_or([0; 4]));
            let status = i32::from_le_bytes(msg[5..9].try_into().unwrap_or([0; 4]));
            self.exits.push((pid, status));
            return true;
        }
        false
    }

    /// Asks the server for a child running `role`: returns its pid, the write end of its input and the read end
    /// of its output.
    pub(crate) fn fork(&mut self, role: &Role) -> io::Result<(i32, OwnedFd, OwnedFd)> {
        self.fork_with(role, None)
    }

    /// `fork`, handing the child `extra` as its fd 3 as well (a worker's shared task queue).
    pub(crate) fn fork_with(&mut self, role: &Role, extra: Option<RawFd>) -> io::Result<(i32, OwnedFd, OwnedFd)> {
        let fds: Vec<RawFd> = extra.into_iter().collect();
        send(self.sock()?, &role.encode(), &fds)?;
        loop {
            let Some((msg, mut fds)) = self.recv()? else { return Err(gone(self.pid)) };
            if self.keep_exit(&msg) {
                continue;
            }
            match msg.first() {
                Some(&MSG_SPAWNED) if msg.len() == 5 && fds.len() == 2 => {
                    let pid = i32::from_le_bytes(msg[1..5].try_into().unwrap_or([0; 4]));
                    let from = fds.pop().ok_or_else(|| gone(self.pid))?;
                    let to = fds.pop().ok_or_else(|| gone(self.pid))?;
                    return Ok((pid, to, from));
                }
                Some(&MSG_FAILED) if msg.len() == 5 => {
                    let errno = i32::from_le_bytes(msg[1..5].try_into().unwrap_or([0; 4]));
                    return Err(io::Error::other(format!(
                        "the forkserver could not fork: {}",
                        io::Error::from_raw_os_error(errno)
                    )));
                }
                _ => return Err(io::Error::other("the forkserver sent a message the lab does not understand")),
            }
        }
    }

    /// The raw wait status of a child of the server, if the server has already reported its exit (reports
    /// waiting on the socket are read first, without blocking).
    pub(crate) fn try_status(&mut self, pid: i32) -> Option<i32> {
        while let Ok(sock) = self.sock() {
            let mut fd = libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 };
            // SAFETY: polling one valid pollfd without waiting.
            if unsafe { libc::poll(&mut fd, 1, 0) } <= 0 {
                break;
            }
            match self.recv() {
                Ok(Some((msg, _))) if self.keep_exit(&msg) => {}
                _ => break,
            }
        }
        let i = self.exits.iter().position(|e| e.0 == pid)?;
        Some(self.exits.swap_remove(i).1)
    }

    /// Waits until the server reports that child `pid` ended, and returns its raw wait status.
    pub(crate) fn wait(&mut self, pid: i32) -> io::Result<i32> {
        loop {
            if let Some(i) = self.exits.iter().position(|e| e.0 == pid) {
                return Ok(self.exits.swap_remove(i).1);
            }
            let Some((msg, _)) = self.recv()? else { return Err(gone(self.pid)) };
            if !self.keep_exit(&msg) {
                return Err(io::Error::other("the forkserver sent a message the lab does not understand"));
            }
        }
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        // Closing the socket ends the server (and with it any child still running); the kill makes it certain.
        self.sock = None;
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            while libc::waitpid(self.pid, &mut status, 0) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
        }
    }
}

/// The server process: forks children on request and reports their exits, until the lab closes the socket.
fn server_main(sock: OwnedFd, lab: i32, entry: Entry) -> ! {
    // SAFETY: we are the freshly forked, single-threaded server; these calls only change our own process state.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != lab {
            libc::_exit(3);
        }
        // The lab's event stream and input are not the server's: hold neither open.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            libc::_exit(3);
        }
        libc::dup2(null, 0);
        libc::dup2(null, 1);
    }
    close_from(3, Some(sock.as_raw_fd()));
    let code = std::panic::catch_unwind(|| serve(sock.as_raw_fd(), entry)).map_or(101, |_| 0);
    // SAFETY: _exit ends the server without running the lab's destructors (it is a copy of the lab).
    unsafe { libc::_exit(code) }
}

fn serve(sock: RawFd, entry: Entry) {
    if send(sock, &[MSG_READY], &[]).is_err() {
        return;
    }
    // Live children and a pidfd for each (wakes the poll when it exits); without pidfds, poll every 20 ms.
    let mut children: Vec<(i32, Option<OwnedFd>)> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        fds.clear();
        fds.push(libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 });
        for (_, pidfd) in &children {
            let fd = pidfd.as_ref().map_or(-1, |f| f.as_raw_fd());
            fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        }
        let timeout = if children.iter().any(|c| c.1.is_none()) { 20 } else { -1 };
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
        if n > 0 && fds[0].revents != 0 {
            match recv(sock) {
                Ok(Some((msg, fds))) => match Role::decode(&msg) {
                    // The descriptors that came with the request are the child's; ours close when `fds` drops.
                    Some(role) => match fork_child(&role, fds.first().map(|f| f.as_raw_fd()), entry) {
                        Ok((pid, to, from)) => {
                            if send(
                                sock,
                                &[&[MSG_SPAWNED][..], &pid.to_le_bytes()].concat(),
                                &[to.as_raw_fd(), from.as_raw_fd()],
                            )
                            .is_err()
                            {
                                return;
                            }
                            // SAFETY: pidfd_open on our own child; the result is a new descriptor we own.
                            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
                            // SAFETY: a non-negative result is a fresh descriptor.
                            let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) });
                            children.push((pid, pidfd));
                        }
                        Err(e) => {
                            let errno = e.raw_os_error().unwrap_or(0);
                            if send(sock, &[&[MSG_FAILED][..], &errno.to_le_bytes()].concat(), &[]).is_err() {
                                return;
                            }
                        }
                    },
                    None => return,
                },
                // The lab closed the socket (or is gone): stop, and the children die with us.
                Ok(None) | Err(_) => return,
            }
        }
        // Reap every child that ended and tell the lab how.
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own children with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            children.retain(|c| c.0 != pid);
            if send(sock, &[&[MSG_EXITED][..], &pid.to_le_bytes(), &status.to_le_bytes()].concat(), &[]).is_err() {
                return;
            }
        }
    }
}

/// Forks one child of the server, wired to two fresh pipes (and `extra` as its fd 3): returns its pid, its input's
/// write end and its output's read end.
fn fork_child(role: &Role, extra: Option<RawFd>, entry: Entry) -> io::Result<(i32, OwnedFd, OwnedFd)> {
    // SAFETY: the server is single-threaded. Nothing of the server's (its socket, other children's pidfds) stays
    // open in the child.
    unsafe { sys::fork_piped(extra, || entry(role)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_message() {
        for role in [Role::Worker, Role::Demo("isolation".into())] {
            assert_eq!(Role::decode(&role.encode()), Some(role));
        }
        assert_eq!(Role::decode(b"Z"), None);
    }
}

//! `shared-memory`: two worker processes each sum half of an array of `size` MiB of f64. First the array goes to
//! them as messages (serialized to bytes, sent through a socket, decoded again); then it is built in one shared
//! block (a memfd, like `multiprocessing.shared_memory`) and only the block's descriptor and a range cross. The
//! workers are forked before the array exists, so they cannot inherit it: everything they see was sent.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::clock::Mark;
use crate::timeline::{DemoReport, SpanKind};
use crate::units::fmt_bytes_mib;
use crate::units::fmt_duration_ms;

use super::{Ctx, Mapping, check_memory, fig, fork_with};

const HEAD: usize = 25;
const WORKERS: usize = 2;

/// Reads a command head (tag and three u64) with any descriptor sent along. False at a clean end of stream.
fn recv_head(fd: RawFd, head: &mut [u8; HEAD], fds: &mut Vec<OwnedFd>) -> std::io::Result<bool> {
    let mut got = 0;
    while got < HEAD {
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut head[got..])];
        let msg = match recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(list) = c {
                // SAFETY: the kernel just installed these descriptors for us.
                fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
            }
        }
        if msg.bytes == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "command cut short"));
        }
        got += msg.bytes;
    }
    Ok(true)
}

fn field(head: &[u8; HEAD], i: usize) -> u64 {
    u64::from_le_bytes(head[1 + i * 8..9 + i * 8].try_into().unwrap_or([0; 8]))
}

/// A worker: sums the f64 it is sent (`M`: count, then the bytes) or the range of a shared block it is handed
/// (`S`: offset, count, block length, with the block's descriptor), and replies with the sum and its marks.
fn worker(input: &mut File, output: &mut File) -> i32 {
    let fd = input.as_raw_fd();
    let mut bytes = Vec::new();
    loop {
        let mut head = [0u8; HEAD];
        let mut fds = Vec::new();
        match recv_head(fd, &mut head, &mut fds) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(_) => return 2,
        }
        let arrived = Mark::now();
        let (received, decoded, sum) = match head[0] {
            b'M' => {
                let count = field(&head, 0) as usize;
                bytes.resize(count * 8, 0);
                if input.read_exact(&mut bytes).is_err() {
                    return 2;
                }
                let received = Mark::now();
                let values: Vec<f64> =
                    bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
                let decoded = Mark::now();
                (received, decoded, values.iter().sum::<f64>())
            }
            b'S' => {
                let (offset, count, len) =
                    (field(&head, 0) as usize, field(&head, 1) as usize, field(&head, 2) as usize);
                let Some(block) = fds.first() else { return 2 };
                let Ok(map) = Mapping::of_fd(block.as_raw_fd(), len, false) else { return 2 };
                if (offset + count) * 8 > map.len() {
                    return 2;
                }
                let received = Mark::now();
                // SAFETY: the mapping is page-aligned and holds at least `offset + count` f64 (checked above).
                let values = unsafe { std::slice::from_raw_parts((map.ptr() as *const f64).add(offset), count) };
                (received, received, values.iter().sum::<f64>())
            }
            _ => return 2,
        };
        let done = Mark::now();
        let line = format!(
            "{} {} {} {} {} {} {} {} {}\n",
            sum.to_bits(),
            arrived.ns,
            arrived.cpu,
            received.ns,
            received.cpu,
            decoded.ns,
            decoded.cpu,
            done.ns,
            done.cpu
        );
        if output.write_all(line.as_bytes()).is_err() {
            return 2;
        }
    }
}

fn head(tag: u8, a: u64, b: u64, c: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEAD);
    v.push(tag);
    for x in [a, b, c] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Totals of one phase, summed over lanes.
#[derive(Default)]
struct Totals {
    copy_ms: f64,
    sum_ms: f64,
    bytes: u64,
    sum: f64,
}

fn ms(a: Mark, b: Mark) -> f64 {
    b.ns.saturating_sub(a.ns) as f64 / 1e6
}

/// Reads each worker's reply and records its spans.
fn replies(ctx: &mut Ctx, workers: &mut [super::Proc], lanes: &[u32], totals: &mut Totals) -> Result<()> {
    for (i, w) in workers.iter_mut().enumerate() {
        let line = w.read_line().context("a shared-memory worker did not reply")?;
        totals.bytes += line.len() as u64 + 1;
        let f: Vec<u64> =
            line.split_whitespace().map(|x| x.parse::<i64>().map(|v| v as u64)).collect::<Result<_, _>>()?;
        if f.len() != 9 {
            bail!("a shared-memory worker sent '{line}'");
        }
        let m = |k: usize| Mark { ns: f[k], cpu: f[k + 1] as i32 };
        let (arrived, received, decoded, done) = (m(1), m(3), m(5), m(7));
        ctx.span(lanes[i], SpanKind::Ipc, arrived, received);
        if decoded.ns > received.ns {
            ctx.span(lanes[i], SpanKind::Serialize, received, decoded);
        }
        ctx.span(lanes[i], SpanKind::Run, decoded, done);
        totals.copy_ms += ms(arrived, decoded);
        totals.sum_ms += ms(decoded, done);
        totals.sum += f64::from_bits(f[0]);
    }
    Ok(())
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let mib = ctx.size;
    check_memory("shared-memory", mib * 4 + 64, mib, 4)?;
    let len = (mib as usize) << 20;
    let n = len / 8;
    let lab = ctx.lab_pid;
    // Exact in f64: every partial sum is a multiple of 0.5 below 2^53.
    let expected = 0.5 * ((n as u64) * (n as u64 - 1) / 2) as f64;
    let halves = [(0, n / 2), (n / 2, n - n / 2)];

    // The workers start before the array exists: they can only see what they are sent.
    let mut workers = Vec::new();
    let mut lanes = Vec::new();
    for i in 0..WORKERS {
        let w = fork_with(ctx, true, worker)?;
        let lane = ctx.lane(format!("p{}", i + 1), w.pid as u32, w.pid as u32);
        ctx.span(lane, SpanKind::Startup, w.started, w.returned);
        lanes.push(lane);
        workers.push(w);
    }
    let lab_lane = ctx.lane("lab", lab, lab);

    // 1. Message passing.
    let array: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let mut message = Totals::default();
    let t0 = Mark::now();
    for (w, &(offset, count)) in workers.iter_mut().zip(&halves) {
        let s0 = Mark::now();
        let mut bytes = head(b'M', count as u64, 0, 0);
        bytes.reserve(count * 8);
        for v in &array[offset..offset + count] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let s1 = Mark::now();
        w.to.as_mut().ok_or_else(|| anyhow!("a worker has no input"))?.write_all(&bytes)?;
        let s2 = Mark::now();
        ctx.span(lab_lane, SpanKind::Serialize, s0, s1);
        ctx.span(lab_lane, SpanKind::Ipc, s1, s2);
        message.copy_ms += ms(s0, s2);
        message.bytes += bytes.len() as u64;
    }
    replies(ctx, &mut workers, &lanes, &mut message)?;
    let message_ms = ms(t0, Mark::now());
    drop(array);
    ctx.checkpoint();

    // 2. One shared block: built in place, then only its descriptor and a range go to each worker.
    let c0 = Mark::now();
    // SAFETY: memfd_create with a valid C string; the result is a new descriptor we own.
    let raw = unsafe { libc::memfd_create(c"parlab-shared-array".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create the shared block");
    }
    // SAFETY: a fresh descriptor from memfd_create.
    let block = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ftruncate on our own memfd.
    if unsafe { libc::ftruncate(block.as_raw_fd(), len as libc::off_t) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot size the shared block");
    }
    let mut map = Mapping::of_fd(block.as_raw_fd(), len, true).context("cannot map the shared block")?;
    {
        // SAFETY: the mapping is page-aligned, `len` bytes long and only ours to write for now.
        let values = unsafe { std::slice::from_raw_parts_mut(map.bytes_mut().as_mut_ptr() as *mut f64, n) };
        for (i, v) in values.iter_mut().enumerate() {
            *v = i as f64 * 0.5;
        }
    }
    let c1 = Mark::now();
    ctx.span(lab_lane, SpanKind::Run, c0, c1);
    let mut shared = Totals::default();
    let t0 = Mark::now();
    for (w, &(offset, count)) in workers.iter().zip(&halves) {
        let cmd = head(b'S', offset as u64, count as u64, len as u64);
        let sock = w.to.as_ref().ok_or_else(|| anyhow!("a worker has no input"))?.as_raw_fd();
        let s0 = Mark::now();
        let fds = [block.as_raw_fd()];
        sendmsg::<()>(
            sock,
            &[std::io::IoSlice::new(&cmd)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .context("cannot send the shared block")?;
        let s1 = Mark::now();
        ctx.span(lab_lane, SpanKind::Ipc, s0, s1);
        shared.copy_ms += ms(s0, s1);
        shared.bytes += cmd.len() as u64;
    }
    replies(ctx, &mut workers, &lanes, &mut shared)?;
    let shared_ms = ms(t0, Mark::now());
    drop(map);
    for w in &mut workers {
        w.join_ok(ctx)?;
    }

    let ok = |t: &Totals| t.sum == expected;
    let row = |what: &str, t: &Totals, wall: f64| {
        vec![
            what.to_string(),
            fmt_bytes_mib(t.bytes),
            fmt_duration_ms(wall),
            fmt_duration_ms(t.copy_ms),
            fmt_duration_ms(t.sum_ms),
            if ok(t) { "yes" } else { "NO" }.to_string(),
        ]
    };
    let rows = vec![
        row("as messages (serialized, sent, decoded)", &message, message_ms),
        row("one shared block (a descriptor and a range)", &shared, shared_ms),
    ];
    if !ok(&message) || !ok(&shared) {
        bail!("a sum came out wrong (expected {expected}, got {} and {})", message.sum, shared.sum);
    }
    ctx.note(format!(
        "building the array took {} in the shared block, before the clock (as building the private array did)",
        fmt_duration_ms(ms(c0, c1))
    ));
    let figures = vec![
        fig("array_mib", mib as f64, "MiB"),
        fig("message_ms", message_ms, "ms"),
        fig("shared_ms", shared_ms, "ms"),
        fig("message_bytes", message.bytes as f64, "bytes"),
        fig("shared_bytes", shared.bytes as f64, "bytes"),
        fig("message_copy_ms", message.copy_ms, "ms"),
        fig("shared_copy_ms", shared.copy_ms, "ms"),
        fig("sums_correct", 1.0, "bool"),
        fig("shared_speedup", message_ms / shared_ms.max(1e-6), "x"),
    ];
    let reading = format!(
        "Handing the {mib} MiB array over as messages took {}: it was serialized, pushed through a socket and decoded \
         again ({} of copying, summed over processes). Through one shared block it took {} ({:.0}× less): only {} and \
         a descriptor crossed, and each worker summed its half in place. No copy also means no isolation: writers \
         to shared memory need a lock (see the race demo).",
        fmt_duration_ms(message_ms),
        fmt_duration_ms(message.copy_ms),
        fmt_duration_ms(shared_ms),
        message_ms / shared_ms.max(1e-6),
        fmt_bytes_mib(shared.bytes),
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("{WORKERS} workers sum a {mib} MiB array of f64: sent as messages vs one shared block"),
        columns: [
            "how the array reached the workers",
            "bytes between processes",
            "time",
            "copying",
            "summing",
            "sum correct",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        reading,
        figures,
    })
}

//! `ipc`: round trips of 1 KB .. `size` MB payloads to a worker process (a forked echo child, started before the
//! clock: every byte goes into a pipe and out again, both ways) and to a worker thread (which receives the buffer
//! itself: a pointer moves, nothing is copied). For scale, the time of two plain copies in one process, the least
//! any serialization must do.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow, bail};

use crate::clock::Mark;
use crate::timeline::{DemoReport, SpanKind, median};
use crate::units::fmt_duration_ms;
use crate::workload::make_payload;

/// A deterministic payload: a 1 MiB pattern repeated (quick to build even for 100 MB).
fn payload(len: usize) -> Vec<u8> {
    let pattern = make_payload(len.min(1 << 20));
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let take = (len - v.len()).min(pattern.len());
        v.extend_from_slice(&pattern[..take]);
    }
    v
}

use super::{Ctx, check_memory, fig, fork_with, read_full};

/// The echo child: reads `len: u64` and `len` bytes, sends them back, until its input ends.
fn echo(input: &mut File, output: &mut File) -> i32 {
    let mut buf = Vec::new();
    loop {
        let mut head = [0u8; 8];
        match read_full(input, &mut head) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(_) => return 2,
        }
        let len = u64::from_le_bytes(head) as usize;
        buf.resize(len, 0);
        if input.read_exact(&mut buf).is_err() || output.write_all(&head).is_err() || output.write_all(&buf).is_err() {
            return 2;
        }
    }
}

fn grow_pipe(f: &File) {
    // As the processes mode does.
    crate::lab::sys::grow_pipe(f.as_raw_fd());
}

fn label(bytes: usize) -> String {
    if bytes >= 1_000_000 { format!("{}mb", bytes / 1_000_000) } else { format!("{}kb", bytes / 1_000) }
}

fn shown(bytes: usize) -> String {
    if bytes >= 1_000_000 { format!("{} MB", bytes / 1_000_000) } else { format!("{} KB", bytes / 1_000) }
}

fn ms(a: Mark, b: Mark) -> f64 {
    b.ns.saturating_sub(a.ns) as f64 / 1e6
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let max = ctx.size as usize * 1_000_000;
    check_memory("ipc", ctx.size * 5 + 64, ctx.size, 5)?;
    let mut sizes: Vec<usize> = [1_000, 1_000_000, 10_000_000, 100_000_000].into_iter().filter(|s| *s <= max).collect();
    if sizes.last() != Some(&max) {
        sizes.push(max);
    }
    let lab = ctx.lab_pid;
    let reps_for = |len: usize| (100_000_000 / len).clamp(3, 30);

    // The process side first: the echo child is forked while the lab is single-threaded.
    let mut child = fork_with(ctx, false, echo)?;
    let to = child.to.as_ref().ok_or_else(|| anyhow!("the echo child has no input"))?;
    grow_pipe(to);
    grow_pipe(child.from.get_ref());
    let lab_lane = ctx.lane("lab → process", lab, lab);
    let child_lane = ctx.lane("p1 echo", child.pid as u32, child.pid as u32);
    ctx.span(child_lane, SpanKind::Startup, child.started, child.returned);
    let mut process_ms = Vec::new();
    for &len in &sizes {
        let payload = payload(len);
        let mut back = vec![0u8; len];
        let mut times = Vec::new();
        for r in 0..reps_for(len) {
            let t0 = Mark::now();
            let to = child.to.as_mut().ok_or_else(|| anyhow!("the echo child has no input"))?;
            to.write_all(&(len as u64).to_le_bytes())?;
            to.write_all(&payload)?;
            let mut head = [0u8; 8];
            child.from.read_exact(&mut head)?;
            child.from.read_exact(&mut back)?;
            let t1 = Mark::now();
            if u64::from_le_bytes(head) as usize != len || back != payload {
                bail!("the {} payload came back different", shown(len));
            }
            times.push(ms(t0, t1));
            ctx.span_n(lab_lane, r as u64, 1, SpanKind::Ipc, t0, t1);
        }
        process_ms.push(median(&times));
        ctx.checkpoint();
    }
    child.join_ok(ctx).context("the echo child")?;

    // Threads: the payload is moved to the thread and back (a pointer each way).
    let (to_thread, thread_rx) = mpsc::channel::<Vec<u8>>();
    let (thread_tx, from_thread) = mpsc::channel::<Vec<u8>>();
    let echo_thread = std::thread::spawn(move || {
        while let Ok(v) = thread_rx.recv() {
            if thread_tx.send(v).is_err() {
                break;
            }
        }
    });
    let thread_lane = ctx.lane("lab → thread", lab, lab);
    let mut thread_ms = Vec::new();
    let mut copy_ms = Vec::new();
    for &len in &sizes {
        let mut payload = payload(len);
        let mut times = Vec::new();
        for r in 0..reps_for(len) {
            let t0 = Mark::now();
            to_thread.send(payload).map_err(|_| anyhow!("the echo thread is gone"))?;
            payload = from_thread.recv().map_err(|_| anyhow!("the echo thread is gone"))?;
            let t1 = Mark::now();
            times.push(ms(t0, t1));
            ctx.span_n(thread_lane, r as u64, 1, SpanKind::Ipc, t0, t1);
        }
        thread_ms.push(median(&times));
        // Two copies into buffers that already exist (as the pipe round trip reuses its buffers).
        let (mut once, mut twice) = (vec![0u8; len], vec![0u8; len]);
        let mut copies = Vec::new();
        for _ in 0..reps_for(len).min(5) {
            let t0 = Mark::now();
            once.copy_from_slice(&payload);
            twice.copy_from_slice(black_box(&once));
            black_box(&twice);
            let t1 = Mark::now();
            copies.push(ms(t0, t1));
            ctx.span(thread_lane, SpanKind::Serialize, t0, t1);
        }
        copy_ms.push(median(&copies));
        ctx.checkpoint();
    }
    drop(to_thread);
    echo_thread.join().map_err(|_| anyhow!("the echo thread panicked"))?;

    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let mbps = len as f64 / 1e6 / (process_ms[i] / 1000.0).max(1e-9);
        rows.push(vec![
            shown(len),
            fmt_duration_ms(process_ms[i]),
            format!("{mbps:.0}"),
            fmt_duration_ms(thread_ms[i]),
            fmt_duration_ms(copy_ms[i]),
        ]);
        let l = label(len);
        figures.push(fig(&format!("process_rt_ms_{l}"), process_ms[i], "ms"));
        figures.push(fig(&format!("process_mb_per_s_{l}"), mbps, "MB/s"));
        figures.push(fig(&format!("thread_rt_ms_{l}"), thread_ms[i], "ms"));
        figures.push(fig(&format!("copy_ms_{l}"), copy_ms[i], "ms"));
    }
    let last = sizes.len() - 1;
    let big = sizes[last];
    let big_mbps = big as f64 / 1e6 / (process_ms[last] / 1000.0).max(1e-9);
    let (tmin, tmax) = super::min_max(&thread_ms);
    let reading = format!(
        "Through a process every byte is copied into a pipe and out again, both ways: {} took {} ({big_mbps:.0} MB/s \
         of payload, {:.1}× two plain copies). A thread got the buffer itself, {}–{} at any size: an MB/s figure \
         for it would mean nothing. Python adds pickling at both ends (CPython's Pool: 209 MB/s at 100 MB).",
        shown(big),
        fmt_duration_ms(process_ms[last]),
        process_ms[last] / copy_ms[last].max(1e-9),
        fmt_duration_ms(tmin),
        fmt_duration_ms(tmax),
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("round trips of 1 KB .. {} through a worker process and a worker thread", shown(big)),
        columns: ["payload", "process round trip", "MB/s of payload", "thread round trip", "2 copies in-process"]
            .map(String::from)
            .to_vec(),
        rows,
        reading,
        figures,
    })
}

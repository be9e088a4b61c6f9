//! `cow`: copy-on-write after fork. The lab fills a buffer of `size` MiB (4 KiB pages, no huge pages), then forks
//! three children: one does nothing, one reads every byte, one writes one byte per page. Each child counts its own
//! minor page faults around what it does (getrusage) and reads its private memory from /proc/self/smaps_rollup.
//! Afterwards the lab checks that its own buffer is unchanged.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};

use crate::clock::Mark;
use crate::timeline::{DemoReport, SpanKind, median};
use crate::units::{fmt_count, fmt_duration_ms, fmt_kib_as_mib};

use super::{Ctx, Mapping, check_memory, fig, fork_with, minor_faults, page_size, smaps_kib};

const FILL: u8 = 0x5a;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Nothing,
    Read,
    Write,
}

/// In the child: do `action` on the inherited buffer and report marks, faults and private memory.
fn child_side(action: Action, ptr: usize, len: usize, page: usize, out: &mut File) -> i32 {
    let ptr = ptr as *mut u8;
    let before_kib = smaps_kib("Private_Dirty");
    let faults0 = minor_faults();
    let start = Mark::now();
    let mut acc = 0u64;
    match action {
        Action::Nothing => {}
        Action::Read => {
            // Every byte is read (looking for one that is not there), at memory speed.
            // SAFETY: the child inherited the lab's mapping of `len` readable bytes at `ptr`.
            let found = unsafe { libc::memchr(ptr as *const libc::c_void, i32::from(!FILL), len) };
            acc = found as u64;
        }
        Action::Write => {
            for p in (0..len).step_by(page) {
                // SAFETY: `p < len`, inside the inherited mapping, which is writable and private to this child.
                unsafe { ptr.add(p).write_volatile(!FILL) };
            }
        }
    }
    black_box(acc);
    let end = Mark::now();
    let faults = minor_faults() - faults0;
    let after_kib = smaps_kib("Private_Dirty");
    let line = format!("{} {} {} {} {faults} {before_kib} {after_kib}\n", start.ns, start.cpu, end.ns, end.cpu);
    match out.write_all(line.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

fn faults(n: u64) -> String {
    if n == 1 { "1 fault".to_string() } else { format!("{} faults", fmt_count(n)) }
}

struct Report {
    start: Mark,
    end: Mark,
    faults: u64,
    after_kib: u64,
}

fn parse(line: &str) -> Option<Report> {
    let f: Vec<u64> =
        line.split_whitespace().map(|x| x.parse::<i64>().map(|v| v as u64)).collect::<Result<_, _>>().ok()?;
    if f.len() != 7 {
        return None;
    }
    Some(Report {
        start: Mark { ns: f[0], cpu: f[1] as i32 },
        end: Mark { ns: f[2], cpu: f[3] as i32 },
        faults: f[4],
        after_kib: f[6],
    })
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let mib = ctx.size;
    check_memory("cow", mib * 2 + 64, mib, 2)?;
    let len = (mib as usize) << 20;
    let page = page_size();
    let pages = len / page;
    let lab = ctx.lab_pid;

    let parent_lane = ctx.lane("parent", lab, lab);
    let t = Mark::now();
    let mut buf = Mapping::new(len, false).context("cannot allocate the buffer")?;
    buf.no_huge_pages();
    buf.bytes_mut().fill(FILL);
    ctx.span(parent_lane, SpanKind::Run, t, Mark::now());
    let parent_kib = smaps_kib("Private_Dirty");
    ctx.checkpoint();

    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut fork_ms = Vec::new();
    for (action, what) in [
        (Action::Nothing, "does nothing".to_string()),
        (Action::Read, format!("reads all {mib} MiB")),
        (Action::Write, "writes 1 byte per page".to_string()),
    ] {
        let ptr = buf.ptr() as usize;
        let mut child = fork_with(ctx, false, |_, out| child_side(action, ptr, len, page, out))?;
        fork_ms.push(child.returned.ns.saturating_sub(child.started.ns) as f64 / 1e6);
        let line = child.read_line().context("a cow child did not report")?;
        child.join_ok(ctx)?;
        let r = parse(&line).ok_or_else(|| anyhow!("a cow child sent '{line}'"))?;
        let lane = ctx.lane(format!("child {what}"), child.pid as u32, child.pid as u32);
        ctx.span(lane, SpanKind::Startup, child.started, r.start);
        ctx.span(lane, SpanKind::Run, r.start, r.end);
        let ms = r.end.ns.saturating_sub(r.start.ns) as f64 / 1e6;
        rows.push(vec![
            what,
            if action == Action::Nothing { "—".to_string() } else { fmt_duration_ms(ms) },
            fmt_count(r.faults),
            format!("{:.3}", r.faults as f64 / pages as f64),
            fmt_kib_as_mib(r.after_kib),
        ]);
        results.push((action, ms, r));
        ctx.checkpoint();
    }

    // The children wrote to their copies only: every page's first byte is still ours.
    let unchanged = buf.bytes().iter().step_by(page).all(|b| *b == FILL);
    if !unchanged {
        bail!("the parent's buffer changed after a child wrote to its copy");
    }
    let get = |a: Action| results.iter().find(|r| r.0 == a).map(|r| (r.1, r.2.faults, r.2.after_kib));
    let (_, none_faults, none_kib) = get(Action::Nothing).unwrap_or_default();
    let (read_ms, read_faults, read_kib) = get(Action::Read).unwrap_or_default();
    let (write_ms, write_faults, write_kib) = get(Action::Write).unwrap_or_default();
    let us_per_page = write_ms * 1000.0 / pages as f64;
    let fork_med = median(&fork_ms);
    ctx.note(format!(
        "fork() itself took {} with {mib} MiB resident: the kernel copies page tables, not pages",
        fmt_duration_ms(fork_med)
    ));
    let figures = vec![
        fig("buffer_mib", mib as f64, "MiB"),
        fig("pages", pages as f64, "pages"),
        fig("page_bytes", page as f64, "bytes"),
        fig("none_faults", none_faults as f64, "faults"),
        fig("read_faults", read_faults as f64, "faults"),
        fig("write_faults", write_faults as f64, "faults"),
        fig("read_faults_per_page", read_faults as f64 / pages as f64, "faults/page"),
        fig("write_faults_per_page", write_faults as f64 / pages as f64, "faults/page"),
        fig("read_ms", read_ms, "ms"),
        fig("write_ms", write_ms, "ms"),
        fig("cow_us_per_page", us_per_page, "us"),
        fig("parent_private_mib", parent_kib as f64 / 1024.0, "MiB"),
        fig("none_private_mib", none_kib as f64 / 1024.0, "MiB"),
        fig("read_private_mib", read_kib as f64 / 1024.0, "MiB"),
        fig("write_private_mib", write_kib as f64 / 1024.0, "MiB"),
        fig("parent_unchanged", 1.0, "bool"),
        fig("fork_ms", fork_med, "ms"),
    ];
    let reading = format!(
        "Writing one byte per page cost {} minor faults for {} pages ({:.2} per page, about {:.1} µs each): the \
         first write to a shared page copies it, and the child's private memory grew to {}. Reading all {mib} MiB \
         caused {} and copied nothing ({}); the parent's buffer was unchanged. (In Python, merely reading a list of \
         objects writes their reference counts, so those pages do get copied; flat buffers behave as here.)",
        fmt_count(write_faults),
        fmt_count(pages as u64),
        write_faults as f64 / pages as f64,
        us_per_page,
        fmt_kib_as_mib(write_kib),
        faults(read_faults),
        fmt_kib_as_mib(read_kib),
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("a {mib} MiB buffer shared copy-on-write with forked children ({} KiB pages)", page / 1024),
        columns: ["forked child", "time", "minor faults", "faults per page", "its private memory"]
            .map(String::from)
            .to_vec(),
        rows,
        reading,
        figures,
    })
}

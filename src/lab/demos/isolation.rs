//! `isolation`: a global list, `[1, 2, 3]`, appended to by children started with fork, forkserver and spawn, and
//! by a thread. It shows what the parent's list holds afterwards and where the list lives in each process.
//!
//! The list is a real global (`static LIST`) whose items are on the heap; its address is the address of the
//! items. A child that finds the global empty builds it itself, the way a fresh interpreter re-imports a module:
//! spawned children do (a new program), and so do forkserver children (their server was forked before the lab
//! built the list). Forked children inherit the lab's list as it was.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result, anyhow};

use crate::clock::{self, Mark};
use crate::experiment::StartMethod;
use crate::timeline::{DemoReport, SpanKind};

use super::{Ctx, fig, start_role};

static LIST: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn list() -> MutexGuard<'static, Vec<u64>> {
    LIST.lock().unwrap_or_else(|p| p.into_inner())
}

/// "Imports the module": builds the list if this process does not have it yet. True if it was already there.
fn import(list: &mut Vec<u64>) -> bool {
    if list.is_empty() {
        // Room to grow, so an append does not move the items (a Python list's id() does not change either).
        *list = Vec::with_capacity(16);
        list.extend([1, 2, 3]);
        false
    } else {
        true
    }
}

fn show(list: &[u64]) -> String {
    format!("[{}]", list.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
}

/// The child's side: report where the list is and what it holds after appending 99.
pub(super) fn child(_input: &mut File, output: &mut File) -> i32 {
    let ready = Mark::now();
    let mut list = list();
    let inherited = import(&mut list);
    let addr = list.as_ptr() as usize;
    list.push(99);
    let done = Mark::now();
    let line = format!(
        "{addr} {} {} {} {} {} {}\n",
        u8::from(inherited),
        ready.ns,
        ready.cpu,
        done.ns,
        done.cpu,
        list.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    );
    match output.write_all(line.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

struct Seen {
    addr: usize,
    inherited: bool,
    ready: Mark,
    done: Mark,
    items: Vec<u64>,
}

fn parse(line: &str) -> Option<Seen> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 7 {
        return None;
    }
    Some(Seen {
        addr: f[0].parse().ok()?,
        inherited: f[1] == "1",
        ready: Mark { ns: f[2].parse().ok()?, cpu: f[3].parse().ok()? },
        done: Mark { ns: f[4].parse().ok()?, cpu: f[5].parse().ok()? },
        items: f[6].split(',').map(str::parse).collect::<Result<_, _>>().ok()?,
    })
}

pub(super) fn run(ctx: &mut Ctx) -> Result<DemoReport> {
    let n = ctx.size;
    let lab = ctx.lab_pid;
    // The lab "imports the module" now, after its fork server exists.
    let parent_addr = {
        let mut l = list();
        l.clear();
        import(&mut l);
        l.as_ptr() as usize
    };
    ctx.lane("parent", lab, lab);

    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut rows = vec![vec![
        "parent (the lab)".to_string(),
        lab.to_string(),
        format!("{parent_addr:#x}"),
        "—".into(),
        "built by the parent".into(),
        show(&list()),
    ]];
    let mut figures = Vec::new();
    let mut same_counts = Vec::new();
    let mut forkserver_addrs = Vec::new();
    let mut appended = 0u64;
    for method in [StartMethod::Fork, StartMethod::Forkserver, StartMethod::Spawn] {
        let mut same = 0u64;
        for i in 0..n {
            let mut child = start_role(ctx, method, "isolation")?;
            let line = child.read_line().with_context(|| format!("{method} child {} did not report", child.pid))?;
            child.join_ok(ctx)?;
            let seen = parse(&line).ok_or_else(|| anyhow!("{method} child sent '{line}'"))?;
            let lane = ctx.lane(format!("{method} {}", i + 1), child.pid as u32, child.pid as u32);
            ctx.span(lane, SpanKind::Startup, child.started, seen.ready);
            ctx.span(lane, SpanKind::Run, seen.ready, seen.done);
            same += u64::from(seen.addr == parent_addr);
            if method == StartMethod::Forkserver {
                forkserver_addrs.push(seen.addr);
            }
            appended += u64::from(seen.items == [1, 2, 3, 99]);
            rows.push(vec![
                format!("{method} child {}", i + 1),
                child.pid.to_string(),
                format!("{:#x}", seen.addr),
                yes_no(seen.addr == parent_addr),
                if seen.inherited { "a copy of the parent's" } else { "built by the child itself" }.into(),
                show(&seen.items),
            ]);
        }
        same_counts.push((method, same));
        figures.push(fig(&format!("{method}_same_address"), same as f64, "children"));
        ctx.checkpoint();
    }
    let after_processes = list().clone();
    rows.push(vec![
        "parent, after the children".into(),
        lab.to_string(),
        format!("{:#x}", list().as_ptr() as usize),
        "—".into(),
        "—".into(),
        show(&after_processes),
    ]);

    // A thread last (the lab forks no more after it): it appends to the very same list.
    let start = Mark::now();
    let (thread_addr, tid) = std::thread::spawn(|| {
        let mut l = list();
        let addr = l.as_ptr() as usize;
        l.push(99);
        (addr, clock::tid())
    })
    .join()
    .map_err(|_| anyhow!("the thread panicked"))?;
    let lane = ctx.lane("thread", lab, tid);
    ctx.span(lane, SpanKind::Run, start, Mark::now());
    let after_thread = list().clone();
    rows.push(vec![
        "thread".into(),
        format!("{lab} (tid {tid})"),
        format!("{thread_addr:#x}"),
        yes_no(thread_addr == parent_addr),
        "the parent's own list".into(),
        show(&after_thread),
    ]);
    rows.push(vec![
        "parent, after the thread".into(),
        lab.to_string(),
        format!("{:#x}", list().as_ptr() as usize),
        "—".into(),
        "—".into(),
        show(&after_thread),
    ]);

    let count = |m: StartMethod| same_counts.iter().find(|s| s.0 == m).map_or(0, |s| s.1);
    let mut distinct = forkserver_addrs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let server_alike = distinct.len() == 1;
    figures.extend([
        fig("children", n as f64, "per start method"),
        fig("children_appended", appended as f64, "children"),
        fig("parent_len_after_processes", after_processes.len() as f64, "items"),
        fig("parent_len_after_thread", after_thread.len() as f64, "items"),
        fig("forkserver_children_alike", f64::from(u8::from(server_alike)), "bool"),
        fig("thread_same_address", f64::from(u8::from(thread_addr == parent_addr)), "bool"),
    ]);
    let fork_same = count(StartMethod::Fork);
    let (spawn_same, server_same) = (count(StartMethod::Spawn), count(StartMethod::Forkserver));
    let others = if spawn_same + server_same > 0 {
        format!(
            "spawn and forkserver children built a list of their own, and still {} of {} sit at the parent's \
             address: identical heaps hand out identical addresses, which proves nothing about sharing",
            spawn_same + server_same,
            2 * n
        )
    } else {
        format!(
            "spawn and forkserver children built a list of their own, at other addresses{}",
            if server_alike && n > 1 {
                " (the forkserver children all at one, forked from the same server)"
            } else {
                ""
            }
        )
    };
    let reading = format!(
        "{} forked children had the list at the parent's address, yet after every child appended 99 the \
         parent still holds {}: same virtual address, separate copy-on-write memory, so \"same id() means shared\" \
         is wrong. {others}. Only the thread's append reached the parent: {}.",
        if fork_same == n { format!("All {n}") } else { format!("{fork_same} of {n}") },
        show(&after_processes),
        show(&after_thread),
    );
    Ok(DemoReport {
        name: String::new(),
        title: format!("a global list appended to by {n} children per start method, and by a thread"),
        columns: ["who", "pid", "list address", "same as parent's", "its list is", "its list after append(99)"]
            .map(String::from)
            .to_vec(),
        rows,
        reading,
        figures,
    })
}

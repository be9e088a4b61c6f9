//! `parlab demo NAME`: each demo's structural truth (never its timings), bad names and sizes, and cleanup.

use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// Runs `parlab demo NAME --json [--size N]` and returns its JSON.
#[track_caller]
fn demo(name: &str, size: Option<u64>) -> Value {
    let size = size.map(|s| s.to_string());
    let mut args = vec!["demo", name, "--json"];
    if let Some(s) = &size {
        args.extend(["--size", s.as_str()]);
    }
    json(&args)
}

#[track_caller]
fn figure(d: &Value, name: &str) -> f64 {
    d["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure '{name}' in {}", d["figures"]))["value"]
        .as_f64()
        .unwrap()
}

#[track_caller]
fn assert_report_shape(d: &Value) {
    let cols = d["columns"].as_array().unwrap().len();
    let rows = d["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "no rows");
    for r in rows {
        assert_eq!(r.as_array().unwrap().len(), cols, "row {r} does not match the columns");
    }
    assert!(d["reading"].as_str().unwrap().len() > 40, "no reading line");
    let lanes: Vec<u64> = d["lanes"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    let spans = d["spans"].as_array().unwrap();
    assert!(!spans.is_empty(), "no spans to draw");
    for s in spans {
        assert!(lanes.contains(&s["lane"].as_u64().unwrap()), "span on an unknown lane: {s}");
        assert!(s["start_us"].as_f64().unwrap() <= s["end_us"].as_f64().unwrap(), "{s}");
    }
}

fn lane_labels(d: &Value) -> Vec<String> {
    d["lanes"].as_array().unwrap().iter().map(|l| l["label"].as_str().unwrap().to_string()).collect()
}

#[test]
fn isolation_leaves_the_parents_list_alone_and_shows_where_each_child_sees_it() {
    let d = demo("isolation", None);
    assert_report_shape(&d);
    let n = figure(&d, "children");
    assert_eq!(n, 3.0);
    assert_eq!(figure(&d, "children_appended"), 3.0 * n, "every child appended to its own list");
    assert_eq!(figure(&d, "parent_len_after_processes"), 3.0, "a child's append reached the parent");
    assert_eq!(figure(&d, "parent_len_after_thread"), 4.0, "the thread's append did not reach the parent");
    assert_eq!(figure(&d, "fork_same_address"), n, "a forked child saw the list elsewhere");
    assert_eq!(figure(&d, "spawn_same_address"), 0.0, "a spawned child saw the list at the parent's address");
    assert_eq!(figure(&d, "thread_same_address"), 1.0);
    let rows = d["rows"].as_array().unwrap();
    let parent_addr = rows[0][2].as_str().unwrap();
    for r in rows.iter().filter(|r| r[0].as_str().unwrap().starts_with("fork child")) {
        assert_eq!(r[2].as_str().unwrap(), parent_addr);
        assert_eq!(r[5], "[1, 2, 3, 99]");
    }
    let reading = d["reading"].as_str().unwrap();
    assert!(reading.contains("same id() means shared"), "the reading must correct the tutorial claim: {reading}");
    // One lane per child, each a process of its own, plus the parent and the thread.
    assert_eq!(lane_labels(&d).len(), 9 + 2);
}

#[test]
fn cow_costs_about_one_fault_per_written_page_and_almost_none_for_reads() {
    let d = demo("cow", Some(16));
    assert_report_shape(&d);
    let pages = figure(&d, "pages");
    assert_eq!(pages, 16.0 * 1024.0 * 1024.0 / figure(&d, "page_bytes"));
    let per_page = figure(&d, "write_faults_per_page");
    assert!((0.95..1.1).contains(&per_page), "write faults per page: {per_page}");
    assert!(figure(&d, "read_faults") < pages / 100.0, "reading copied pages: {}", figure(&d, "read_faults"));
    // The writer's private memory grew by about the buffer; the reader's did not.
    assert!(figure(&d, "write_private_mib") >= 15.0);
    assert!(figure(&d, "read_private_mib") < 4.0);
    assert_eq!(figure(&d, "parent_unchanged"), 1.0);
}

#[test]
fn race_loses_updates_without_a_lock_and_never_with_it() {
    let d = demo("race", None);
    assert_report_shape(&d);
    let expected = figure(&d, "expected");
    assert_eq!(expected, 2_000_000.0);
    for who in ["threads", "processes"] {
        assert_eq!(figure(&d, &format!("{who}_counted_lock")), expected, "{who}: the locked count is not exact");
        assert_eq!(figure(&d, &format!("{who}_lost_lock")), 0.0);
        assert!(figure(&d, &format!("{who}_lost_nolock")) > 0.0, "{who}: no update lost without a lock");
        assert!(figure(&d, &format!("{who}_counted_nolock")) < expected);
    }
    let labels = lane_labels(&d);
    for l in ["p1", "p2", "t1", "t2"] {
        assert!(labels.iter().any(|x| x == l), "no lane {l}: {labels:?}");
    }
}

#[test]
fn queue_batching_moves_the_same_items_in_fewer_messages() {
    let n = 20_000.0;
    let d = demo("queue-batching", Some(20_000));
    assert_report_shape(&d);
    let mut last = f64::INFINITY;
    for batch in [1u64, 10, 100, 1000] {
        assert_eq!(figure(&d, &format!("items_{batch}")), n, "batch {batch} lost items");
        let messages = figure(&d, &format!("messages_{batch}"));
        assert_eq!(messages, (n / batch as f64).ceil(), "batch {batch}");
        assert!(messages < last);
        last = messages;
        assert!(figure(&d, &format!("items_per_s_{batch}")) > 0.0);
    }
}

#[test]
fn convoy_reports_the_io_threads_latency_alone_and_beside_a_cpu_thread() {
    let d = demo("convoy", Some(20));
    assert_report_shape(&d);
    assert_eq!(d["rows"].as_array().unwrap().len(), 3);
    let alone = figure(&d, "latency_alone_ms");
    let beside = figure(&d, "latency_beside_cpu_ms");
    assert!(alone > 0.0 && figure(&d, "latency_no_gil_ms") > 0.0);
    // A lower bound set by the GIL's rules, not by the machine's speed: the CPU thread only lets go after the I/O
    // thread has waited a whole switch interval.
    assert!(beside >= 0.9 * figure(&d, "switch_interval_ms"), "beside a CPU thread: {beside} ms");
    let labels = lane_labels(&d);
    assert!(labels.iter().any(|l| l == "cpu (gil)") && labels.iter().any(|l| l == "io beside cpu (gil)"), "{labels:?}");
    let waits = d["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "gil-wait").count();
    assert!(waits >= 20, "the I/O thread's waits for the GIL are not on the timeline ({waits})");
}

#[test]
fn start_cost_measures_a_thread_and_every_start_method() {
    let d = demo("start-cost", Some(3));
    assert_report_shape(&d);
    for name in ["thread", "fork", "forkserver", "spawn"] {
        assert!(figure(&d, &format!("{name}_start_ms")) > 0.0, "{name}");
    }
    let startups = d["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "startup").count();
    assert_eq!(startups, 4 * 3 + 1, "one start-up span per repetition and method, and the server's launch");
}

#[test]
fn ipc_round_trips_each_payload_size_through_a_process_and_a_thread() {
    let d = demo("ipc", Some(1));
    assert_report_shape(&d);
    let sizes: Vec<&str> = d["rows"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(sizes, ["1 KB", "1 MB"]);
    for l in ["1kb", "1mb"] {
        assert!(figure(&d, &format!("process_rt_ms_{l}")) > 0.0);
        assert!(figure(&d, &format!("thread_rt_ms_{l}")) > 0.0);
    }
}

#[test]
fn shared_memory_sends_a_descriptor_instead_of_the_array_and_both_sums_agree() {
    let d = demo("shared-memory", Some(2));
    assert_report_shape(&d);
    assert_eq!(figure(&d, "sums_correct"), 1.0);
    let (message, shared) = (figure(&d, "message_bytes"), figure(&d, "shared_bytes"));
    assert!(message >= 2.0 * 1024.0 * 1024.0, "the array did not travel as messages: {message} bytes");
    assert!(shared < 1024.0, "the shared block was copied: {shared} bytes");
}

#[test]
fn the_text_form_prints_a_table_and_a_reading() {
    let o = parlab(&["demo", "isolation", "--size", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("parlab demo isolation"), "{out}");
    assert!(out.contains("list address") && out.contains("reading: "), "{out}");
}

#[test]
fn unknown_demos_and_sizes_out_of_range_are_refused_with_what_is_allowed() {
    let o = parlab(&["demo", "cwo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown demo 'cwo' (expected one of: start-cost, isolation, cow"), "{}", stderr(&o));
    assert!(stderr(&o).contains("did you mean 'cow'?"));
    let o = parlab(&["demo", "cow", "--size", "1000000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--size 1000000 for the cow demo is out of range (allowed 1..=1024"), "{}", stderr(&o));
    let o = parlab(&["demo", "race", "--size", "5"]);
    assert!(stderr(&o).contains("allowed 10000..=20000000 increments per worker"), "{}", stderr(&o));
}

#[test]
fn every_demo_leaves_no_process_behind() {
    let tag = unique_tag("demos-finished");
    for (name, size) in [("start-cost", "2"), ("isolation", "1"), ("cow", "4"), ("race", "10000")] {
        let o = tagged(&["demo", name, "--size", size], &tag).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_none_left(&tag);
}

/// Starts a long race demo and waits until its worker processes exist.
fn start_long_demo(tag: &str) -> std::process::Child {
    let child = tagged(&["demo", "race", "--size", "20000000"], tag)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // parlab demo -> lab -> two forked workers
    let workers = || tagged_processes(tag).len() >= 4;
    assert!(wait_for(10.0, workers), "the demo's workers never started: {:?}", tagged_processes(tag));
    child
}

#[test]
fn interrupting_a_demo_stops_every_process_it_started() {
    let tag = unique_tag("demo-sigterm");
    let child = start_long_demo(&tag);
    std::thread::sleep(Duration::from_millis(50));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_none_left(&tag);
}

#[test]
fn killing_parlab_during_a_demo_takes_its_processes_with_it() {
    let tag = unique_tag("demo-sigkill");
    let mut child = start_long_demo(&tag);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

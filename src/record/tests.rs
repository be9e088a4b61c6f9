//! Synthetic runs for the recording tests, and the tests of the format: round trips and every way a file can be
//! wrong.

use std::io::Read;

use super::*;
use crate::experiment::{Fit, Knobs};
use crate::timeline::{DemoFigure, DemoReport, Lane, RunEnd, Span, SpanKind, Timeline};

pub(crate) fn machine() -> Machine {
    Machine {
        cores: 2,
        cpu_model: "AMD EPYC 7B13".to_string(),
        os: "Ubuntu 24.04.1 LTS".to_string(),
        kernel: "Linux 6.8.0 x86_64".to_string(),
    }
}

/// A finished run of `tasks` fib tasks of `task_ms` each in `mode`, dealt round robin over its lanes, with system
/// and parlab samples every 5 ms. Processes start their workers for 1 ms first.
pub(crate) fn run_of(mode: Mode, workers: u32, tasks: u64, task_ms: u64, lab_pid: u32) -> RecordedRun {
    let knobs = Knobs { workers: mode.uses_workers().then_some(workers), ..Knobs::default() };
    let exp = Experiment::build("fib:20".parse().unwrap(), tasks, mode, &knobs, Fit::Lenient, 2).unwrap();
    let t0: u64 = 7_000_000_000_000 + u64::from(lab_pid) * 1_000;
    let ms = 1_000_000u64;
    let n = exp.workers;
    let lanes: Vec<Lane> = (0..n)
        .map(|i| match mode {
            Mode::Sequential => Lane { id: i, pid: lab_pid, tid: lab_pid, label: "main".to_string() },
            Mode::Processes => Lane { id: i, pid: lab_pid + 1 + i, tid: lab_pid + 1 + i, label: format!("p{}", i + 1) },
            _ => Lane { id: i, pid: lab_pid, tid: lab_pid + 1 + i, label: format!("t{}", i + 1) },
        })
        .collect();
    let mut spans = Vec::new();
    let lead = if mode == Mode::Processes { ms } else { 0 };
    if mode == Mode::Processes {
        for l in &lanes {
            spans.push(Span {
                lane: l.id,
                task: 0,
                count: 0,
                kind: SpanKind::Startup,
                start_ns: t0,
                end_ns: t0 + lead,
                cpu_start: (l.id % 2) as i32,
                cpu_end: -1,
            });
        }
    }
    for k in 0..tasks {
        let lane = (k % u64::from(n)) as u32;
        let start = t0 + lead + (k / u64::from(n)) * task_ms * ms;
        let cpu = (lane % 2) as i32;
        spans.push(Span {
            lane,
            task: k,
            count: 1,
            kind: SpanKind::Run,
            start_ns: start,
            end_ns: start + task_ms * ms,
            cpu_start: cpu,
            cpu_end: 1 - cpu,
        });
    }
    let t_end = spans.iter().map(|s| s.end_ns).max().unwrap_or(t0);
    let mut samples = Samples::default();
    let mut at = t0 + 5 * ms;
    let mut k = 0u64;
    while at <= t_end {
        k += 1;
        samples.system.push(CoreSample {
            at_ns: at,
            interval_ns: 5 * ms,
            pct: vec![(k * 377 % 1000) as f32 / 10.0 + 0.03, 100.0 / 3.0],
        });
        samples.parlab.push(CoreSample::from_cpu_ns(at, 5 * ms, &[4 * ms + k, ms / 3]));
        at += 5 * ms;
    }
    RecordedRun {
        job: RecordedJob::Experiment(exp),
        timeline: Timeline {
            lanes,
            spans,
            lab_pid,
            cores: 2,
            t0_ns: t0,
            end: Some(RunEnd { t0_ns: t0, t_end_ns: t_end, checksum: 0xfeed_f00d, tasks_done: tasks, error: None }),
            notes: vec![],
            demo: None,
        },
        parent_pid: 4000,
        walls_ns: vec![t_end - t0],
        samples,
    }
}

pub(crate) fn threads_run(workers: u32, tasks: u64) -> RecordedRun {
    run_of(Mode::Threads, workers, tasks, 5, 4100)
}

/// Processes mode whose second worker was killed: a failed span on its lane and the run's error.
pub(crate) fn failed_run() -> RecordedRun {
    let mut r = run_of(Mode::Processes, 2, 4, 5, 4100);
    let t = &mut r.timeline;
    let end = t.end.as_mut().unwrap();
    let at = end.t_end_ns;
    t.spans.push(Span {
        lane: 1,
        task: 3,
        count: 1,
        kind: SpanKind::Failed,
        start_ns: at - 2_000_000,
        end_ns: at,
        cpu_start: 1,
        cpu_end: -1,
    });
    end.error = Some("worker p2 (pid 4102) was killed by signal 9 (SIGKILL)".to_string());
    end.tasks_done = 3;
    t.notes.push("a note with \"quotes\" and a newline\nin it".to_string());
    r
}

pub(crate) fn recording_of(run: RecordedRun) -> Recording {
    Recording::of_run("2025-03-01T10:15:30Z".to_string(), machine(), Engine::native(), run)
}

/// sequential, threads, gil and processes: each its own lab.
pub(crate) fn compare_of_four() -> Recording {
    let runs = vec![
        run_of(Mode::Sequential, 1, 4, 10, 4100),
        run_of(Mode::Threads, 2, 4, 10, 4200),
        run_of(Mode::Gil, 2, 4, 20, 4300),
        run_of(Mode::Processes, 2, 4, 10, 4400),
    ];
    Recording::of_compare("2025-03-01T10:20:00Z".to_string(), machine(), Engine::native(), runs)
}

#[test]
fn a_python_engine_run_round_trips_with_its_engine_and_interpreter() {
    let mut run = threads_run(2, 4);
    if let RecordedJob::Experiment(e) = &mut run.job {
        e.engine = crate::experiment::Engine::Python;
        e.python = Some(crate::experiment::PythonRef {
            path: "/usr/bin/python3.13t".to_string(),
            version: "3.13.1".to_string(),
            gil_enabled: false,
        });
    }
    let mut rec = recording_of(run);
    rec.engine = crate::replay::engine_of(rec.runs.iter().filter_map(|r| match &r.job {
        RecordedJob::Experiment(e) => Some(e),
        RecordedJob::Demo(_) => None,
    }));
    assert_eq!(rec.engine.name, "python");
    assert_eq!(rec.engine.interpreter.as_ref().map(|i| i.version.as_str()), Some("3.13.1"));
    let back = round_trip(&rec);
    assert_eq!(back, rec);
}

fn round_trip(rec: &Recording) -> Recording {
    let bytes = encode(rec).unwrap();
    decode("t.parlab", bytes.as_slice()).unwrap_or_else(|e| panic!("{e}"))
}

/// The uncompressed text of a recording (a reader takes that too).
fn plain(rec: &Recording) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(encode(rec).unwrap().as_slice()).read_to_string(&mut text).unwrap();
    text
}

fn error_of(file: &str, bytes: &[u8]) -> String {
    decode(file, bytes).map(|_| ()).unwrap_err().to_string()
}

/// The recording's text with its body line edited.
fn with_body(rec: &Recording, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let text = plain(rec);
    let (header, body) = text.split_once('\n').unwrap();
    let mut body: serde_json::Value = serde_json::from_str(body).unwrap();
    edit(&mut body);
    format!("{header}\n{body}\n").into_bytes()
}

#[test]
fn a_recording_round_trips_its_runs_lanes_spans_and_samples() {
    let rec = recording_of(threads_run(3, 7));
    let back = round_trip(&rec);
    assert_eq!(back, rec);
    assert_eq!(back.runs[0].timeline.spans, rec.runs[0].timeline.spans);
    assert_eq!(back.runs[0].samples.system.len(), 3, "one every 5 ms of a 15 ms run");
    assert_eq!(back.parlab_version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_failed_run_round_trips_with_its_failed_span_error_and_notes() {
    let rec = recording_of(failed_run());
    let back = round_trip(&rec);
    assert_eq!(back, rec);
    let t = &back.runs[0].timeline;
    assert_eq!(t.spans.iter().filter(|s| s.kind == SpanKind::Failed).count(), 1);
    assert_eq!(back.runs[0].error(), Some("worker p2 (pid 4102) was killed by signal 9 (SIGKILL)"));
    assert!(back.summary().failed);
}

#[test]
fn a_compare_of_four_runs_round_trips_in_order_with_its_baseline_and_speedups() {
    let rec = compare_of_four();
    assert_eq!(rec.baseline, Some(0));
    let back = round_trip(&rec);
    assert_eq!(back, rec);
    let modes: Vec<String> = back.runs.iter().map(RecordedRun::mode_name).collect();
    assert_eq!(modes, ["sequential", "threads", "gil", "processes"]);
    let speedups: Vec<String> = back.speedups().iter().map(|s| format!("{:.2}", s.unwrap())).collect();
    assert_eq!(speedups, ["1.00", "2.00", "1.00", "1.90"]);
    let reports = back.reports();
    assert_eq!(reports.len(), 4);
    assert_eq!(reports[1].speedup, back.speedups()[1]);
}

#[test]
fn a_demo_run_round_trips_with_its_report_and_exact_figures() {
    let mut run = threads_run(2, 2);
    run.job = RecordedJob::Demo(DemoSpec::new("cow", Some(8)).unwrap());
    run.timeline.demo = Some(DemoReport {
        name: "cow".to_string(),
        title: "copy-on-write after fork".to_string(),
        columns: vec!["child".to_string(), "faults".to_string()],
        rows: vec![vec!["reads".to_string(), "3".to_string()], vec!["writes".to_string(), "2048".to_string()]],
        reading: "writing touches every page".to_string(),
        figures: vec![DemoFigure { name: "write_ms".to_string(), value: 0.1 + 0.2, unit: "ms".to_string() }],
    });
    let rec = recording_of(run);
    assert_eq!(round_trip(&rec), rec);
    assert_eq!(rec.title(), "demo cow · copy-on-write after fork");
}

#[test]
fn samples_of_every_value_round_trip_exactly() {
    let mut run = threads_run(1, 1);
    // Percentages as sysinfo gives them: arbitrary f32 values in 0..=100.
    let mut x: u32 = 12345;
    run.samples.system = (0..2000u64)
        .map(|i| {
            let pct = (0..4)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 8) as f32 / (1u32 << 24) as f32 * 100.0
                })
                .collect();
            CoreSample { at_ns: run.timeline.t0_ns + i, interval_ns: 250_000_000, pct }
        })
        .collect();
    let rec = recording_of(run);
    assert_eq!(round_trip(&rec).runs[0].samples, rec.runs[0].samples);
}

#[test]
fn a_recording_of_100k_spans_stays_small() {
    let rec = recording_of(run_of(Mode::Threads, 4, 100_000, 1, 4100));
    let bytes = encode(&rec).unwrap();
    // About 14 bytes a span compressed: a 100,000-span run is a megabyte or two, not tens.
    assert!(bytes.len() < 3 << 20, "{} bytes", bytes.len());
    assert_eq!(round_trip(&rec).runs[0].timeline.spans.len(), 100_000);
}

#[test]
fn a_missing_file_is_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.parlab");
    assert_eq!(read(&path).unwrap_err().to_string(), format!("{}: no such file", path.display()));
    let fifo = dir.path().join("fifo.parlab");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(read(&fifo).unwrap_err().to_string().ends_with("not a regular file (a recording is a file)"));
    assert!(read(dir.path()).unwrap_err().to_string().ends_with("not a regular file (a recording is a file)"));
}

#[test]
fn a_file_over_the_size_bound_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.parlab");
    // Sparse: 300 MiB long, nothing written.
    std::fs::File::create(&path).unwrap().set_len(300 << 20).unwrap();
    let err = read(&path).unwrap_err().to_string();
    assert_eq!(err, format!("{}: too large: 300 MiB, and a recording is at most 256 MiB", path.display()));
}

#[test]
fn truncated_recordings_say_they_are_truncated() {
    let rec = recording_of(threads_run(2, 4));
    let bytes = encode(&rec).unwrap();
    assert_eq!(
        error_of("run.parlab", &bytes[..bytes.len() / 2]),
        "run.parlab: truncated: the compressed data ends early"
    );
    let text = plain(&rec);
    let cut = &text.as_bytes()[..text.len() - 40];
    let err = error_of("run.parlab", cut);
    assert!(err.starts_with("run.parlab: truncated: the runs end early (in runs[0]"), "{err}");
    let header_only = text.split_inclusive('\n').next().unwrap();
    assert_eq!(
        error_of("run.parlab", header_only.as_bytes()),
        "run.parlab: truncated: it ends after its header: the runs are missing"
    );
    assert_eq!(error_of("run.parlab", &text.as_bytes()[..30]), "run.parlab: truncated: it ends inside its header");
    assert_eq!(error_of("run.parlab", b""), "run.parlab: truncated: it is empty");
}

#[test]
fn foreign_files_are_not_taken_for_recordings() {
    assert_eq!(
        error_of("run.parlab", br#"{"traceEvents": []}"#),
        "run.parlab: not a parlab recording (it is JSON without a \"format\" field)"
    );
    assert_eq!(
        error_of("t.json", b"{\n  \"traceEvents\": [],\n  \"displayTimeUnit\": \"ms\"\n}\n"),
        "t.json: not a parlab recording (it is JSON without a \"format\" field)"
    );
    assert_eq!(
        error_of("x", br#"{"format": "svg", "version": 1}"#),
        "x: not a parlab recording (its \"format\" is 'svg', not 'parlab-recording')"
    );
    assert_eq!(error_of("x", b"[1, 2, 3]"), "x: not a parlab recording (it is JSON, but not an object)");
    assert_eq!(error_of("x", b"# lesson\n\nsome prose\n"), "x: not a parlab recording (it is text, but not JSON)");
    assert_eq!(
        error_of("x", b"\x7fELF\x02\x01\x01\x00\xff\xfe"),
        "x: not a parlab recording (it is neither gzip nor JSON)"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"hello").unwrap();
    assert_eq!(error_of("x", &gz.finish().unwrap()), "x: not a parlab recording (it is gzip data, but not of JSON)");
}

#[test]
fn a_newer_format_asks_for_a_newer_parlab() {
    let text = plain(&recording_of(threads_run(1, 1))).replacen("\"version\":1,", "\"version\":3,", 1);
    assert_eq!(
        error_of("run.parlab", text.as_bytes()),
        "run.parlab: recording format 3 is newer than this parlab reads (1); update parlab"
    );
}

#[test]
fn a_reformatted_recording_is_told_apart_from_a_foreign_file() {
    let text = plain(&recording_of(threads_run(1, 1)));
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let pretty = serde_json::to_string_pretty(&header).unwrap();
    let err = error_of("run.parlab", pretty.as_bytes());
    assert!(err.starts_with("run.parlab: damaged: its header is not on the first line"), "{err}");
}

#[test]
fn fields_out_of_range_are_named_by_their_path() {
    let rec = recording_of(threads_run(2, 4));
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|b| b["runs"][0]["spans"][1][0] = 9.into()),
            "runs[0].spans[1]: lane 9 is not one of the run's lanes",
        ),
        (
            Box::new(|b| b["runs"][0]["spans"][2][4] = 99_000_000_000u64.into()),
            "runs[0].spans[2]: it starts after it ends",
        ),
        (
            Box::new(|b| b["runs"][0]["spans"][0][3] = "sleeping".into()),
            "runs[0].spans[0][3]: unknown variant `sleeping`",
        ),
        (
            Box::new(|b| b["runs"][0]["job"]["experiment"]["workers"] = 0.into()),
            "runs[0].job.experiment.workers: 0 is out of range (allowed 1..=256)",
        ),
        (
            Box::new(|b| b["runs"][0]["job"]["experiment"]["mode"] = "thread".into()),
            "runs[0].job.experiment.mode: unknown mode 'thread'",
        ),
        (
            Box::new(|b| b["runs"][0]["samples"]["system"][0][2][1] = 250.0.into()),
            "runs[0].samples.system[0]: core 1 at 250% is out of range (allowed 0..=100)",
        ),
        (Box::new(|b| b["runs"][0]["lanes"][1]["id"] = 0.into()), "runs[0].lanes[1]: lane id 0 is used twice"),
        (
            Box::new(|b| b["runs"][0]["walls_ns"] = serde_json::Value::Array(vec![1.into(); 1001])),
            "runs[0].walls_ns: more than 1000 items (at most 1000 allowed)",
        ),
        (Box::new(|b| b["runs"][0]["end"]["t0"] = u64::MAX.into()), "runs[0].end.t0: the time overflows"),
    ];
    for (edit, want) in cases {
        let err = error_of("run.parlab", &with_body(&rec, edit));
        assert!(err.starts_with(&format!("run.parlab: not a valid recording: {want}")), "{err}\nwanted: {want}");
    }
}

#[test]
fn a_header_out_of_range_is_named_too() {
    let text = plain(&recording_of(threads_run(1, 1)));
    let bad = text.replacen("\"cores\":2,\"cpu_model\"", "\"cores\":0,\"cpu_model\"", 1);
    assert_eq!(
        error_of("r", bad.as_bytes()),
        "r: not a valid recording: machine.cores: 0 is out of range (allowed 1..=4096)"
    );
    let bad = text.replacen("2025-03-01T10:15:30Z", "yesterday", 1);
    assert!(error_of("r", bad.as_bytes()).contains("made: 'yesterday' is not an RFC 3339 time"));
    let bad = text.replacen("\"kind\":\"run\"", "\"kind\":\"compare\"", 1);
    assert!(decode("r", bad.as_bytes()).is_ok(), "a compare of one run is still a compare");
}

#[test]
fn hostile_text_in_a_message_cannot_reach_the_terminal_raw() {
    let err = error_of("x", br#"{"format": "\u001b[2Jgotcha"}"#);
    assert_eq!(err, "x: not a parlab recording (its \"format\" is '?[2Jgotcha', not 'parlab-recording')");
}

#[test]
fn what_a_reader_would_refuse_is_not_written() {
    let mut run = threads_run(2, 4);
    run.timeline.spans[0].lane = 7;
    let err = encode(&recording_of(run)).unwrap_err();
    assert_eq!(err, "runs[0].spans[0]: lane 7 is not one of the run's lanes");
    let mut rec = compare_of_four();
    rec.kind = Kind::Run;
    assert_eq!(encode(&rec).unwrap_err(), "runs: a run recording holds one run, this one 4");
}

#[test]
fn writing_replaces_the_file_whole_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.parlab");
    write(&path, &recording_of(threads_run(1, 1))).unwrap();
    let size = write(&path, &compare_of_four()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    assert_eq!(read(&path).unwrap(), compare_of_four());
    assert_eq!(read_header(&path).unwrap().summary.modes.len(), 4);
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(names, ["run.parlab"]);
    let err = write(&dir.path().join("no/such/dir/r.parlab"), &compare_of_four()).unwrap_err().to_string();
    assert!(err.starts_with("cannot write the recording '") && err.contains("no/such/dir/r.parlab"), "{err}");
}

#[test]
fn cpu_time_per_core_becomes_a_share_of_the_interval() {
    let s = CoreSample::from_cpu_ns(10, 1_000, &[500, 1_000, 2_000, 0]);
    assert_eq!(s.pct, vec![50.0, 100.0, 100.0, 0.0]);
    assert_eq!(CoreSample::from_cpu_ns(10, 0, &[5]).pct, vec![0.0]);
}

#[test]
fn made_is_rfc_3339_utc_to_the_second() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
    assert_eq!(made_at(t), "2023-11-14T22:13:20Z");
}

#[test]
fn a_cancelled_run_of_the_python_engine_round_trips_without_an_end() {
    let mut run = threads_run(2, 4);
    run.timeline.end = None;
    run.walls_ns.clear();
    run.timeline.spans.truncate(2);
    let mut rec = recording_of(run);
    rec.engine = Engine {
        name: "python".to_string(),
        interpreter: Some(Interpreter {
            path: "/usr/bin/python3.13t".to_string(),
            version: "3.13.1".to_string(),
            gil_enabled: false,
        }),
    };
    let back = round_trip(&rec);
    assert_eq!(back, rec);
    assert_eq!(back.runs[0].timeline.end, None);
    assert_eq!(back.engine.interpreter.as_ref().map(|i| i.gil_enabled), Some(false));
    // With no end, the wall time is the timeline's own (its last span).
    assert_eq!(back.runs[0].wall_ms(), 5.0);
}

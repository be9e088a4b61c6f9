//! Headless `parlab demo NAME [--size N] [--json]`: runs a process-internals demo in a lab process and prints its
//! table and reading (or JSON with its figures, lanes and spans). Ctrl-C cancels it and stops every process.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::experiment::available_cores;
use crate::experiment::demo::DemoSpec;
use crate::headless::{lanes_json, spans_json};
use crate::lab::client::run_demo_spec;
use crate::timeline::{DemoReport, Timeline};

pub fn demo_cmd(name: &str, size: Option<u64>, json: bool) -> Result<u8> {
    let spec = DemoSpec::new(name, size).map_err(|e| anyhow!(e))?;
    let stop = crate::lab::client::stop_flag()?;
    if !json && crate::headless::progress_on_stderr() {
        eprint!("running the {} demo ...\r", spec.name);
    }
    let result = run_demo_spec(&spec, &stop, |_| {});
    if !json && crate::headless::progress_on_stderr() {
        eprint!("{:40}\r", "");
    }
    let (timeline, report) = result?;
    let text = if json {
        serde_json::to_string_pretty(&demo_json(&spec, &timeline, &report))? + "\n"
    } else {
        demo_text(&timeline, &report)
    };
    crate::stdout::print(&text).context("cannot write to stdout")?;
    if report.rows.is_empty() {
        bail!("the {} demo measured nothing", spec.name);
    }
    Ok(0)
}

pub(crate) fn demo_json(spec: &DemoSpec, t: &Timeline, r: &DemoReport) -> Value {
    json!({
        "demo": r.name,
        "size": spec.size,
        "size_means": spec.name.size_rule().what,
        "title": r.title,
        "cores": if t.cores > 0 { t.cores } else { available_cores() },
        "parent_pid": std::process::id(),
        "lab_pid": t.lab_pid,
        "wall_ms": t.wall_ns() as f64 / 1e6,
        "columns": r.columns,
        "rows": r.rows,
        "reading": r.reading,
        "figures": r.figures.iter().map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit})).collect::<Vec<_>>(),
        "notes": t.notes,
        "lanes": lanes_json(t),
        "spans": spans_json(t),
    })
}

/// The report as an aligned table, then the reading wrapped to the terminal, then any notes.
pub(crate) fn demo_text(t: &Timeline, r: &DemoReport) -> String {
    let mut s = format!("parlab demo {} · {} · {}\n\n", r.name, r.title, crate::units::plural(t.cores as u64, "core"));
    s.push_str(&table(&r.columns, &r.rows));
    s.push('\n');
    for (i, line) in wrap(&r.reading, 100).iter().enumerate() {
        s.push_str(if i == 0 { "  reading: " } else { "           " });
        s.push_str(line);
        s.push('\n');
    }
    for n in &t.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    s
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Columns padded to their widest cell: text left, figures (cells starting with a digit) right.
pub(crate) fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let n = columns.len();
    let mut widths: Vec<usize> = columns.iter().map(|c| width(c)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let numeric = |c: &str| c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
    let line = |cells: &[String], header: bool| {
        let mut out = String::from(" ");
        for (i, cell) in cells.iter().enumerate().take(n) {
            let pad = widths[i] - width(cell);
            out.push(' ');
            if !header && i > 0 && numeric(cell) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
            out.push(' ');
        }
        out.trim_end().to_string() + "\n"
    };
    let mut s = line(columns, true);
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    s.push_str(&line(&rule, true));
    for row in rows {
        s.push_str(&line(row, false));
    }
    s
}

/// Splits text into lines of at most `max` characters at spaces.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && width(&cur) + 1 + width(word) > max {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_figures_right() {
        let cols = vec!["how".to_string(), "median".to_string()];
        let rows =
            vec![vec!["fork".to_string(), "0.21 ms".to_string()], vec!["spawn".to_string(), "12.5 ms".to_string()]];
        assert_eq!(table(&cols, &rows), "  how    median\n  ─────  ───────\n  fork   0.21 ms\n  spawn  12.5 ms\n");
    }

    #[test]
    fn readings_wrap_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("", 7), Vec::<String>::new());
    }
}

//! The timeline's view, live and in replay: which window of a run the Gantt shows (zoom `]` / `[` down to 100 µs
//! per cell and out to the whole run, pan `{` / `}`), a cursor that reads out the span under it (`<` / `>` by a
//! cell, `(` / `)` to the previous / next span boundary, `g` / `G` to the next / previous GIL hand-off, `;` the
//! next lane), a paused live view (`f`: the run goes on, the picture holds), and a replay's playback (Space, `,` /
//! `.` for 1x, 1/10x, 1/100x, 1/1000x; in a replay the cursor is the playhead, so `(` / `)` step span by span).
//!
//! Times here are relative: ns from a run's first span, so a compare's runs share one window on one axis. The state
//! is plain data changed by `App` on keys and ticks; the ui draws from it.

use crate::app::{App, Key, Run, RunCpu, Screen};
use crate::digest::Digest;
use crate::experiment::Job;
use crate::record::{RecordedJob, Recording};
use crate::timeline::{SpanKind, lane_order};

/// The finest zoom: 100 µs per cell.
pub(crate) const MIN_CELL_NS: u64 = 100_000;
/// Playback speeds, as divisors of real time: 1x, 1/10x, 1/100x, 1/1000x.
pub(crate) const SPEEDS: [u64; 4] = [1, 10, 100, 1_000];

/// `1x`, `1/10x`, ...
pub(crate) fn speed_name(div: u64) -> String {
    if div == 1 { "1x".to_string() } else { format!("1/{div}x") }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TimelineView {
    /// The window's length in ns; `None`: the whole run.
    pub len: Option<u64>,
    /// The window's start; `None`: follow (a live run's end, else its start).
    pub from: Option<u64>,
    /// The cursor, when shown.
    pub cursor: Option<u64>,
    /// The lane the cursor reads, counted over the runs shown, each run's lanes in reading order.
    pub lane: usize,
    /// A live view frozen at this CLOCK_MONOTONIC time (absolute ns): the run goes on, the picture holds.
    pub paused_at: Option<u64>,
}

impl TimelineView {
    /// The window `[from, to)` (relative) over a run of `full` ns (at least 1 ms), drawn in `cells` cells (0: not
    /// known; no finer than 100 µs a cell then either); `live` follows the end.
    pub(crate) fn window(&self, full: u64, cells: u16, live: bool) -> (u64, u64) {
        let full = full.max(1_000_000);
        let min = (MIN_CELL_NS * u64::from(cells.max(1))).min(full);
        let len = self.len.map_or(full, |l| l.clamp(min, full));
        let from = match self.from {
            Some(f) => f,
            None if live => full - len,
            None => 0,
        };
        let from = from.min(full - len);
        (from, from + len)
    }

    fn zoom(&mut self, full: u64, cells_hint: u16, live: bool, zoom_in: bool) {
        let (a, b) = self.window(full, 0, live);
        let len = b - a;
        let centre = self.cursor.filter(|c| (a..=b).contains(c)).unwrap_or(a + len / 2);
        let finest = (MIN_CELL_NS * u64::from(cells_hint.max(20)) / 2).max(MIN_CELL_NS);
        let new = if zoom_in { (len / 2).max(finest.min(len)) } else { len.saturating_mul(2) };
        if new >= full.max(1_000_000) {
            self.len = None;
            self.from = None;
            return;
        }
        self.len = Some(new);
        let following = live && self.from.is_none() && self.cursor.is_none();
        self.from = if following { None } else { Some(centre.saturating_sub(new / 2)) };
    }

    fn pan(&mut self, full: u64, live: bool, right: bool) {
        let (a, b) = self.window(full, 0, live);
        let step = ((b - a) / 4).max(1);
        let from = if right { a + step } else { a.saturating_sub(step) };
        // Panned back to the end of a live run: follow it again.
        self.from = if live && from + (b - a) >= full { None } else { Some(from) };
    }

    /// Puts the cursor at `at` and the window around it if it left it.
    fn put_cursor(&mut self, at: u64, full: u64, live: bool) {
        let at = at.min(full);
        self.cursor = Some(at);
        let (a, b) = self.window(full, 0, live);
        if at < a || at >= b {
            self.from = Some(at.saturating_sub((b - a) / 2));
        }
    }
}

/// A recording opened in the TUI, and its playback.
#[derive(Clone, Debug)]
pub(crate) struct Replay {
    pub rec: Recording,
    /// The recording's runs as the screens draw runs.
    pub runs: Vec<Run>,
    pub speedups: Vec<Option<f64>>,
    /// Index into `SPEEDS`.
    pub speed: usize,
    pub playing: bool,
    /// Where playback is (relative ns): what is drawn ends here.
    pub playhead: u64,
    /// The tick that last advanced the playhead (CLOCK_MONOTONIC).
    pub last_tick: Option<u64>,
}

/// A run of the TUI's own kind from a recorded one (its digest built, its CPU samples back in ns).
fn run_of(id: u64, r: &crate::record::RecordedRun) -> Run {
    let job = match &r.job {
        RecordedJob::Experiment(e) => Job::Experiment(e.clone()),
        RecordedJob::Demo(d) => Job::Demo(d.clone()),
    };
    let timeline = r.timeline.clone();
    let mut digest = Digest::default();
    for i in 0..timeline.spans.len() {
        digest.add_span(&timeline, i);
    }
    let mut cpu = RunCpu::default();
    for s in &r.samples.parlab {
        let per_core_ns = s.pct.iter().map(|p| (f64::from(*p) / 100.0 * s.interval_ns as f64) as u64).collect();
        cpu.add(crate::app::CpuSample { at_ns: s.at_ns, interval_ns: s.interval_ns, per_core_ns });
    }
    Run {
        id,
        job,
        origin: "replay".to_string(),
        timeline,
        digest,
        cpu,
        others: (0.0, 0),
        live: false,
        cancelled: false,
    }
}

impl Replay {
    pub(crate) fn new(rec: Recording) -> Replay {
        let runs: Vec<Run> = rec.runs.iter().enumerate().map(|(i, r)| run_of(i as u64 + 1, r)).collect();
        let speedups = rec.speedups();
        let mut r = Replay { rec, runs, speedups, speed: 0, playing: false, playhead: 0, last_tick: None };
        r.playhead = r.extent();
        r
    }

    /// The longest run's length (relative ns).
    pub(crate) fn extent(&self) -> u64 {
        self.runs.iter().map(|r| origin_and_len(r, 0, None).1).max().unwrap_or(0)
    }

    /// Advances the playhead to the tick at `now`.
    fn tick(&mut self, now: u64) {
        if !self.playing {
            return;
        }
        if let Some(last) = self.last_tick {
            self.playhead += now.saturating_sub(last) / SPEEDS[self.speed];
        }
        self.last_tick = Some(now);
        if self.playhead >= self.extent() {
            self.playhead = self.extent();
            self.playing = false;
            self.last_tick = None;
        }
    }

    /// "made 2025-03-01 10:15:30 UTC on AMD EPYC · 2 cores · ..."
    pub(crate) fn label(&self) -> String {
        let made = self.rec.made.replacen('T', " ", 1).replace('Z', " UTC");
        format!("recorded {made} on {}", self.rec.machine.describe())
    }
}

/// A run's origin (absolute ns of its first span, or t0) and its length (relative); a live run reaches `now`
/// (or the pause).
pub(crate) fn origin_and_len(r: &Run, now: u64, paused: Option<u64>) -> (u64, u64) {
    let t = &r.timeline;
    let d = &r.digest;
    let origin = if t.t0_ns == 0 && t.spans.is_empty() { now } else { d.first_ns(t) };
    let mut end = d.last_ns(t);
    if r.live {
        end = match paused {
            // Frozen: what came after the pause waits for the view to resume.
            Some(p) if p >= origin => p,
            _ => end.max(now),
        };
    }
    (origin, end.saturating_sub(origin))
}

/// What the cursor reads on its lane: kind, task, pid/tid, CPU, start and duration of the span under it.
pub(crate) fn readout(runs: &[&Run], origins: &[u64], lane: usize, at: u64) -> String {
    let mut n = 0;
    for (r, origin) in runs.iter().zip(origins) {
        let t = &r.timeline;
        let order = lane_order(&t.lanes);
        if lane >= n + order.len() {
            n += order.len();
            continue;
        }
        let l = &t.lanes[order[lane - n]];
        let abs = origin + at;
        let fmt = |ns: u64| crate::units::format_ns(i128::from(ns) - i128::from(t.t0_ns));
        let mut under =
            t.spans.iter().filter(|s| s.lane == l.id && s.start_ns <= abs && abs < s.end_ns.max(s.start_ns + 1));
        let text = match under.next_back() {
            Some(s) => {
                let cpu = match (s.cpu_start, s.cpu_end) {
                    (a, _) if a < 0 => "cpu ?".to_string(),
                    (a, b) if a == b || b < 0 => format!("cpu{a}"),
                    (a, b) => format!("cpu{a}→{b}"),
                };
                let task = if s.count > 1 {
                    format!("tasks {}-{}", s.task, s.task + s.count - 1)
                } else if s.count == 0 {
                    "no task".to_string()
                } else {
                    format!("task {}", s.task)
                };
                format!(
                    "{} {}: {} · {task} · {} · start {} · {}",
                    l.label,
                    l.ids(),
                    s.kind.name(),
                    cpu,
                    fmt(s.start_ns),
                    crate::units::format_ns(i128::from(s.dur_ns()))
                )
            }
            None => format!("{} {}: no span here", l.label, l.ids()),
        };
        return format!("cursor {} · {text}", fmt(abs));
    }
    format!("cursor {}", crate::units::format_ns(i128::from(at)))
}

/// The lanes shown, in the order the cursor counts them: (run index, lane id).
fn lanes_of(runs: &[&Run]) -> Vec<(usize, u32)> {
    runs.iter()
        .enumerate()
        .flat_map(|(i, r)| lane_order(&r.timeline.lanes).into_iter().map(move |l| (i, r.timeline.lanes[l].id)))
        .collect()
}

/// The nearest span boundary after (`forward`) or before `at` on any lane, or the nearest GIL hand-off (a lane's
/// gil-wait ending: it takes the lock) with `handoff`; with the lane it is on.
fn jump(runs: &[&Run], origins: &[u64], at: u64, forward: bool, handoff: bool) -> Option<(u64, usize)> {
    let lanes = lanes_of(runs);
    let mut best: Option<(u64, usize)> = None;
    for (i, (r, origin)) in runs.iter().zip(origins).enumerate() {
        for s in &r.timeline.spans {
            let Some(lane) = lanes.iter().position(|&(ri, id)| ri == i && id == s.lane) else { continue };
            let points: &[u64] = if handoff {
                if s.kind != SpanKind::GilWait {
                    continue;
                }
                &[s.end_ns]
            } else {
                &[s.start_ns, s.end_ns]
            };
            for p in points {
                let rel = p.saturating_sub(*origin);
                let better = match best {
                    None => true,
                    Some((b, _)) => {
                        if forward {
                            rel < b
                        } else {
                            rel > b
                        }
                    }
                };
                let beyond = if forward { rel > at } else { rel < at };
                if beyond && better {
                    best = Some((rel, lane));
                }
            }
        }
    }
    best
}

impl App {
    /// The runs the timeline keys act on, their origins, their shared length, and whether they are live.
    fn view_runs(&self) -> Option<(Vec<&Run>, Vec<u64>, u64, bool)> {
        let paused = self.tl.paused_at;
        let runs: Vec<&Run> = match self.screen {
            Screen::Replay => self.replay.as_ref()?.runs.iter().collect(),
            Screen::Lesson => self.panel.run.iter().filter(|r| !r.timeline.lanes.is_empty()).collect(),
            Screen::Compare => self.compare.as_ref()?.runs.iter().filter(|r| !r.timeline.lanes.is_empty()).collect(),
            Screen::List => return None,
        };
        if runs.is_empty() {
            return None;
        }
        let ext: Vec<(u64, u64)> = runs.iter().map(|r| origin_and_len(r, self.now_ns, paused)).collect();
        let full = ext.iter().map(|e| e.1).max().unwrap_or(0);
        let live = runs.iter().any(|r| r.live);
        Some((runs, ext.into_iter().map(|e| e.0).collect(), full, live))
    }

    /// Whether a replay is playing (the UI then ticks as it does for a live run).
    pub(crate) fn playing(&self) -> bool {
        self.screen == Screen::Replay && self.replay.as_ref().is_some_and(|r| r.playing)
    }

    /// Opens a recording on the replay screen.
    pub(crate) fn open_replay(&mut self, rec: Recording) {
        self.replay = Some(Replay::new(rec));
        self.tl = TimelineView::default();
        self.screen = Screen::Replay;
    }

    /// A tick: a playing replay moves on.
    pub(crate) fn view_tick(&mut self, now: u64) {
        if let Some(r) = self.replay.as_mut().filter(|r| r.playing) {
            r.tick(now);
            let at = r.playhead;
            if let Some((_, _, full, _)) = self.view_runs() {
                self.tl.put_cursor(at, full, false);
            }
        }
    }

    /// The timeline keys (see the module doc); true when the key was one of them here.
    pub(crate) fn on_view_key(&mut self, key: Key) -> bool {
        if key == Key::Char('P') && self.screen != Screen::List {
            self.present = !self.present;
            let how = if self.present {
                "presenter layout (P: back); it shows the timeline once there is a run"
            } else {
                "full layout"
            };
            self.status = Some((crate::app::StatusKind::Info, how.to_string()));
            return true;
        }
        if self.screen == Screen::Replay && self.on_replay_key(key) {
            return true;
        }
        if matches!(self.screen, Screen::Lesson | Screen::Compare) && matches!(key, Key::Char('r' | 'R' | 'c')) {
            // A new run gets a fresh view (a pause or a zoom of the last one would mean nothing for it).
            self.tl = TimelineView::default();
            return false;
        }
        let Some((runs, origins, full, live)) = self.view_runs() else { return false };
        let cells = self.size.0.saturating_sub(20);
        let cell = {
            let (a, b) = self.tl.window(full, cells, live);
            ((b - a) / u64::from(cells.max(10))).max(1)
        };
        let lanes = lanes_of(&runs).len();
        let at = self.tl.cursor.unwrap_or_else(|| {
            let (a, b) = self.tl.window(full, cells, live);
            a + (b - a) / 2
        });
        let replay = self.screen == Screen::Replay;
        let mut jumped = None;
        match key {
            Key::Char(c @ (']' | '[')) => {
                self.tl.zoom(full, self.size.0, live, c == ']');
                let (a, b) = self.tl.window(full, cells, live);
                let f = |ns: u64| crate::units::format_ns(i128::from(ns));
                let cell = crate::units::format_ns(i128::from((b - a) / u64::from(cells.max(1))));
                let note = if self.tl.len.is_none() { " (the whole run)" } else { "" };
                let text = format!("window {}..{}{note}: about {cell} a cell", f(a), f(b));
                self.status = Some((crate::app::StatusKind::Info, text));
            }
            Key::Char('{') => self.tl.pan(full, live, false),
            Key::Char('}') => self.tl.pan(full, live, true),
            Key::Char('<') => jumped = Some(at.saturating_sub(cell)),
            Key::Char('>') => jumped = Some(at + cell),
            Key::Char(c @ ('(' | ')' | 'g' | 'G')) => {
                let forward = matches!(c, ')' | 'g');
                match jump(&runs, &origins, at, forward, matches!(c, 'g' | 'G')) {
                    Some((t, lane)) => {
                        jumped = Some(t);
                        self.tl.lane = lane;
                    }
                    None => {
                        let what = if matches!(c, 'g' | 'G') { "GIL hand-off" } else { "span boundary" };
                        let dir = if forward { "after" } else { "before" };
                        self.status = Some((crate::app::StatusKind::Info, format!("no {what} {dir} the cursor")));
                    }
                }
            }
            Key::Char(';') => {
                self.tl.lane = (self.tl.lane + 1) % lanes.max(1);
                jumped = Some(at);
            }
            Key::Up | Key::Down if replay => {
                self.tl.lane = if key == Key::Up { self.tl.lane.saturating_sub(1) } else { self.tl.lane + 1 };
                self.tl.lane = self.tl.lane.min(lanes.saturating_sub(1));
                jumped = Some(at);
            }
            Key::Char('f') if self.screen == Screen::Lesson && (live || self.tl.paused_at.is_some()) => {
                self.tl.paused_at = match self.tl.paused_at {
                    Some(_) => None,
                    None => Some(self.now_ns),
                };
                let how =
                    if self.tl.paused_at.is_some() { "view paused; the run goes on (f: resume)" } else { "view live" };
                self.status = Some((crate::app::StatusKind::Info, how.to_string()));
            }
            _ => return false,
        }
        if let Some(t) = jumped {
            self.tl.put_cursor(t, full, live);
            if let Some(r) = self.replay.as_mut().filter(|_| replay) {
                r.playhead = t.min(full);
                r.playing = false;
                r.last_tick = None;
            }
            // The compare view has no readout row of its own: the status line reads the span.
            if self.screen == Screen::Compare
                && let Some((runs, origins, _, _)) = self.view_runs()
                && let Some(c) = self.tl.cursor
            {
                let text = readout(&runs, &origins, self.tl.lane, c);
                self.status = Some((crate::app::StatusKind::Info, text));
            }
        }
        true
    }

    /// Playback keys of the replay screen.
    fn on_replay_key(&mut self, key: Key) -> bool {
        let Some(r) = self.replay.as_mut() else { return false };
        let extent = r.extent();
        match key {
            Key::Char(' ') => {
                if r.playhead >= extent {
                    r.playhead = 0;
                }
                r.playing = !r.playing;
                r.last_tick = None;
            }
            Key::Char(',') => r.speed = (r.speed + 1).min(SPEEDS.len() - 1),
            Key::Char('.') => r.speed = r.speed.saturating_sub(1),
            Key::Home => {
                r.playhead = 0;
                r.last_tick = None;
            }
            Key::End => {
                r.playhead = extent;
                r.playing = false;
            }
            Key::Esc => {
                self.screen = Screen::List;
                self.present = false;
                return true;
            }
            _ => return false,
        }
        let (at, name) = (r.playhead, speed_name(SPEEDS[r.speed]));
        let state = if r.playing { "playing" } else { "paused" };
        self.status = Some((crate::app::StatusKind::Info, format!("{state} at {name}")));
        if let Some((_, _, full, _)) = self.view_runs() {
            self.tl.put_cursor(at, full, false);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppEvent;
    use crate::app::tests::app;
    use crate::record::tests::{compare_of_four, recording_of, run_of};
    use crate::timeline::SpanKind;

    const MS: u64 = 1_000_000;

    /// The screen's text at 100x30.
    fn screen(a: &mut App) -> Vec<String> {
        a.update(AppEvent::Resize(100, 30));
        crate::ui::gantt::buffer_lines(&crate::ui::render_frame_for_bench(a, 100, 30))
    }

    fn key(a: &mut App, c: char) {
        a.update(AppEvent::Key(Key::Char(c)));
    }

    /// A gil run of 8 tasks of 10 ms on 2 threads: 40 ms of lanes.
    fn replaying() -> App {
        let mut a = app();
        a.open_replay(recording_of(run_of(crate::experiment::Mode::Gil, 2, 8, 10, 4300)));
        a
    }

    fn axis(lines: &[String]) -> String {
        lines.iter().find(|l| l.contains("0ms") || l.contains("µs")).cloned().unwrap_or_default()
    }

    #[test]
    fn a_replay_is_labelled_with_its_date_and_machine_and_shows_every_lane() {
        let mut a = app();
        a.open_replay(compare_of_four());
        let text = screen(&mut a).join("\n");
        assert!(text.contains("replay · fib:20 × 4 · compare of 4 modes"), "{text}");
        assert!(text.contains("recorded 2025-03-01 10:20:00 UTC on AMD EPYC 7B13 · 2 cores"), "{text}");
        for lane in ["main 4100", "t1 4200/4201", "t2 4300/4302", "p1 4401", "p2 4402"] {
            assert!(text.contains(lane), "no lane '{lane}' in\n{text}");
        }
        assert!(text.contains("speedup 2.00×"), "{text}");
    }

    #[test]
    fn zooming_in_relabels_the_axis_and_zooming_out_restores_it() {
        let mut a = replaying();
        let before = axis(&screen(&mut a));
        key(&mut a, ']');
        key(&mut a, ']');
        let zoomed = axis(&screen(&mut a));
        assert_ne!(before, zoomed, "the axis did not relabel");
        // 40 ms, then 20, then 10 around the middle: ticks every 2 ms instead of every 5.
        assert!(zoomed.contains("16ms") && zoomed.contains("18ms") && !zoomed.contains("30ms"), "{zoomed}");
        assert!(a.status.as_ref().is_some_and(|s| s.1.starts_with("window 15ms..25ms")), "{:?}", a.status);
        key(&mut a, '}');
        assert_ne!(axis(&screen(&mut a)), zoomed, "panning moves the axis");
        key(&mut a, '[');
        key(&mut a, '[');
        key(&mut a, '[');
        assert_eq!(axis(&screen(&mut a)), before);
    }

    #[test]
    fn playback_at_a_hundredth_advances_with_the_clock_and_draws_only_what_happened() {
        let mut a = replaying();
        key(&mut a, ',');
        key(&mut a, ',');
        key(&mut a, ' ');
        let r = a.replay.as_ref().unwrap();
        assert!(r.playing && r.playhead == 0 && SPEEDS[r.speed] == 100);
        assert!(a.playing());
        let t = 5_000_000_000_000;
        a.update(AppEvent::Tick(t));
        a.update(AppEvent::Tick(t + 1_000 * MS));
        assert_eq!(a.replay.as_ref().unwrap().playhead, 10 * MS, "1 s of wall clock is 10 ms of the run");
        let early = screen(&mut a);
        a.update(AppEvent::Tick(t + 2_000 * MS));
        let later = screen(&mut a);
        assert_ne!(early, later);
        let filled = |lines: &[String]| lines.iter().map(|l| l.matches('█').count()).sum::<usize>();
        assert!(filled(&later) > filled(&early), "more of the run is drawn as it plays");
        assert!(later.iter().any(|l| l.contains("replay playing at 1/100x · 20ms of 40ms")), "{later:?}");
        // To its end, then it stops.
        a.update(AppEvent::Tick(t + 9_000 * MS));
        let r = a.replay.as_ref().unwrap();
        assert!(!r.playing && r.playhead == 40 * MS);
    }

    #[test]
    fn a_paused_live_view_holds_its_picture_while_the_run_goes_on() {
        use crate::timeline::{LabEvent, Lane, Span};
        let mut a = app();
        a.update(AppEvent::Key(Key::Enter));
        a.update(AppEvent::Key(Key::Right));
        let fx = a.update(AppEvent::Key(Key::Char('r')));
        let id = fx
            .iter()
            .find_map(|e| if let crate::app::Effect::Start { run, .. } = e { Some(*run) } else { None })
            .unwrap();
        a.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 500, t0_ns: MS, cores: 2 }));
        a.update(AppEvent::Lab(id, LabEvent::Lane(Lane { id: 0, pid: 500, tid: 501, label: "t1".into() })));
        let span = |k: u64| Span {
            lane: 0,
            task: k,
            count: 1,
            kind: SpanKind::Run,
            start_ns: MS + k * 10 * MS,
            end_ns: MS + (k + 1) * 10 * MS,
            cpu_start: 0,
            cpu_end: 0,
        };
        a.update(AppEvent::Lab(id, LabEvent::Span(span(0))));
        a.update(AppEvent::Tick(MS + 10 * MS));
        key(&mut a, 'f');
        assert_eq!(a.tl.paused_at, Some(11 * MS));
        let paused = screen(&mut a);
        for k in 1..5 {
            a.update(AppEvent::Lab(id, LabEvent::Span(span(k))));
            a.update(AppEvent::Tick(MS + (k + 1) * 10 * MS));
        }
        assert!(a.is_live(), "the run goes on");
        let still = screen(&mut a);
        let gantt = |l: &[String]| {
            l.iter()
                .filter(|l| l.contains("t1 500/501") || (l.contains("0ms") && !l.contains("running")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(gantt(&paused), gantt(&still), "the paused view holds");
        key(&mut a, 'f');
        let live = screen(&mut a);
        assert_ne!(gantt(&live), gantt(&still), "resumed: the view moves on");
        // Zoomed in, a live view follows the run's end.
        key(&mut a, ']');
        let (from, to) = a.tl.window(50 * MS, 0, true);
        assert_eq!((from, to), (25 * MS, 50 * MS));
    }

    #[test]
    fn a_compare_zooms_on_one_shared_axis_and_its_cursor_reads_on_the_status_line() {
        let mut a = app();
        a.update(AppEvent::Key(Key::Enter));
        a.update(AppEvent::Key(Key::Right));
        let fx = a.update(AppEvent::Key(Key::Char('c')));
        let mut id = fx
            .iter()
            .find_map(|e| if let crate::app::Effect::Start { run, .. } = e { Some(*run) } else { None })
            .unwrap();
        for wall in [200, 190, 100] {
            crate::app::tests::feed_run(&mut a, id, wall);
            if let Some(next) = a.compare.as_ref().unwrap().runs.last().filter(|r| r.live) {
                id = next.id;
            }
        }
        assert!(a.compare.as_ref().unwrap().done());
        let before = axis(&screen(&mut a));
        key(&mut a, ']');
        let after = axis(&screen(&mut a));
        assert_ne!(before, after, "the shared axis relabels");
        assert!(a.status.as_ref().is_some_and(|s| s.1.starts_with("window 50ms..150ms")), "{:?}", a.status);
        key(&mut a, '>');
        let status = a.status.as_ref().map(|s| s.1.clone()).unwrap_or_default();
        assert!(status.starts_with("cursor ") && status.contains("t1 500/501: run"), "{status}");
    }

    #[test]
    fn the_core_bars_replay_with_the_run() {
        let mut a = app();
        a.open_replay(recording_of(crate::record::tests::threads_run(2, 16)));
        let cores = |a: &mut App| {
            screen(a).into_iter().filter(|l| l.contains("cpu0") || l.contains("cpu1")).collect::<Vec<_>>()
        };
        let end = cores(&mut a);
        assert_eq!(end.len(), 2, "a bar per core");
        a.update(AppEvent::Key(Key::Home));
        key(&mut a, ')');
        key(&mut a, ')');
        assert_eq!(a.replay.as_ref().unwrap().playhead, 10 * MS);
        let early = cores(&mut a);
        assert_ne!(early, end, "at 10 ms the bars show the run as it was then");
    }

    #[test]
    fn stepping_moves_the_playhead_span_by_span_and_the_cursor_reads_the_span() {
        let mut a = replaying();
        a.update(AppEvent::Key(Key::Home));
        key(&mut a, ')');
        assert_eq!(a.replay.as_ref().unwrap().playhead, 10 * MS, "the first spans end at 10 ms");
        key(&mut a, '(');
        assert_eq!(a.replay.as_ref().unwrap().playhead, 0);
        key(&mut a, '>');
        let text = screen(&mut a).join("\n");
        assert!(
            text.contains("cursor ") && text.contains("t1 4300/4301: run · task 0 · cpu0→1 · start 0ms · 10ms"),
            "{text}"
        );
        key(&mut a, ';');
        let text = screen(&mut a).join("\n");
        assert!(text.contains("t2 4300/4302: run · task 1"), "{text}");
    }

    #[test]
    fn zooming_in_halves_the_window_down_to_100us_a_cell_and_out_to_the_whole_run() {
        let mut v = TimelineView::default();
        let full = 400_000_000;
        assert_eq!(v.window(full, 100, false), (0, full));
        v.zoom(full, 100, false, true);
        assert_eq!(v.window(full, 100, false), (100_000_000, 300_000_000), "zoomed around the centre");
        for _ in 0..30 {
            v.zoom(full, 100, false, true);
        }
        let (a, b) = v.window(full, 100, false);
        assert_eq!(b - a, 100 * MIN_CELL_NS, "no finer than 100 µs a cell");
        for _ in 0..30 {
            v.zoom(full, 100, false, false);
        }
        assert_eq!(v, TimelineView::default());
    }

    #[test]
    fn a_zoomed_live_view_follows_the_end_until_panned() {
        let mut v = TimelineView::default();
        v.zoom(100_000_000, 100, true, true);
        assert_eq!(v.window(100_000_000, 100, true), (50_000_000, 100_000_000));
        assert_eq!(v.window(200_000_000, 100, true), (150_000_000, 200_000_000), "the run grew; the view went along");
        v.pan(200_000_000, true, false);
        assert_eq!(v.window(300_000_000, 100, true), (137_500_000, 187_500_000), "panned: it holds");
    }
}

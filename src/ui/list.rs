//! The lesson list: number, title, minutes and progress mark per lesson, the search, the resume point, the
//! selected lesson's summary, and lesson files that failed to load.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::App;
use crate::progress::LessonMark;

use super::markdown::wrap;
use super::panel::{panel_block, put};

pub(crate) fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let theme = app.theme;
    let visible = app.visible();
    let detail_h = 7u16.min(body.height / 3);
    let list_h = body.height.saturating_sub(detail_h);
    let list_area = Rect::new(body.x, body.y, body.width, list_h);
    let detail = Rect::new(body.x, body.y + list_h, body.width, detail_h);

    let title = if app.list.searching || !app.list.query.is_empty() {
        let cursor = if app.list.searching { "_" } else { "" };
        format!(" lessons · search: {}{cursor} ({} of {}) ", app.list.query, visible.len(), app.lessons.len())
    } else {
        format!(" lessons ({}) ", app.lessons.len())
    };
    let marks = theme.marks();
    let legend = format!(" {} done  {} started  {} not started ", marks[2], marks[1], marks[0]);
    let block = panel_block(title, theme).title_bottom(Line::styled(legend, theme.dim()).right_aligned());
    let inner = block.inner(list_area);
    block.render(list_area, buf);
    if inner.height == 0 {
        return;
    }
    let rows = inner.height as usize;
    let offset = app.list.selected.saturating_sub(rows.saturating_sub(1));
    let resume = app.resume();
    for (row, (pos, &i)) in visible.iter().enumerate().skip(offset).take(rows).enumerate() {
        let l = &app.lessons[i];
        let y = inner.y + row as u16;
        let mark = match app.lesson_mark(i) {
            LessonMark::NotStarted => marks[0],
            LessonMark::Started => marks[1],
            LessonMark::Done => marks[2],
        };
        let selected = pos == app.list.selected;
        let minutes = format!("{:>3} min", l.minutes);
        let resume_tag = match resume {
            Some((r, s)) if r == i => format!("  resume at {}/{}", s + 1, l.sections.len()),
            _ => String::new(),
        };
        let title_w = (inner.width as usize).saturating_sub(8 + minutes.len() + resume_tag.chars().count() + 1);
        let title: String = l.title.chars().take(title_w).collect();
        let pad = title_w.saturating_sub(title.chars().count());
        let mark_style = match app.lesson_mark(i) {
            LessonMark::Done => theme.good(),
            LessonMark::Started => theme.warn(),
            LessonMark::NotStarted => theme.dim(),
        };
        let line = Line::from(vec![
            Span::styled(format!(" {mark} "), mark_style),
            Span::styled(format!("{:>2}  ", i + 1), theme.dim()),
            Span::styled(format!("{title}{}", " ".repeat(pad)), theme.text()),
            Span::styled(resume_tag, theme.accent()),
            Span::styled(format!(" {minutes}"), theme.dim()),
        ]);
        put(buf, inner, y, &line);
        if selected {
            buf.set_style(Rect::new(inner.x, y, inner.width, 1), theme.selected());
        }
    }
    if visible.is_empty() {
        let msg = format!("no lesson matches '{}' (Esc clears the search)", app.list.query);
        put(buf, inner, inner.y, &Line::styled(msg, theme.dim()));
    }

    // The selected lesson, then broken files.
    let mut lines: Vec<Line<'static>> = Vec::new();
    let w = detail.width.saturating_sub(2) as usize;
    if let Some(&i) = visible.get(app.list.selected) {
        let l = &app.lessons[i];
        lines.extend(wrap(&[(l.summary.clone(), theme.text())], w, Span::raw(" "), Span::raw(" ")));
        if !l.covers.is_empty() {
            lines.extend(wrap(
                &[("covers ".into(), theme.dim()), (l.covers.join(", "), theme.dim())],
                w,
                Span::raw(" "),
                Span::raw(" "),
            ));
        }
    }
    for b in &app.broken {
        lines.extend(wrap(&[(b.clone(), theme.bad())], w, Span::styled(" ! ", theme.bad()), Span::raw("   ")));
    }
    for (k, l) in lines.iter().take(detail.height as usize).enumerate() {
        put(buf, detail, detail.y + k as u16, l);
    }
}

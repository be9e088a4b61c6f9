//! The lesson list screen: search and open a lesson. Part of the app's state machine (no terminal, no I/O).

use super::*;

impl App {
    pub(super) fn on_search_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        match key {
            Key::Char(c) => {
                self.list.query.push(c);
                self.list.selected = 0;
            }
            Key::Backspace => {
                self.list.query.pop();
                self.list.selected = 0;
            }
            Key::Esc => {
                self.list.searching = false;
                self.list.query.clear();
                self.list.selected = 0;
            }
            Key::Enter => {
                self.list.searching = false;
                self.on_list_key(Key::Enter, fx);
            }
            Key::Up | Key::Down | Key::PageUp | Key::PageDown | Key::Home | Key::End => self.on_list_key(key, fx),
            _ => {}
        }
    }

    pub(super) fn on_list_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        let n = self.visible().len();
        let sel = &mut self.list.selected;
        match key {
            Key::Up | Key::Char('k') => *sel = sel.saturating_sub(1),
            Key::Down | Key::Char('j') => *sel = (*sel + 1).min(n.saturating_sub(1)),
            Key::PageUp => *sel = sel.saturating_sub(10),
            Key::PageDown => *sel = (*sel + 10).min(n.saturating_sub(1)),
            Key::Home => *sel = 0,
            Key::End => *sel = n.saturating_sub(1),
            Key::Char('/') => {
                self.list.searching = true;
            }
            Key::Esc if !self.list.query.is_empty() => {
                self.list.query.clear();
                self.list.selected = 0;
            }
            Key::Enter | Key::Right => {
                if let Some(&i) = self.visible().get(self.list.selected) {
                    fx.extend(self.open_lesson(i));
                }
            }
            _ => {}
        }
    }

    pub(super) fn open_lesson(&mut self, i: usize) -> Vec<Effect> {
        let section = match self.resume() {
            Some((l, s)) if l == i => s,
            _ => 0,
        };
        if self.view.lesson != i {
            self.view = LessonView { lesson: i, ..LessonView::default() };
            // Another lesson's blocks share no panels with this one (ids may repeat across lessons).
            self.switch_panel(None);
            self.stash.clear();
        }
        self.screen = Screen::Lesson;
        if let Some(pos) = self.visible().iter().position(|&v| v == i) {
            self.list.selected = pos;
        }
        self.goto_section(section)
    }
}

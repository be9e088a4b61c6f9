//! One place decides colours and symbols: the styles and glyphs of a `Theme` (dark, light or high-contrast
//! palettes, colour or none under `NO_COLOR`, UTF-8 blocks or plain ASCII under `--ascii`). The choice itself is
//! plain data in `crate::theme`, which the app holds without knowing how it is drawn.

use ratatui::style::{Color, Modifier, Style};

pub(crate) use crate::theme::{Palette, Theme};
use crate::timeline::SpanKind;

impl Theme {
    fn c(&self, dark: Color, light: Color, contrast: Color) -> Style {
        if !self.color {
            return Style::default();
        }
        Style::default().fg(match self.palette {
            Palette::Dark => dark,
            Palette::Light => light,
            Palette::Contrast => contrast,
        })
    }

    pub(crate) fn kind_color(&self, kind: SpanKind) -> Option<Color> {
        if !self.color {
            return None;
        }
        let (dark, light, contrast) = match kind {
            SpanKind::Run => (Color::Green, Color::Green, Color::LightGreen),
            SpanKind::GilWait => (Color::Red, Color::Red, Color::LightRed),
            SpanKind::Startup => (Color::Blue, Color::Blue, Color::LightCyan),
            SpanKind::Ipc => (Color::Magenta, Color::Magenta, Color::LightMagenta),
            SpanKind::Serialize => (Color::Yellow, Color::Rgb(150, 110, 0), Color::LightYellow),
            SpanKind::Idle => (Color::DarkGray, Color::Gray, Color::Gray),
            SpanKind::Failed => (Color::LightRed, Color::Red, Color::White),
        };
        Some(match self.palette {
            Palette::Dark => dark,
            Palette::Light => light,
            Palette::Contrast => contrast,
        })
    }

    pub(crate) fn kind_style(&self, kind: SpanKind) -> Style {
        match self.kind_color(kind) {
            Some(c) => {
                let s = Style::default().fg(c);
                if kind == SpanKind::Failed { s.add_modifier(Modifier::BOLD) } else { s }
            }
            None => Style::default(),
        }
    }

    /// The symbol that fills a cell of this kind (also shown in the legend).
    pub(crate) fn kind_symbol(&self, kind: SpanKind) -> &'static str {
        match (kind, self.ascii) {
            (SpanKind::Run, false) => "█",
            (SpanKind::GilWait, false) => "▒",
            (SpanKind::Startup, false) => "░",
            (SpanKind::Ipc, false) => "▚",
            (SpanKind::Serialize, false) => "▞",
            (SpanKind::Idle, false) => "·",
            (SpanKind::Failed, false) => "✗",
            (SpanKind::Run, true) => "#",
            (SpanKind::GilWait, true) => "=",
            (SpanKind::Startup, true) => "+",
            (SpanKind::Ipc, true) => "~",
            (SpanKind::Serialize, true) => "%",
            (SpanKind::Idle, true) => ".",
            (SpanKind::Failed, true) => "X",
        }
    }

    /// Left-aligned partial blocks, 1/8 to 8/8 of a cell.
    pub(crate) fn eighths(&self) -> [&'static str; 9] {
        if self.ascii {
            [" ", " ", " ", " ", "#", "#", "#", "#", "#"]
        } else {
            [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"]
        }
    }

    pub(crate) fn text(&self) -> Style {
        self.c(Color::Reset, Color::Black, Color::White)
    }
    pub(crate) fn dim(&self) -> Style {
        if !self.color {
            return Style::default();
        }
        match self.palette {
            Palette::Contrast => Style::default().fg(Color::White),
            Palette::Light => Style::default().fg(Color::DarkGray),
            Palette::Dark => Style::default().fg(Color::DarkGray),
        }
    }
    pub(crate) fn accent(&self) -> Style {
        self.c(Color::Cyan, Color::Blue, Color::LightYellow).add_modifier(Modifier::BOLD)
    }
    pub(crate) fn good(&self) -> Style {
        self.c(Color::Green, Color::Green, Color::LightGreen)
    }
    pub(crate) fn bad(&self) -> Style {
        self.c(Color::Red, Color::Red, Color::LightRed)
    }
    pub(crate) fn warn(&self) -> Style {
        self.c(Color::Yellow, Color::Rgb(150, 110, 0), Color::LightYellow)
    }
    pub(crate) fn border(&self) -> Style {
        self.c(Color::DarkGray, Color::Gray, Color::White)
    }
    pub(crate) fn selected(&self) -> Style {
        if !self.color {
            return Style::default().add_modifier(Modifier::REVERSED);
        }
        match self.palette {
            Palette::Contrast => Style::default().fg(Color::Black).bg(Color::LightYellow),
            Palette::Light => Style::default().fg(Color::White).bg(Color::Blue),
            Palette::Dark => Style::default().fg(Color::Black).bg(Color::Cyan),
        }
    }

    pub(crate) fn heading(&self) -> Style {
        self.c(Color::LightCyan, Color::Blue, Color::LightYellow).add_modifier(Modifier::BOLD)
    }
    /// Inline code and unhighlighted code blocks.
    pub(crate) fn code(&self) -> Style {
        self.c(Color::Yellow, Color::Magenta, Color::LightCyan)
    }
    pub(crate) fn link(&self) -> Style {
        self.c(Color::Cyan, Color::Blue, Color::LightCyan).add_modifier(Modifier::UNDERLINED)
    }
    /// A key name in the footer and help.
    pub(crate) fn key(&self) -> Style {
        self.c(Color::Cyan, Color::Blue, Color::LightYellow).add_modifier(Modifier::BOLD)
    }
    /// Bars of the whole system's load (parlab's own use `kind_style(Run)`).
    pub(crate) fn system(&self) -> Style {
        self.c(Color::Blue, Color::Blue, Color::LightBlue)
    }

    /// Sparkline levels, empty to full.
    pub(crate) fn spark(&self) -> [&'static str; 9] {
        if self.ascii {
            [" ", ".", ".", ":", ":", "+", "+", "#", "#"]
        } else {
            [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        }
    }

    /// Progress marks: not started, started, done ("x" would read as failed, so ASCII done is "*").
    pub(crate) fn marks(&self) -> [&'static str; 3] {
        if self.ascii { [".", "~", "*"] } else { ["·", "◐", "✓"] }
    }

    /// Right and wrong answers.
    pub(crate) fn right_wrong(&self) -> (&'static str, &'static str) {
        if self.ascii { ("[right]", "[wrong]") } else { ("✓", "✗") }
    }

    /// Section progress: done and to-do cells.
    pub(crate) fn pips(&self) -> (&'static str, &'static str) {
        if self.ascii { ("#", "-") } else { ("▮", "▯") }
    }

    pub(crate) fn sep(&self) -> &'static str {
        if self.ascii { " - " } else { " · " }
    }

    /// Left, right, up and down arrows as key names.
    pub(crate) fn arrows(&self) -> [&'static str; 4] {
        if self.ascii { ["Left", "Right", "Up", "Down"] } else { ["←", "→", "↑", "↓"] }
    }

    pub(crate) fn border_set(&self) -> ratatui::symbols::border::Set<'static> {
        if self.ascii {
            ratatui::symbols::border::Set {
                top_left: "+",
                top_right: "+",
                bottom_left: "+",
                bottom_right: "+",
                vertical_left: "|",
                vertical_right: "|",
                horizontal_top: "-",
                horizontal_bottom: "-",
            }
        } else {
            ratatui::symbols::border::PLAIN
        }
    }

    /// The whole screen's base: light and contrast paint their own background so they read on any terminal.
    pub(crate) fn base(&self) -> Style {
        if !self.color {
            return Style::default();
        }
        match self.palette {
            Palette::Dark => Style::default(),
            Palette::Light => Style::default().fg(Color::Black).bg(Color::White),
            Palette::Contrast => Style::default().fg(Color::White).bg(Color::Black),
        }
    }
}

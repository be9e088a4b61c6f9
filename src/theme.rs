//! The look a user chose: a palette (dark, light, contrast), colour on or off (`NO_COLOR`), UTF-8 or ASCII
//! symbols (`--ascii`). Plain data the app holds and the progress file remembers; what it looks like (styles,
//! glyphs) is the drawing code's, in `ui::theme`. Imports nothing of parlab's and no terminal crate.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Palette {
    #[default]
    Dark,
    Light,
    Contrast,
}

impl Palette {
    pub(crate) const ALL: [Palette; 3] = [Palette::Dark, Palette::Light, Palette::Contrast];

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Palette::Dark => "dark",
            Palette::Light => "light",
            Palette::Contrast => "contrast",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Palette, String> {
        Palette::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown theme '{s}' (expected one of: dark, light, contrast)"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Theme {
    pub palette: Palette,
    /// Colours on (off under NO_COLOR and in plain text output).
    pub color: bool,
    /// Plain ASCII symbols instead of block characters.
    pub ascii: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme { palette: Palette::Dark, color: true, ascii: false }
    }
}

impl Theme {
    /// Plain text: no colour, UTF-8 symbols (headless output).
    pub(crate) fn plain(ascii: bool) -> Theme {
        Theme { palette: Palette::Dark, color: false, ascii }
    }
}

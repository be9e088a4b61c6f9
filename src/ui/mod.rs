//! Drawing: widgets that only read state (`impl Widget`), shared by the TUI and headless output.

pub(crate) mod gantt;
pub(crate) mod theme;

//! The one integration test binary: each file under tests/ is a module here.

mod util;

mod cli;
mod lint;
mod snippets;
mod demos;
mod start_methods;
mod tui;
mod exercises;
mod progress;

//! The one integration test binary: each file under tests/ is a module here.

mod util;

mod cli;
mod demos;
mod dispatch;
mod distributed;
mod engine;
mod exercises;
mod faults;
mod hostile;
mod layers;
mod lint;
mod notes;
mod progress;
mod pyharness;
mod replay;
mod snippets;
mod start_methods;
mod tui;
mod watch;

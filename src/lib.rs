//! parlab: a terminal lab for process vs thread vs async parallelism, as a library.
//!
//! Every module lives here; `main.rs` is only the entry point (the hidden lab, worker and guard entries, then the
//! clap dispatch). Tests, property tests and fuzz targets use the library to reach units directly. Items are
//! `pub(crate)` unless the binary, a test or a fuzz target needs them.

pub mod app;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod digest;
pub mod engine;
pub mod exercise;
pub mod experiment;
#[doc(hidden)]
pub mod fuzz_api;
pub mod headless;
pub mod lab;
pub mod lesson;
pub mod monitor;
pub mod notes;
pub mod progress;
pub mod record;
pub mod replay;
pub mod scratch;
pub mod stdout;
pub mod theme;
pub mod timeline;
pub mod tui;
pub mod ui;
pub mod units;
pub mod view;
pub mod watch;
mod watch_tui;
pub mod wire;
pub mod worker;
pub mod workload;

//! The one integration test binary: each file under tests/ is a module here.

mod util;

mod cli;

//! A progress file of any bytes parses (only values in range kept) or is called damaged, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlab::fuzz_api::progress_file(data));

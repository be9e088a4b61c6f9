//! A lesson file of any bytes loads as a lesson or is reported broken, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlab::fuzz_api::lesson_file(data));

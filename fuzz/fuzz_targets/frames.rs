//! The lab's frame stream of any bytes decodes to events or stops at the first bad frame, never a panic. Frame
//! lengths are bounded at 1 MiB so one header cannot make the reader reserve 2 GiB per input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlab::fuzz_api::frame_stream(data, 1 << 20));

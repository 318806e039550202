#![no_main]
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| barbara_core::fuzz::sdp_answer(std::time::Instant::now(), data));

#![no_main]
//! `cargo +nightly fuzz run rerank`: see [`shelfrank::fuzzing::rerank`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| shelfrank::fuzzing::rerank(data));

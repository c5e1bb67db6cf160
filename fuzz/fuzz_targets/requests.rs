#![no_main]
//! `cargo +nightly fuzz run requests`: see [`shelfrank::fuzzing::requests`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| shelfrank::fuzzing::requests(data));

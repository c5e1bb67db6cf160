#![no_main]
//! `cargo +nightly fuzz run model_file`: see [`shelfrank::fuzzing::model_file`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| shelfrank::fuzzing::model_file(data));

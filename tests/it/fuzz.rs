//! The fuzzers' seeds and every crasher they found (`fuzz/seeds/`,
//! `fuzz/regressions/`), run through the same bodies as the `cargo fuzz`
//! targets (`shelfrank::fuzzing`).

use std::path::Path;

fn run_corpus(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else { continue };
        let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{} fails again", file.display());
            ran += 1;
        }
    }
    assert!(ran > 0, "no seeds for fuzz target {target}");
}

#[test]
fn fuzz_model_file_corpus() {
    run_corpus("model_file", shelfrank::fuzzing::model_file);
}

#[test]
fn fuzz_requests_corpus() {
    run_corpus("requests", shelfrank::fuzzing::requests);
}

#[test]
fn fuzz_rerank_corpus() {
    run_corpus("rerank", shelfrank::fuzzing::rerank);
}

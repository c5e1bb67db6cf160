//! Where a cold start's time goes, natively on the CPU backend: decoding
//! and hashing the model file, the tokenizer (a tokenizer.json against the
//! one the model file carries), building
//! the network, the warm-up inference, and a first rerank.
//! `cargo run --release --example load_timing`.

use std::time::Instant;

use shelfrank::model::{ModelFile, TextEncoder, sha256_hex};
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Backend, Reranker, cpu_device};

fn main() {
    let model = std::fs::read("models/shelfrank-scientific.bin").expect("model");
    let tokenizer = std::fs::read("models/minilm-tokenizer.json").expect("tokenizer");
    let data = shelfrank::dataset::Dataset::load("data/scientific".as_ref()).expect("data");
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    for round in 0..3 {
        let t = Instant::now();
        let file = ModelFile::from_bytes(&model).expect("model file");
        let decode = ms(t);
        let t = Instant::now();
        let _ = sha256_hex(&tokenizer);
        let tokenizer_hash = ms(t);
        let t = Instant::now();
        let _ = TextEncoder::new(&tokenizer, &file.vocab, file.config.max_text_tokens).expect("tokenizer");
        let tokenizer_parse = ms(t);
        let t = Instant::now();
        let encoder = TextEncoder::for_model(&file, None).expect("the packed tokenizer");
        let packed_parse = ms(t);
        let t = Instant::now();
        let texts: Vec<Candidate> = data.items[100..250].iter().map(|i| i.candidate()).collect();
        for c in &texts {
            let _ = encoder.encode(&c.text()).expect("tokens");
        }
        let tokenize = ms(t);
        let t = Instant::now();
        let _ = file.build(&cpu_device()).expect("network");
        let build = ms(t);
        let t = Instant::now();
        let mut ranker = Reranker::from_file(file, None, Backend::Host, HistoryLimits::default()).expect("ranker");
        let from_file = ms(t);
        let t = Instant::now();
        let warm = ranker.warm_up().expect("warm-up");
        warm.scores.into_iter().for_each(|s| drop(s.read_blocking()));
        let warm_up = ms(t);
        for (i, item) in data.items[..50].iter().enumerate() {
            let event = SessionEvent {
                kind: EventKind::View,
                id: Some(item.id.clone()),
                title: Some(item.title.clone()),
                category: None,
                brand: None,
                query: None,
                timestamp: Some(1.7e12 + i as f64),
            };
            ranker.record(event, 1.7e12 + 60.0).expect("event");
        }
        let list: Vec<Candidate> = data.items[100..200].iter().map(|i| i.candidate()).collect();
        let t = Instant::now();
        ranker.rerank_blocking(&list, &RerankOptions::default(), 1.7e12 + 60.0).expect("rerank");
        let first = ms(t);
        let t = Instant::now();
        ranker.rerank_blocking(&list, &RerankOptions::default(), 1.7e12 + 60.0).expect("rerank");
        let again = ms(t);
        let other: Vec<Candidate> = data.items[300..400].iter().map(|i| i.candidate()).collect();
        let t = Instant::now();
        ranker.rerank_blocking(&other, &RerankOptions::default(), 1.7e12 + 60.0).expect("rerank");
        let new_list = ms(t);
        println!(
            "round {round}: model decode+sha {decode:.1} ms, tokenizer.json sha {tokenizer_hash:.1}, tokenizer.json parse {tokenizer_parse:.1}, packed tokenizer parse {packed_parse:.1}, tokenizing 150 texts {tokenize:.1}, burn build {build:.1}, Reranker::from_file on the host (all of it) {from_file:.1}, warm-up {warm_up:.1}, first rerank (100 x 50) {first:.1}, same list again {again:.2}, a new list of 100 {new_list:.1}"
        );
    }
}

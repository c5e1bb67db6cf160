//! Times `rerank` of 100 catalog candidates after 20 events on the native
//! CPU backend: `cargo run --release --example rerank_timing`.

use std::time::Instant;

use shelfrank::dataset::Dataset;
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Reranker, cpu_device};

fn main() {
    let model = std::fs::read("models/shelfrank-scientific.bin").expect("model");
    let tokenizer = std::fs::read("models/minilm-tokenizer.json").expect("tokenizer");
    let data = Dataset::load(std::path::Path::new("data/scientific")).expect("data");
    let started = Instant::now();
    let mut ranker = Reranker::load(&model, &tokenizer, cpu_device(), HistoryLimits::default()).expect("load");
    println!("load: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    let now = 1.7e12;
    for i in 0..20 {
        let item = &data.items[(i * 37) % data.items.len()];
        let event = SessionEvent {
            kind: EventKind::View,
            id: Some(item.id.clone()),
            title: Some(item.title.clone()),
            category: item.category.clone(),
            brand: item.brand.clone(),
            query: None,
            timestamp: Some(now),
        };
        ranker.record(event, now).expect("record");
    }
    let candidates: Vec<Candidate> = data.items[1000..1100].iter().map(|i| i.candidate()).collect();
    for round in 0..5 {
        let t = Instant::now();
        ranker.rerank_blocking(&candidates, &RerankOptions::default(), now).expect("rerank");
        println!("rerank {round}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}

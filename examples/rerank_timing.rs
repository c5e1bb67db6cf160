//! Times `rerank` of 100 catalog candidates after 20 events (EVENTS=n), natively, on
//! the CPU backend or on wgpu (`-- wgpu`, whatever adapter wgpu finds):
//! `cargo run --release --example rerank_timing [-- wgpu]`.

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
    let device = if std::env::args().nth(1).as_deref() == Some("wgpu") {
        let (device, setup) = burn::tensor::Device::wgpu_options().init_with_setup().expect("a wgpu adapter");
        println!("adapter: {:?}", setup.adapter.get_info());
        device
    } else {
        println!("backend: flex (CPU)");
        cpu_device()
    };
    let mut ranker = Reranker::load(&model, &tokenizer, device, HistoryLimits::default()).expect("load");
    println!("load: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    let now = 1.7e12;
    let events: usize = std::env::var("EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for i in 0..events {
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
    for round in 0..10 {
        let t = Instant::now();
        ranker.rerank_blocking(&candidates, &RerankOptions::default(), now).expect("rerank");
        println!("rerank {round}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}

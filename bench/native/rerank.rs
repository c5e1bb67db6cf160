//! `cargo bench -p shelfrank-bench`: the shipped model's rerank on the host CPU (burn's flex
//! backend), for the same shapes `npm run bench` measures in the browser:
//! candidates ∈ {20, 100, 1000, 5000} × history ∈ {10, 50}.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use shelfrank::dataset::Dataset;
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits};
use shelfrank::{Backend, Reranker};

fn rerank(c: &mut Criterion) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let model = std::fs::read(format!("{root}/models/shelfrank-scientific.bin")).expect("the shipped model");
    let data = Dataset::load(format!("{root}/data/scientific").as_ref()).expect("the dataset");
    let now = 1.0e12;
    let mut group = c.benchmark_group("rerank");
    for history in [10usize, 50] {
        for n in [20usize, 100, 1000, 5000] {
            let mut ranker = Reranker::load(&model, None, Backend::Host, HistoryLimits::default()).expect("the model loads");
            for i in 0..history {
                let item = &data.items[(i * 131 + 17) % data.items.len()];
                let kind = [EventKind::View, EventKind::Click, EventKind::AddToCart, EventKind::Purchase][i % 4];
                ranker.record(item.event(kind, Some(now - (history - i) as f64)), now).expect("a valid event");
            }
            let candidates: Vec<Candidate> = (0..n)
                .map(|i| {
                    let mut c = data.items[i % data.items.len()].candidate();
                    if i >= data.items.len() {
                        c.id = format!("{}-{i}", c.id);
                    }
                    c.server_score = Some((n - i) as f64);
                    c
                })
                .collect();
            let options = RerankOptions::default();
            ranker.rerank_blocking(&candidates, &options, now).expect("warm"); // tokenize once
            group.bench_with_input(BenchmarkId::new(format!("history {history}"), n), &n, |b, _| {
                b.iter(|| black_box(ranker.rerank_blocking(black_box(&candidates), &options, now).expect("rerank")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, rerank);
criterion_main!(benches);

//! The uncached rerank on the host network (what the page's CPU build
//! runs), natively: each iteration records one new event and reranks 100
//! candidates never seen before (history 50). Prints p50 and mean.
//! `cargo run --release --example host_uncached`.

use std::time::Instant;

use shelfrank::dataset::Dataset;
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Backend, Reranker};

fn main() {
    let model = std::fs::read("models/shelfrank-scientific.bin").expect("model");
    let data = Dataset::load("data/scientific".as_ref()).expect("data");
    let mut ranker = Reranker::load(&model, None, Backend::Host, HistoryLimits::default()).expect("ranker");
    let now = 1.7e12;
    let event = |i: usize| {
        let item = &data.items[(i * 37) % data.items.len()];
        SessionEvent { kind: EventKind::View, id: Some(item.id.clone()), title: Some(item.title.clone()), category: None, brand: None, query: None, timestamp: Some(now + i as f64) }
    };
    for i in 0..50 {
        ranker.record(event(i), now + 100.0).expect("event");
    }
    let n = data.items.len();
    let mut times = Vec::new();
    for round in 0..400 {
        // Candidates never reranked before: a fresh window of the catalog, texts varied by round.
        let list: Vec<Candidate> = (0..100)
            .map(|k| {
                let item = &data.items[(round * 100 + k) % n];
                let mut c = item.candidate();
                c.title = format!("{} {round}", item.title);
                c
            })
            .collect();
        let t = Instant::now();
        ranker.record(event(50 + round), now + 100.0).expect("event");
        let ranked = ranker.rerank_blocking(&list, &RerankOptions::default(), now + 100.0).expect("rerank");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(ranked.len(), 100);
    }
    let warm = &mut times[50..];
    warm.sort_by(f64::total_cmp);
    let mean = warm.iter().sum::<f64>() / warm.len() as f64;
    println!("host, new event + 100 new candidates, history 50: p50 {:.3} ms, mean {mean:.3} ms", warm[warm.len() / 2]);
}

//! Where an uncached rerank's time goes, natively on the CPU backend: each
//! iteration records one new event and reranks candidates whose texts were
//! never seen before (history 50), then the same work split into its steps
//! (tokenising, the text tower, the session state, scoring, reading back).
//! `cargo run --release --example uncached_profile [-- N ...]` (default 100 1000).

use std::time::Instant;

use burn::tensor::{Int, Tensor, TensorData};
use shelfrank::dataset::Dataset;
use shelfrank::model::{EventKind, ItemText, ModelFile, TextEncoder};
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::HistoryLimits;
use shelfrank::{Reranker, cpu_device, read_scores};

fn main() {
    let model = std::fs::read("models/shelfrank-scientific.bin").expect("model");
    let data = Dataset::load(std::path::Path::new("data/scientific")).expect("data");
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a candidate count")).collect();
    let sizes = if sizes.is_empty() { vec![100, 1000] } else { sizes };
    let now = 1.7e12;
    let event = |i: usize| data.items[(i * 131 + 17) % data.items.len()].event(EventKind::ALL[i % 4], Some(now));
    let mut fresh = 0usize;
    let mut candidates = |n: usize| -> Vec<Candidate> {
        fresh += 1;
        (0..n)
            .map(|i| {
                let mut c = data.items[(i + fresh * 7) % data.items.len()].candidate();
                c.title = format!("{} v{fresh}", c.title);
                c
            })
            .collect()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for &n in &sizes {
        let mut ranker = Reranker::load(&model, None, cpu_device(), HistoryLimits::default()).expect("load");
        for i in 0..50 {
            ranker.record(event(i), now).expect("record");
        }
        let runs = if n >= 1000 { 15 } else { 40 };
        let mut whole = Vec::new();
        for round in 0..runs + 5 {
            ranker.record(event(1000 + round), now).expect("record");
            let list = candidates(n);
            let t = Instant::now();
            ranker.rerank_blocking(&list, &RerankOptions::default(), now).expect("rerank");
            if round >= 5 {
                whole.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        println!("{n} candidates x 50 events, new event + new texts, whole rerank: p50 {:.2} ms", median(whole));

        // The same work by step.
        let file = ModelFile::from_bytes(&model).expect("model");
        let device = cpu_device();
        let network = file.build(&device).expect("build");
        let text = TextEncoder::for_model(&file, None).expect("tokenizer");
        let affinity = file.config.affinity();
        let mut steps = [(); 6].map(|_| Vec::new());
        for round in 0..runs {
            let list = candidates(n);
            let inputs = ranker.scoring_inputs(&list).expect("inputs");
            let texts: Vec<String> = inputs.events.iter().map(|e| e.text()).chain(list.iter().map(Candidate::text)).collect();
            let t = Instant::now();
            let rows: Vec<Vec<u32>> = texts.iter().map(|s| text.encode(s).expect("tokens")).collect();
            let t1 = Instant::now();
            let all = ItemText::from_rows(&rows);
            let (event_text, candidate_text) = all.split_at(inputs.session.len);
            let event_vectors = network.text_vectors(&event_text, &device);
            let candidate_vectors = network.text_vectors(&candidate_text, &device);
            let _ = (event_vectors.clone().into_data(), candidate_vectors.clone().into_data());
            let t2 = Instant::now();
            let state = network.session_states(&inputs.session, event_vectors, affinity, &device);
            let _ = state.state.clone().into_data();
            let t3 = Instant::now();
            let (scores, _) =
                network.score_candidate_vectors(&state, &inputs.candidate_rows, candidate_vectors, affinity, &device, false, None);
            let data = scores.into_data();
            let t4 = Instant::now();
            let scores = read_scores(data).expect("scores");
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let t5 = Instant::now();
            let ids = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64; 8], [8]), &device);
            let _ = ids.into_data();
            let t6 = Instant::now();
            if round > 2 {
                for (i, (a, b)) in [(t, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6)].into_iter().enumerate() {
                    steps[i].push((b - a).as_secs_f64() * 1e3);
                }
            }
        }
        let names = ["tokenise", "text tower (events + candidates)", "session state", "score + blend", "read back + sort", "one tiny op"];
        for (name, times) in names.iter().zip(steps) {
            println!("  {name}: p50 {:.3} ms", median(times));
        }
    }
}

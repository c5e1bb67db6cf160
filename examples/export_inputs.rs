//! Writes test cases for checking an export of the shipped model to another
//! runtime (the ONNX export under `bench/onnx/`): for a few recorded
//! histories and candidate lists, the exact network inputs
//! (`Reranker::scoring_inputs`), each event's affinity weight, and the
//! scores the Rust model gives (`model_score` of `rerank_blocking`, ranked by
//! the model alone).
//!
//! `cargo run --release --example export_inputs [-- OUT.json]`
//! (default `target/bench/cases.json`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shelfrank::dataset::{CatalogItem, Dataset};
use shelfrank::model::sha256_hex;
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Reranker, ScoringInputs};

const MODEL: &str = "models/shelfrank-scientific.bin";
const TOKENIZER: &str = "models/minilm-tokenizer.json";
/// One clock for recording and reranking, so no event expires in between.
const NOW_MS: f64 = 1.7e12;

fn main() {
    let out = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/bench/cases.json"));
    let model = std::fs::read(MODEL).expect("read the model file");
    let tokenizer = std::fs::read(TOKENIZER).expect("read the tokenizer");
    let data = Dataset::load(Path::new("data/scientific")).expect("load data/scientific");
    let mut ranker =
        Reranker::load(&model, Some(&tokenizer), burn::tensor::Device::flex(), HistoryLimits::default()).expect("load the model");
    let config = ranker.config().clone();

    let candidate_lists = [("c20", candidates(&data, 20, 500)), ("c100", candidates(&data, 100, 2000))];
    let mut cases = Vec::new();
    for history_len in [1usize, 10, 50, 64] {
        ranker.forget();
        for event in history(&data, history_len) {
            ranker.record(event, NOW_MS).expect("record an event");
        }
        for (list_name, list) in &candidate_lists {
            let inputs = ranker.scoring_inputs(list).expect("scoring inputs");
            let ranked = ranker.rerank_blocking(list, &RerankOptions { server_weight: 0.0, ..Default::default() }, NOW_MS).expect("rerank");
            let mut expected = vec![f32::NAN; list.len()];
            for item in &ranked {
                expected[item.original_position] = item.model_score.expect("a model score (the history is not empty)");
            }
            let affinity = config.affinity();
            let weights = inputs.session.affinity_weights(affinity.decay, &affinity.kinds);
            cases.push(case(&format!("h{history_len}-{list_name}"), &inputs, &weights, &expected));
        }
    }

    let doc = json!({
        "model": MODEL,
        "modelSha256": sha256_hex(&model),
        "tokenizerSha256": sha256_hex(&tokenizer),
        "nowMs": NOW_MS,
        "affinityWeight": config.affinity_weight,
        "affinityDecay": config.affinity_decay,
        "maxEvents": config.max_events,
        "layout": "row-major; eventTokens/eventMask are [L, T], candidateTokens/candidateMask are [N, T2]",
        "cases": cases,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create the output folder");
    }
    std::fs::write(&out, serde_json::to_vec(&doc).expect("serialise")).expect("write the cases");
    println!("wrote {} cases to {}", doc["cases"].as_array().map_or(0, Vec::len), out.display());
}

/// `n` catalog items spread from `start`, plus two the catalog does not
/// know: one with a title, one with no text at all (one unknown token).
fn candidates(data: &Dataset, n: usize, start: usize) -> Vec<Candidate> {
    let mut list: Vec<Candidate> = (0..n - 2).map(|i| data.items[(start + i * 13) % data.items.len()].candidate()).collect();
    list.push(Candidate {
        id: "not-in-catalog-1".into(),
        title: "Digital caliper, stainless steel, 150 mm".into(),
        category: Some("Measuring tools".into()),
        brand: None,
        price: Some(19.5),
        server_score: None,
        pinned: false,
    });
    list.push(Candidate {
        id: "not-in-catalog-2".into(),
        title: String::new(),
        category: None,
        brand: None,
        price: None,
        server_score: None,
        pinned: false,
    });
    // Mix the unknown ones into the middle of the list.
    let k = list.len();
    list.swap(n / 2, k - 2);
    list
}

/// `len` events, oldest first, one second apart, of mixed kinds: catalog
/// items, an item outside the catalog (title only), and searches.
fn history(data: &Dataset, len: usize) -> Vec<SessionEvent> {
    let item_event = |kind: EventKind, item: &CatalogItem, at: f64| item.event(kind, Some(at));
    let queries = ["nitrile gloves", "lab glassware beaker set", "3d printer filament pla", "usb microscope"];
    (0..len)
        .map(|i| {
            let at = NOW_MS - (len - i) as f64 * 1000.0;
            let item = &data.items[(i * 37 + 11) % data.items.len()];
            match i % 7 {
                _ if len == 1 => item_event(EventKind::View, item, at),
                2 => SessionEvent {
                    kind: EventKind::Search,
                    id: None,
                    title: None,
                    category: None,
                    brand: None,
                    query: Some(format!("{} {}", queries[(i / 7) % queries.len()], i)),
                    timestamp: Some(at),
                },
                4 => SessionEvent {
                    kind: EventKind::Click,
                    id: Some(format!("outside-{i}")),
                    title: Some("Borosilicate glass test tubes with caps".into()),
                    category: Some("Lab supplies".into()),
                    brand: Some("Generic".into()),
                    query: None,
                    timestamp: Some(at),
                },
                1 => item_event(EventKind::Click, item, at),
                3 => item_event(EventKind::AddToCart, item, at),
                5 => item_event(EventKind::Purchase, item, at),
                _ => item_event(EventKind::View, item, at),
            }
        })
        .collect()
}

fn case(name: &str, inputs: &ScoringInputs, weights: &[f32], expected: &[f32]) -> Value {
    let ScoringInputs { session, candidate_rows, text, .. } = inputs;
    assert_eq!(session.batch, 1);
    assert!(session.padding.iter().all(|&p| !p), "scoring inputs are never padded");
    let (l, n, t) = (session.len, candidate_rows.len(), text.len);
    assert_eq!(text.n, l + n);
    let split = l * t;
    json!({
        "name": name,
        "L": l,
        "N": n,
        "T": t,
        "T2": t,
        "eventRows": session.item_rows,
        "eventKinds": session.kinds,
        "eventTokens": &text.rows[..split],
        "eventMask": &text.mask[..split],
        "candidateRows": candidate_rows,
        "candidateTokens": &text.rows[split..],
        "candidateMask": &text.mask[split..],
        "affinityWeights": weights,
        "expectedScores": expected,
    })
}

//! The bodies of the `cargo fuzz` targets (`fuzz/fuzz_targets/`), kept in
//! the library so that every saved crasher in `fuzz/regressions/` runs as
//! an ordinary test (`tests/it/fuzz.rs`) and the property tests can share
//! the invariant checks. Each body panics only on a bug: any input must
//! give `Ok` or a typed [`Error`](crate::Error), never a panic, and every
//! `Ok` rerank must keep the invariants [`check_ranked`] asserts.
//! Native only; not part of the package's API.

use std::sync::{Mutex, OnceLock};

use burn::tensor::Device;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::model::{FORMAT_VERSION, MAGIC, ModelFile, RankerConfig, StoredAs, sha256_hex, text::vocabulary_ids};
use crate::rank::{Candidate, RankedItem, RerankOptions, arrange};
use crate::session::{History, HistoryLimits, SessionEvent};
use crate::{Backend, Reranker, Result};

/// The shipped tokenizer, which every model file names by its hash.
pub const TOKENIZER: &[u8] = include_bytes!("../models/minilm-tokenizer.json");
/// The shipped model.
pub const MODEL: &[u8] = include_bytes!("../models/shelfrank-scientific.bin");

/// Panics unless `ranked` is a valid rerank of `candidates`: a permutation
/// of them, pinned items in their own slots, finite scores.
pub fn check_ranked(candidates: &[Candidate], ranked: &[RankedItem]) {
    assert_eq!(ranked.len(), candidates.len(), "a rerank returns every candidate once");
    let mut seen = vec![false; candidates.len()];
    for (slot, item) in ranked.iter().enumerate() {
        let from = item.original_position;
        assert!(from < candidates.len() && !seen[from], "slot {slot}: position {from} is out of range or repeated");
        seen[from] = true;
        assert_eq!(item.id, candidates[from].id, "slot {slot}: the id does not match its original position");
        assert_eq!(item.pinned, candidates[from].pinned);
        if item.pinned {
            assert_eq!(from, slot, "pinned item '{}' moved", item.id);
        }
        assert!(item.score.is_finite(), "slot {slot}: non-finite score");
        assert!(item.model_score.is_none_or(f32::is_finite), "slot {slot}: non-finite model score");
        if let Some(reason) = &item.reason {
            assert!((0.0..=1.0 + 1e-4).contains(&reason.weight), "reason weight {} is not a share", reason.weight);
        }
    }
}

/// The bytes of a model file whose payload is `payload`, hashed correctly
/// (so fuzzing reaches the parser behind the hash check).
pub fn with_valid_hash(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(44 + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(payload));
    bytes.extend_from_slice(payload);
    bytes
}

/// A tiny, randomly initialised model over three items, for seeding the
/// model-file fuzzer.
pub fn tiny_model_file() -> ModelFile {
    let items = [("a1", "Nitrile gloves"), ("b2", "Safety goggles"), ("c3", "Duct tape")];
    let texts: Vec<&str> = items.iter().map(|(_, t)| *t).collect();
    let vocab = vocabulary_ids(TOKENIZER, &texts).expect("the shipped tokenizer");
    let mut config = RankerConfig::new(items.len(), vocab.len());
    (config.dim, config.ff_dim, config.heads, config.layers, config.max_events, config.max_text_tokens) = (4, 4, 1, 1, 4, 8);
    let device = Device::flex();
    device.seed(1);
    let model = config.init(&device);
    ModelFile {
        tensors: ModelFile::capture(&model, StoredAs::I8F16),
        config,
        items: items.iter().map(|(id, _)| id.to_string()).collect(),
        vocab,
        tokenizer_sha256: sha256_hex(TOKENIZER),
        wordpiece: None,
        meta: serde_json::Value::Null,
    }
}

/// Fuzz target `model_file`: `data` as a whole file, and as the payload of
/// a correctly hashed one. A file that parses is built, loaded with the
/// shipped tokenizer and used for a rerank (when small enough to be quick).
pub fn model_file(data: &[u8]) {
    let _ = ModelFile::from_bytes(data);
    let Ok(file) = ModelFile::from_bytes(&with_valid_hash(data)) else { return };
    let c = &file.config;
    let parameters = (c.n_items + c.n_tokens + c.max_events) * c.dim + c.layers * c.dim * c.ff_dim * 2;
    if parameters > 1 << 20 {
        return;
    }
    let Ok(mut ranker) = Reranker::from_file(file, Some(TOKENIZER), Backend::Host, HistoryLimits::default()) else { return };
    let event = SessionEvent { title: Some("Nitrile gloves".into()), ..item_event("a1") };
    ranker.record(event, NOW).expect("a valid event is recorded");
    let list: Vec<Candidate> = ["a1", "b2", "zz"].iter().map(|id| candidate(id, "Safety goggles")).collect();
    for explain in [false, true] {
        if let Ok(ranked) = ranker.rerank_blocking(&list, &RerankOptions { explain, ..RerankOptions::default() }, NOW) {
            check_ranked(&list, &ranked);
        }
    }
}

/// Fuzz target `requests`: `data` as the JSON a page sends (a candidate
/// list, options, events), decoded into the crate's types and validated;
/// candidate lists are also ranked on scores taken from the input bytes.
pub fn requests(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(candidates) = serde_json::from_value::<Vec<Candidate>>(value.clone()) {
        let scores: Vec<f32> = (0..candidates.len()).map(|i| score_from(data, i)).collect();
        let options: RerankOptions = serde_json::from_value(value.get(0).cloned().unwrap_or_default()).unwrap_or_default();
        // arrange takes only what passed the one check at the boundary.
        let valid = crate::rank::validate(&candidates).is_ok() && options.validate().is_ok();
        for model in [None, Some(scores.as_slice())].into_iter().filter(|_| valid) {
            if let Ok(ranked) = arrange(&candidates, model, &options) {
                check_ranked(&candidates, &ranked);
                assert_eq!(arrange(&candidates, model, &options).ok().as_ref(), Some(&ranked), "arrange is deterministic");
            }
        }
    }
    let _ = serde_json::from_value::<RerankOptions>(value.clone()).map(|o| o.validate());
    let mut history = History::new(HistoryLimits { max_events: 8, max_age_ms: 1e9 }).expect("valid limits");
    let events: Vec<serde_json::Value> = match &value {
        serde_json::Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for (i, event) in events.into_iter().enumerate() {
        if let Ok(event) = serde_json::from_value::<SessionEvent>(event) {
            let _ = history.record(event, NOW + i as f64);
            assert!(history.len() <= 8, "the history outgrew its limit");
        }
    }
}

/// What the `rerank` target reads: a whole request against the shipped
/// model.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RerankRequest {
    events: Vec<serde_json::Value>,
    candidates: serde_json::Value,
    options: serde_json::Value,
    fixed_shapes: bool,
}

/// Fuzz target `rerank`: `data` as `{ events, candidates, options }` JSON,
/// run through the shipped model on the CPU exactly as the page does
/// (record each event, rerank, read back); a successful rerank must keep
/// the invariants and be deterministic.
pub fn rerank(data: &[u8]) {
    let Ok(request) = serde_json::from_slice::<RerankRequest>(data) else { return };
    static RANKER: OnceLock<Mutex<Reranker>> = OnceLock::new();
    let ranker = RANKER
        .get_or_init(|| Mutex::new(Reranker::load(MODEL, None, Backend::Host, HistoryLimits::default()).expect("the shipped model loads")));
    let mut ranker = ranker.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    ranker.forget();
    ranker.set_fixed_shapes(request.fixed_shapes);
    for event in request.events {
        if let Ok(event) = serde_json::from_value::<SessionEvent>(event) {
            let _ = ranker.record(event, NOW);
        }
    }
    let Ok(candidates) = serde_json::from_value::<Vec<Candidate>>(request.candidates) else { return };
    let options: RerankOptions = if request.options.is_null() {
        RerankOptions::default()
    } else {
        match serde_json::from_value(request.options) {
            Ok(options) => options,
            Err(_) => return,
        }
    };
    let first: Result<Vec<RankedItem>> = ranker.rerank_blocking(&candidates, &options, NOW);
    if let Ok(ranked) = &first {
        check_ranked(&candidates, ranked);
        let again = ranker.rerank_blocking(&candidates, &options, NOW).expect("the same request succeeds twice");
        assert_eq!(order(ranked), order(&again), "the same request gives the same order");
    }
}

const NOW: f64 = 1.7e12;

fn order(ranked: &[RankedItem]) -> Vec<usize> {
    ranked.iter().map(|r| r.original_position).collect()
}

fn item_event(id: &str) -> SessionEvent {
    SessionEvent {
        kind: crate::session::EventKind::View,
        id: Some(id.into()),
        title: None,
        category: None,
        brand: None,
        query: None,
        timestamp: None,
    }
}

fn candidate(id: &str, title: &str) -> Candidate {
    Candidate { id: id.into(), title: title.into(), category: None, brand: None, price: None, server_score: None, pinned: false }
}

/// A score per candidate from the input's bytes: any f32, NaN included.
fn score_from(data: &[u8], i: usize) -> f32 {
    let at = (i * 4) % data.len().max(1);
    let mut bytes = [0u8; 4];
    for (k, b) in bytes.iter_mut().enumerate() {
        *b = data.get(at + k).copied().unwrap_or(0);
    }
    f32::from_le_bytes(bytes)
}

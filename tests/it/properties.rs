//! Property tests (proptest) for the rerank invariants: whatever the
//! candidates, scores and history, a rerank is a permutation of its input,
//! keeps pinned items in their slots, gives finite scores and is
//! deterministic; valid input never fails, and invalid input fails with a
//! typed error.

use std::sync::{Mutex, OnceLock};

use burn::tensor::Device;
use proptest::prelude::*;
use shelfrank::fuzzing::{MODEL, TOKENIZER, check_ranked};
use shelfrank::rank::{Candidate, RerankOptions, arrange, validate};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{ErrorKind, Reranker};

fn candidate_strategy() -> impl Strategy<Value = (String, Option<String>, Option<f64>, bool)> {
    (
        "[a-zA-Z0-9 ]{0,12}",
        proptest::option::of(any::<String>()),
        proptest::option::of(prop_oneof![any::<f64>(), -1e6..1e6f64, Just(f64::NAN), Just(f64::INFINITY)]),
        any::<bool>(),
    )
}

/// Candidates with unique ids (index prefix), arbitrary titles, server
/// scores (NaN and infinities included) and pins.
fn candidates(max: usize) -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(candidate_strategy(), 0..max).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (id, title, server_score, pinned))| Candidate {
                id: format!("{i}-{id}"),
                title: title.unwrap_or_default(),
                category: None,
                brand: None,
                price: None,
                server_score,
                pinned,
            })
            .collect()
    })
}

fn options() -> impl Strategy<Value = RerankOptions> {
    (prop_oneof![0.0..=1.0f32, any::<f32>()], any::<bool>()).prop_map(|(server_weight, explain)| RerankOptions { server_weight, explain })
}

proptest! {
    #[test]
    fn arrange_keeps_the_invariants_or_fails_typed(
        list in candidates(60),
        scores in proptest::collection::vec(prop_oneof![any::<f32>(), -10.0..10.0f32], 0..60),
        options in options(),
    ) {
        let model = (scores.len() == list.len()).then_some(scores.as_slice());
        match arrange(&list, model, &options) {
            Ok(ranked) => {
                check_ranked(&list, &ranked);
                prop_assert_eq!(Some(ranked), arrange(&list, model, &options).ok());
            }
            Err(error) => prop_assert!(
                matches!(error.kind(), ErrorKind::InvalidCandidate | ErrorKind::InvalidOption | ErrorKind::Backend),
                "{error}"
            ),
        }
        if validate(&list).is_ok() && options.validate().is_ok() && model.is_none_or(|s| s.iter().all(|v| v.is_finite())) {
            prop_assert!(arrange(&list, model, &options).is_ok());
        }
    }
}

fn shipped() -> &'static Mutex<Reranker> {
    static RANKER: OnceLock<Mutex<Reranker>> = OnceLock::new();
    RANKER.get_or_init(|| Mutex::new(Reranker::load(MODEL, TOKENIZER, Device::flex(), HistoryLimits::default()).unwrap()))
}

fn events() -> impl Strategy<Value = Vec<SessionEvent>> {
    let catalog_ids = ["B00TNNWMXI", "B00IBZE2EQ", "B010Y25PQC", "unknown-item"];
    let event = (0..EventKind::ALL.len(), 0..catalog_ids.len(), proptest::option::of(any::<String>()), proptest::option::of(-1e13..1e13f64))
        .prop_map(move |(kind, id, text, timestamp)| {
            let kind = EventKind::ALL[kind];
            SessionEvent {
                kind,
                id: Some(catalog_ids[id].to_string()),
                title: text.clone(),
                category: None,
                brand: None,
                query: Some(text.unwrap_or_else(|| "gloves".into())),
                timestamp,
            }
        });
    proptest::collection::vec(event, 0..70)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_shipped_model_reranks_any_valid_request_keeping_the_invariants(
        history in events(),
        list in candidates(40),
        options in options(),
        fixed_shapes in any::<bool>(),
    ) {
        let mut ranker = shipped().lock().unwrap_or_else(|p| p.into_inner());
        ranker.forget();
        ranker.set_fixed_shapes(fixed_shapes);
        for event in history {
            // Events may be invalid (an empty query); those fail typed.
            if let Err(error) = ranker.record(event, 1.7e12) {
                prop_assert_eq!(error.kind(), ErrorKind::InvalidEvent);
            }
        }
        prop_assert!(ranker.history().len() <= HistoryLimits::default().max_events);
        let valid = validate(&list).is_ok() && options.validate().is_ok();
        match ranker.rerank_blocking(&list, &options, 1.7e12) {
            Ok(ranked) => {
                prop_assert!(valid);
                check_ranked(&list, &ranked);
                let again = ranker.rerank_blocking(&list, &options, 1.7e12).unwrap();
                let order = |r: &[shelfrank::rank::RankedItem]| r.iter().map(|i| i.original_position).collect::<Vec<_>>();
                prop_assert_eq!(order(&ranked), order(&again));
            }
            Err(error) => {
                prop_assert!(!valid, "a valid request failed: {}", error);
                prop_assert!(matches!(error.kind(), ErrorKind::InvalidCandidate | ErrorKind::InvalidOption), "{}", error);
            }
        }
    }
}

//! Property tests (proptest) for the rerank invariants: whatever the
//! candidates, scores and history, a rerank is a permutation of its input,
//! keeps pinned items in their slots, gives finite scores and is
//! deterministic; valid input never fails, and invalid input fails with a
//! typed error.

use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;
use shelfrank::fuzzing::{MODEL, check_ranked};
use shelfrank::rank::{Candidate, RerankOptions, arrange, validate};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Backend, ErrorKind, Reranker};

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
    (prop_oneof![0.0..=1.0f32, any::<f32>()], any::<bool>()).prop_map(|(server_weight, explain)| RerankOptions {
        server_weight,
        explain,
        ..RerankOptions::default()
    })
}

proptest! {
    #[test]
    fn arrange_keeps_the_invariants_or_fails_typed(
        list in candidates(60),
        scores in proptest::collection::vec(prop_oneof![any::<f32>(), -10.0..10.0f32], 0..60),
        options in options(),
    ) {
        let model = (scores.len() == list.len()).then_some(scores.as_slice());
        // One check at the boundary: invalid requests fail typed there and
        // never reach arrange.
        if let Err(error) = validate(&list).and_then(|()| options.validate()) {
            prop_assert!(matches!(error.kind(), ErrorKind::InvalidCandidate | ErrorKind::InvalidOption), "{error}");
            return Ok(());
        }
        match arrange(&list, model, &options) {
            Ok(ranked) => {
                check_ranked(&list, &ranked);
                if model.is_none() {
                    prop_assert!(ranked_in_server_order(&ranked), "with no model scores the server order stays");
                }
                prop_assert_eq!(Some(ranked), arrange(&list, model, &options).ok());
            }
            // Only the model's output is checked past validation.
            Err(error) => {
                prop_assert_eq!(error.kind(), ErrorKind::Backend);
                prop_assert!(model.is_some_and(|s| s.iter().any(|v| !v.is_finite())), "{}", error);
            }
        }
    }
}

fn ranked_in_server_order(ranked: &[shelfrank::rank::RankedItem]) -> bool {
    ranked.iter().enumerate().all(|(slot, r)| r.original_position == slot)
}

fn shipped() -> &'static Mutex<Reranker> {
    static RANKER: OnceLock<Mutex<Reranker>> = OnceLock::new();
    RANKER.get_or_init(|| Mutex::new(Reranker::load(MODEL, None, Backend::Host, HistoryLimits::default()).unwrap()))
}

fn events() -> impl Strategy<Value = Vec<SessionEvent>> {
    let catalog_ids = ["B00TNNWMXI", "B00IBZE2EQ", "B010Y25PQC", "unknown-item"];
    let event =
        (0..EventKind::ALL.len(), 0..catalog_ids.len(), proptest::option::of(any::<String>()), proptest::option::of(-1e13..1e13f64))
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
                if ranker.history().is_empty() {
                    prop_assert!(ranked_in_server_order(&ranked), "with no history the server order stays, server scores or not");
                }
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

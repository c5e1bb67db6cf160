//! Turning model scores into a new order for the server's candidate list.
//!
//! Owns the candidate format, its validation, blending the model with the
//! server's order, and the invariants every rerank keeps: the output is a
//! permutation of the input, pinned (campaign) items keep their slots, and
//! the same input always gives the same order. Never runs the model itself.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result, err};
use crate::session::{EventKind, MAX_TEXT_BYTES, SessionEvent, clip, item_text};

/// Largest candidate list one rerank accepts.
pub const MAX_CANDIDATES: usize = 10_000;

/// One item of the server's list, in server order.
/// Unknown extra fields are ignored. It reads only from an object (a JSON
/// array of field values, which serde would take for a struct, is refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Candidate {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// The server's own relevance score, higher is better, weighed against
    /// the model's. Optional; the list's order is used when absent. With
    /// nothing to personalise on, the list keeps its order either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_score: Option<f64>,
    /// A pinned item (a campaign slot) never moves.
    #[serde(default)]
    pub pinned: bool,
}

impl Serialize for Candidate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        Candidate::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Candidate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Candidate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object like { id, title, ... }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<Candidate, A::Error> {
                Candidate::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

impl Candidate {
    /// The text the model reads for this item.
    pub fn text(&self) -> String {
        let (category, brand) = (self.category.as_deref(), self.brand.as_deref());
        item_text(clip(&self.title, MAX_TEXT_BYTES), category.map(|t| clip(t, MAX_TEXT_BYTES)), brand.map(|t| clip(t, MAX_TEXT_BYTES)))
    }
}

/// How a rerank mixes the model with the server's order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RerankOptions {
    /// Weight of the server's order against the model, in `[0, 1]`:
    /// 0 ranks by the model alone, 1 keeps the server's order.
    pub server_weight: f32,
    /// Also say, per item, which history event drew it ([`HistoryReason`]).
    pub explain: bool,
    /// What to do with candidates the shopper has already met.
    pub repeats: Repeats,
}

/// What a rerank does with candidates already in the shopper's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repeats {
    /// The model's learned repeat prior: an item the shopper has met moves
    /// by an offset learned from data for the kind and recency of their
    /// newest event with it (on the shipped model, down: shoppers rarely
    /// come back for what they just viewed or bought).
    #[default]
    Learned,
    /// No offset: seen items compete on their score alone, where their
    /// likeness to the history lifts them ("buy it again", "recently
    /// viewed" surfaces).
    Allow,
}

impl Default for RerankOptions {
    fn default() -> Self {
        // The server knows the query and the stock; the model knows the
        // shopper. A quarter on the server keeps its strongest picks near the
        // top while letting the session reorder the rest.
        RerankOptions { server_weight: 0.25, explain: false, repeats: Repeats::Learned }
    }
}

impl RerankOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.server_weight) {
            return err(ErrorKind::InvalidOption, "'serverWeight' must be a number between 0 and 1");
        }
        Ok(())
    }
}

/// One item of the reranked list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedItem {
    pub id: String,
    /// Position in the server's list (0-based).
    pub original_position: usize,
    /// The blended score the order follows (higher first); pinned items
    /// carry the score they would have had.
    pub score: f32,
    /// The model's raw score, absent when the history was empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_score: Option<f32>,
    pub pinned: bool,
    /// With `explain`: the history event this item attends to most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<HistoryReason>,
}

/// Why an item was ranked where it is: the history event it is most like in
/// the model's item space, and that event's share of its attention (0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReason {
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub weight: f32,
}

impl HistoryReason {
    /// The reason for each ranked item from `attention` (`[n, events]`,
    /// rows in server order) over `events`. Pinned items and items without
    /// a model score get none.
    pub fn attach(ranked: &mut [RankedItem], attention: &[f32], events: &[SessionEvent]) -> Result<()> {
        let len = events.len();
        let n = ranked.len();
        if len == 0 || attention.len() != n * len {
            return err(
                ErrorKind::Backend,
                format!("the model returned {} attention weights for {n} items × {len} events", attention.len()),
            );
        }
        for item in ranked.iter_mut().filter(|r| !r.pinned && r.model_score.is_some()) {
            let row = &attention[item.original_position * len..(item.original_position + 1) * len];
            // Latest event wins ties: it is the one the shopper remembers.
            let (best, &weight) = row.iter().enumerate().rev().max_by(|a, b| a.1.total_cmp(b.1)).expect("events is not empty");
            if !weight.is_finite() {
                continue;
            }
            let event = &events[best];
            item.reason = Some(HistoryReason {
                kind: event.kind,
                id: event.id.clone(),
                title: event.title.clone(),
                query: event.query.clone(),
                weight,
            });
        }
        Ok(())
    }
}

/// Checks a candidate list; the error names the first offending entry.
/// This is the ranker's one check of a list: [`Reranker::start`](crate::reranker::Reranker::start)
/// runs it, and everything after (scoring, [`arrange`]) relies on it. The
/// page sends at most `MAX_CANDIDATES + 1` entries (and ids cut one byte
/// past the limit), so these messages are the only ones a shop sees.
pub fn validate(candidates: &[Candidate]) -> Result<()> {
    if candidates.len() > MAX_CANDIDATES {
        return err(
            ErrorKind::InvalidCandidate,
            format!("one rerank accepts at most {MAX_CANDIDATES} candidates; send the top of the list"),
        );
    }
    let mut seen = HashSet::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        if c.id.trim().is_empty() {
            return err(ErrorKind::InvalidCandidate, format!("candidate {i} has an empty 'id'"));
        }
        if c.id.len() > MAX_TEXT_BYTES {
            return err(ErrorKind::InvalidCandidate, format!("candidate {i} has an 'id' longer than {MAX_TEXT_BYTES} bytes"));
        }
        if !seen.insert(c.id.as_str()) {
            return err(ErrorKind::InvalidCandidate, format!("candidate {i} repeats the id '{}'; ids must be unique", c.id));
        }
        if let Some(score) = c.server_score
            && !score.is_finite()
        {
            return err(ErrorKind::InvalidCandidate, format!("candidate {i} ('{}') has a non-finite 'serverScore'", c.id));
        }
        if let Some(price) = c.price
            && !(price.is_finite() && price >= 0.0)
        {
            return err(
                ErrorKind::InvalidCandidate,
                format!("candidate {i} ('{}') has a 'price' that is not a finite, non-negative number", c.id),
            );
        }
    }
    Ok(())
}

/// Orders candidates that passed [`validate`] (with options that passed
/// [`RerankOptions::validate`]). `model_scores` holds one score per
/// candidate, or `None` when there is nothing to personalise on: then the
/// list keeps exactly the order it came in, whatever its `serverScore`s say
/// (the server chose that order; its scores only weigh against the model's).
/// Only the model's output is checked here.
pub fn arrange(candidates: &[Candidate], model_scores: Option<&[f32]>, options: &RerankOptions) -> Result<Vec<RankedItem>> {
    debug_assert!(validate(candidates).is_ok() && options.validate().is_ok(), "arrange needs a validated request");
    let n = candidates.len();
    if let Some(scores) = model_scores {
        if scores.len() != n {
            return err(ErrorKind::Backend, format!("the model returned {} scores for {n} candidates", scores.len()));
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return err(ErrorKind::Backend, "the model returned a non-finite score");
        }
    }

    let blended: Vec<f32> = match model_scores {
        // Nothing to personalise on: the server's order, scored by position.
        None => standardise(&position_signal(n)),
        Some(scores) => {
            let server = standardise(&server_signal(candidates));
            let model = standardise(scores);
            let w = options.server_weight;
            model.iter().zip(&server).map(|(m, s)| (1.0 - w) * m + w * s).collect()
        }
    };

    // Free items, best first; ties keep server order so the result is
    // deterministic.
    let mut free: Vec<usize> = (0..n).filter(|&i| !candidates[i].pinned).collect();
    free.sort_by(|&a, &b| blended[b].total_cmp(&blended[a]).then(a.cmp(&b)));
    let mut free = free.into_iter();

    let ranked = (0..n)
        .map(|slot| {
            let i = if candidates[slot].pinned { slot } else { free.next().expect("one free item per free slot") };
            RankedItem {
                id: candidates[i].id.clone(),
                original_position: i,
                score: blended[i],
                model_score: model_scores.map(|s| s[i]),
                pinned: candidates[i].pinned,
                reason: None,
            }
        })
        .collect();
    Ok(ranked)
}

/// The server's preference as a number per item, higher is better: its
/// scores when every candidate has one, else its order.
fn server_signal(candidates: &[Candidate]) -> Vec<f32> {
    if !candidates.is_empty() && candidates.iter().all(|c| c.server_score.is_some()) {
        candidates.iter().map(|c| c.server_score.unwrap_or(0.0) as f32).collect()
    } else {
        position_signal(candidates.len())
    }
}

/// The server's order as a number per slot: a position discount as in DCG,
/// where the first slots matter most.
fn position_signal(n: usize) -> Vec<f32> {
    (0..n).map(|i| -((i as f32) + 2.0).ln()).collect()
}

/// Zero mean, unit variance; constant input maps to zeros.
fn standardise(values: &[f32]) -> Vec<f32> {
    if values.is_empty() {
        return Vec::new();
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    if !(sd > 1e-12) || !sd.is_finite() {
        return vec![0.0; values.len()];
    }
    values.iter().map(|&v| ((v as f64 - mean) / sd) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize, pinned: &[usize]) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                id: format!("c{i}"),
                title: format!("item {i}"),
                category: None,
                brand: None,
                price: None,
                server_score: None,
                pinned: pinned.contains(&i),
            })
            .collect()
    }

    fn pseudo_scores(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 10_000) as f32 / 100.0 - 50.0
            })
            .collect()
    }

    #[test]
    fn output_is_a_permutation_with_pinned_slots_kept() {
        for seed in 0..50u64 {
            let n = 1 + (seed as usize * 7) % 60;
            let pinned: Vec<usize> = (0..n).filter(|i| (i + seed as usize).is_multiple_of(5)).collect();
            let list = candidates(n, &pinned);
            let scores = pseudo_scores(n, seed);
            let ranked = arrange(&list, Some(&scores), &RerankOptions { server_weight: 0.0, ..RerankOptions::default() }).unwrap();
            let mut ids: Vec<_> = ranked.iter().map(|r| r.id.clone()).collect();
            ids.sort();
            let mut expected: Vec<_> = list.iter().map(|c| c.id.clone()).collect();
            expected.sort();
            assert_eq!(ids, expected, "not a permutation (seed {seed})");
            for &p in &pinned {
                assert_eq!(ranked[p].original_position, p, "pinned slot {p} moved (seed {seed})");
            }
            let free: Vec<f32> = ranked.iter().filter(|r| !r.pinned).map(|r| r.score).collect();
            assert!(free.windows(2).all(|w| w[0] >= w[1]), "free items not in score order (seed {seed})");
        }
    }

    #[test]
    fn same_input_gives_the_same_order() {
        let list = candidates(40, &[3, 10]);
        let scores = pseudo_scores(40, 9);
        let a = arrange(&list, Some(&scores), &RerankOptions::default()).unwrap();
        let b = arrange(&list, Some(&scores), &RerankOptions::default()).unwrap();
        assert_eq!(a, b);
        // Ties resolve by server order.
        let flat = vec![1.0; 40];
        let tied = arrange(&list, Some(&flat), &RerankOptions { server_weight: 0.0, ..RerankOptions::default() }).unwrap();
        assert!(tied.iter().enumerate().all(|(slot, r)| r.original_position == slot));
    }

    #[test]
    fn without_model_scores_the_server_order_stays() {
        let list = candidates(25, &[0, 7]);
        let ranked = arrange(&list, None, &RerankOptions::default()).unwrap();
        assert!(ranked.iter().enumerate().all(|(slot, r)| r.original_position == slot && r.model_score.is_none()));
    }

    #[test]
    fn without_model_scores_the_order_stays_even_when_server_scores_disagree() {
        // The server sent this order with scores that would sort it
        // differently: with nothing to personalise on, the order it chose stays.
        let mut list = candidates(6, &[2]);
        for (c, score) in list.iter_mut().zip([0.1, 0.9, 0.5, 0.3, 0.8, 0.2]) {
            c.server_score = Some(score);
        }
        let ranked = arrange(&list, None, &RerankOptions::default()).unwrap();
        assert_eq!(ranked.iter().map(|r| r.original_position).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        assert!(ranked.windows(2).all(|w| w[0].score > w[1].score), "scores follow the order");
        // With model scores, those server scores do weigh in.
        let flat = vec![0.0; 6];
        let blended = arrange(&list, Some(&flat), &RerankOptions { server_weight: 1.0, ..RerankOptions::default() }).unwrap();
        assert_eq!(blended[0].id, "c1");
    }

    #[test]
    fn server_weight_moves_between_model_and_server_order() {
        let list = candidates(10, &[]);
        // The model wants the reverse of the server's order.
        let scores: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let model_only = arrange(&list, Some(&scores), &RerankOptions { server_weight: 0.0, ..RerankOptions::default() }).unwrap();
        assert_eq!(model_only[0].id, "c9");
        let server_only = arrange(&list, Some(&scores), &RerankOptions { server_weight: 1.0, ..RerankOptions::default() }).unwrap();
        assert_eq!(server_only[0].id, "c0");
    }

    #[test]
    fn bad_candidates_are_named_in_the_error() {
        let mut list = candidates(3, &[]);
        list[2].id = "c0".into();
        let error = validate(&list).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidCandidate);
        assert!(error.message().contains("candidate 2"), "{error}");

        let mut list = candidates(3, &[]);
        list[1].server_score = Some(f64::NAN);
        assert_eq!(validate(&list).unwrap_err().kind(), ErrorKind::InvalidCandidate);

        let too_many = candidates(MAX_CANDIDATES + 1, &[]);
        assert!(validate(&too_many[..MAX_CANDIDATES]).is_ok());
        let error = validate(&too_many).unwrap_err();
        assert_eq!(error.message(), "one rerank accepts at most 10000 candidates; send the top of the list");

        let error = RerankOptions { server_weight: 2.0, ..RerankOptions::default() }.validate().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption);
        let list = candidates(3, &[]);
        assert_eq!(arrange(&list, Some(&[1.0, f32::NAN, 0.0]), &RerankOptions::default()).unwrap_err().kind(), ErrorKind::Backend);
    }

    #[test]
    fn a_candidate_reads_only_from_an_object() {
        let list: Vec<Candidate> = serde_json::from_str(r#"[{"id":"a","serverScore":1.5,"extra":[1]}]"#).unwrap();
        assert_eq!((list[0].id.as_str(), list[0].server_score), ("a", Some(1.5)));
        let error = serde_json::from_str::<Vec<Candidate>>(r#"[{"id":"a"},["b"]]"#).unwrap_err().to_string();
        assert!(error.contains("expected an object like { id, title, ... }"), "{error}");
        assert!(serde_json::from_str::<Vec<Candidate>>(r#"[5]"#).is_err());
        assert_eq!(
            serde_json::to_value(&list[0]).unwrap(),
            serde_json::json!({ "id": "a", "title": "", "serverScore": 1.5, "pinned": false })
        );
    }

    #[test]
    fn empty_list_is_fine() {
        assert!(arrange(&[], None, &RerankOptions::default()).unwrap().is_empty());
    }
}

//! Batching dataset sequences for the network, the literature's full-ranking
//! metrics, the classification view and the reranking view. Native tools
//! only (training and evaluation).

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::Result;
use crate::dataset::{CatalogItem, Example};
use crate::model::{Affinity, EventKind, ItemText, SessionInput, SessionRanker, TextEncoder};

/// Token rows for every catalog item, in index order.
pub fn catalog_text(items: &[CatalogItem], text: &TextEncoder) -> Result<ItemText> {
    let rows: Vec<Vec<u32>> = items.iter().map(|item| text.encode(&item.text)).collect::<Result<_>>()?;
    Ok(ItemText::from_rows(&rows))
}

/// How catalog items map to ID-embedding rows: item `i` has row `i + 1`,
/// unless the model has no ID embeddings (text only) or the item was held
/// out of training (cold start), which give row 0.
#[derive(Debug, Clone)]
pub struct IdRows {
    rows: Vec<i64>,
}

impl IdRows {
    pub fn new(n_items: usize, with_ids: bool, held_out: &[u32]) -> IdRows {
        let mut rows: Vec<i64> = if with_ids { (1..=n_items as i64).collect() } else { vec![0; n_items] };
        for &item in held_out {
            if let Some(row) = rows.get_mut(item as usize) {
                *row = 0;
            }
        }
        IdRows { rows }
    }

    pub fn row(&self, item: u32) -> i64 {
        self.rows[item as usize]
    }

    pub fn all(&self) -> &[i64] {
        &self.rows
    }
}

/// Right-aligned sessions of catalog items. `kinds` gives each event's kind
/// and whether its ID is shown; evaluation treats every event as a
/// purchase with its ID.
pub fn session_input(histories: &[&[u32]], ids: &IdRows, kinds: &dyn Fn(usize, usize) -> (EventKind, bool)) -> (SessionInput, Vec<i64>) {
    let len = histories.iter().map(|h| h.len()).max().unwrap_or(1).max(1);
    let batch = histories.len();
    let mut input = SessionInput {
        batch,
        len,
        item_rows: vec![0; batch * len],
        kinds: vec![EventKind::Purchase.index() as i64; batch * len],
        padding: vec![true; batch * len],
    };
    // Item index per slot, for looking up text vectors (0 under padding).
    let mut items = vec![0i64; batch * len];
    for (b, history) in histories.iter().enumerate() {
        let offset = len - history.len();
        for (t, &item) in history.iter().enumerate() {
            let slot = b * len + offset + t;
            let (kind, with_id) = kinds(b, t);
            input.item_rows[slot] = if with_id { ids.row(item) } else { 0 };
            input.kinds[slot] = kind.index() as i64;
            input.padding[slot] = false;
            items[slot] = item as i64;
        }
    }
    (input, items)
}

/// Catalog item vectors `[n_items, dim]` from catalog text vectors `[n_items, dim]`.
pub fn catalog_vectors(model: &SessionRanker, text_vectors: Tensor<2>, ids: &IdRows, device: &Device) -> Tensor<2> {
    let [n, _] = text_vectors.dims();
    model.item_vectors(Tensor::<1, Int>::from_data(TensorData::new(ids.all().to_vec(), [n]), device), text_vectors)
}

/// Anything that scores every catalog item for a batch of histories.
pub trait Scorer {
    /// `[histories.len() * n_items]` scores, higher is better.
    fn score(&mut self, histories: &[&[u32]]) -> Result<Vec<f32>>;
}

/// The network as a [`Scorer`], with its catalog text vectors computed
/// once. Scores through the same two calls as the page's `Reranker`
/// ([`SessionRanker::session_states`], then
/// [`SessionRanker::score_candidate_vectors`]), with every catalog item a
/// candidate; a test checks the two agree on the shipped model.
pub struct ModelScorer<'a> {
    model: &'a SessionRanker,
    text_vectors: Tensor<2>,
    ids: IdRows,
    affinity: Affinity,
    device: Device,
}

impl<'a> ModelScorer<'a> {
    pub fn new(model: &'a SessionRanker, catalog: &ItemText, ids: IdRows, affinity: Affinity, device: &Device) -> ModelScorer<'a> {
        let text_vectors = model.text_vectors(catalog, device);
        ModelScorer { model, text_vectors, ids, affinity, device: device.clone() }
    }
}

impl Scorer for ModelScorer<'_> {
    fn score(&mut self, histories: &[&[u32]]) -> Result<Vec<f32>> {
        // Every history event is a catalog purchase here: its text vector is the catalog's.
        let (input, items) = session_input(histories, &self.ids, &|_, _| (EventKind::Purchase, true));
        let n = items.len();
        let events = self.text_vectors.clone().select(0, Tensor::<1, Int>::from_data(TensorData::new(items, [n]), &self.device));
        let state = self.model.session_states(&input, events, self.affinity, &self.device);
        let (scores, _) =
            self.model.score_candidate_vectors(&state, self.ids.all(), self.text_vectors.clone(), self.affinity, &self.device, false, None);
        crate::read_scores(scores.into_data())
    }
}

/// Ranking metrics averaged over users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RankingMetrics {
    #[serde(rename = "recall@10")]
    pub recall_10: f64,
    #[serde(rename = "recall@50")]
    pub recall_50: f64,
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    #[serde(rename = "ndcg@50")]
    pub ndcg_50: f64,
    pub mrr: f64,
    pub users: usize,
}

/// Accumulates metrics from the 0-based rank of each user's target.
#[derive(Debug, Default)]
pub struct MetricsAccumulator {
    sums: [f64; 5],
    users: usize,
}

impl MetricsAccumulator {
    pub fn add(&mut self, rank: usize) {
        let gain = 1.0 / ((rank as f64) + 2.0).log2();
        self.sums[0] += (rank < 10) as u8 as f64;
        self.sums[1] += (rank < 50) as u8 as f64;
        self.sums[2] += if rank < 10 { gain } else { 0.0 };
        self.sums[3] += if rank < 50 { gain } else { 0.0 };
        self.sums[4] += 1.0 / (rank as f64 + 1.0);
        self.users += 1;
    }

    pub fn finish(&self) -> RankingMetrics {
        let n = self.users.max(1) as f64;
        RankingMetrics {
            recall_10: self.sums[0] / n,
            recall_50: self.sums[1] / n,
            ndcg_10: self.sums[2] / n,
            ndcg_50: self.sums[3] / n,
            mrr: self.sums[4] / n,
            users: self.users,
        }
    }
}

/// The 0-based rank of `target` among all items by `scores`, after masking
/// the user's history (the RecBole full-sort protocol: items already in the
/// history are not recommended again). Ties count against the target.
pub fn target_rank(scores: &[f32], target: usize, history: &[u32]) -> usize {
    let masked = |i: usize| history.iter().any(|&h| h as usize == i);
    if masked(target) {
        return scores.len();
    }
    let t = scores[target];
    scores.iter().enumerate().filter(|&(i, &s)| i != target && s >= t && !masked(i)).count()
}

/// The most recent `max_events` items of each example's history.
pub fn histories(examples: &[Example], max_events: usize) -> Vec<&[u32]> {
    examples.iter().map(|e| &e.history[e.history.len().saturating_sub(max_events)..]).collect()
}

/// Full-ranking metrics of any scorer on `examples`; every catalog item
/// competes. `visit` sees each user's full score row (for the other views).
pub fn evaluate_with(
    scorer: &mut dyn Scorer,
    examples: &[Example],
    n_items: usize,
    max_events: usize,
    visit: &mut dyn FnMut(usize, &[f32]),
) -> Result<RankingMetrics> {
    let mut metrics = MetricsAccumulator::default();
    let all = histories(examples, max_events);
    for (chunk_index, chunk) in all.chunks(256).enumerate() {
        let scores = scorer.score(chunk)?;
        for (b, history) in chunk.iter().enumerate() {
            let user = chunk_index * 256 + b;
            let row = &scores[b * n_items..(b + 1) * n_items];
            metrics.add(target_rank(row, examples[user].target as usize, history));
            visit(user, row);
        }
    }
    Ok(metrics.finish())
}

/// Full-ranking metrics of the network on `examples`.
pub fn evaluate(
    model: &SessionRanker,
    catalog: &ItemText,
    ids: IdRows,
    examples: &[Example],
    max_events: usize,
    affinity: Affinity,
    device: &Device,
) -> Result<RankingMetrics> {
    let mut scorer = ModelScorer::new(model, catalog, ids, affinity, device);
    evaluate_with(&mut scorer, examples, catalog.n, max_events, &mut |_, _| {})
}

/// Pointwise relevance figures at a score threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Classification {
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub pairs: usize,
}

/// Accuracy, precision, recall and F1 of `score > threshold` on labelled pairs.
pub fn classify(pairs: &[(f32, bool)], threshold: f64) -> Classification {
    let (mut tp, mut fp, mut tn, mut fneg) = (0usize, 0usize, 0usize, 0usize);
    for &(score, positive) in pairs {
        match (score as f64 > threshold, positive) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Classification { threshold, accuracy: ratio(tp + tn, pairs.len()), precision, recall, f1, pairs: pairs.len() }
}

/// The threshold with the best F1 on `pairs` (the validation pairs).
pub fn best_threshold(pairs: &[(f32, bool)]) -> f64 {
    let mut sorted: Vec<(f32, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best) = (-1.0, f64::INFINITY);
    for (i, &(score, positive)) in sorted.iter().enumerate() {
        if positive {
            tp += 1;
        } else {
            fp += 1;
        }
        // Only cut between distinct scores.
        if sorted.get(i + 1).is_some_and(|next| next.0 == score) {
            continue;
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / positives.max(1) as f64;
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        if f1 > best_f1 {
            best_f1 = f1;
            let next = sorted.get(i + 1).map_or(score as f64 - 1.0, |n| n.0 as f64);
            best = (score as f64 + next) / 2.0;
        }
    }
    best
}

/// NDCG@10 of the target within one ordered list (0 when absent).
pub fn ndcg10_in_list(order: &[u32], target: u32) -> f64 {
    order.iter().take(10).position(|&i| i == target).map_or(0.0, |p| 1.0 / ((p as f64) + 2.0).log2())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_metrics_follow_the_definitions() {
        let scores = [0.1, 0.9, 0.5, 0.7];
        assert_eq!(target_rank(&scores, 2, &[]), 2);
        assert_eq!(target_rank(&scores, 2, &[1]), 1);
        assert_eq!(target_rank(&scores, 2, &[2]), 4);
        let mut acc = MetricsAccumulator::default();
        acc.add(0);
        acc.add(20);
        let m = acc.finish();
        assert_eq!(m.recall_10, 0.5);
        assert_eq!(m.recall_50, 1.0);
        assert!((m.ndcg_10 - 0.5).abs() < 1e-12);
        assert!((m.mrr - (1.0 + 1.0 / 21.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn classification_counts_and_threshold_choice() {
        let pairs = [(0.9, true), (0.8, false), (0.7, true), (0.1, false), (0.05, false)];
        let c = classify(&pairs, 0.5);
        assert_eq!((c.precision, c.recall), (2.0 / 3.0, 1.0));
        assert!((c.accuracy - 0.8).abs() < 1e-12);
        let t = best_threshold(&pairs);
        assert!(t > 0.1 && t < 0.7, "{t}");
        assert_eq!(ndcg10_in_list(&[5, 3, 9], 3), 1.0 / 3f64.log2());
        assert_eq!(ndcg10_in_list(&[5, 3, 9], 4), 0.0);
    }
}

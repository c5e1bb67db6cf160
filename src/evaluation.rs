//! Batching dataset sequences for the network, and the literature's
//! full-ranking metrics. Native tools only (training and evaluation).

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::dataset::{CatalogItem, Example};
use crate::model::{ItemText, SessionInput, SessionRanker, TextEncoder};
use crate::session::EventKind;
use crate::Result;

/// Token rows for every catalog item, in index order.
pub fn catalog_text(items: &[CatalogItem], text: &TextEncoder) -> Result<ItemText> {
    let rows: Vec<Vec<u32>> = items.iter().map(|item| text.encode(&item.text)).collect::<Result<_>>()?;
    Ok(ItemText::from_rows(&rows))
}

/// Right-aligned sessions of catalog items (item index `i` has ID row
/// `i + 1`). `kinds` gives each event's kind and whether its ID is shown;
/// evaluation treats every event as a purchase with its ID.
pub fn session_input(histories: &[&[u32]], kinds: &dyn Fn(usize, usize) -> (EventKind, bool)) -> (SessionInput, Vec<i64>) {
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
            input.item_rows[slot] = if with_id { item as i64 + 1 } else { 0 };
            input.kinds[slot] = kind.index() as i64;
            input.padding[slot] = false;
            items[slot] = item as i64;
        }
    }
    (input, items)
}

/// Catalog item vectors `[n_items, dim]` from precomputed catalog text
/// vectors `[n_items, dim]`.
pub fn catalog_vectors(model: &SessionRanker, text_vectors: Tensor<2>, device: &Device) -> Tensor<2> {
    let [n, _] = text_vectors.dims();
    let ids: Vec<i64> = (1..=n as i64).collect();
    model.item_vectors(Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), device), text_vectors)
}

/// Session states after each history's last event, `[batch, dim]`.
pub fn last_states(model: &SessionRanker, histories: &[&[u32]], catalog_text_vectors: Tensor<2>, device: &Device) -> Tensor<2> {
    let (input, items) = session_input(histories, &|_, _| (EventKind::Purchase, true));
    let n = items.len();
    let text = catalog_text_vectors.select(0, Tensor::<1, Int>::from_data(TensorData::new(items, [n]), device));
    let states = model.encode_session(&input, text, device); // [batch, len, dim]
    let dim = model.dim();
    states.slice([0..input.batch, input.len - 1..input.len, 0..dim]).reshape([input.batch, dim])
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

/// Full-ranking metrics of the network on `examples` (no sampling: every
/// catalog item competes).
pub fn evaluate(model: &SessionRanker, catalog: &ItemText, examples: &[Example], max_events: usize, device: &Device) -> Result<RankingMetrics> {
    let text_vectors = model.text_vectors(catalog, device);
    let items = catalog_vectors(model, text_vectors.clone(), device);
    let n_items = catalog.n;
    let mut metrics = MetricsAccumulator::default();
    for chunk in examples.chunks(256) {
        let histories: Vec<&[u32]> = chunk.iter().map(|e| &e.history[e.history.len().saturating_sub(max_events)..]).collect();
        let states = last_states(model, &histories, text_vectors.clone(), device);
        let scores = crate::read_scores(states.matmul(items.clone().transpose()).into_data())?; // [batch, n_items]
        for (b, example) in chunk.iter().enumerate() {
            metrics.add(target_rank(&scores[b * n_items..(b + 1) * n_items], example.target as usize, histories[b]));
        }
    }
    Ok(metrics.finish())
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
}

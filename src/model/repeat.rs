//! What the model does with candidates the shopper has already met: a
//! learned score offset by the kind and recency of the item's newest event
//! in the session. It is part of the model (stored in its configuration,
//! fitted on training sequences by `tune`), and the page and the evaluator
//! apply it through the same function, [`RepeatPrior::adjust`].
//!
//! On the Amazon data fewer than 1% of next items are already in the
//! history, so the fitted offsets are strongly negative: seen items sink,
//! which the page's shopper sees as "no item I already bought at the top".
//! Shops with surfaces where repeats are wanted ("buy it again") turn it
//! off per rerank (`repeats: 'allow'`).

use super::{EventKind, FastMap};

/// Recency buckets: events back from the newest (0 = the newest event).
/// 0, 1, 2, 3–4, 5–9, 10 and older.
pub const RECENCY_BUCKETS: usize = 6;

/// The bucket of an event `back` events before the newest.
pub fn recency_bucket(back: usize) -> usize {
    match back {
        0..=2 => back,
        3..=4 => 3,
        5..=9 => 4,
        _ => 5,
    }
}

/// Offsets added to the blended (standardised) score of a candidate that
/// is already in the history, `[kind][recency bucket]` (see
/// [`EventKind::index`], [`recency_bucket`]). Empty: no offsets (model
/// files written before the prior existed).
#[derive(Debug, Clone, Copy)]
pub struct RepeatPrior<'a> {
    table: &'a [f32],
}

impl<'a> RepeatPrior<'a> {
    pub const LEN: usize = EventKind::ALL.len() * RECENCY_BUCKETS;

    pub fn new(table: &'a [f32]) -> RepeatPrior<'a> {
        RepeatPrior { table }
    }

    /// No offsets: every candidate competes on its score alone.
    pub fn none() -> RepeatPrior<'static> {
        RepeatPrior { table: &[] }
    }

    /// The offset for an item whose newest event in the session has `kind`
    /// and lies `back` events before the newest event.
    pub fn offset(&self, kind: EventKind, back: usize) -> f32 {
        self.table.get(kind.index() * RECENCY_BUCKETS + recency_bucket(back)).copied().unwrap_or(0.0)
    }

    /// Adds the offsets to `scores` (one per candidate). `events` is the
    /// session, oldest first, as `(item, kind)` (`None` for events with no
    /// item, such as searches); `candidates` gives each score's item.
    /// Each candidate takes the offset of its item's newest event.
    pub fn adjust<K: Eq + std::hash::Hash>(
        &self,
        scores: &mut [f32],
        candidates: impl IntoIterator<Item = K>,
        events: &[(Option<K>, EventKind)],
    ) {
        if self.table.is_empty() || events.is_empty() {
            return;
        }
        let mut newest: FastMap<&K, (EventKind, usize)> = FastMap::with_capacity_and_hasher(events.len(), Default::default());
        for (back, (item, kind)) in events.iter().rev().enumerate() {
            if let Some(item) = item {
                newest.entry(item).or_insert((*kind, back));
            }
        }
        for (score, candidate) in scores.iter_mut().zip(candidates) {
            if let Some(&(kind, back)) = newest.get(&candidate) {
                *score += self.offset(kind, back);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_candidate_takes_the_offset_of_its_newest_event() {
        let mut table = vec![0.0; RepeatPrior::LEN];
        let at = |kind: EventKind, bucket: usize| kind.index() * RECENCY_BUCKETS + bucket;
        table[at(EventKind::View, 0)] = -1.0;
        table[at(EventKind::Purchase, 2)] = -5.0;
        table[at(EventKind::View, 5)] = -0.5;
        let prior = RepeatPrior::new(&table);
        // Oldest first: a viewed 12 events back, nine others, c bought 2 back, a query, b viewed last.
        let mut events: Vec<(Option<&str>, EventKind)> = vec![(Some("a"), EventKind::View)];
        events.extend(std::iter::repeat_n((Some("x"), EventKind::View), 9));
        events.push((Some("c"), EventKind::Purchase));
        events.push((None, EventKind::Search));
        events.push((Some("b"), EventKind::View));
        let mut scores = vec![1.0, 1.0, 1.0, 1.0];
        prior.adjust(&mut scores, ["a", "b", "c", "new"], &events);
        assert_eq!(scores, vec![0.5, 0.0, -4.0, 1.0]);
        // No table, no change.
        let mut same = vec![1.0, 2.0];
        RepeatPrior::none().adjust(&mut same, ["a", "b"], &events);
        assert_eq!(same, vec![1.0, 2.0]);
        assert_eq!((recency_bucket(4), recency_bucket(9), recency_bucket(10), recency_bucket(49)), (3, 4, 5, 5));
    }
}

//! A session as plain numbers: what both the host network and the burn
//! module read.

use super::EventKind;

/// Sessions as plain numbers, ready to become tensors. Sequences are
/// right-aligned: the newest event is the last column, padding comes first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionInput {
    pub batch: usize,
    pub len: usize,
    /// `[batch * len]` ID rows (0 for search queries, unknown items, padding).
    pub item_rows: Vec<i64>,
    /// `[batch * len]` event kinds.
    pub kinds: Vec<i64>,
    /// `[batch * len]` true where there is no event.
    pub padding: Vec<bool>,
}

impl SessionInput {
    /// Each event's weight in its session's affinity profile, `[batch *
    /// len]`: its kind's weight (`kinds`, by [`EventKind::index`]) times
    /// `decay` per newer event; 0 under padding.
    pub fn affinity_weights(&self, decay: f32, kinds: &[f32; EventKind::ALL.len()]) -> Vec<f32> {
        let mut weights = vec![0.0; self.batch * self.len];
        for b in 0..self.batch {
            let mut scale = 1.0;
            for t in (0..self.len).rev() {
                let slot = b * self.len + t;
                if self.padding[slot] {
                    continue;
                }
                let kind = EventKind::ALL.get(self.kinds[slot] as usize).copied().unwrap_or(EventKind::View);
                weights[slot] = kinds[kind.index()] * scale;
                scale *= decay;
            }
        }
        weights
    }
}

//! Event kinds: part of the model, since each indexes a row of the
//! event-type embedding.

use serde::{Deserialize, Serialize};

/// The kinds of shopper behaviour the ranker understands. The order is part
/// of the model file: it indexes the event-type embedding, and each kind
/// weighs its events in the affinity profile. (`session` re-exports it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    View,
    Click,
    AddToCart,
    Purchase,
    Search,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [EventKind::View, EventKind::Click, EventKind::AddToCart, EventKind::Purchase, EventKind::Search];

    /// How much an event of this kind counts in the history-affinity
    /// profile. A product choice, not learnt: the training data (reviews)
    /// has one kind only. Carting and buying say more than looking; a query
    /// has no item vector of its own, only its text.
    pub fn affinity_weight(self) -> f32 {
        match self {
            EventKind::View | EventKind::Click => 1.0,
            EventKind::AddToCart | EventKind::Purchase => 2.0,
            EventKind::Search => 0.5,
        }
    }

    /// The kind's name as the page and the shop's files spell it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::Click => "click",
            EventKind::AddToCart => "add_to_cart",
            EventKind::Purchase => "purchase",
            EventKind::Search => "search",
        }
    }

    /// Row of this kind in the model's event-type embedding.
    pub fn index(self) -> usize {
        self as usize
    }
}

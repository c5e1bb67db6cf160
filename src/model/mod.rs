//! The ranking network: a SASRec-style causal transformer over the shopper's
//! session, with text-aware item vectors.
//!
//! Pure burn, generic over the backend through the `Device` it is built on;
//! it never imports wasm bindings and never touches the DOM, the network or
//! the clock. Training and in-page scoring call the same methods.
//!
//! Deviations from SASRec (Kang & McAuley, ICDM 2018), each on purpose:
//! - an item vector is an ID embedding *plus* a text vector (the mean of the
//!   item text's token embeddings under the attention mask, then a linear
//!   map), so items the catalog never saw still get a vector from their text;
//!   ID row 0 stands for "not in the catalog" (and for search queries);
//! - every event also carries an event-type embedding (view, click,
//!   add-to-cart, purchase, search);
//! - positions count back from the most recent event, so the newest event
//!   always has position 0 whatever the session's length;
//! - the score is the dot product of the session state with the candidate's
//!   item vector, like SASRec's shared item embedding.

mod accents;
mod event;
mod file;
mod host;
mod input;
#[cfg(feature = "device")]
mod network;
mod repeat;
pub mod text;
pub mod wordpiece;

pub use event::EventKind;
pub use file::{FORMAT_VERSION, Int8Rows, MAGIC, ModelFile, StoredAs, TensorEntry, sha256_hex};
pub use host::{HostNetwork, HostState};
pub use input::SessionInput;
#[cfg(feature = "device")]
pub use network::{SessionRanker, SessionState, unit};
pub use repeat::{RECENCY_BUCKETS, RepeatPrior, recency_bucket};
pub use text::{ItemText, TextEncoder, TokenTable};
pub(crate) use wordpiece::{FastMap, FastSet};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result, err};

/// Everything that shapes the network. Stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankerConfig {
    /// Catalog items with an ID embedding (row 0 is "unknown item").
    pub n_items: usize,
    /// Kept tokenizer vocabulary (row 0 is "unknown token").
    pub n_tokens: usize,
    /// Width of every vector.
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    /// Hidden width of each feed-forward block.
    pub ff_dim: usize,
    /// Most recent events the encoder reads.
    pub max_events: usize,
    /// Most tokens read from an item's text or a query.
    pub max_text_tokens: usize,
    /// Dropout during training.
    pub dropout: f64,
    /// Weight of the history-affinity term added to the transformer's
    /// score (both standardised over the candidates): the cosine between
    /// each candidate's text vector and a recency- and kind-weighted
    /// profile of the history's text vectors. The text tower is distilled
    /// from MiniLM, so this says "like what you looked at"; the
    /// transformer says "what tends to come next". Chosen on validation
    /// NDCG@10 (`eval --affinity-weight W --affinity-decay D`) over
    /// weights 0.35–1.5 and decays 0.5–0.9; the default applies to model
    /// files written before the term existed.
    #[serde(default = "default_affinity_weight")]
    pub affinity_weight: f32,
    /// Per-event decay of that profile, newest event first.
    #[serde(default = "default_affinity_decay")]
    pub affinity_decay: f32,
    /// Learned offsets for candidates already in the session, by the kind
    /// and recency of their newest event (see [`RepeatPrior`]),
    /// `[kinds × recency buckets]`; empty in files written before it.
    /// Fitted on training sequences by `tune`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeat_prior: Vec<f32>,
    /// What each event kind counts in the affinity profile, by
    /// [`EventKind::index`]; empty: the package's weights
    /// ([`EventKind::affinity_weight`], learned on two real typed logs). A
    /// shop's model carries its own, learned from its log by `kind-weights
    /// --write`, and the page uses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind_weights: Vec<f32>,
}

/// The history-affinity settings of a [`RankerConfig`], for scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affinity {
    pub weight: f32,
    pub decay: f32,
    /// Each kind's weight in the profile, by [`EventKind::index`].
    pub kinds: [f32; EventKind::ALL.len()],
}

impl Affinity {
    /// The package's kind weights ([`EventKind::affinity_weight`]).
    pub const PACKAGE_KINDS: [f32; EventKind::ALL.len()] = [
        EventKind::ALL[0].affinity_weight(),
        EventKind::ALL[1].affinity_weight(),
        EventKind::ALL[2].affinity_weight(),
        EventKind::ALL[3].affinity_weight(),
        EventKind::ALL[4].affinity_weight(),
    ];
}

impl RankerConfig {
    pub fn affinity(&self) -> Affinity {
        let kinds = <[f32; EventKind::ALL.len()]>::try_from(self.kind_weights.as_slice()).unwrap_or(Affinity::PACKAGE_KINDS);
        Affinity { weight: self.affinity_weight, decay: self.affinity_decay, kinds }
    }

    pub fn repeat_prior(&self) -> RepeatPrior<'_> {
        RepeatPrior::new(&self.repeat_prior)
    }
}

fn default_affinity_weight() -> f32 {
    0.75
}

fn default_affinity_decay() -> f32 {
    0.7
}

impl RankerConfig {
    /// The defaults: 2 layers, 2 heads, width 64, 50 events.
    pub fn new(n_items: usize, n_tokens: usize) -> Self {
        RankerConfig {
            n_items,
            n_tokens,
            dim: 64,
            layers: 2,
            heads: 2,
            ff_dim: 128,
            max_events: 50,
            max_text_tokens: 48,
            dropout: 0.2,
            affinity_weight: default_affinity_weight(),
            affinity_decay: default_affinity_decay(),
            repeat_prior: Vec::new(),
            kind_weights: Vec::new(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let in_range = |v: usize, lo: usize, hi: usize| (lo..=hi).contains(&v);
        if !(in_range(self.dim, 4, 1024)
            && in_range(self.layers, 1, 16)
            && in_range(self.heads, 1, 64)
            && self.dim.is_multiple_of(self.heads)
            && in_range(self.ff_dim, 1, 8192)
            && in_range(self.max_events, 1, 1024)
            && in_range(self.max_text_tokens, 1, 512)
            && self.n_items <= 10_000_000
            && self.n_tokens <= 1_000_000
            && (0.0..1.0).contains(&self.dropout)
            && (0.0..=100.0).contains(&self.affinity_weight)
            && self.affinity_decay > 0.0
            && self.affinity_decay <= 1.0
            && (self.repeat_prior.is_empty() || self.repeat_prior.len() == RepeatPrior::LEN)
            && self.repeat_prior.iter().all(|v| v.is_finite() && v.abs() <= 100.0)
            && (self.kind_weights.is_empty() || self.kind_weights.len() == EventKind::ALL.len())
            && self.kind_weights.iter().all(|v| v.is_finite() && (0.0..=100.0).contains(v)))
        {
            return err(ErrorKind::ModelFile, format!("the model configuration is out of range: {self:?}"));
        }
        Ok(())
    }
}

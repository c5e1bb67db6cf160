//! The burn module and its forward pass. Shapes are noted as `[batch, seq, dim]`.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, generate_autoregressive_mask};
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::{Affinity, EventKind, ItemText, RankerConfig, SessionInput};

/// The ranking network. Build it with [`RankerConfig::init`].
#[derive(Module, Debug)]
pub struct SessionRanker {
    /// `[n_items + 1, dim]`; row 0 = not a catalog item.
    item_ids: Embedding,
    /// `[n_tokens + 1, dim]`; row 0 = unknown token.
    tokens: Embedding,
    text_proj: Linear,
    /// Learned per-token offsets added to the projected mean, `[n_tokens +
    /// 1, dim]`: only while training over a fixed table
    /// ([`RankerConfig::init_with_tokens`]); folded into the token rows for
    /// the file, so files never have it.
    token_offsets: Option<Embedding>,
    /// Fixed per-item features with a learned map into the ID space
    /// ([`SessionRanker::with_item_features`]): only while training;
    /// folded into `item_ids` for the file
    /// ([`SessionRanker::fold_item_features`]), so files never have it.
    item_features: Option<ItemFeatures>,
    /// `[5, dim]`, indexed by [`EventKind::index`].
    event_kinds: Embedding,
    /// `[max_events, dim]`; row 0 is the newest event.
    positions: Embedding,
    encoder: TransformerEncoder,
    norm: LayerNorm,
    dropout: Dropout,
    dim: usize,
}

impl RankerConfig {
    /// A freshly initialised network on `device`.
    pub fn init(&self, device: &Device) -> SessionRanker {
        // Small embeddings (as in SASRec/BERT) keep the first logits near
        // zero, so training starts from a near-uniform softmax.
        let small = Initializer::Normal { mean: 0.0, std: 0.02 };
        let embedding = |rows: usize| EmbeddingConfig::new(rows, self.dim).with_initializer(small.clone()).init(device);
        SessionRanker {
            item_ids: embedding(self.n_items + 1),
            tokens: embedding(self.n_tokens + 1),
            text_proj: LinearConfig::new(self.dim, self.dim).init(device),
            token_offsets: None,
            item_features: None,
            event_kinds: embedding(EventKind::ALL.len()),
            positions: embedding(self.max_events),
            encoder: TransformerEncoderConfig::new(self.dim, self.ff_dim, self.heads, self.layers)
                .with_dropout(self.dropout)
                .with_norm_first(true)
                .init(device),
            norm: LayerNormConfig::new(self.dim).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            dim: self.dim,
        }
    }
}

impl RankerConfig {
    /// A network whose token table is given and stays fixed in training
    /// (`[n_tokens + 1, width]`, any width: a pretrained model's word
    /// embeddings), with a learned `width → dim` text projection. Every
    /// word shares that one projection, so a word training never saw is
    /// mapped as the words it did see: the text tower of a model meant for
    /// any catalog. [`SessionRanker::fold_tokens`] turns it back into the
    /// usual layout for the file.
    ///
    /// With `offsets`, each token also gets a learned offset (from zero)
    /// added after the projection: words training reads can specialise,
    /// and a word it never read keeps the shared mapping alone.
    pub fn init_with_tokens(&self, table: Tensor<2>, offsets: bool, device: &Device) -> SessionRanker {
        let [rows, width] = table.dims();
        let mut model = self.init(device);
        model.tokens = Embedding { weight: Param::from_tensor(table).set_require_grad(false) };
        model.text_proj = LinearConfig::new(width, self.dim).init(device);
        if offsets {
            model.token_offsets = Some(EmbeddingConfig::new(rows, self.dim).with_initializer(Initializer::Zeros).init(device));
        }
        model
    }
}

/// A fixed feature row per ID row (`table`, `[n_items + 1, width]`, row 0
/// zero) and a learned linear map (no bias) into the ID space: every item's
/// ID vector starts from its features (a pretrained model's sentence
/// embedding of its text), so an item with few events is placed by what it
/// is, and the learned ID row adds what the events say.
#[derive(Module, Debug)]
pub struct ItemFeatures {
    table: Embedding,
    map: Linear,
}

/// Sessions' encoder output and affinity profiles (see
/// [`SessionRanker::session_states`]), `batch` rows each.
#[derive(Debug, Clone)]
pub struct SessionState {
    /// `[batch, dim]`: the encoder's state after each session's newest event.
    pub state: Tensor<2>,
    /// `[batch, dim]`: the unit-length affinity profiles.
    pub profile: Tensor<2>,
    /// `[batch * len, dim]`: each event's unit text vector (for explanations).
    pub event_units: Tensor<2>,
    /// `[batch, len]`: ln of each event's affinity weight.
    pub log_weights: Tensor<2>,
}

/// Rows scaled to unit length (zero rows stay zero).
pub fn unit<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = (x.clone() * x.clone()).sum_dim(D - 1).sqrt().clamp_min(1e-6);
    x / norm
}

/// Each row standardised to mean 0, standard deviation 1.
fn standardise(x: Tensor<2>) -> Tensor<2> {
    let centred = x.clone() - x.mean_dim(1);
    let std = (centred.clone() * centred.clone()).mean_dim(1).sqrt().clamp_min(1e-6);
    centred / std
}

/// [`standardise`] over the columns where `mask` (`[1, n]`) is 1, the first
/// `count` of them; masked columns come out 0.
fn standardise_masked(x: Tensor<2>, mask: Tensor<2>, count: usize) -> Tensor<2> {
    let count = count.max(1) as f64;
    let mean = (x.clone() * mask.clone()).sum_dim(1) / count;
    let centred = (x - mean) * mask;
    let std = ((centred.clone() * centred.clone()).sum_dim(1) / count).sqrt().clamp_min(1e-6);
    centred / std
}

/// Log weight of a padding event: no share of any explanation.
const PADDING_LOG_WEIGHT: f32 = -1e9;

impl SessionRanker {
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Text vectors: masked mean of token embeddings, then a linear map.
    /// `[n, dim]`
    pub fn text_vectors(&self, text: &ItemText, device: &Device) -> Tensor<2> {
        let rows = Tensor::<2, Int>::from_data(TensorData::new(text.rows.clone(), [text.n, text.len]), device);
        let mask = Tensor::<2>::from_data(TensorData::new(text.mask.clone(), [text.n, text.len]), device);
        let embedded = self.tokens.forward(rows.clone()); // [n, len, width]
        let width = self.tokens.weight.dims()[1];
        let summed = (embedded * mask.clone().unsqueeze_dim::<3>(2)).sum_dim(1).reshape([text.n, width]); // [n, width]
        let count = mask.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
        let projected = self.project_text(summed / count.clone());
        match &self.token_offsets {
            None => projected,
            Some(offsets) => {
                let offset = (offsets.forward(rows) * mask.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([text.n, self.dim]);
                projected + offset / count
            }
        }
    }

    /// The learned per-token offsets, `[n_tokens + 1, dim]`, when the
    /// network has them (see [`RankerConfig::init_with_tokens`]).
    pub fn token_offsets(&self) -> Option<Tensor<2>> {
        self.token_offsets.as_ref().map(|o| o.weight.val())
    }

    /// The text tower's second step: mean token embeddings `[n, dim]` (from
    /// [`super::TokenTable`] on the host, or the masked mean above) → text
    /// vectors `[n, dim]`.
    pub fn project_text(&self, means: Tensor<2>) -> Tensor<2> {
        self.text_proj.forward(means)
    }

    /// The network with a fixed wide token table (see
    /// [`RankerConfig::init_with_tokens`]) folded into the usual layout:
    /// the token rows become `table · W` (`table` is `[rows, width]`, row 0
    /// the unknown token; it may cover more of the tokenizer than training
    /// read, down to the whole vocabulary) and the projection becomes the
    /// identity plus the learned bias. A mean of rows then a linear map
    /// equals a mean of mapped rows, so text vectors are unchanged for
    /// every text, and the file, the host and the page need nothing new.
    ///
    /// `offsets` (`[rows, dim]`, the same rows as `table`) are the learned
    /// offsets laid out for that vocabulary (zero for words training never
    /// read); required when the network has offsets.
    pub fn fold_tokens(mut self, table: Tensor<2>, offsets: Option<Tensor<2>>) -> SessionRanker {
        let device = table.device();
        let weight = self.text_proj.weight.val();
        let [width, dim] = weight.dims();
        assert_eq!(table.dims()[1], width, "the table's width is the projection's input");
        assert_eq!(offsets.is_some(), self.token_offsets.is_some(), "offsets are folded when the network has them");
        let rows = match offsets {
            Some(offsets) => table.matmul(weight) + offsets,
            None => table.matmul(weight),
        };
        self.tokens = Embedding { weight: Param::from_tensor(rows) };
        self.token_offsets = None;
        let mut identity = vec![0.0f32; dim * dim];
        for i in 0..dim {
            identity[i * dim + i] = 1.0;
        }
        self.text_proj.weight = Param::from_tensor(Tensor::from_data(TensorData::new(identity, [dim, dim]), &device));
        self
    }

    /// Item vectors: ID embedding (plus mapped item features, in training
    /// with [`SessionRanker::with_item_features`]) plus text vector. `[n, dim]`
    pub fn item_vectors(&self, id_rows: Tensor<1, Int>, text_vectors: Tensor<2>) -> Tensor<2> {
        let [n] = id_rows.dims();
        let rows = id_rows.reshape([1, n]);
        let ids = self.item_ids.forward(rows.clone()).reshape([n, self.dim]);
        match &self.item_features {
            None => ids + text_vectors,
            Some(features) => {
                let width = features.table.weight.dims()[1];
                ids + features.map.forward(features.table.forward(rows).reshape([n, width])) + text_vectors
            }
        }
    }

    /// The network with fixed item features (`table`, `[n_items + 1,
    /// width]`, one row per ID row, row 0 zero) and a learned map from them
    /// into the ID space, added to each item's ID row in training. The ID
    /// rows then learn what the events say beyond the features.
    pub fn with_item_features(mut self, table: Tensor<2>, device: &Device) -> SessionRanker {
        let [rows, width] = table.dims();
        assert_eq!(rows, self.item_ids.weight.dims()[0], "one feature row per ID row");
        self.item_features = Some(ItemFeatures {
            table: Embedding { weight: Param::from_tensor(table).set_require_grad(false) },
            map: LinearConfig::new(width, self.dim).with_bias(false).init(device),
        });
        self
    }

    /// The network with its ID rows fixed at zero (not trained), so that
    /// with item features each item's ID vector is its mapped features
    /// alone: no row depends on a catalog's events.
    pub fn without_learned_id_rows(mut self) -> SessionRanker {
        let zeros = self.item_ids.weight.val().zeros_like();
        self.item_ids = Embedding { weight: Param::from_tensor(zeros).set_require_grad(false) };
        self
    }

    /// The network with its item features (if any) folded into the ID
    /// table: each row becomes its learned part plus `features · map`, so
    /// item vectors are unchanged and the file, the host and the page need
    /// nothing new. `untrained_rows` (items held out of training) keep only
    /// the mapped features: their learned part never saw an event.
    pub fn fold_item_features(mut self, untrained_rows: &[i64]) -> SessionRanker {
        let Some(features) = self.item_features.take() else { return self };
        let learned = self.item_ids.weight.val();
        let device = learned.device();
        let [rows, _] = learned.dims();
        let mut keep = vec![1.0f32; rows];
        for &row in untrained_rows {
            keep[row as usize] = 0.0;
        }
        let keep = Tensor::<2>::from_data(TensorData::new(keep, [rows, 1]), &device);
        let mapped = features.map.forward(features.table.weight.val());
        self.item_ids = Embedding { weight: Param::from_tensor(learned * keep + mapped) };
        self
    }

    /// The session encoder shared by training and scoring: event vectors
    /// `[batch, seq, dim]` → session states `[batch, seq, dim]`, where state
    /// `t` has seen events `..=t` only.
    pub fn encode(&self, events: Tensor<3>, kinds: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let (x, present, causal) = self.encoder_input(events, kinds, padding.clone());
        let x = self.encoder.forward(TransformerEncoderInput::new(x).mask_pad(padding).mask_attn(causal));
        self.norm.forward(x) * present
    }

    /// What the encoder layers read: event vectors scaled, plus kind and
    /// recency embeddings, zero under padding; with the padding as a
    /// `[batch, seq, 1]` 0/1 factor and the causal mask.
    fn encoder_input(&self, events: Tensor<3>, kinds: Tensor<2, Int>, padding: Tensor<2, Bool>) -> (Tensor<3>, Tensor<3>, Tensor<3, Bool>) {
        let [batch, seq, dim] = events.dims();
        let device = events.device();
        let recency: Vec<i64> = (0..seq).rev().map(|p| p as i64).collect();
        let positions = self.positions.forward(Tensor::<2, Int>::from_data(TensorData::new(recency, [1, seq]), &device)); // [1, seq, dim]
        let present = padding.bool_not().float().reshape([batch, seq, 1]); // [batch, seq, 1]
        let x = events * (dim as f64).sqrt() + self.event_kinds.forward(kinds) + positions;
        let x = self.dropout.forward(x) * present.clone();
        (x, present, generate_autoregressive_mask(batch, seq, &device))
    }

    /// [`SessionRanker::encode`]'s state after each session's newest event
    /// (the last column, which must not be padding), `[batch, dim]`, for a
    /// fraction of the work: scoring reads no other state, so the last
    /// layer runs its query, feed-forward and norm for that one position
    /// (its keys and values still cover every event). The same numbers, to
    /// float rounding; a test holds it to `encode`.
    pub fn encode_last(&self, events: Tensor<3>, kinds: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<2> {
        let [batch, seq, dim] = events.dims();
        let newest = |x: Tensor<3>| x.slice([0..batch, seq - 1..seq, 0..dim]);
        let Some((last, earlier)) = self.encoder.layers.split_last().filter(|(last, _)| last.norm_first) else {
            return newest(self.encode(events, kinds, padding)).reshape([batch, dim]);
        };
        let (mut x, _, causal) = self.encoder_input(events, kinds, padding.clone());
        for layer in earlier {
            x = layer.forward(x, Some(padding.clone()), Some(causal.clone()));
        }
        // The last layer (pre-norm) for the newest position; it attends to
        // every event, so no causal mask is needed.
        let normed = last.norm_2.forward(x.clone());
        let attention = last.mha.forward(MhaInput::new(newest(normed.clone()), normed.clone(), normed).mask_pad(padding)).context;
        let x = newest(x) + last.dropout.forward(attention); // [batch, 1, dim]
        let x = x.clone() + last.dropout.forward(last.pwff.forward(last.norm_1.forward(x)));
        self.norm.forward(x).reshape([batch, dim])
    }

    /// Event vectors for a [`SessionInput`] whose text vectors are given,
    /// `[batch * len, dim]` → `[batch, len, dim]`, then encoded.
    pub fn encode_session(&self, session: &SessionInput, text_vectors: Tensor<2>, device: &Device) -> Tensor<3> {
        let (batch, len) = (session.batch, session.len);
        let ids = Tensor::<1, Int>::from_data(TensorData::new(session.item_rows.clone(), [batch * len]), device);
        let events = self.item_vectors(ids, text_vectors).reshape([batch, len, self.dim]);
        let kinds = Tensor::<2, Int>::from_data(TensorData::new(session.kinds.clone(), [batch, len]), device);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(session.padding.clone(), [batch, len]), device);
        self.encode(events, kinds, padding)
    }

    /// Scores candidates for one session (`batch == 1`, no padding).
    /// `text` holds the session's events first, then the candidates.
    /// Returns `[n_candidates]` scores, higher is better: the transformer's
    /// next-item score blended with the history affinity ([`SessionRanker::blend`]).
    pub fn score(&self, session: &SessionInput, candidate_rows: &[i64], text: &ItemText, affinity: Affinity, device: &Device) -> Tensor<1> {
        self.score_explained(session, candidate_rows, text, affinity, device, false).0
    }

    /// [`SessionRanker::score`], plus, when `explain` is set, each
    /// candidate's attention over the session's events, `[n, len]`: how
    /// much each event contributes to the candidate's affinity term. The
    /// event a candidate attends to most is the recent, strong event it is
    /// most like. (`session_state` then `score_candidates`.)
    pub fn score_explained(
        &self,
        session: &SessionInput,
        candidate_rows: &[i64],
        text: &ItemText,
        affinity: Affinity,
        device: &Device,
        explain: bool,
    ) -> (Tensor<1>, Option<Tensor<2>>) {
        let events = session.batch * session.len;
        let (event_text, candidate_text) = text.split_at(events);
        let state = self.session_state(session, &event_text, affinity, device);
        self.score_candidates(&state, candidate_rows, &candidate_text, affinity, device, explain)
    }

    /// Everything about one session (`batch == 1`) that scoring needs,
    /// from the events' token rows: [`SessionRanker::session_states`] after
    /// the text tower.
    pub fn session_state(&self, session: &SessionInput, event_text: &ItemText, affinity: Affinity, device: &Device) -> SessionState {
        let event_text = self.text_vectors(event_text, device); // [events, dim]
        self.session_states(session, event_text, affinity, device)
    }

    /// The one way a session state is built, for the page (one session,
    /// cached between reranks) and for evaluation (a batch of sessions):
    /// the encoder's state after each session's newest event and its
    /// affinity profile, the weighted sum of its events' unit text vectors.
    /// `event_text` holds each event's text vector, `[batch * len, dim]`
    /// (padding rows are ignored).
    pub fn session_states(&self, session: &SessionInput, event_text: Tensor<2>, affinity: Affinity, device: &Device) -> SessionState {
        let (batch, len) = (session.batch, session.len);
        let events = batch * len;
        let event_ids = Tensor::<1, Int>::from_data(TensorData::new(session.item_rows.clone(), [events]), device);
        let event_vectors = self.item_vectors(event_ids, event_text.clone()); // [events, dim]
        let kinds = Tensor::<2, Int>::from_data(TensorData::new(session.kinds.clone(), [batch, len]), device);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(session.padding.clone(), [batch, len]), device);
        let state = self.encode_last(event_vectors.reshape([batch, len, self.dim]), kinds, padding); // [batch, dim]
        let weights = session.affinity_weights(affinity.decay, &affinity.kinds);
        let log_weights: Vec<f32> =
            weights.iter().zip(&session.padding).map(|(w, &pad)| if pad { PADDING_LOG_WEIGHT } else { w.max(1e-6).ln() }).collect();
        let log_weights = Tensor::<1>::from_data(TensorData::new(log_weights, [events]), device).reshape([batch, len]);
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [batch, len]), device);
        let event_units = unit(event_text);
        let profile = unit(
            (event_units.clone().reshape([batch, len, self.dim]) * weights.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([batch, self.dim]),
        );
        SessionState { state, profile, event_units, log_weights }
    }

    /// Scores candidates against a [`SessionState`] (`batch == 1`): the
    /// transformer's score blended with the affinity, `[n]`; with
    /// `explain`, each event's share of each candidate's affinity,
    /// `[n, events]`: `softmax_t(cos(text_c, text_t) / 0.1 + ln weight_t)`.
    pub fn score_candidates(
        &self,
        session: &SessionState,
        candidate_rows: &[i64],
        candidate_text: &ItemText,
        affinity: Affinity,
        device: &Device,
        explain: bool,
    ) -> (Tensor<1>, Option<Tensor<2>>) {
        let text_vectors = self.text_vectors(candidate_text, device); // [n, dim]
        let (scores, attention) = self.score_candidate_vectors(session, candidate_rows, text_vectors, affinity, device, explain, None);
        (scores.reshape([candidate_rows.len()]), attention)
    }

    /// The one way candidates are scored, for the page and for evaluation:
    /// each session's state against the candidates' item vectors (ID row
    /// plus `candidate_text`, their text vectors `[n, dim]`), blended with
    /// the affinity of their unit text vectors to the session's profile,
    /// each standardised over the candidates. `[batch, n]`, higher is
    /// better. With `real: Some(k)` only the first `k` candidates are real
    /// and the rest padding (a fixed shape for backends that compile
    /// kernels per shape): the standardisation ignores the padding, so the
    /// first `k` scores equal those of an unpadded call. `explain` (one
    /// session only) also returns each event's share of each candidate's
    /// affinity, `[n, events]`.
    #[allow(clippy::too_many_arguments)]
    pub fn score_candidate_vectors(
        &self,
        session: &SessionState,
        candidate_rows: &[i64],
        candidate_text: Tensor<2>,
        affinity: Affinity,
        device: &Device,
        explain: bool,
        real: Option<usize>,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        let n = candidate_rows.len();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(candidate_rows.to_vec(), [n]), device);
        let candidates = self.item_vectors(ids, candidate_text.clone()); // [n, dim]
        let candidate_units = unit(candidate_text);
        let [batch, _] = session.state.dims();
        let attention = (explain && batch == 1).then(|| {
            let cosine = candidate_units.clone().matmul(session.event_units.clone().transpose()); // [n, events]
            softmax(cosine * 10.0 + session.log_weights.clone(), 1)
        });
        let near = session.profile.clone().matmul(candidate_units.transpose()); // [batch, n]
        let model = session.state.clone().matmul(candidates.transpose()); // [batch, n]
        let scores = match real {
            None => standardise(model) + standardise(near) * affinity.weight as f64,
            Some(real) => {
                let mask: Vec<f32> = (0..n).map(|i| if i < real { 1.0 } else { 0.0 }).collect();
                let mask = Tensor::<2>::from_data(TensorData::new(mask, [1, n]), device);
                standardise_masked(model, mask.clone(), real) + standardise_masked(near, mask, real) * affinity.weight as f64
            }
        };
        (scores, attention)
    }
}

//! The reranker a page holds: a loaded model, its tokenizer and catalog, and
//! the shopper's history. Plain Rust over `model/`, `session` and `rank`;
//! the wasm layer wraps it and does the one async step (reading scores back
//! from the device).

use std::borrow::Cow;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{ErrorKind, Result, err};
use crate::model::{EventKind, FastSet};
use crate::model::{FastMap, ItemText, ModelFile, RankerConfig, SessionInput, SessionRanker, SessionState, TextEncoder, TokenTable};
use crate::rank::{Candidate, HistoryReason, RankedItem, Repeats, RerankOptions, arrange, validate};
use crate::session::{History, HistoryLimits, SessionEvent};

/// Token rows cached per text, so a list reranked again is not
/// re-tokenized. Cleared whole when full: simple and bounded.
const TEXT_CACHE_ENTRIES: usize = 20_000;

/// Candidate text vectors kept on the device between reranks (64 floats
/// each); the cache starts over when full.
const TEXT_VECTOR_ROWS: usize = 16_384;

/// Shape of the benchmark inference (also run at load).
const WARM_UP_EVENTS: usize = 20;
const WARM_UP_CANDIDATES: usize = 100;

/// With fixed shapes (see [`Reranker::set_fixed_shapes`]): new candidate
/// texts are embedded this many rows at a time, candidate lists are padded
/// to a power of two from `FIRST_CANDIDATE_BUCKET`, and the warm-up covers
/// every bucket up to `WARM_CANDIDATE_BUCKETS`.
const TEXT_CHUNK: usize = 256;
const FIRST_CANDIDATE_BUCKET: usize = 64;
const WARM_CANDIDATE_BUCKETS: usize = 1024;

pub struct Reranker {
    model: SessionRanker,
    config: RankerConfig,
    device: Device,
    text: TextEncoder,
    /// The text tower's token table, on the host (see [`TokenTable`]).
    token_table: TokenTable,
    catalog: FastMap<String, i64>,
    history: History,
    text_cache: FastMap<String, Vec<u32>>,
    /// The session state for the history at a version: reused until the
    /// history changes.
    session_cache: Option<CachedSession>,
    /// Candidate text vectors, `[TEXT_VECTOR_ROWS, dim]`, and which row
    /// holds which text: a list reranked again is not re-embedded.
    text_vectors: Option<Tensor<2>>,
    text_rows: FastMap<String, usize>,
    /// The next free row of `text_vectors`.
    next_text_row: usize,
    /// Pad every tensor to a few fixed shapes (backends that compile
    /// kernels per shape).
    fixed_shapes: bool,
    meta: serde_json::Value,
}

struct CachedSession {
    version: u64,
    state: SessionState,
    events: Vec<SessionEvent>,
    /// Padding events before `events` in the state (fixed shapes).
    padding_events: usize,
}

/// A rerank whose model scores are still on the device.
pub struct PendingScores {
    /// `[layout.rows]`: the candidates first, then any padding.
    pub scores: Option<Tensor<1>>,
    /// With `explain`: `[layout.rows, layout.columns]` attention over
    /// padding events, then `events`.
    pub attention: Option<Tensor<2>>,
    /// The events the scores were computed from, oldest first.
    pub events: Vec<SessionEvent>,
    /// Per candidate, the repeat prior's offset ([`RepeatPrior::adjust`]),
    /// added to its score in [`Reranker::finish`]; empty when none applies.
    pub repeat_offsets: Vec<f32>,
    pub layout: ScoreLayout,
}

/// How the read-back scores are laid out when the tensors were padded to a
/// fixed shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreLayout {
    /// Score rows (candidates plus padding).
    pub rows: usize,
    /// Attention columns (padding events plus events).
    pub columns: usize,
    /// Leading padding columns in the attention.
    pub padding_events: usize,
}

impl PendingScores {
    fn none() -> PendingScores {
        PendingScores { scores: None, attention: None, events: Vec::new(), repeat_offsets: Vec::new(), layout: ScoreLayout::default() }
    }
}

/// Everything the network reads for one rerank.
#[derive(Debug, Clone)]
pub struct ScoringInputs {
    /// The events (`batch == 1`, no padding).
    pub session: SessionInput,
    /// Catalog rows of the candidates (0: not in the model's catalog).
    pub candidate_rows: Vec<i64>,
    /// Token rows of the events' texts, then the candidates'.
    pub text: ItemText,
    /// The events themselves, oldest first.
    pub events: Vec<SessionEvent>,
    /// The repeat prior's offset per candidate (learned, as a default
    /// rerank adds them after scoring).
    pub repeat_offsets: Vec<f32>,
}

/// The outputs of [`Reranker::warm_up`], still on the device.
pub struct WarmUp {
    pub scores: Vec<Tensor<1>>,
    pub attention: Vec<Tensor<2>>,
}

/// What came back from the device for one rerank.
#[derive(Debug, Default)]
pub struct ReadScores {
    pub scores: Option<Vec<f32>>,
    pub attention: Option<Vec<f32>>,
    pub events: Vec<SessionEvent>,
    /// [`PendingScores::repeat_offsets`], passed through.
    pub repeat_offsets: Vec<f32>,
    pub layout: ScoreLayout,
}

impl Reranker {
    /// Verifies and builds the model on `device`. `tokenizer_json`: `None`
    /// for the tokenizer the model file carries; a given one must be the one
    /// the model was trained with.
    pub fn load(model_bytes: &[u8], tokenizer_json: Option<&[u8]>, device: Device, limits: HistoryLimits) -> Result<Reranker> {
        Reranker::from_file(ModelFile::from_bytes(model_bytes)?, tokenizer_json, device, limits)
    }

    /// Like [`Reranker::load`], from an already verified and decoded file.
    pub fn from_file(file: ModelFile, tokenizer_json: Option<&[u8]>, device: Device, limits: HistoryLimits) -> Result<Reranker> {
        let text = TextEncoder::for_model(&file, tokenizer_json)?;
        let token_table = TokenTable::from_file(&file)?;
        let model = file.build(&device)?;
        let catalog = file.catalog_rows();
        Ok(Reranker {
            model,
            config: file.config.clone(),
            device,
            text,
            token_table,
            catalog,
            history: History::new(limits)?,
            text_cache: FastMap::default(),
            session_cache: None,
            text_vectors: None,
            text_rows: FastMap::default(),
            next_text_row: 0,
            fixed_shapes: false,
            meta: file.meta,
        })
    }

    /// Overrides the model file's history-affinity settings (for tuning).
    pub fn set_affinity(&mut self, affinity: crate::model::Affinity) {
        self.config.affinity_weight = affinity.weight;
        self.config.affinity_decay = affinity.decay;
        self.session_cache = None;
    }

    /// Pads every tensor to a few fixed shapes: the history to
    /// `max_events`, candidate lists to powers of two, new texts to chunks
    /// of a fixed size. For backends that compile kernels per shape
    /// (WebGPU): after [`Reranker::warm_up`] a rerank of up to 1,024
    /// candidates compiles nothing. Costs a little padding work; scores are
    /// unchanged (to float rounding).
    pub fn set_fixed_shapes(&mut self, on: bool) {
        self.fixed_shapes = on;
        self.session_cache = None;
    }

    pub fn config(&self) -> &RankerConfig {
        &self.config
    }

    pub fn meta(&self) -> &serde_json::Value {
        &self.meta
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the model has a trained (or borrowed) ID embedding for this shop id.
    pub fn knows(&self, id: &str) -> bool {
        self.catalog.get(id).is_some_and(|&row| row != 0)
    }

    pub fn record(&mut self, event: SessionEvent, now_ms: f64) -> Result<()> {
        self.history.record(event, now_ms)
    }

    /// Drops events past the max age (also done on every record and rerank).
    pub fn expire(&mut self, now_ms: f64) {
        self.history.expire(now_ms);
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn forget(&mut self) {
        self.history.forget();
        self.text_cache.clear();
        self.session_cache = None;
    }

    /// Validates the request and starts scoring. With no live history
    /// there is nothing to personalise on and no model work is done.
    pub fn start(&mut self, candidates: &[Candidate], options: &RerankOptions, now_ms: f64) -> Result<PendingScores> {
        validate(candidates)?;
        options.validate()?;
        self.history.expire(now_ms);
        if self.history.is_empty() || candidates.is_empty() {
            return Ok(PendingScores::none());
        }
        let version = self.history.version();
        if self.session_cache.as_ref().is_none_or(|c| c.version != version) {
            let events: Vec<SessionEvent> = self.history.recent(self.config.max_events).into_iter().cloned().collect();
            let (state, padding_events) = self.session_state(&events)?;
            self.session_cache = Some(CachedSession { version, state, events, padding_events });
        }
        let texts: Vec<String> = candidates.iter().map(Candidate::text).collect();
        let mut pending = self.score_texts(candidates.iter().map(|c| c.id.as_str()), &texts, options.explain)?;
        if options.repeats == Repeats::Learned {
            let cached = self.session_cache.as_ref().expect("filled above");
            pending.repeat_offsets = self.repeat_offsets(candidates, &cached.events);
        }
        Ok(pending)
    }

    /// The repeat prior's offset for each candidate given the session's
    /// `events` (oldest first); empty when none applies, so that
    /// [`Reranker::finish`] has nothing to add.
    fn repeat_offsets(&self, candidates: &[Candidate], events: &[SessionEvent]) -> Vec<f32> {
        let mut offsets = vec![0.0; candidates.len()];
        let seen: Vec<(Option<&str>, EventKind)> = events.iter().map(|e| (e.id.as_deref(), e.kind)).collect();
        self.config.repeat_prior().adjust(&mut offsets, candidates.iter().map(|c| c.id.as_str()), &seen);
        if offsets.iter().all(|&o| o == 0.0) {
            offsets.clear();
        }
        offsets
    }

    /// Scores candidates (ids and texts) against the cached session state,
    /// padded to a bucket with fixed shapes.
    fn score_texts<'a>(&mut self, ids: impl Iterator<Item = &'a str>, texts: &[String], explain: bool) -> Result<PendingScores> {
        let n = texts.len();
        let rows = if self.fixed_shapes { n.next_power_of_two().max(FIRST_CANDIDATE_BUCKET) } else { n };
        let mut candidate_rows: Vec<i64> = ids.map(|id| self.catalog.get(id).copied().unwrap_or(0)).collect();
        candidate_rows.resize(rows, 0);
        let text_vectors = self.candidate_text_vectors(texts, rows)?;
        let cached = self.session_cache.as_ref().expect("filled by the caller");
        let real = self.fixed_shapes.then_some(n);
        let (scores, attention) = self.model.score_candidate_vectors(
            &cached.state,
            &candidate_rows,
            text_vectors,
            self.config.affinity(),
            &self.device,
            explain,
            real,
        );
        let scores = scores.reshape([rows]);
        let events = if explain { cached.events.clone() } else { Vec::new() };
        let layout = ScoreLayout { rows, columns: cached.padding_events + cached.events.len(), padding_events: cached.padding_events };
        Ok(PendingScores { scores: Some(scores), attention, events, repeat_offsets: Vec::new(), layout })
    }

    /// The session state for `events` (oldest first) and how many padding
    /// events lead it.
    fn session_state(&mut self, events: &[SessionEvent]) -> Result<(SessionState, usize)> {
        let mut session = self.session_input(events);
        let mut texts = events.iter().map(|e| self.tokens(&e.text())).collect::<Result<Vec<_>>>()?;
        let mut padding = 0;
        if self.fixed_shapes {
            padding = self.config.max_events.saturating_sub(events.len());
            session.len += padding;
            session.item_rows.splice(0..0, std::iter::repeat_n(0, padding));
            session.kinds.splice(0..0, std::iter::repeat_n(0, padding));
            session.padding.splice(0..0, std::iter::repeat_n(true, padding));
            texts.splice(0..0, std::iter::repeat_n(Vec::new(), padding));
        }
        let text_vectors = self.text_vectors(&texts, texts.len());
        Ok((self.model.session_states(&session, text_vectors, self.config.affinity(), &self.device), padding))
    }

    /// Text vectors `[rows, dim]` of token rows (`rows - texts.len()`
    /// padding rows at the end): the mean token rows on the host, then the
    /// tower's linear map on the device.
    fn text_vectors<T: AsRef<[u32]>>(&self, texts: &[T], rows: usize) -> Tensor<2> {
        let dim = self.token_table.dim();
        let mut means = Vec::with_capacity(rows * dim);
        self.token_table.means_into(texts, &mut means);
        self.token_table.means_into(&vec![[0u32]; rows.saturating_sub(texts.len())], &mut means);
        self.model.project_text(Tensor::<2>::from_data(TensorData::new(means, [rows, dim]), &self.device))
    }

    /// Text vectors of `texts` (tokenised through the cache), `rows` of them.
    fn embed(&mut self, texts: &[&str], rows: usize) -> Result<Tensor<2>> {
        let tokens = texts.iter().map(|t| self.tokens(t)).collect::<Result<Vec<_>>>()?;
        Ok(self.text_vectors(&tokens, rows))
    }

    /// The candidates' text vectors `[rows, dim]` (`rows - texts.len()`
    /// padding rows at the end), embedding only texts not seen since the
    /// cache last started over.
    fn candidate_text_vectors(&mut self, texts: &[String], rows: usize) -> Result<Tensor<2>> {
        let mut missing: Vec<&str> = Vec::new();
        let mut seen = FastSet::default();
        for text in texts {
            if !self.text_rows.contains_key(text) && seen.insert(text.as_str()) {
                missing.push(text);
            }
        }
        // With fixed shapes new texts go in whole chunks of TEXT_CHUNK rows.
        let fixed = self.fixed_shapes;
        let chunk_for = |m: usize| if fixed { TEXT_CHUNK } else { m.max(1) };
        let needed = |m: usize| m.div_ceil(chunk_for(m)) * chunk_for(m);
        if self.next_text_row + needed(missing.len()) > TEXT_VECTOR_ROWS {
            // Full: start over, with every distinct text of this list missing.
            self.text_rows.clear();
            self.next_text_row = 0;
            let mut distinct = FastSet::default();
            missing = texts.iter().map(String::as_str).filter(|t| distinct.insert(*t)).collect();
        }
        if needed(missing.len()) > TEXT_VECTOR_ROWS {
            // More distinct texts than the cache holds: embed them directly.
            let all: Vec<&str> = texts.iter().map(String::as_str).collect();
            return self.embed(&all, rows);
        }
        let dim = self.config.dim;
        let chunk = chunk_for(missing.len());
        for part in missing.chunks(chunk) {
            let fresh = self.embed(part, chunk.max(part.len()))?; // [chunk or part.len(), dim]
            let start = self.next_text_row;
            let end = start + fresh.dims()[0];
            let matrix = self.text_vectors.take().unwrap_or_else(|| Tensor::zeros([TEXT_VECTOR_ROWS, dim], &self.device));
            self.text_vectors = Some(matrix.slice_assign([start..end, 0..dim], fresh));
            for (i, text) in part.iter().enumerate() {
                self.text_rows.insert((*text).to_owned(), start + i);
            }
            self.next_text_row = end;
        }
        let mut index: Vec<i64> = texts.iter().map(|t| self.text_rows[t] as i64).collect();
        index.resize(rows, 0);
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows]), &self.device);
        Ok(self.text_vectors.clone().expect("filled above").select(0, index))
    }

    fn session_input(&self, events: &[SessionEvent]) -> SessionInput {
        let mut session = SessionInput { batch: 1, len: events.len(), ..SessionInput::default() };
        for event in events {
            let row = match (event.kind, &event.id) {
                (EventKind::Search, _) | (_, None) => 0,
                (_, Some(id)) => self.catalog.get(id).copied().unwrap_or(0),
            };
            session.item_rows.push(row);
            session.kinds.push(event.kind.index() as i64);
            session.padding.push(false);
        }
        session
    }

    /// The model's inputs for scoring `candidates` against the live history
    /// (the last `max_events` events): what [`Reranker::start`] feeds the
    /// network, exposed for exporting the model to other runtimes and
    /// checking them against it.
    pub fn scoring_inputs(&mut self, candidates: &[Candidate]) -> Result<ScoringInputs> {
        let events: Vec<SessionEvent> = self.history.recent(self.config.max_events).into_iter().cloned().collect();
        let session = self.session_input(&events);
        let mut texts = Vec::with_capacity(events.len() + candidates.len());
        for event in &events {
            texts.push(self.tokens(&event.text())?);
        }
        let mut candidate_rows = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            candidate_rows.push(self.catalog.get(&candidate.id).copied().unwrap_or(0));
            texts.push(self.tokens(&candidate.text())?);
        }
        let mut repeat_offsets = self.repeat_offsets(candidates, &events);
        repeat_offsets.resize(candidates.len(), 0.0);
        Ok(ScoringInputs { session, candidate_rows, text: ItemText::from_rows(&texts), events, repeat_offsets })
    }

    /// Runs the model on made-up input at every shape a rerank will use,
    /// touching no history, so kernels compile and weights reach the device
    /// before the shop needs a rerank: the [`Reranker::benchmark_inference`],
    /// and with fixed shapes every candidate bucket up to 1,024, plain and
    /// explained. Read the returned tensors back to wait for it.
    pub fn warm_up(&mut self) -> Result<WarmUp> {
        let mut outputs = WarmUp { scores: vec![self.benchmark_inference()?], attention: Vec::new() };
        if !self.fixed_shapes {
            return Ok(outputs);
        }
        let saved_cache = self.session_cache.take();
        let events: Vec<SessionEvent> = (0..WARM_UP_EVENTS.min(self.config.max_events))
            .map(|i| SessionEvent {
                kind: EventKind::ALL[i % EventKind::ALL.len()],
                id: None,
                title: Some(format!("warm up item {i}")),
                category: None,
                brand: None,
                query: Some(format!("warm up query {i}")),
                timestamp: None,
            })
            .collect();
        let (state, padding_events) = self.session_state(&events)?;
        self.session_cache = Some(CachedSession { version: u64::MAX, state, events, padding_events });
        let mut rows = FIRST_CANDIDATE_BUCKET;
        while rows <= WARM_CANDIDATE_BUCKETS {
            let texts: Vec<String> = (0..rows - 1).map(|i| format!("warm up candidate {i}")).collect();
            let ids: Vec<String> = (0..texts.len()).map(|i| format!("warm-up-{i}")).collect();
            for explain in [false, true] {
                let pending = self.score_texts(ids.iter().map(String::as_str), &texts, explain)?;
                outputs.scores.extend(pending.scores);
                outputs.attention.extend(pending.attention);
            }
            rows *= 2;
        }
        // The warm-up texts must not crowd the shop's out of the cache.
        self.text_rows.clear();
        self.next_text_row = 0;
        self.session_cache = saved_cache;
        Ok(outputs)
    }

    /// One fixed inference (20 events × 100 candidates, a full forward pass
    /// including the text embeddings), touching no history: what backends
    /// are timed on to choose between them.
    pub fn benchmark_inference(&mut self) -> Result<Tensor<1>> {
        // Shapes like a typical shelf (a few dozen events, a hundred
        // candidates, titles of a few dozen tokens), since some kernels are
        // compiled per shape.
        let (events, candidates) = (WARM_UP_EVENTS.min(self.config.max_events), WARM_UP_CANDIDATES);
        let session = SessionInput {
            batch: 1,
            len: events,
            item_rows: (0..events as i64).map(|i| i.min(self.config.n_items as i64)).collect(),
            kinds: (0..events).map(|i| EventKind::ALL[i % EventKind::ALL.len()].index() as i64).collect(),
            padding: vec![false; events],
        };
        let title = "warm up shelf item with a title of typical length for a storefront product listing page";
        let row = self.tokens(title)?;
        let affinity = self.config.affinity();
        let state = self.model.session_states(&session, self.text_vectors(&vec![row.clone(); events], events), affinity, &self.device);
        let candidate_rows: Vec<i64> = (0..candidates as i64).map(|i| i.min(self.config.n_items as i64)).collect();
        let text_vectors = self.text_vectors(&vec![row; candidates], candidates);
        let (scores, _) = self.model.score_candidate_vectors(&state, &candidate_rows, text_vectors, affinity, &self.device, false, None);
        Ok(scores.reshape([candidates]))
    }

    /// Orders the candidates once the scores are read back.
    pub fn finish(&self, candidates: &[Candidate], read: &ReadScores, options: &RerankOptions) -> Result<Vec<RankedItem>> {
        let n = candidates.len();
        let layout = read.layout;
        let scores = match &read.scores {
            Some(scores) if scores.len() != layout.rows || layout.rows < n => {
                return err(ErrorKind::Backend, format!("the model returned {} scores for {n} candidates", scores.len()));
            }
            Some(scores) if read.repeat_offsets.len() == n => {
                Some(Cow::Owned(scores[..n].iter().zip(&read.repeat_offsets).map(|(s, o)| s + o).collect()))
            }
            Some(scores) => Some(Cow::Borrowed(&scores[..n])),
            None => None,
        };
        let mut ranked = arrange(candidates, scores.as_deref(), options)?;
        if let Some(attention) = &read.attention {
            let events = read.events.len();
            if attention.len() != layout.rows * layout.columns || layout.columns != layout.padding_events + events {
                return err(
                    ErrorKind::Backend,
                    format!("the model returned {} attention weights for {n} items × {events} events", attention.len()),
                );
            }
            let real: Vec<f32> =
                attention.chunks(layout.columns).take(n).flat_map(|row| row[layout.padding_events..].iter().copied()).collect();
            HistoryReason::attach(&mut ranked, &real, &read.events)?;
        }
        Ok(ranked)
    }

    /// The whole rerank with a synchronous readback (native only; the
    /// browser must read back asynchronously).
    pub fn rerank_blocking(&mut self, candidates: &[Candidate], options: &RerankOptions, now_ms: f64) -> Result<Vec<RankedItem>> {
        let pending = self.start(candidates, options, now_ms)?;
        let read = ReadScores {
            scores: pending.scores.map(|t| read_scores(t.into_data())).transpose()?,
            attention: pending.attention.map(|t| read_scores(t.into_data())).transpose()?,
            events: pending.events,
            repeat_offsets: pending.repeat_offsets,
            layout: pending.layout,
        };
        self.finish(candidates, &read, options)
    }

    fn tokens(&mut self, text: &str) -> Result<Vec<u32>> {
        if let Some(rows) = self.text_cache.get(text) {
            return Ok(rows.clone());
        }
        let rows = self.text.encode(text)?;
        if self.text_cache.len() >= TEXT_CACHE_ENTRIES {
            self.text_cache.clear();
        }
        self.text_cache.insert(text.to_owned(), rows.clone());
        Ok(rows)
    }
}

/// Scores read back from the device, as f32.
pub fn read_scores(data: burn::tensor::TensorData) -> Result<Vec<f32>> {
    data.try_into_vec_as::<f32>().map_err(|e| crate::Error::new(ErrorKind::Backend, format!("cannot read the model's scores back: {e:?}")))
}

//! The reranker a page holds: a loaded model, its tokenizer and catalog, and
//! the shopper's history. Plain Rust over `model/`, `session` and `rank`;
//! the wasm layer wraps it and does the one async step (reading scores back
//! from the device).

use std::borrow::Cow;

#[cfg(feature = "device")]
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{ErrorKind, Result, err};
use crate::model::{EventKind, FastSet, HostNetwork, HostState};
use crate::model::{FastMap, ItemText, ModelFile, RankerConfig, SessionInput, TextEncoder, TokenTable};
#[cfg(feature = "device")]
use crate::model::{SessionRanker, SessionState};
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

/// Where the network runs.
pub enum Backend {
    /// Plain Rust on the calling thread ([`HostNetwork`]): the page's CPU
    /// path, and the only one in the CPU-only browser build.
    Host,
    /// A burn device (WebGPU, or burn's own CPU backend natively).
    #[cfg(feature = "device")]
    Device(Device),
}

#[cfg(feature = "device")]
impl From<Device> for Backend {
    fn from(device: Device) -> Backend {
        Backend::Device(device)
    }
}

/// The loaded network, and candidate text vectors kept between reranks
/// (`[TEXT_VECTOR_ROWS, dim]` at most) where it runs.
enum Engine {
    Host {
        network: HostNetwork,
        text_vectors: Vec<f32>,
    },
    #[cfg(feature = "device")]
    Device {
        model: SessionRanker,
        device: Device,
        text_vectors: Option<Tensor<2>>,
    },
}

/// A session's state where the network runs.
enum State {
    Host(HostState),
    #[cfg(feature = "device")]
    Device(SessionState),
}

/// Model outputs: numbers already on the host, or a tensor still on the
/// device (read it back asynchronously in the browser).
pub enum Output<const D: usize> {
    Host(Vec<f32>),
    #[cfg(feature = "device")]
    Device(Tensor<D>),
}

impl<const D: usize> Output<D> {
    /// The values, reading a device tensor back synchronously (native
    /// only; the browser must use [`Output::read`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(self) -> Result<Vec<f32>> {
        match self {
            Output::Host(values) => Ok(values),
            #[cfg(feature = "device")]
            Output::Device(tensor) => read_scores(tensor.into_data()),
        }
    }

    /// The values, reading a device tensor back asynchronously.
    pub async fn read(self) -> Result<Vec<f32>> {
        match self {
            Output::Host(values) => Ok(values),
            #[cfg(feature = "device")]
            Output::Device(tensor) => {
                let data = tensor
                    .into_data_async()
                    .await
                    .map_err(|e| crate::Error::new(ErrorKind::Backend, format!("reading scores from the device failed: {e:?}")))?;
                read_scores(data)
            }
        }
    }
}

pub struct Reranker {
    engine: Engine,
    config: RankerConfig,
    text: TextEncoder,
    /// The text tower's token table, on the host (see [`TokenTable`]).
    token_table: TokenTable,
    catalog: FastMap<String, i64>,
    history: History,
    text_cache: FastMap<String, Vec<u32>>,
    /// The session state for the history at a version: reused until the
    /// history changes.
    session_cache: Option<CachedSession>,
    /// Which row of the engine's candidate text vectors holds which text:
    /// a list reranked again is not re-embedded.
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
    state: State,
    events: Vec<SessionEvent>,
    /// Padding events before `events` in the state (fixed shapes).
    padding_events: usize,
}

/// A rerank whose model scores are still on the device.
pub struct PendingScores {
    /// `[layout.rows]`: the candidates first, then any padding.
    pub scores: Option<Output<1>>,
    /// With `explain`: `[layout.rows, layout.columns]` attention over
    /// padding events, then `events`.
    pub attention: Option<Output<2>>,
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
    pub scores: Vec<Output<1>>,
    pub attention: Vec<Output<2>>,
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
    /// Verifies and builds the model on `backend` ([`Backend::Host`], or
    /// a burn `Device`). `tokenizer_json`: `None` for the tokenizer the
    /// model file carries; a given one must be the one the model was
    /// trained with.
    pub fn load(model_bytes: &[u8], tokenizer_json: Option<&[u8]>, backend: impl Into<Backend>, limits: HistoryLimits) -> Result<Reranker> {
        Reranker::from_file(ModelFile::from_bytes(model_bytes)?, tokenizer_json, backend, limits)
    }

    /// Like [`Reranker::load`], from an already verified and decoded file.
    pub fn from_file(
        mut file: ModelFile,
        tokenizer_json: Option<&[u8]>,
        backend: impl Into<Backend>,
        limits: HistoryLimits,
    ) -> Result<Reranker> {
        let text = TextEncoder::for_model(&file, tokenizer_json)?;
        let token_table = TokenTable::from_file(&mut file)?;
        let engine = match backend.into() {
            Backend::Host => Engine::Host { network: HostNetwork::from_file(&file)?, text_vectors: Vec::new() },
            #[cfg(feature = "device")]
            Backend::Device(device) => Engine::Device { model: file.build(&device)?, device, text_vectors: None },
        };
        let catalog = file.catalog_rows();
        Ok(Reranker {
            engine,
            config: file.config.clone(),
            text,
            token_table,
            catalog,
            history: History::new(limits)?,
            text_cache: FastMap::default(),
            session_cache: None,
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
    /// unchanged (to float rounding). The host network has no kernels to
    /// compile: it ignores this.
    pub fn set_fixed_shapes(&mut self, on: bool) {
        self.fixed_shapes = on && !matches!(self.engine, Engine::Host { .. });
        self.session_cache = None;
    }

    pub fn config(&self) -> &RankerConfig {
        &self.config
    }

    pub fn meta(&self) -> &serde_json::Value {
        &self.meta
    }

    /// The burn device the network runs on (`None` on the host).
    #[cfg(feature = "device")]
    pub fn device(&self) -> Option<&Device> {
        match &self.engine {
            Engine::Device { device, .. } => Some(device),
            Engine::Host { .. } => None,
        }
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
        let affinity = self.config.affinity();
        let (scores, attention) = match self.candidate_text_vectors(texts, rows)? {
            Output::Host(text_vectors) => {
                let (Engine::Host { network, .. }, Some(CachedSession { state: State::Host(state), .. })) =
                    (&self.engine, &self.session_cache)
                else {
                    unreachable!("host vectors come from the host engine, whose sessions are host states")
                };
                let (scores, attention) = network.score(state, &candidate_rows, &text_vectors, affinity, explain);
                (Output::Host(scores), attention.map(Output::Host))
            }
            #[cfg(feature = "device")]
            Output::Device(text_vectors) => {
                let (Engine::Device { model, device, .. }, Some(CachedSession { state: State::Device(state), .. })) =
                    (&self.engine, &self.session_cache)
                else {
                    unreachable!("device vectors come from the device engine, whose sessions are device states")
                };
                let real = self.fixed_shapes.then_some(n);
                let (scores, attention) =
                    model.score_candidate_vectors(state, &candidate_rows, text_vectors, affinity, device, explain, real);
                (Output::Device(scores.reshape([rows])), attention.map(Output::Device))
            }
        };
        let cached = self.session_cache.as_ref().expect("filled by the caller");
        let events = if explain { cached.events.clone() } else { Vec::new() };
        let layout = ScoreLayout { rows, columns: cached.padding_events + cached.events.len(), padding_events: cached.padding_events };
        Ok(PendingScores { scores: Some(scores), attention, events, repeat_offsets: Vec::new(), layout })
    }

    /// The session state for `events` (oldest first) and how many padding
    /// events lead it.
    fn session_state(&mut self, events: &[SessionEvent]) -> Result<(State, usize)> {
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
        Ok((self.state_of(&session, &texts)?, padding))
    }

    /// The network's state for `session`, whose events' token rows are `texts`.
    fn state_of(&self, session: &SessionInput, texts: &[Vec<u32>]) -> Result<State> {
        let affinity = self.config.affinity();
        Ok(match (&self.engine, self.text_vectors(texts, texts.len())) {
            (Engine::Host { network, .. }, Output::Host(event_text)) => {
                State::Host(network.session_state(session, &event_text, affinity)?)
            }
            #[cfg(feature = "device")]
            (Engine::Device { model, device, .. }, Output::Device(event_text)) => {
                State::Device(model.session_states(session, event_text, affinity, device))
            }
            #[cfg(feature = "device")]
            _ => unreachable!("an engine embeds where it runs"),
        })
    }

    /// Text vectors `[rows, dim]` of token rows (`rows - texts.len()`
    /// padding rows at the end): the mean token rows on the host, then the
    /// tower's linear map where the network runs.
    fn text_vectors<T: AsRef<[u32]>>(&self, texts: &[T], rows: usize) -> Output<2> {
        let dim = self.token_table.dim();
        let mut means = Vec::with_capacity(rows * dim);
        self.token_table.means_into(texts, &mut means);
        self.token_table.means_into(&vec![[0u32]; rows.saturating_sub(texts.len())], &mut means);
        match &self.engine {
            Engine::Host { network, .. } => Output::Host(network.project_text(&means)),
            #[cfg(feature = "device")]
            Engine::Device { model, device, .. } => {
                Output::Device(model.project_text(Tensor::<2>::from_data(TensorData::new(means, [rows, dim]), device)))
            }
        }
    }

    /// Text vectors of candidates' `texts`, `rows` of them. Their tokens
    /// are read from the token cache but not added to it: the text vectors
    /// are what is kept of a candidate.
    fn embed(&mut self, texts: &[&str], rows: usize) -> Result<Output<2>> {
        let tokens = texts
            .iter()
            .map(|t| match self.text_cache.get(*t) {
                Some(tokens) => Ok(tokens.clone()),
                None => self.text.encode(t),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.text_vectors(&tokens, rows))
    }

    /// The candidates' text vectors `[rows, dim]` (`rows - texts.len()`
    /// padding rows at the end), embedding only texts not seen since the
    /// cache last started over.
    fn candidate_text_vectors(&mut self, texts: &[String], rows: usize) -> Result<Output<2>> {
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
            let end = match (&mut self.engine, fresh) {
                (Engine::Host { text_vectors, .. }, Output::Host(fresh)) => {
                    let end = start + fresh.len() / dim;
                    text_vectors.resize(text_vectors.len().max(end * dim), 0.0);
                    text_vectors[start * dim..end * dim].copy_from_slice(&fresh);
                    end
                }
                #[cfg(feature = "device")]
                (Engine::Device { text_vectors, device, .. }, Output::Device(fresh)) => {
                    let end = start + fresh.dims()[0];
                    let matrix = text_vectors.take().unwrap_or_else(|| Tensor::zeros([TEXT_VECTOR_ROWS, dim], &*device));
                    *text_vectors = Some(matrix.slice_assign([start..end, 0..dim], fresh));
                    end
                }
                #[cfg(feature = "device")]
                _ => unreachable!("an engine embeds where it runs"),
            };
            for (i, text) in part.iter().enumerate() {
                self.text_rows.insert((*text).to_owned(), start + i);
            }
            self.next_text_row = end;
        }
        let mut index: Vec<usize> = texts.iter().map(|t| self.text_rows[t]).collect();
        index.resize(rows, 0);
        Ok(match &self.engine {
            Engine::Host { text_vectors, .. } => {
                Output::Host(index.iter().flat_map(|&row| &text_vectors[row * dim..(row + 1) * dim]).copied().collect())
            }
            #[cfg(feature = "device")]
            Engine::Device { text_vectors, device, .. } => {
                let index = Tensor::<1, Int>::from_data(TensorData::new(index.iter().map(|&i| i as i64).collect(), [rows]), device);
                Output::Device(text_vectors.clone().expect("filled above").select(0, index))
            }
        })
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
    pub fn benchmark_inference(&mut self) -> Result<Output<1>> {
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
        let state = self.state_of(&session, &vec![row.clone(); events])?;
        let candidate_rows: Vec<i64> = (0..candidates as i64).map(|i| i.min(self.config.n_items as i64)).collect();
        Ok(match (&self.engine, state, self.text_vectors(&vec![row; candidates], candidates)) {
            (Engine::Host { network, .. }, State::Host(state), Output::Host(text_vectors)) => {
                Output::Host(network.score(&state, &candidate_rows, &text_vectors, affinity, false).0)
            }
            #[cfg(feature = "device")]
            (Engine::Device { model, device, .. }, State::Device(state), Output::Device(text_vectors)) => {
                let (scores, _) = model.score_candidate_vectors(&state, &candidate_rows, text_vectors, affinity, device, false, None);
                Output::Device(scores.reshape([candidates]))
            }
            #[cfg(feature = "device")]
            _ => unreachable!("an engine's states and vectors are its own"),
        })
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn rerank_blocking(&mut self, candidates: &[Candidate], options: &RerankOptions, now_ms: f64) -> Result<Vec<RankedItem>> {
        let pending = self.start(candidates, options, now_ms)?;
        let read = ReadScores {
            scores: pending.scores.map(Output::read_blocking).transpose()?,
            attention: pending.attention.map(Output::read_blocking).transpose()?,
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
#[cfg(feature = "device")]
pub fn read_scores(data: burn::tensor::TensorData) -> Result<Vec<f32>> {
    data.try_into_vec_as::<f32>().map_err(|e| crate::Error::new(ErrorKind::Backend, format!("cannot read the model's scores back: {e:?}")))
}

//! The JavaScript-facing `Ranker` class: the only file that knows about
//! wasm-bindgen. It turns JS values into the crate's types and back, picks
//! and initialises the backend, and does every readback asynchronously.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::{Error, ErrorKind};
use crate::rank::{Candidate, HistoryReason, RerankOptions};
use crate::session::{HistoryLimits, SessionEvent};
use crate::{Backend, ReadScores, Reranker};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export interface LoadOptions {
  /** 'auto' (default) uses a real GPU through WebGPU when one exists, else the CPU. */
  backend?: BackendChoice;
  history?: { maxEvents?: number; maxAgeMs?: number };
  /** sha256 (64 hex digits) of the model file from byte 44 on, when the caller has hashed it. */
  modelSha256?: string;
}
export type EventType = 'view' | 'click' | 'add_to_cart' | 'purchase' | 'search';
export interface SessionEvent {
  type: EventType;
  /** The shop's item id (item events). */
  id?: string;
  /** The item's title; needed for items outside the model's catalog. */
  title?: string;
  category?: string;
  brand?: string;
  /** The search text (search events). */
  query?: string;
  /** Milliseconds since the epoch; defaults to now. */
  timestamp?: number;
}
export interface Candidate {
  id: string;
  title?: string;
  category?: string;
  brand?: string;
  price?: number;
  /** The server's own score, higher is better: weighed against the model's (the list's order is used when absent). With no history the list keeps its order. */
  serverScore?: number;
  /** Campaign slot: never moves. */
  pinned?: boolean;
}
export interface RerankOptions {
  /** Weight of the server's order in [0, 1]; default 0.25. */
  serverWeight?: number;
  /** Give each item the history event that drew it (`reason`). */
  explain?: boolean;
  /**
   * Items the shopper has already met: 'learned' (default) moves them by the model's learned offset for the kind
   * and recency of their newest event (the shipped model sinks them: shoppers rarely come back for what they just
   * viewed or bought); 'allow' lets them compete on their score ("buy it again", "recently viewed").
   */
  repeats?: 'learned' | 'allow';
}
/** The history event an item is most like in the model's item space, and its attention share (0–1). */
export interface HistoryReason {
  type: EventType;
  id?: string;
  title?: string;
  query?: string;
  weight: number;
}
export interface RankedItem {
  id: string;
  originalPosition: number;
  score: number;
  modelScore?: number;
  pinned: boolean;
  reason?: HistoryReason;
}
/** What `rerankPacked` resolves with: the new order as original positions, and per-slot scores. */
export interface PackedRanking {
  order: Uint32Array;
  scores: Float32Array;
  modelScores?: Float32Array;
  reasons?: (HistoryReason | null)[];
}
export interface AdapterInfo {
  name: string;
  vendor: number;
  device: number;
  deviceType: string;
  backend: string;
  driver: string;
  isFallback: boolean;
}
export interface BackendInfo {
  name: 'webgpu' | 'cpu';
  adapter?: AdapterInfo;
  /** Why 'auto' chose this backend. */
  reason: string;
}
"#;

unsafe extern "C" {
    /// Synthesised by the wasm linker: runs the static constructors that
    /// burn's kernel registry (`inventory`) relies on.
    fn __wasm_call_ctors();
}

/// Runs once when the module is instantiated. Calling the constructors
/// here, explicitly, also stops the linker from wrapping *every* export in
/// a constructor call, which made each call into the module cost ~0.7 s.
#[wasm_bindgen(start)]
fn on_instantiate() {
    // SAFETY: called once, before any other export, as the linker expects.
    unsafe { __wasm_call_ctors() }
}

/// A sha256 digest from its 64 hex digits.
fn hex_digest(hex: &str) -> Result<Vec<u8>, JsValue> {
    let bad = || js_error(Error::new(ErrorKind::InvalidOption, "'modelSha256' must be 64 hexadecimal digits"));
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())).collect()
}

/// JS error with `name` set to the error kind, so callers can branch on it.
fn js_error(error: Error) -> JsValue {
    let js = js_sys::Error::new(error.message());
    js.set_name(error.kind().as_str());
    js.into()
}

fn bad_input(kind: ErrorKind, what: &str, detail: impl std::fmt::Display) -> JsValue {
    js_error(Error::new(kind, format!("{what}: {detail}")))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| bad_input(ErrorKind::Backend, "cannot return the result to JavaScript", e))
}

fn from_js<T: for<'de> Deserialize<'de> + Default>(value: JsValue, kind: ErrorKind, what: &str) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(without_undefined(value)).map_err(|e| bad_input(kind, what, e))
}

/// A shallow copy of an options object without its `undefined` properties,
/// so `{ history: undefined }` means the same as `{}`.
fn without_undefined(value: JsValue) -> JsValue {
    if !value.is_object() || js_sys::Array::is_array(&value) {
        return value;
    }
    let copy = js_sys::Object::new();
    for entry in js_sys::Object::entries(value.unchecked_ref()).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let (key, val) = (pair.get(0), pair.get(1));
        if !val.is_undefined() {
            let _ = js_sys::Reflect::set(&copy, &key, &without_undefined(val));
        }
    }
    copy.into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LoadOptions {
    backend: Option<String>,
    history: HistoryLimits,
    /// sha256 (hex) of the model file's payload, computed by the browser
    /// (see [`crate::model::ModelFile::from_bytes_digested`]); without it
    /// the model is hashed here.
    model_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdapterInfo {
    name: String,
    vendor: u32,
    device: u32,
    device_type: String,
    backend: String,
    driver: String,
    is_fallback: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackendInfo {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    adapter: Option<AdapterInfo>,
    reason: String,
}

/// Opens WebGPU. Returns the device and what the adapter is.
#[cfg(feature = "webgpu")]
async fn open_webgpu() -> Result<(Backend, AdapterInfo), String> {
    let (device, setup) = burn::tensor::Device::wgpu_options().init_with_setup_async().await.map_err(|e| format!("{e:?}"))?;
    let info = setup.adapter.get_info();
    let device_type = format!("{:?}", info.device_type);
    let adapter = AdapterInfo {
        is_fallback: info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu,
        name: info.name,
        vendor: info.vendor,
        device: info.device,
        device_type,
        backend: format!("{:?}", info.backend),
        driver: info.driver,
    };
    Ok((Backend::Device(device), adapter))
}

/// This build has no WebGPU backend: the shim loads the WebGPU build when
/// it wants one.
#[cfg(not(feature = "webgpu"))]
async fn open_webgpu() -> Result<(Backend, AdapterInfo), String> {
    Err("this is the CPU-only build of shelfrank (the WebGPU build is a separate file)".into())
}

/// The backend to load on. The CPU is always the host network (plain
/// Rust, no tensor library).
async fn choose_backend(choice: &str) -> Result<(Backend, BackendInfo), JsValue> {
    match choice {
        "cpu" => Ok((Backend::Host, BackendInfo { name: "cpu", adapter: None, reason: "requested".into() })),
        "webgpu" => {
            let (device, adapter) = open_webgpu().await.map_err(|e| {
                bad_input(ErrorKind::Backend, "WebGPU was requested but no adapter could be opened (use backend 'auto' or 'cpu')", e)
            })?;
            Ok((device, BackendInfo { name: "webgpu", adapter: Some(adapter), reason: "requested".into() }))
        }
        "auto" => match open_webgpu().await {
            // A software adapter is slower than the CPU path: never prefer it.
            Ok((_, adapter)) if adapter.is_fallback => Ok((
                Backend::Host,
                BackendInfo {
                    name: "cpu",
                    reason: format!("the only WebGPU adapter ('{}') is a software fallback", adapter.name),
                    adapter: None,
                },
            )),
            Ok((device, adapter)) => Ok((
                device,
                BackendInfo { name: "webgpu", adapter: Some(adapter), reason: "a hardware WebGPU adapter is available".into() },
            )),
            Err(e) => Ok((Backend::Host, BackendInfo { name: "cpu", adapter: None, reason: format!("WebGPU is unavailable: {e}") })),
        },
        other => Err(js_error(Error::new(ErrorKind::InvalidOption, format!("unknown backend '{other}'; use 'auto', 'webgpu' or 'cpu'")))),
    }
}

/// A loaded model plus the shopper's in-memory history.
#[wasm_bindgen]
pub struct Ranker {
    inner: Rc<RefCell<Reranker>>,
    backend: BackendInfo,
    /// The candidates of the last rerank that succeeded, and the key the
    /// caller sent them under, for `rerankLast`.
    last: Rc<RefCell<Option<(String, Rc<Vec<Candidate>>)>>>,
}

#[wasm_bindgen]
impl Ranker {
    /// Verifies the model bytes (and the tokenizer's, when given: without
    /// them the tokenizer the model file carries is used), opens the
    /// backend, and runs one warm-up inference so shaders compile before
    /// the first rerank.
    #[wasm_bindgen(unchecked_return_type = "Ranker")]
    pub async fn load(
        #[wasm_bindgen(js_name = modelBytes)] model_bytes: Vec<u8>,
        #[wasm_bindgen(js_name = tokenizerBytes)] tokenizer_bytes: Option<Vec<u8>>,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions | undefined")] options: JsValue,
    ) -> Result<Ranker, JsValue> {
        let options: LoadOptions = from_js(options, ErrorKind::InvalidOption, "invalid load options")?;
        let choice = options.backend.as_deref().unwrap_or("auto");
        // Check the bytes before touching the GPU, so a bad file fails fast.
        let digest = options.model_sha256.as_deref().map(hex_digest).transpose()?;
        let file = crate::model::ModelFile::from_bytes_digested(&model_bytes, digest.as_deref()).map_err(js_error)?;
        drop(model_bytes);
        let (device, backend) = choose_backend(choice).await?;
        let mut reranker = Reranker::from_file(file, tokenizer_bytes.as_deref(), device, options.history).map_err(js_error)?;
        // WebGPU compiles kernels per shape: pad to a few shapes, all
        // compiled now rather than on the shop's first reranks.
        reranker.set_fixed_shapes(backend.name == "webgpu");
        let warm = reranker.warm_up().map_err(js_error)?;
        let failed = |e| bad_input(ErrorKind::Backend, "the warm-up inference failed", format!("{e:?}"));
        for scores in warm.scores {
            scores.read().await.map_err(failed)?;
        }
        for attention in warm.attention {
            attention.read().await.map_err(failed)?;
        }
        Ok(Ranker { inner: Rc::new(RefCell::new(reranker)), backend, last: Rc::default() })
    }

    /// The largest request the ranker accepts, `{ maxCandidates,
    /// maxTextBytes }`: the page reads them to bound what it copies here,
    /// and leaves the checking (and its messages) to the ranker.
    #[wasm_bindgen(unchecked_return_type = "{ maxCandidates: number, maxTextBytes: number }")]
    pub fn limits() -> Result<JsValue, JsValue> {
        to_js(&serde_json::json!({ "maxCandidates": crate::rank::MAX_CANDIDATES, "maxTextBytes": crate::session::MAX_TEXT_BYTES }))
    }

    /// Which backend runs the model, and on which adapter.
    #[wasm_bindgen(getter, unchecked_return_type = "BackendInfo")]
    pub fn backend(&self) -> Result<JsValue, JsValue> {
        to_js(&self.backend)
    }

    /// The model's configuration and training facts.
    #[wasm_bindgen(getter, js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsValue> {
        let inner = self.inner.borrow();
        to_js(&serde_json::json!({ "config": inner.config(), "meta": inner.meta() }))
    }

    /// Adds one event to the history. Throws a named error on a malformed event.
    pub fn record(&self, #[wasm_bindgen(unchecked_param_type = "SessionEvent")] event: JsValue) -> Result<(), JsValue> {
        if !event.is_object() {
            return Err(js_error(Error::new(
                ErrorKind::InvalidEvent,
                "an event must be an object like { type: 'view', id: '...', title: '...' }",
            )));
        }
        let event: SessionEvent =
            serde_wasm_bindgen::from_value(event).map_err(|e| bad_input(ErrorKind::InvalidEvent, "invalid event", e))?;
        self.inner.borrow_mut().record(event, js_sys::Date::now()).map_err(js_error)
    }

    /// The live events, oldest first (expired ones are dropped first).
    #[wasm_bindgen(unchecked_return_type = "SessionEvent[]")]
    pub fn history(&self) -> Result<JsValue, JsValue> {
        self.inner.borrow_mut().expire(js_sys::Date::now());
        let inner = self.inner.borrow();
        let events: Vec<&SessionEvent> = inner.history().events().collect();
        to_js(&events)
    }

    /// Runs the fixed warm-up inference once (20 events × 100 candidates,
    /// no history touched) and reads its scores back: what the shim times
    /// to choose between backends.
    pub async fn benchmark(&self) -> Result<(), JsValue> {
        let scores = self.inner.borrow_mut().benchmark_inference().map_err(js_error)?;
        scores.read().await.map_err(|e| bad_input(ErrorKind::Backend, "the benchmark inference failed", format!("{e:?}")))?;
        Ok(())
    }

    /// The network's inputs for a JSON candidate list against the live
    /// history, as typed arrays in the layout of `bench/ort.mjs` (int64 as
    /// `BigInt64Array`): for running the same model in another runtime (the
    /// ONNX Runtime Web comparison in `bench/`, which times this call so
    /// that it tokenises with the same WordPiece and token cache as
    /// shelfrank and pays no conversion). Not part of the ranking API.
    #[wasm_bindgen(js_name = scoringInputsPacked)]
    pub fn scoring_inputs_packed(&self, #[wasm_bindgen(js_name = candidatesJson)] candidates_json: String) -> Result<JsValue, JsValue> {
        let candidates: Vec<Candidate> = serde_json::from_str(&candidates_json)
            .map_err(|e| bad_input(ErrorKind::InvalidCandidate, "invalid candidate list (each needs a string 'id')", e))?;
        let mut inner = self.inner.borrow_mut();
        let affinity = inner.config().affinity();
        let inputs = inner.scoring_inputs(&candidates).map_err(js_error)?;
        let (events, t) = (inputs.session.len, inputs.text.len);
        let packed = js_sys::Object::new();
        let set = |key: &str, value: &JsValue| js_sys::Reflect::set(&packed, &JsValue::from_str(key), value).map(|_| ());
        let big = |values: &[i64]| JsValue::from(js_sys::BigInt64Array::from(values));
        set("L", &JsValue::from(events as u32))?;
        set("N", &JsValue::from(inputs.candidate_rows.len() as u32))?;
        set("T", &JsValue::from(t as u32))?;
        set("T2", &JsValue::from(t as u32))?;
        set("eventRows", &big(&inputs.session.item_rows))?;
        set("eventKinds", &big(&inputs.session.kinds))?;
        set("eventTokens", &big(&inputs.text.rows[..events * t]))?;
        set("eventMask", &js_sys::Float32Array::from(&inputs.text.mask[..events * t]).into())?;
        set("candidateRows", &big(&inputs.candidate_rows))?;
        set("candidateTokens", &big(&inputs.text.rows[events * t..]))?;
        set("candidateMask", &js_sys::Float32Array::from(&inputs.text.mask[events * t..]).into())?;
        set(
            "affinityWeights",
            &js_sys::Float32Array::from(inputs.session.affinity_weights(affinity.decay, &affinity.kinds).as_slice()).into(),
        )?;
        set("repeatOffsets", &js_sys::Float32Array::from(inputs.repeat_offsets.as_slice()).into())?;
        Ok(packed.into())
    }

    /// Bytes of linear memory the module holds (wasm memory only grows):
    /// for watching that memory stays flat under load.
    #[wasm_bindgen(getter, js_name = memoryBytes)]
    pub fn memory_bytes(&self) -> f64 {
        (core::arch::wasm32::memory_size::<0>() * 65536) as f64
    }

    /// How many events the history holds.
    #[wasm_bindgen(getter, js_name = historyLength)]
    pub fn history_length(&self) -> usize {
        self.inner.borrow().history().len()
    }

    /// Erases the history.
    pub fn forget(&self) {
        self.inner.borrow_mut().forget();
    }

    /// Reorders `candidates` (server order) for this shopper: the
    /// candidates as one JSON array string, the result as typed arrays
    /// (`order`: original positions in the new order; `scores`, and
    /// `modelScores` when there was a history; `reasons` with `explain`),
    /// so that thousands of candidates cost no per-field crossing between
    /// JS and wasm. Rejects with a named error on invalid input.
    #[wasm_bindgen(js_name = rerankPacked, unchecked_return_type = "Promise<PackedRanking>")]
    pub fn rerank_packed(
        &self,
        #[wasm_bindgen(js_name = candidatesJson)] candidates_json: String,
        #[wasm_bindgen(unchecked_param_type = "RerankOptions | undefined")] options: JsValue,
        #[wasm_bindgen(js_name = listKey)] list_key: Option<String>,
    ) -> js_sys::Promise {
        let parsed = serde_json::from_str::<Vec<Candidate>>(&candidates_json)
            .map_err(|e| bad_input(ErrorKind::InvalidCandidate, "invalid candidate list (each needs a string 'id')", e));
        drop(candidates_json);
        self.rerank_list(parsed.map(Rc::new), options, list_key)
    }

    /// `rerankPacked` again on the list of the last rerank that succeeded,
    /// if it was sent under `listKey` (under the history and options as
    /// they are now): a page that sends the same list again sends no copy
    /// of it. Resolves with null when the last list is another one (or
    /// there is none): the caller then sends the list.
    #[wasm_bindgen(js_name = rerankLast, unchecked_return_type = "Promise<PackedRanking | null>")]
    pub fn rerank_last(
        &self,
        #[wasm_bindgen(js_name = listKey)] list_key: String,
        #[wasm_bindgen(unchecked_param_type = "RerankOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let held = self.last.borrow().as_ref().filter(|(key, _)| *key == list_key).map(|(_, list)| list.clone());
        match held {
            Some(list) => self.rerank_list(Ok(list), options, Some(list_key)),
            None => js_sys::Promise::resolve(&JsValue::NULL),
        }
    }
}

impl Ranker {
    /// Reranks `candidates`; once that succeeds, they are the list
    /// `rerankLast` reranks under `list_key` (without a key, none is).
    fn rerank_list(&self, candidates: Result<Rc<Vec<Candidate>>, JsValue>, options: JsValue, list_key: Option<String>) -> js_sys::Promise {
        let (inner, last) = (self.inner.clone(), self.last.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let candidates = candidates?;
            let options: RerankOptions = from_js(options, ErrorKind::InvalidOption, "invalid rerank options")?;
            let ranked = run_rerank(&inner, &candidates, &options).await?;
            *last.borrow_mut() = list_key.map(|key| (key, candidates));
            let order: Vec<u32> = ranked.iter().map(|r| r.original_position as u32).collect();
            let scores: Vec<f32> = ranked.iter().map(|r| r.score).collect();
            let packed = js_sys::Object::new();
            let set = |key: &str, value: &JsValue| js_sys::Reflect::set(&packed, &JsValue::from_str(key), value).map(|_| ());
            set("order", &js_sys::Uint32Array::from(order.as_slice()))?;
            set("scores", &js_sys::Float32Array::from(scores.as_slice()))?;
            if ranked.iter().all(|r| r.model_score.is_some()) && !ranked.is_empty() {
                let model: Vec<f32> = ranked.iter().map(|r| r.model_score.unwrap_or(0.0)).collect();
                set("modelScores", &js_sys::Float32Array::from(model.as_slice()))?;
            }
            if options.explain {
                let reasons: Vec<Option<&HistoryReason>> = ranked.iter().map(|r| r.reason.as_ref()).collect();
                set("reasons", &to_js(&reasons)?)?;
            }
            Ok(packed.into())
        })
    }
}

/// The whole rerank: start on the device, read back asynchronously, order.
async fn run_rerank(
    inner: &Rc<RefCell<Reranker>>,
    candidates: &[Candidate],
    options: &RerankOptions,
) -> Result<Vec<crate::rank::RankedItem>, JsValue> {
    let pending = inner.borrow_mut().start(candidates, options, js_sys::Date::now()).map_err(js_error)?;
    let read = ReadScores {
        scores: match pending.scores {
            Some(scores) => Some(scores.read().await.map_err(js_error)?),
            None => None,
        },
        attention: match pending.attention {
            Some(attention) => Some(attention.read().await.map_err(js_error)?),
            None => None,
        },
        events: pending.events,
        repeat_offsets: pending.repeat_offsets,
        layout: pending.layout,
    };
    let ranked = inner.borrow().finish(candidates, &read, options).map_err(js_error)?;
    Ok(ranked)
}

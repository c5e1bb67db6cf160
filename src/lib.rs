/*!
shelfrank reorders a storefront's candidate lists (search results,
recommendations, popular items, campaign slots) on the shopper's device,
from the shopper's own session history, with a small transformer run by
burn on WebGPU or the CPU.

Layers, each depending only on those before it:
- [`model`]: the network and its file format (pure burn, no wasm);
- [`session`] and [`rank`]: history, candidates, blending, pinned slots;
- [`Reranker`]: a loaded model plus a history, used by the wasm layer and by
  native tools alike;
- `wasm`: the JavaScript-facing `Ranker` class (wasm32 only).

```no_run
use shelfrank::{Backend, Reranker, rank::{Candidate, RerankOptions}, session::{EventKind, HistoryLimits, SessionEvent}};
# fn main() -> shelfrank::Result<()> {
let model = std::fs::read("models/shelfrank-scientific.bin").unwrap();
// The model file carries its tokenizer.
let mut ranker = Reranker::load(&model, None, Backend::Host, HistoryLimits::default())?;
ranker.record(SessionEvent { kind: EventKind::View, id: Some("B0000223UV".into()), title: Some("Gorilla Glue".into()),
    category: None, brand: None, query: None, timestamp: None }, 1.7e12)?;
let list: Vec<Candidate> = serde_json::from_str(r#"[{"id":"a","title":"Epoxy"},{"id":"b","title":"Gloves"}]"#).unwrap();
let ranked = ranker.rerank_blocking(&list, &RerankOptions::default(), 1.7e12)?;
# Ok(()) }
```
*/

#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
pub mod cli;
pub mod dataset;
mod error;
#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
pub mod evaluation;
#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
pub mod kinds;
pub mod model;
pub mod rank;
mod reranker;
pub mod session;
#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
pub mod shop;
#[cfg(all(not(target_arch = "wasm32"), feature = "device"))]
pub mod teacher;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use error::{Error, ErrorKind, Result};
#[cfg(feature = "device")]
pub use reranker::read_scores;
pub use reranker::{Backend, Output, PendingScores, ReadScores, Reranker, ScoreLayout, ScoringInputs, WarmUp};

/// burn's CPU backend's device (training, evaluation and native tools;
/// the page scores on the CPU through [`Backend::Host`]).
#[cfg(feature = "device")]
pub fn cpu_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}

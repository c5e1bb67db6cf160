//! Batching dataset sequences for the network, the literature's full-ranking
//! metrics, the classification view and the reranking view. Native tools
//! only (training and evaluation).

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::Result;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::dataset::{CatalogItem, Dataset, Example, History};
use crate::model::{
    Affinity, EventKind, FastMap, ItemText, ModelFile, RECENCY_BUCKETS, RepeatPrior, SessionInput, SessionRanker, TextEncoder,
    recency_bucket, sha256_hex,
};
use crate::teacher::TeacherEmbeddings;

/// Token rows for every catalog item, in index order.
pub fn catalog_text(items: &[CatalogItem], text: &TextEncoder) -> Result<ItemText> {
    let rows: Vec<Vec<u32>> = items.iter().map(|item| text.encode(&item.text)).collect::<Result<_>>()?;
    Ok(ItemText::from_rows(&rows))
}

/// How catalog items map to ID-embedding rows: item `i` has row `i + 1`,
/// unless the model has no ID embeddings (text only) or the item was held
/// out of training (cold start), which give row 0.
#[derive(Debug, Clone)]
pub struct IdRows {
    rows: Vec<i64>,
}

impl IdRows {
    pub fn new(n_items: usize, with_ids: bool, held_out: &[u32]) -> IdRows {
        let rows: Vec<i64> = if with_ids { (1..=n_items as i64).collect() } else { vec![0; n_items] };
        IdRows { rows }.without(held_out)
    }

    /// The same rows with `items` also mapped to row 0 (text only).
    pub fn without(&self, items: &[u32]) -> IdRows {
        let mut rows = self.rows.clone();
        for &item in items {
            if let Some(row) = rows.get_mut(item as usize) {
                *row = 0;
            }
        }
        IdRows { rows }
    }

    pub fn row(&self, item: u32) -> i64 {
        self.rows[item as usize]
    }

    pub fn all(&self) -> &[i64] {
        &self.rows
    }
}

/// Right-aligned sessions of catalog items. `kinds` gives each event's kind
/// and whether its ID is shown; evaluation shows every event with its ID
/// and its kind (a purchase where the data has one kind).
pub fn session_input(histories: &[&[u32]], ids: &IdRows, kinds: &dyn Fn(usize, usize) -> (EventKind, bool)) -> (SessionInput, Vec<i64>) {
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
            input.item_rows[slot] = if with_id { ids.row(item) } else { 0 };
            input.kinds[slot] = kind.index() as i64;
            input.padding[slot] = false;
            items[slot] = item as i64;
        }
    }
    (input, items)
}

/// Catalog item vectors `[n_items, dim]` from catalog text vectors `[n_items, dim]`.
pub fn catalog_vectors(model: &SessionRanker, text_vectors: Tensor<2>, ids: &IdRows, device: &Device) -> Tensor<2> {
    let [n, _] = text_vectors.dims();
    model.item_vectors(Tensor::<1, Int>::from_data(TensorData::new(ids.all().to_vec(), [n]), device), text_vectors)
}

/// The tokenizer the native tools read: the `tokenizer.json` at `explicit`
/// when given, else none, and each model file tokenises with the tokenizer
/// it carries, as the page does.
pub fn read_tokenizer(explicit: Option<&Path>) -> std::result::Result<Option<Vec<u8>>, String> {
    explicit.map(|path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))).transpose()
}

/// When a `manifest.json` beside the model names it, its sha256 and size
/// follow the rewritten file.
pub fn update_manifest(model: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    let path = model.with_file_name("manifest.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    let mut manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if manifest["model"]["file"] != name.as_str() {
        return Ok(());
    }
    manifest["model"]["sha256"] = serde_json::json!(sha256_hex(bytes));
    manifest["model"]["bytes"] = serde_json::json!(bytes.len());
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).expect("json") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("updated {}", path.display());
    Ok(())
}

/// A model file loaded for evaluation on a dataset: the network, its
/// catalog's token rows and ID rows, and where it came from.
pub struct LoadedModel {
    pub network: SessionRanker,
    pub catalog: ItemText,
    pub ids: IdRows,
    pub max_events: usize,
    pub file: ModelFile,
    pub bytes: usize,
    pub sha256: String,
    pub affinity: Affinity,
}

impl LoadedModel {
    /// Reads `path` and matches its catalog to `data`'s items by shop id
    /// (items training never saw get ID row 0).
    pub fn load(path: &Path, tokenizer_json: Option<&[u8]>, data: &Dataset, device: &Device) -> std::result::Result<LoadedModel, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut file = ModelFile::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if !file.items.is_empty() && data.items.iter().map(|i| &i.id).ne(file.items.iter()) {
            // Files store their catalog sorted: laid out again in the data's order, if it is the same catalog.
            let ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
            let mut theirs: Vec<&String> = file.items.iter().collect();
            let mut ours: Vec<&String> = ids.iter().collect();
            theirs.sort_unstable();
            ours.sort_unstable();
            if theirs != ours {
                return Err(format!("{} was trained on another catalog than {}", path.display(), data.name));
            }
            file = file.for_catalog(&ids).map_err(|e| format!("{}: {e}", path.display()))?.0;
        }
        LoadedModel::assemble(file, &bytes, tokenizer_json, data, device)
    }

    /// A decoded model file whose catalog is `data`'s (in the same order),
    /// or that has no ID embeddings; `sha256` and `bytes` describe the file
    /// as it would be written now.
    pub fn from_file(
        file: ModelFile,
        tokenizer_json: Option<&[u8]>,
        data: &Dataset,
        device: &Device,
    ) -> std::result::Result<LoadedModel, String> {
        let bytes = file.to_bytes();
        LoadedModel::assemble(file, &bytes, tokenizer_json, data, device)
    }

    /// `file`, whose encoded form is `bytes`, matched to `data`'s catalog.
    fn assemble(
        file: ModelFile,
        bytes: &[u8],
        tokenizer_json: Option<&[u8]>,
        data: &Dataset,
        device: &Device,
    ) -> std::result::Result<LoadedModel, String> {
        let text = TextEncoder::for_model(&file, tokenizer_json).map_err(|e| e.to_string())?;
        let catalog = catalog_text(&data.items, &text).map_err(|e| e.to_string())?;
        let with_ids = !file.items.is_empty();
        let rows: HashMap<String, i64> = file.catalog_rows();
        let untrained: Vec<u32> =
            data.items.iter().enumerate().filter(|(_, item)| rows.get(&item.id) == Some(&0)).map(|(i, _)| i as u32).collect();
        let ids = IdRows::new(data.items.len(), with_ids, &untrained);
        let network = file.build(device).map_err(|e| e.to_string())?;
        Ok(LoadedModel {
            network,
            catalog,
            ids,
            max_events: file.config.max_events,
            sha256: sha256_hex(bytes),
            bytes: bytes.len(),
            affinity: file.config.affinity(),
            file,
        })
    }

    /// For every catalog item without a trained ID row, the `k` trained
    /// items whose text is nearest by cosine, best first, `(item, [(from,
    /// cosine)])`, ties to the lower index. Text is compared through
    /// `teacher` (all-MiniLM-L6-v2 sentence embeddings of this catalog,
    /// which validation prefers) when given, else through this model's own
    /// text tower.
    pub fn nearest_trained(
        &self,
        teacher: Option<&TeacherEmbeddings>,
        k: usize,
        device: &Device,
    ) -> std::result::Result<Vec<(u32, NearItems)>, String> {
        let n = self.ids.all().len();
        let untrained: Vec<u32> = (0..n as u32).filter(|&i| self.ids.row(i) == 0).collect();
        let trained: Vec<u32> = (0..n as u32).filter(|&i| self.ids.row(i) != 0).collect();
        if untrained.is_empty() || trained.is_empty() {
            return Ok(Vec::new());
        }
        let units = match teacher {
            Some(t) if t.items.iter().ne(self.file.items.iter()) => {
                return Err("the teacher embeddings were computed for another catalog; run the teacher binary on this one".into());
            }
            Some(t) => Tensor::<2>::from_data(TensorData::new(t.values.clone(), [n, t.dim]), device),
            None => crate::model::unit(self.network.text_vectors(&self.catalog, device)),
        };
        let pick = |items: &[u32]| {
            units
                .clone()
                .select(0, Tensor::<1, Int>::from_data(TensorData::new(items.iter().map(|&i| i as i64).collect(), [items.len()]), device))
        };
        let known = pick(&trained).transpose(); // [d, trained]
        let k = k.clamp(1, trained.len());
        let mut nearest = Vec::with_capacity(untrained.len());
        for chunk in untrained.chunks(512) {
            let cosine = crate::read_scores(pick(chunk).matmul(known.clone()).into_data()).map_err(|e| e.to_string())?; // [chunk, trained]
            for (row, &item) in cosine.chunks(trained.len()).zip(chunk) {
                let mut order: Vec<usize> = (0..row.len()).collect();
                order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                order.truncate(k);
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                nearest.push((item, order.into_iter().map(|j| (trained[j], row[j])).collect()));
            }
        }
        Ok(nearest)
    }

    /// Gives every item without a trained ID row a row from its nearest
    /// trained items ([`LoadedModel::nearest_trained`], blended as
    /// [`Neighbours`] says) and rebuilds the network; returns each such
    /// item with its nearest trained item and their cosine.
    pub fn borrow_id_rows(
        &mut self,
        data: &Dataset,
        tokenizer_json: Option<&[u8]>,
        teacher: Option<&TeacherEmbeddings>,
        neighbours: Neighbours,
        device: &Device,
    ) -> std::result::Result<Vec<(u32, u32, f32)>, String> {
        let nearest = self.nearest_trained(teacher, neighbours.k, device)?;
        if nearest.is_empty() {
            return Ok(Vec::new());
        }
        let borrows: Vec<(usize, Vec<(usize, f32)>)> =
            nearest.iter().map(|(item, near)| (*item as usize, neighbours.weights(near))).collect();
        let mut file = self.file.clone();
        file.borrow_id_rows(&borrows).map_err(|e| e.to_string())?;
        file.meta["borrowedBy"] = serde_json::json!(if teacher.is_some() { "all-MiniLM-L6-v2 cosine" } else { "text tower cosine" });
        file.meta["borrowedFrom"] = serde_json::json!({ "neighbours": neighbours.k, "temperature": neighbours.temperature });
        *self = LoadedModel::from_file(file, tokenizer_json, data, device)?;
        Ok(nearest.into_iter().map(|(item, near)| (item, near[0].0, near[0].1)).collect())
    }

    /// A scorer with `affinity` and, when `repeats` is set, the file's repeat prior.
    pub fn scorer(&self, affinity: Affinity, repeats: bool, device: &Device) -> ModelScorer<'_> {
        let scorer = ModelScorer::new(&self.network, &self.catalog, self.ids.clone(), affinity, device);
        if repeats { scorer.with_repeat_prior(&self.file.config.repeat_prior) } else { scorer }
    }
}

/// An item's nearest trained items by text, `(item, cosine)`, best first.
pub type NearItems = Vec<(u32, f32)>;

/// How an item training never saw gets its ID row: a blend of its `k`
/// nearest trained items' rows by text, weighted by a softmax of their
/// cosines at `temperature` (the blend keeps the rows' mean length).
/// `k = 1` copies the nearest item's row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbours {
    pub k: usize,
    pub temperature: f32,
}

impl Default for Neighbours {
    fn default() -> Self {
        Neighbours { k: 5, temperature: 0.1 }
    }
}

impl Neighbours {
    /// Softmax weights over `near`'s cosines, `(from, weight)`.
    pub fn weights(&self, near: &[(u32, f32)]) -> Vec<(usize, f32)> {
        let near = &near[..self.k.max(1).min(near.len())];
        let best = near.first().map_or(0.0, |n| n.1);
        let raw: Vec<f32> = near.iter().map(|n| ((n.1 - best) / self.temperature.max(1e-6)).exp()).collect();
        let total: f32 = raw.iter().sum();
        near.iter().zip(raw).map(|(n, w)| (n.0 as usize, w / total)).collect()
    }
}

/// Anything that scores every catalog item for a batch of histories.
pub trait Scorer {
    /// `[histories.len() * n_items]` scores, higher is better.
    fn score(&mut self, histories: &[History]) -> Result<Vec<f32>>;
}

/// The network as a [`Scorer`], with its catalog text vectors computed
/// once. Scores through the same calls as the page's `Reranker`
/// ([`SessionRanker::session_states`], then
/// [`SessionRanker::score_candidate_vectors`], then
/// [`RepeatPrior::adjust`]), with every catalog item a candidate; a test
/// checks the two agree on the shipped model.
pub struct ModelScorer<'a> {
    model: &'a SessionRanker,
    text_vectors: Tensor<2>,
    ids: IdRows,
    affinity: Affinity,
    repeat_prior: Vec<f32>,
    device: Device,
}

impl<'a> ModelScorer<'a> {
    /// Scores with no repeat prior; see [`ModelScorer::with_repeat_prior`].
    pub fn new(model: &'a SessionRanker, catalog: &ItemText, ids: IdRows, affinity: Affinity, device: &Device) -> ModelScorer<'a> {
        let text_vectors = model.text_vectors(catalog, device);
        ModelScorer { model, text_vectors, ids, affinity, repeat_prior: Vec::new(), device: device.clone() }
    }

    /// Applies a repeat prior table (a model config's `repeat_prior`).
    pub fn with_repeat_prior(mut self, table: &[f32]) -> ModelScorer<'a> {
        self.repeat_prior = table.to_vec();
        self
    }

    /// The blended scores before the repeat prior, `[histories.len() * n_items]`.
    pub fn blended(&mut self, histories: &[History]) -> Result<Vec<f32>> {
        // Every history event is on a catalog item: its text vector is the catalog's.
        let items: Vec<&[u32]> = histories.iter().map(|h| h.items).collect();
        let (input, items) = session_input(&items, &self.ids, &|b, t| (histories[b].kind(t), true));
        let n = items.len();
        let events = self.text_vectors.clone().select(0, Tensor::<1, Int>::from_data(TensorData::new(items, [n]), &self.device));
        let state = self.model.session_states(&input, events, self.affinity, &self.device);
        let (scores, _) =
            self.model.score_candidate_vectors(&state, self.ids.all(), self.text_vectors.clone(), self.affinity, &self.device, false, None);
        crate::read_scores(scores.into_data())
    }
}

impl Scorer for ModelScorer<'_> {
    fn score(&mut self, histories: &[History]) -> Result<Vec<f32>> {
        let mut scores = self.blended(histories)?;
        let n_items = self.ids.all().len();
        let prior = RepeatPrior::new(&self.repeat_prior);
        for (row, history) in scores.chunks_mut(n_items).zip(histories) {
            prior.adjust(row, 0..n_items as u32, &history.events());
        }
        Ok(scores)
    }
}

/// Item counts and last-item → next-item transitions from training sequences.
pub struct Statistics {
    popularity: Vec<f32>,
    transitions: HashMap<u32, HashMap<u32, f32>>,
}

impl Statistics {
    pub fn new(data: &Dataset) -> Statistics {
        Statistics::without(data, &Default::default())
    }

    /// The statistics of a log in which the `unseen` items never occur
    /// (removed from every training sequence), for baselines on items
    /// new to the catalog.
    pub fn without(data: &Dataset, unseen: &HashSet<u32>) -> Statistics {
        let mut popularity = vec![0f32; data.items.len()];
        let mut transitions: HashMap<u32, HashMap<u32, f32>> = HashMap::new();
        let sequences: Vec<Vec<u32>> =
            data.train_sequences().iter().map(|s| s.items.iter().copied().filter(|i| !unseen.contains(i)).collect()).collect();
        for sequence in &sequences {
            for &item in sequence {
                popularity[item as usize] += 1.0;
            }
            for pair in sequence.windows(2) {
                *transitions.entry(pair[0]).or_default().entry(pair[1]).or_default() += 1.0;
            }
        }
        Statistics { popularity, transitions }
    }

    /// Co-occurrence with the last item, popularity breaking ties.
    pub fn cooccurrence_row(&self, history: &[u32]) -> Vec<f32> {
        let max_pop = self.popularity.iter().fold(1f32, |m, &p| m.max(p));
        let mut row: Vec<f32> = self.popularity.iter().map(|p| 0.5 * p / max_pop).collect();
        if let Some(next) = history.last().and_then(|last| self.transitions.get(last)) {
            for (&item, &count) in next {
                row[item as usize] += count;
            }
        }
        row
    }
}

/// Scores every item by its count in the training sequences.
pub struct Popularity<'a>(pub &'a Statistics);

impl Scorer for Popularity<'_> {
    fn score(&mut self, histories: &[History]) -> Result<Vec<f32>> {
        Ok(histories.iter().flat_map(|_| self.0.popularity.iter().copied()).collect())
    }
}

/// Scores items by how often they followed the history's last item.
pub struct Cooccurrence<'a>(pub &'a Statistics);

impl Scorer for Cooccurrence<'_> {
    fn score(&mut self, histories: &[History]) -> Result<Vec<f32>> {
        Ok(histories.iter().flat_map(|h| self.0.cooccurrence_row(h.items)).collect())
    }
}

/// How the repeat prior was fitted (see [`fit_repeat_prior`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepeatFit {
    /// Training examples (every next item of every training sequence).
    pub examples: usize,
    /// Of those, how many next items were already in the history, per
    /// recency bucket.
    pub repeats_by_bucket: Vec<usize>,
    /// The fitted offset per recency bucket (standardised score units), for
    /// the most frequent kind (the only one in one-kind data).
    pub offsets: Vec<f32>,
    /// On a typed log: each kind's fitted row, by name (kinds the training
    /// sequences never show take the most frequent kind's).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub offsets_by_kind: std::collections::BTreeMap<String, Vec<f32>>,
    /// Training MRR (ranks past [`FIT_DEPTH`] count 0) without and with the offsets.
    pub train_mrr_before: f64,
    pub train_mrr_after: f64,
}

/// Ranks past this depth add nothing to the fit's objective.
pub const FIT_DEPTH: usize = 64;

/// One training example as the fit reads it.
struct RepeatCase {
    target: f32,
    /// The table cell (kind and recency bucket of its newest event) of the target, if in the history.
    target_cell: Option<usize>,
    /// Every other history item: (table cell, score).
    seen: Vec<(usize, f32)>,
    /// The best [`FIT_DEPTH`] scores of the items not in the history, descending.
    unseen: Vec<f32>,
}

impl RepeatCase {
    fn reciprocal_rank(&self, offsets: &[f32]) -> f64 {
        let target = self.target + self.target_cell.map_or(0.0, |c| offsets[c]);
        let above = self.unseen.partition_point(|&s| s >= target) + self.seen.iter().filter(|&&(b, s)| s + offsets[b] >= target).count();
        if above < FIT_DEPTH { 1.0 / (above as f64 + 1.0) } else { 0.0 }
    }
}

/// Fits the repeat prior's offsets on training data: every next item of
/// every sequence in `sequences` (histories capped at `max_events`) is
/// scored by `scorer` (blended, before any prior), and each recency
/// bucket's offset, for each kind of the item's newest event, is the one on
/// a grid from -12 to +3 that maximises the training MRR, coordinate by
/// coordinate, three rounds. Kinds the sequences never show take the most
/// frequent kind's row: on one-kind data (reviews, i.e. purchases) views,
/// clicks and carts take the purchase offsets. Search events carry no item
/// and get none. With `per_kind` false every kind shares one row, fitted
/// on all of them (the comparison for a typed log). Returns the table for
/// [`crate::model::RankerConfig::repeat_prior`] and a report.
pub fn fit_repeat_prior(
    scorer: &mut ModelScorer,
    sequences: &[History],
    max_events: usize,
    per_kind: bool,
) -> Result<(Vec<f32>, RepeatFit)> {
    let mut examples: Vec<(History, u32)> = Vec::new();
    for sequence in sequences {
        for t in 1..sequence.len() {
            examples.push((sequence.slice(t.saturating_sub(max_events), t), sequence.items[t]));
        }
    }
    let n_items = scorer.ids.all().len();
    let mut cases = Vec::with_capacity(examples.len());
    let mut repeats = vec![0usize; RECENCY_BUCKETS];
    // Items in the history per kind of their newest event, over all cases.
    let mut kind_counts = [0usize; EventKind::ALL.len()];
    for chunk in examples.chunks(256) {
        let histories: Vec<History> = chunk.iter().map(|(h, _)| *h).collect();
        let scores = scorer.blended(&histories)?;
        for ((history, target), row) in chunk.iter().zip(scores.chunks(n_items)) {
            // Each history item's cell: the kind and recency of its newest event.
            let mut cell_of: FastMap<u32, usize> = FastMap::default();
            for (back, &item) in history.items.iter().rev().enumerate() {
                let kind = if per_kind { history.kind(history.len() - 1 - back) } else { EventKind::Purchase };
                cell_of.entry(item).or_insert(kind.index() * RECENCY_BUCKETS + recency_bucket(back));
            }
            for &cell in cell_of.values() {
                kind_counts[cell / RECENCY_BUCKETS] += 1;
            }
            let target_cell = cell_of.get(target).copied();
            if let Some(c) = target_cell {
                repeats[c % RECENCY_BUCKETS] += 1;
            }
            let seen = cell_of.iter().filter(|(item, _)| *item != target).map(|(&item, &c)| (c, row[item as usize])).collect();
            let mut unseen: Vec<f32> = row
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != *target as usize && !cell_of.contains_key(&(i as u32)))
                .map(|(_, &s)| s)
                .collect();
            if unseen.len() > FIT_DEPTH {
                unseen.select_nth_unstable_by(FIT_DEPTH, |a, b| b.total_cmp(a));
                unseen.truncate(FIT_DEPTH);
            }
            unseen.sort_by(|a, b| b.total_cmp(a));
            cases.push(RepeatCase { target: row[*target as usize], target_cell, seen, unseen });
        }
    }
    let mrr = |offsets: &[f32]| cases.iter().map(|c| c.reciprocal_rank(offsets)).sum::<f64>() / cases.len().max(1) as f64;
    // Grid points nearest 0 first, so ties keep the smaller offset.
    let mut grid: Vec<f32> = (-48..=12).map(|i| i as f32 * 0.25).collect();
    grid.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let mut table = vec![0f32; RepeatPrior::LEN];
    let before = mrr(&table);
    let mut best = before;
    let shown: Vec<EventKind> = EventKind::ALL.iter().copied().filter(|k| *k != EventKind::Search && kind_counts[k.index()] > 0).collect();
    for _round in 0..3 {
        for kind in &shown {
            for b in 0..RECENCY_BUCKETS {
                let cell = kind.index() * RECENCY_BUCKETS + b;
                for &value in &grid {
                    let mut trial = table.clone();
                    trial[cell] = value;
                    let score = mrr(&trial);
                    if score > best {
                        best = score;
                        table = trial;
                    }
                }
            }
        }
    }
    let cells = |kind: EventKind| kind.index() * RECENCY_BUCKETS..(kind.index() + 1) * RECENCY_BUCKETS;
    let most = shown.iter().copied().max_by_key(|k| (kind_counts[k.index()], k.index())).unwrap_or(EventKind::Purchase);
    let offsets = table[cells(most)].to_vec();
    let offsets_by_kind =
        if shown.len() > 1 { shown.iter().map(|&k| (k.name().to_owned(), table[cells(k)].to_vec())).collect() } else { Default::default() };
    for kind in EventKind::ALL.iter().filter(|k| **k != EventKind::Search && !shown.contains(k)) {
        table[cells(*kind)].copy_from_slice(&offsets);
    }
    let fit = RepeatFit {
        examples: cases.len(),
        repeats_by_bucket: repeats,
        offsets,
        offsets_by_kind,
        train_mrr_before: before,
        train_mrr_after: best,
    };
    Ok((table, fit))
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

/// The 0-based rank of `target` among all items by `scores`. With
/// `mask_history` the user's history items are taken out of the ranking
/// first (and a target in the history counts as missed); without it every
/// item competes, which is RecBole's full-sort protocol for sequential
/// models and so the published numbers' protocol. Ties count against the
/// target.
pub fn target_rank(scores: &[f32], target: usize, history: &[u32], mask_history: bool) -> usize {
    let (published, masked) = target_ranks(scores, target, history);
    if mask_history { masked } else { published }
}

/// `target_rank` on both protocols at once: (every item competes,
/// history masked). One pass over the scores whatever the target's
/// rank, then the history alone: the cost does not depend on how good
/// the model is (an untrained model's pass, which training times to
/// plan its budget, costs what a trained one's does).
pub fn target_ranks(scores: &[f32], target: usize, history: &[u32]) -> (usize, usize) {
    let t = scores[target];
    // The target itself is counted unless its score is NaN (then nothing is `>=` it).
    let published = scores.iter().filter(|&&s| s >= t).count() - usize::from(!t.is_nan());
    if history.iter().any(|&h| h as usize == target) {
        return (published, scores.len());
    }
    let mut seen: Vec<usize> = history.iter().map(|&h| h as usize).filter(|&h| h < scores.len()).collect();
    seen.sort_unstable();
    seen.dedup();
    let seen_above = seen.iter().filter(|&&h| scores[h] >= t).count();
    (published, published - seen_above)
}

/// The most recent `max_events` events of each example's history.
pub fn histories(examples: &[Example], max_events: usize) -> Vec<History<'_>> {
    examples.iter().map(|e| e.recent(max_events)).collect()
}

/// Full-ranking metrics on both protocols.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ranked {
    /// Every catalog item competes, history items included: the
    /// published protocol (RecBole's full sort for sequential models).
    pub published: RankingMetrics,
    /// The user's history items taken out first (a friendlier variant).
    pub history_masked: RankingMetrics,
}

/// Full-ranking metrics of any scorer on `examples`; every catalog item
/// competes. `visit` sees each user's full score row (for the other views).
pub fn evaluate_with(
    scorer: &mut dyn Scorer,
    examples: &[Example],
    n_items: usize,
    max_events: usize,
    visit: &mut dyn FnMut(usize, &[f32]),
) -> Result<Ranked> {
    let (mut published, mut masked) = (MetricsAccumulator::default(), MetricsAccumulator::default());
    let all = histories(examples, max_events);
    for (chunk_index, chunk) in all.chunks(256).enumerate() {
        let scores = scorer.score(chunk)?;
        for (b, history) in chunk.iter().enumerate() {
            let user = chunk_index * 256 + b;
            let row = &scores[b * n_items..(b + 1) * n_items];
            let target = examples[user].target as usize;
            let (all, unseen) = target_ranks(row, target, history.items);
            published.add(all);
            masked.add(unseen);
            visit(user, row);
        }
    }
    Ok(Ranked { published: published.finish(), history_masked: masked.finish() })
}

/// Full-ranking metrics of the network on `examples`.
pub fn evaluate(
    model: &SessionRanker,
    catalog: &ItemText,
    ids: IdRows,
    examples: &[Example],
    max_events: usize,
    affinity: Affinity,
    device: &Device,
) -> Result<Ranked> {
    let mut scorer = ModelScorer::new(model, catalog, ids, affinity, device);
    evaluate_with(&mut scorer, examples, catalog.n, max_events, &mut |_, _| {})
}

/// Pointwise relevance figures at a score threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Classification {
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub pairs: usize,
}

/// Accuracy, precision, recall and F1 of `score > threshold` on labelled pairs.
pub fn classify(pairs: &[(f32, bool)], threshold: f64) -> Classification {
    let (mut tp, mut fp, mut tn, mut fneg) = (0usize, 0usize, 0usize, 0usize);
    for &(score, positive) in pairs {
        match (score as f64 > threshold, positive) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Classification { threshold, accuracy: ratio(tp + tn, pairs.len()), precision, recall, f1, pairs: pairs.len() }
}

/// The threshold with the best F1 on `pairs` (the validation pairs).
pub fn best_threshold(pairs: &[(f32, bool)]) -> f64 {
    let mut sorted: Vec<(f32, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best) = (-1.0, f64::INFINITY);
    for (i, &(score, positive)) in sorted.iter().enumerate() {
        if positive {
            tp += 1;
        } else {
            fp += 1;
        }
        // Only cut between distinct scores.
        if sorted.get(i + 1).is_some_and(|next| next.0 == score) {
            continue;
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / positives.max(1) as f64;
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        if f1 > best_f1 {
            best_f1 = f1;
            let next = sorted.get(i + 1).map_or(score as f64 - 1.0, |n| n.0 as f64);
            best = (score as f64 + next) / 2.0;
        }
    }
    best
}

/// NDCG@10 of the target within one ordered list (0 when absent).
pub fn ndcg10_in_list(order: &[u32], target: u32) -> f64 {
    order.iter().take(10).position(|&i| i == target).map_or(0.0, |p| 1.0 / ((p as f64) + 2.0).log2())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_metrics_follow_the_definitions() {
        let scores = [0.1, 0.9, 0.5, 0.7];
        assert_eq!(target_rank(&scores, 2, &[], true), 2);
        assert_eq!(target_rank(&scores, 2, &[1], true), 1);
        assert_eq!(target_rank(&scores, 2, &[2], true), 4);
        // The published protocol leaves history items in.
        assert_eq!(target_rank(&scores, 2, &[1], false), 2);
        assert_eq!(target_rank(&scores, 2, &[2], false), 2);
        // A history item met twice is taken out once; ties count against the
        // target; a NaN target is beaten by nothing but ranks nowhere better.
        let tied = [0.5, 0.9, 0.5, 0.7, 0.1];
        assert_eq!(target_ranks(&tied, 2, &[1, 1, 4]), (3, 2));
        assert_eq!(target_ranks(&tied, 2, &[0, 3, 0]), (3, 1));
        assert_eq!(target_ranks(&[f32::NAN, 0.2, 0.3], 0, &[1]), (0, 0));
        let mut acc = MetricsAccumulator::default();
        acc.add(0);
        acc.add(20);
        let m = acc.finish();
        assert_eq!(m.recall_10, 0.5);
        assert_eq!(m.recall_50, 1.0);
        assert!((m.ndcg_10 - 0.5).abs() < 1e-12);
        assert!((m.mrr - (1.0 + 1.0 / 21.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn classification_counts_and_threshold_choice() {
        let pairs = [(0.9, true), (0.8, false), (0.7, true), (0.1, false), (0.05, false)];
        let c = classify(&pairs, 0.5);
        assert_eq!((c.precision, c.recall), (2.0 / 3.0, 1.0));
        assert!((c.accuracy - 0.8).abs() < 1e-12);
        let t = best_threshold(&pairs);
        assert!(t > 0.1 && t < 0.7, "{t}");
        assert_eq!(ndcg10_in_list(&[5, 3, 9], 3), 1.0 / 3f64.log2());
        assert_eq!(ndcg10_in_list(&[5, 3, 9], 4), 0.0);
    }
}

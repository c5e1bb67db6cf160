//! Reading a sequential-recommendation dataset in the RecBole / UniSRec
//! "atomic" format (`X.text`, `X.item2index`, `X.{train,valid,test}.inter`),
//! as used by the training and evaluation binaries. Any category works; the
//! file prefix is discovered from the folder.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, Result, err};

/// One catalog item, at its integer index.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogItem {
    /// The shop's id (an ASIN here).
    pub id: String,
    pub title: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    /// "title. category. brand", the format the model reads.
    pub text: String,
}

impl CatalogItem {
    /// An event of `kind` on this item, as the page records it.
    pub fn event(&self, kind: crate::model::EventKind, timestamp: Option<f64>) -> crate::session::SessionEvent {
        crate::session::SessionEvent {
            kind,
            id: Some(self.id.clone()),
            title: Some(self.title.clone()),
            category: self.category.clone(),
            brand: self.brand.clone(),
            query: None,
            timestamp,
        }
    }

    /// The item as a server would list it.
    pub fn candidate(&self) -> crate::rank::Candidate {
        crate::rank::Candidate {
            id: self.id.clone(),
            title: self.title.clone(),
            category: self.category.clone(),
            brand: self.brand.clone(),
            price: None,
            server_score: None,
            pinned: false,
        }
    }
}

/// One user's history and the item that came next.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub user: u32,
    /// Item indices, oldest first.
    pub history: Vec<u32>,
    pub target: u32,
    /// Each history event's kind, where the data has kinds (a shop's typed
    /// log); empty where it has one kind (reviews: every event a purchase).
    pub kinds: Vec<crate::model::EventKind>,
    /// The target event's kind, where the data has kinds.
    pub target_kind: Option<crate::model::EventKind>,
}

impl Example {
    /// The history as scorers read it, its newest `max_events` events.
    pub fn recent(&self, max_events: usize) -> History<'_> {
        History::new(&self.history, &self.kinds).recent(max_events)
    }
}

/// A history as the model reads it: items oldest first, and each event's
/// kind where the data has kinds (empty: every event is a purchase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History<'a> {
    pub items: &'a [u32],
    kinds: &'a [crate::model::EventKind],
}

impl<'a> History<'a> {
    /// `kinds` is empty (every event a purchase) or one per item.
    pub fn new(items: &'a [u32], kinds: &'a [crate::model::EventKind]) -> History<'a> {
        assert!(kinds.is_empty() || kinds.len() == items.len(), "one kind per event, or none");
        History { items, kinds }
    }

    /// Purchases only (the one kind of review data).
    pub fn purchases(items: &'a [u32]) -> History<'a> {
        History { items, kinds: &[] }
    }

    /// The kind of event `t`.
    pub fn kind(&self, t: usize) -> crate::model::EventKind {
        self.kinds.get(t).copied().unwrap_or(crate::model::EventKind::Purchase)
    }

    /// Whether the events carry kinds of their own.
    pub fn typed(&self) -> bool {
        !self.kinds.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The newest `max_events` events.
    pub fn recent(&self, max_events: usize) -> History<'a> {
        self.slice(self.items.len().saturating_sub(max_events), self.items.len())
    }

    /// Events `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> History<'a> {
        History { items: &self.items[start..end], kinds: if self.kinds.is_empty() { &[] } else { &self.kinds[start..end] } }
    }

    /// Each event as the repeat prior reads it: its item and kind.
    pub fn events(&self) -> Vec<(Option<u32>, crate::model::EventKind)> {
        (0..self.len()).map(|t| (Some(self.items[t]), self.kind(t))).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub items: Vec<CatalogItem>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
}

impl Dataset {
    /// Loads the dataset in `dir`.
    pub fn load(dir: &Path) -> Result<Dataset> {
        let name = discover_prefix(dir)?;
        let file = |suffix: &str| -> PathBuf { dir.join(format!("{name}.{suffix}")) };
        let index = read_item_index(&file("item2index"))?;
        let items = read_items(&file("text"), &index)?;
        let valid = read_inter(&file("valid.inter"), items.len())?;
        let test = read_inter(&file("test.inter"), items.len())?;
        Ok(Dataset { name, items, valid, test })
    }

    /// Keeps only the first `max` users (for quick runs and smoke tests).
    pub fn keep_users(&mut self, max: Option<usize>) {
        if let Some(max) = max {
            self.valid.truncate(max);
            self.test.truncate(max);
        }
    }

    /// Per-user training sequences: everything before the validation target,
    /// with each event's kind where the data has kinds. Training predicts
    /// each next item of these.
    pub fn train_sequences(&self) -> Vec<History<'_>> {
        self.valid.iter().map(|e| History::new(&e.history, &e.kinds)).filter(|h| h.len() >= 2).collect()
    }

    /// Whether the events carry kinds of their own (a shop's typed log).
    pub fn typed(&self) -> bool {
        self.test.iter().any(|e| !e.kinds.is_empty())
    }
}

fn discover_prefix(dir: &Path) -> Result<String> {
    let entries =
        fs::read_dir(dir).map_err(|e| crate::Error::new(ErrorKind::Data, format!("cannot read dataset folder {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(prefix) = name.strip_suffix(".item2index") {
            return Ok(prefix.to_owned());
        }
    }
    err(ErrorKind::Data, format!("{} has no *.item2index file; expected the RecBole/UniSRec atomic format", dir.display()))
}

/// Non-empty lines, without the RecBole header line (`name:type` columns)
/// when there is one; the `*2index` files have none.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).map_err(|e| crate::Error::new(ErrorKind::Data, format!("cannot read {}: {e}", path.display())))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    if lines.peek().is_some_and(|first| first.split('\t').all(|col| col.contains(':'))) {
        lines.next();
    }
    Ok(lines.map(str::to_owned).collect())
}

fn read_item_index(path: &Path) -> Result<Vec<(String, usize)>> {
    read_lines(path)?
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let (id, index) = line.split_once('\t').ok_or_else(|| bad_line(path, n))?;
            let index = index.trim().parse().map_err(|_| bad_line(path, n))?;
            Ok((id.trim().to_owned(), index))
        })
        .collect()
}

fn read_items(path: &Path, index: &[(String, usize)]) -> Result<Vec<CatalogItem>> {
    let mut texts = std::collections::HashMap::new();
    for (n, line) in read_lines(path)?.iter().enumerate() {
        let (id, text) = line.split_once('\t').ok_or_else(|| bad_line(path, n))?;
        texts.insert(id.trim().to_owned(), text.to_owned());
    }
    let mut items: Vec<Option<CatalogItem>> = vec![None; index.len()];
    for (id, i) in index {
        if *i >= items.len() {
            return err(ErrorKind::Data, format!("item index {i} of {id} is out of range"));
        }
        let raw = texts.get(id).map(String::as_str).unwrap_or("");
        items[*i] = Some(split_item_text(id, raw));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| item.ok_or_else(|| crate::Error::new(ErrorKind::Data, format!("no item has index {i}"))))
        .collect()
}

/// Splits "title. category path. brand." from the right, since titles may
/// themselves contain ". ".
pub fn split_item_text(id: &str, raw: &str) -> CatalogItem {
    let trimmed = raw.trim().trim_end_matches('.').trim();
    let mut parts = trimmed.rsplitn(3, ". ");
    let (brand, category, title) = match (parts.next(), parts.next(), parts.next()) {
        (Some(brand), Some(category), Some(title)) => (Some(brand), Some(category), title),
        (Some(category), Some(title), None) => (None, Some(category), title),
        (Some(title), None, None) => (None, None, title),
        _ => (None, None, ""),
    };
    let clean = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let (category, brand) = (clean(category), clean(brand));
    let title = title.trim().to_owned();
    let text = crate::session::item_text(&title, category.as_deref(), brand.as_deref());
    CatalogItem { id: id.to_owned(), title, category, brand, text }
}

fn read_inter(path: &Path, n_items: usize) -> Result<Vec<Example>> {
    read_lines(path)?
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let mut cols = line.split('\t');
            let (Some(user), Some(history), Some(target)) = (cols.next(), cols.next(), cols.next()) else {
                return Err(bad_line(path, n));
            };
            let parse = |s: &str| -> Result<u32> {
                let v: u32 = s.trim().parse().map_err(|_| bad_line(path, n))?;
                if v as usize >= n_items {
                    return Err(bad_line(path, n));
                }
                Ok(v)
            };
            Ok(Example {
                user: user.trim().parse().map_err(|_| bad_line(path, n))?,
                history: history.split_whitespace().map(parse).collect::<Result<_>>()?,
                target: parse(target)?,
                kinds: Vec::new(),
                target_kind: None,
            })
        })
        .collect()
}

/// Catalogs larger than this train with a sampled softmax unless told
/// otherwise: a full softmax step's cost grows with the catalog.
pub const FULL_SOFTMAX_ITEMS: usize = 20_000;

/// The negatives a step samples when `train` is not told
/// (`--negatives`): none (the full softmax) up to [`FULL_SOFTMAX_ITEMS`]
/// items, 2,048 past it.
pub fn default_negatives(items: usize) -> usize {
    if items > FULL_SOFTMAX_ITEMS { 2048 } else { 0 }
}

/// Sampled softmax's logQ correction: the chance that an item whose share
/// of all training targets is `share` is among a step's candidates, which
/// are the step's `targets` next items (taken as draws by share) plus
/// `negatives` draws uniform over `items` items. Training subtracts its log
/// from the item's logit.
pub fn sample_inclusion(share: f64, targets: usize, negatives: usize, items: usize) -> f64 {
    let missed_by_targets = (1.0 - share).powi(targets as i32);
    let missed_by_negatives = (1.0 - 1.0 / items as f64).powi(negatives as i32);
    1.0 - missed_by_targets * missed_by_negatives
}

fn bad_line(path: &Path, n: usize) -> crate::Error {
    crate::Error::new(ErrorKind::Data, format!("{} line {} is malformed", path.display(), n + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_text_splits_from_the_right() {
        let item = split_item_text("A1", "Dr. Bob's Glue 8 oz. Industrial & Scientific Adhesives. Gorilla. ");
        assert_eq!(item.title, "Dr. Bob's Glue 8 oz");
        assert_eq!(item.category.as_deref(), Some("Industrial & Scientific Adhesives"));
        assert_eq!(item.brand.as_deref(), Some("Gorilla"));
        assert_eq!(item.text, "Dr. Bob's Glue 8 oz. Industrial & Scientific Adhesives. Gorilla");
    }

    /// The inclusion chance matches how often a simulated step's candidate
    /// set holds each item: a popular item, a rare one and one never a target.
    #[test]
    fn sample_inclusion_matches_the_sampling_it_corrects() {
        let shares = [0.3, 0.01, 0.0];
        let (items, targets, negatives, steps) = (50usize, 20, 10, 20_000);
        let mut state = 11u64;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut seen = [0usize; 3];
        for _ in 0..steps {
            let mut present = [false; 3];
            for _ in 0..targets {
                // Items 0..3 by their shares, the rest of the mass on items 3..
                let mut u = uniform();
                for (k, &share) in shares.iter().enumerate() {
                    if u < share {
                        present[k] = true;
                        break;
                    }
                    u -= share;
                }
            }
            for _ in 0..negatives {
                let item = (uniform() * items as f64) as usize;
                if item < 3 {
                    present[item] = true;
                }
            }
            for k in 0..3 {
                seen[k] += present[k] as usize;
            }
        }
        for (k, &share) in shares.iter().enumerate() {
            let expected = sample_inclusion(share, targets, negatives, items);
            let observed = seen[k] as f64 / steps as f64;
            assert!((observed - expected).abs() < 0.01, "item {k}: observed {observed}, expected {expected}");
        }
        // Never a target: only the uniform draws bring it in.
        assert!((sample_inclusion(0.0, targets, negatives, items) - (1.0 - 0.98f64.powi(10))).abs() < 1e-12);
    }

    #[test]
    fn the_shipped_dataset_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/scientific");
        let data = Dataset::load(&dir).unwrap();
        assert_eq!(data.name, "Scientific");
        assert_eq!(data.items.len(), 4385);
        assert_eq!(data.valid.len(), 8442);
        assert_eq!(data.test.len(), 8442);
        // The test history is the validation history plus its target.
        let (v, t) = (&data.valid[0], &data.test[0]);
        assert_eq!(&t.history[..t.history.len() - 1], &v.history[v.history.len().saturating_sub(49)..]);
    }
}

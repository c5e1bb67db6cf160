//! The model file: one self-describing binary, loaded from bytes.
//!
//! ```text
//! offset  size  what
//! 0       8     magic "SHLFRANK"
//! 8       4     format version, u32 little-endian (1, or 2 with int4 tensors)
//! 12      32    sha256 of everything after it (the payload)
//! 44      4     header length H, u32 little-endian
//! 48      H     header, UTF-8 JSON: config, catalog ids, vocabulary, the
//!               tokenizer (packed), tensor table
//! 48+H    ...   tensor data, in table order
//! ```
//!
//! A tensor is stored as `f32` (little-endian) or as int8: one scale per
//! row (all dimensions but the last flattened), then the row-major int8
//! values, symmetric (`value = q * scale`). The scales are f16 (`i8f16`,
//! what training writes: 2 bytes a row instead of 4; rounded up so that no
//! value clips, so at most 2^-10 above the f32 scale, far under int8's own
//! step) or f32 (`i8`, files from before). `i4f16` is the same with int4
//! values in −7..=7 (scale: the row's largest magnitude over 7), two a
//! byte, low nibble first, row-major over the whole tensor (an odd count
//! ends in a zero nibble): what training writes for the ID table by
//! default, half its bytes (on Scientific, validation NDCG@10 moved by
//! −0.0004 to +0.0001). The hash is checked before
//! anything in the payload is parsed, so a tampered file never builds a
//! tensor.

use std::collections::HashMap;

#[cfg(feature = "device")]
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
#[cfg(feature = "device")]
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::RankerConfig;
#[cfg(feature = "device")]
use super::SessionRanker;
use super::wordpiece::{PackedWordPiece, WordPiece, front_code, front_decode};
use crate::error::{Error, ErrorKind, Result, err};

/// The ID-embedding tensor's name in the file.
const ITEM_IDS: &str = "item_ids.weight";
/// The token-embedding tensor's name in the file.
const TOKENS: &str = "tokens.weight";

pub const MAGIC: &[u8; 8] = b"SHLFRANK";
/// The newest format version this build reads and writes. Version 2 adds
/// int4 tensors (`i4f16`); a file without any is written as version 1, so
/// that builds from before read it too, and a build from before refuses a
/// file with int4 tensors by its version, clearly.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
const OLDEST_VERSION: u32 = 1;
const PREFIX: usize = 8 + 4 + 32;
/// Largest header accepted, against absurd lengths in damaged files.
const MAX_HEADER: usize = 64 << 20;

/// How a tensor's numbers are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredAs {
    F32,
    /// int8 values, f32 row scales (files written before `I8F16`).
    I8,
    /// int8 values, f16 row scales.
    I8F16,
    /// int4 values (−7..=7, two a byte), f16 row scales.
    I4F16,
}

impl StoredAs {
    /// The largest stored magnitude of a quantised format (`None`: f32).
    fn levels(self) -> Option<f32> {
        match self {
            StoredAs::F32 => None,
            StoredAs::I8 | StoredAs::I8F16 => Some(127.0),
            StoredAs::I4F16 => Some(7.0),
        }
    }
}

/// One named tensor, as f32 values in memory.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub stored_as: StoredAs,
    /// The token table's int8 values and row scales as read from an int8
    /// or int4 file (only `tokens.weight`, the one tensor the host reads row by
    /// row), so that it can stay int8 in memory without deriving them
    /// again from `values`. `values` are what the tensor is: code that
    /// changes them need not clear this, and a reader uses it only where
    /// [`Int8Rows::matches`] says it still gives exactly `values`. Not
    /// part of equality.
    pub int8: Option<Int8Rows>,
}

impl PartialEq for TensorEntry {
    fn eq(&self, other: &TensorEntry) -> bool {
        self.name == other.name && self.shape == other.shape && self.values == other.values && self.stored_as == other.stored_as
    }
}

/// A tensor's int8 values and a scale per row (the last dimension): each
/// value is `values[i] as f32 * scales[i / row]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Rows {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

impl Int8Rows {
    /// Whether these give exactly `values`, rows of `dim` (one multiply
    /// and compare a value: far cheaper than deriving them).
    pub fn matches(&self, values: &[f32], dim: usize) -> bool {
        dim > 0
            && self.values.len() == values.len()
            && self.scales.len() * dim == values.len()
            && self.values.chunks_exact(dim).zip(values.chunks_exact(dim)).zip(&self.scales).all(|((q, v), &scale)| {
                q.iter().zip(v).fold(true, |same, (&q, &v)| same & (q as f32 * scale == v))
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TensorRecord {
    name: String,
    shape: Vec<usize>,
    stored_as: StoredAs,
    bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    config: RankerConfig,
    /// Left out when the ids are `packed_items`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    items: Vec<String>,
    /// The catalog ids sorted and front-coded (see [`pack_items`]), where
    /// every id can be: what files store since they are.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    packed_items: String,
    /// Left out when it is the packed tokenizer's ids, sorted (files from
    /// before implicit ids), or when those ids are implicit (0, 1, 2, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vocab: Vec<u32>,
    tokenizer_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wordpiece: Option<PackedWordPiece>,
    #[serde(default)]
    meta: serde_json::Value,
    tensors: Vec<TensorRecord>,
}

/// Everything in a model file, decoded.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub config: RankerConfig,
    /// Catalog ids; id `items[i]` owns ID-embedding row `i + 1`.
    pub items: Vec<String>,
    /// Tokenizer ids; id `vocab[i]` owns token-embedding row `i + 1`.
    pub vocab: Vec<u32>,
    /// sha256 (hex) of the `tokenizer.json` the model was trained with.
    pub tokenizer_sha256: String,
    /// That tokenizer, packed for this model (files from before it was
    /// carried have none: they need the `tokenizer.json`).
    pub wordpiece: Option<PackedWordPiece>,
    /// Free-form facts about training (data, epochs, metrics).
    pub meta: serde_json::Value,
    pub tensors: Vec<TensorEntry>,
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl ModelFile {
    /// Decodes and verifies a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<ModelFile> {
        ModelFile::from_bytes_digested(bytes, None)
    }

    /// [`ModelFile::from_bytes`], given the sha256 of the file's payload
    /// (every byte after the stored hash, offset 44 on) as computed by
    /// someone else: the browser's own SubtleCrypto hashes a megabyte in a
    /// few milliseconds, where sha256 in freshly loaded wasm took ~57 ms of
    /// a page view's load. It is compared with the stored hash instead of
    /// hashing again; the hash guards against corruption and truncation
    /// (anyone who can change the file can change its stored hash too), so
    /// the digest of the same bytes, from the caller, serves as well.
    pub fn from_bytes_digested(bytes: &[u8], payload_sha256: Option<&[u8]>) -> Result<ModelFile> {
        if bytes.len() < PREFIX + 4 || &bytes[..8] != MAGIC {
            return err(ErrorKind::ModelFile, "these bytes are not a shelfrank model file (bad magic); check the model URL");
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return err(
                ErrorKind::ModelFile,
                format!(
                    "model file format version {version} is not supported by this build (it reads versions {OLDEST_VERSION} to {FORMAT_VERSION}); use a model made for this package version"
                ),
            );
        }
        let payload = &bytes[PREFIX..];
        let digest = match payload_sha256 {
            Some(digest) => digest.to_vec(),
            None => Sha256::digest(payload).to_vec(),
        };
        if digest != bytes[12..PREFIX] {
            return err(ErrorKind::ModelFile, "the model file is corrupted or truncated (its sha256 does not match); download it again");
        }
        let header_len = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
        if header_len > MAX_HEADER || 4 + header_len > payload.len() {
            return err(ErrorKind::ModelFile, "the model file's header length is out of range");
        }
        let mut header: Header = serde_json::from_slice(&payload[4..4 + header_len])
            .map_err(|e| Error::new(ErrorKind::ModelFile, format!("the model file's header is not valid: {e}")))?;
        header.config.validate()?;
        if !header.packed_items.is_empty() {
            if !header.items.is_empty() {
                return err(ErrorKind::ModelFile, "the model file lists its catalog twice (items and packedItems)");
            }
            header.items = unpack_items(&header.packed_items)?;
        }
        match &header.wordpiece {
            Some(packed) if packed.implicit_ids => {
                if !header.vocab.is_empty() {
                    return err(ErrorKind::ModelFile, "the model file lists a vocabulary although its tokenizer's ids are its token rows");
                }
                header.vocab = (0..packed.kept() as u32).collect();
            }
            Some(packed) if header.vocab.is_empty() => header.vocab = sorted(&packed.ids),
            _ => {}
        }
        if header.items.len() != header.config.n_items || header.vocab.len() != header.config.n_tokens {
            return err(ErrorKind::ModelFile, "the model file's catalog or vocabulary does not match its configuration");
        }

        let mut data = &payload[4 + header_len..];
        let mut tensors = Vec::with_capacity(header.tensors.len());
        for record in header.tensors {
            if record.bytes > data.len() {
                return err(ErrorKind::ModelFile, format!("tensor '{}' runs past the end of the model file", record.name));
            }
            let (chunk, rest) = data.split_at(record.bytes);
            data = rest;
            if record.stored_as == StoredAs::I4F16 && version < 2 {
                return err(ErrorKind::ModelFile, format!("tensor '{}' is int4, which format version {version} cannot hold", record.name));
            }
            let keep_int8 = record.name == TOKENS;
            let (values, int8) = decode_values(&record, chunk, keep_int8)?;
            tensors.push(TensorEntry { name: record.name, shape: record.shape, values, stored_as: record.stored_as, int8 });
        }
        if !data.is_empty() {
            return err(ErrorKind::ModelFile, "the model file has trailing bytes after its last tensor");
        }
        Ok(ModelFile {
            config: header.config,
            items: header.items,
            vocab: header.vocab,
            tokenizer_sha256: header.tokenizer_sha256,
            wordpiece: header.wordpiece,
            meta: header.meta,
            tensors,
        })
    }

    /// Catalog ids that training never saw (`meta.heldOutItems`): their
    /// ID rows were never trained, so they are scored as unknown items (row 0).
    pub fn untrained(&self) -> std::collections::HashSet<&str> {
        self.listed("heldOutItems")
    }

    /// Catalog ids training never saw that have since borrowed a trained
    /// item's row (`meta.borrowedIdRows`, see [`ModelFile::borrow_id_rows`]).
    pub fn borrowed(&self) -> std::collections::HashSet<&str> {
        self.listed("borrowedIdRows")
    }

    /// The ids a `meta` key lists.
    fn listed(&self, key: &str) -> std::collections::HashSet<&str> {
        self.meta[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default()
    }

    /// Each catalog id's ID-embedding row: `i + 1` for `items[i]`, or 0
    /// (unknown) for items training never saw. Collected into whatever
    /// map the caller keeps (the page's reranker keeps its own).
    pub fn catalog_rows<C: FromIterator<(String, i64)>>(&self) -> C {
        let untrained = self.untrained();
        self.items.iter().enumerate().map(|(i, id)| (id.clone(), if untrained.contains(id.as_str()) { 0 } else { i as i64 + 1 })).collect()
    }

    fn id_table(&mut self) -> Result<&mut TensorEntry> {
        let dim = self.config.dim;
        let rows = self.config.n_items + 1;
        match self.tensors.iter_mut().find(|t| t.name == ITEM_IDS) {
            Some(t) if t.shape == [rows, dim] => Ok(t),
            _ => err(ErrorKind::ModelFile, format!("the model file has no '{ITEM_IDS}' tensor of shape [{rows}, {dim}]")),
        }
    }

    /// The same model laid out for the catalog `ids` (a shop's current
    /// catalog, in its order): items it already knew keep their ID rows,
    /// items new to it join `heldOutItems` (untrained, scored from their
    /// text until they borrow a row), items no longer in `ids` are
    /// dropped. Returns the file and how many items were new and dropped.
    pub fn for_catalog(&self, ids: &[String]) -> Result<(ModelFile, usize, usize)> {
        let mut seen = std::collections::HashSet::new();
        if let Some(duplicate) = ids.iter().find(|id| !seen.insert(id.as_str())) {
            return err(ErrorKind::Data, format!("the catalog lists item id '{duplicate}' twice"));
        }
        let mut file = self.clone();
        let dim = self.config.dim;
        let old: HashMap<&str, usize> = self.items.iter().enumerate().map(|(i, id)| (id.as_str(), i + 1)).collect();
        let old_untrained = self.untrained();
        let mut untrained: Vec<String> = Vec::new();
        // The ID table, checked against the old catalog, re-laid for the new one.
        let entry = file.id_table()?;
        let table = std::mem::take(&mut entry.values);
        let mut values = table[..dim].to_vec();
        for id in ids {
            match old.get(id.as_str()) {
                Some(&row) => values.extend_from_slice(&table[row * dim..(row + 1) * dim]),
                None => values.extend(std::iter::repeat_n(0.0, dim)),
            }
            if !old.contains_key(id.as_str()) || old_untrained.contains(id.as_str()) {
                untrained.push(id.clone());
            }
        }
        entry.shape = vec![ids.len() + 1, dim];
        entry.values = values;
        let dropped = self.items.iter().filter(|id| !seen.contains(id.as_str())).count();
        let new = ids.iter().filter(|id| !old.contains_key(id.as_str())).count();
        file.config.n_items = ids.len();
        file.config.validate()?;
        file.items = ids.to_vec();
        if !untrained.is_empty() || !self.meta["heldOutItems"].is_null() {
            file.meta["heldOutItems"] = serde_json::json!(untrained);
        }
        Ok((file, new, dropped))
    }

    /// The same model keeping token rows only for the words `texts` use (a
    /// shop's catalog): a model trained with every word of its tokenizer
    /// (`train --vocabulary full`, about 2 MB) becomes page-sized for one
    /// catalog. Each text tokenises exactly as before, since greedy
    /// longest-match splitting over a vocabulary that keeps every piece a
    /// text used picks the same pieces; a word of another text (a search
    /// query) that needs a piece no catalog text used becomes unknown.
    /// Returns the file and how many token rows it dropped.
    pub fn for_texts(&self, texts: &[&str]) -> Result<(ModelFile, usize)> {
        let Some(packed) = &self.wordpiece else {
            return err(ErrorKind::ModelFile, "the model file carries no tokenizer to choose its words from");
        };
        if !self.vocab.is_sorted() {
            return err(ErrorKind::ModelFile, "the model file's vocabulary is not in id order");
        }
        let wordpiece = WordPiece::from_packed(packed)?;
        let mut used: Vec<u32> = texts.iter().flat_map(|t| wordpiece.encode(t)).filter(|id| self.vocab.binary_search(id).is_ok()).collect();
        used.sort_unstable();
        used.dedup();
        let dim = self.config.dim;
        let n = self.vocab.len();
        let mut file = self.clone();
        let Some(entry) = file.tensors.iter_mut().find(|t| t.name == TOKENS && t.shape == [n + 1, dim]) else {
            return err(ErrorKind::ModelFile, format!("the model file has no '{TOKENS}' tensor of shape [{}, {dim}]", n + 1));
        };
        let mut values = entry.values[..dim].to_vec();
        for id in &used {
            let row = self.vocab.binary_search(id).expect("a kept id") + 1;
            values.extend_from_slice(&entry.values[row * dim..(row + 1) * dim]);
        }
        entry.shape = vec![used.len() + 1, dim];
        entry.values = values;
        file.wordpiece = Some(wordpiece.pack(&used)?);
        file.config.n_tokens = used.len();
        let dropped = n - used.len();
        file.vocab = used;
        Ok((file, dropped))
    }

    /// Gives untrained items trained ID rows: each `(item, sources)` entry
    /// sets `item`'s row to the weighted mean of its sources' rows
    /// (`(from, weight)`, indices into `items`, the first the nearest),
    /// rescaled to the sources' weighted mean length so that blending does
    /// not shrink it. A source whose row points away from the first's
    /// (cosine ≤ 0) is left out, since a blend of opposed rows points
    /// nowhere either came from; one source copies its row. `item` leaves
    /// `heldOutItems` and is listed under `meta.borrowedIdRows`.
    pub fn borrow_id_rows(&mut self, borrows: &[(usize, Vec<(usize, f32)>)]) -> Result<()> {
        if borrows.is_empty() {
            return Ok(());
        }
        let dim = self.config.dim;
        let n = self.items.len();
        let table = &mut self.id_table()?.values;
        let length = |row: &[f32]| row.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (item, sources) in borrows {
            if let Some(bad) = std::iter::once(*item).chain(sources.iter().map(|s| s.0)).find(|&i| i >= n) {
                return err(ErrorKind::Data, format!("item index {bad} is outside the catalog of {n}"));
            }
            let Some(&(nearest, _)) = sources.first() else {
                return err(ErrorKind::Data, format!("item index {item} has no row to borrow"));
            };
            let row_of = |i: usize| &table[(i + 1) * dim..(i + 2) * dim];
            let first = row_of(nearest);
            let kept: Vec<(&[f32], f32)> = sources
                .iter()
                .enumerate()
                .map(|(j, &(from, weight))| (j, row_of(from), weight))
                .filter(|(j, row, _)| *j == 0 || row.iter().zip(first).map(|(a, b)| a * b).sum::<f32>() > 0.0)
                .map(|(_, row, weight)| (row, weight))
                .collect();
            let total: f32 = kept.iter().map(|k| k.1).sum();
            let mut row = vec![0f32; dim];
            let mut mean_length = 0f32;
            for (source, weight) in &kept {
                let weight = weight / total;
                mean_length += weight * length(source);
                row.iter_mut().zip(*source).for_each(|(r, v)| *r += weight * v);
            }
            let norm = length(&row);
            let scale = if kept.len() > 1 && norm > 0.0 { mean_length / norm } else { 1.0 };
            row.iter_mut().for_each(|r| *r *= scale);
            table[(item + 1) * dim..(item + 2) * dim].copy_from_slice(&row);
        }
        let borrowed: std::collections::BTreeSet<String> = borrows.iter().map(|(item, _)| self.items[*item].clone()).collect();
        let untrained: std::collections::BTreeSet<&str> = self.untrained().into_iter().filter(|id| !borrowed.contains(*id)).collect();
        let mut listed: std::collections::BTreeSet<String> = self.borrowed().into_iter().map(str::to_owned).collect();
        listed.extend(borrowed);
        self.meta["heldOutItems"] = serde_json::json!(untrained);
        self.meta["borrowedIdRows"] = serde_json::json!(listed);
        Ok(())
    }

    /// Encodes the file, hashing the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (wordpiece, vocab, token_rows) = self.stored_tokenizer();
        let (items, packed_items, item_rows) = self.stored_items();
        let mut data = Vec::new();
        let mut records = Vec::with_capacity(self.tensors.len());
        for tensor in &self.tensors {
            let before = data.len();
            let rows = match tensor.name.as_str() {
                TOKENS => token_rows.as_ref(),
                ITEM_IDS => item_rows.as_ref(),
                _ => None,
            };
            match rows {
                Some(rows) => {
                    let dim = self.config.dim;
                    let values = rows.iter().flat_map(|&row| &tensor.values[row * dim..(row + 1) * dim]).copied().collect();
                    let rows = TensorEntry {
                        name: tensor.name.clone(),
                        shape: tensor.shape.clone(),
                        values,
                        stored_as: tensor.stored_as,
                        int8: None,
                    };
                    encode_values(&rows, &mut data);
                }
                None => encode_values(tensor, &mut data),
            }
            records.push(TensorRecord {
                name: tensor.name.clone(),
                shape: tensor.shape.clone(),
                stored_as: tensor.stored_as,
                bytes: data.len() - before,
            });
        }
        let header = Header {
            config: self.config.clone(),
            items,
            packed_items,
            vocab,
            tokenizer_sha256: self.tokenizer_sha256.clone(),
            wordpiece,
            meta: self.meta.clone(),
            tensors: records,
        };
        let header = serde_json::to_vec(&header).expect("the header serialises");
        let mut payload = Vec::with_capacity(4 + header.len() + data.len());
        payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
        payload.extend_from_slice(&header);
        payload.extend_from_slice(&data);

        let mut bytes = Vec::with_capacity(PREFIX + payload.len());
        bytes.extend_from_slice(MAGIC);
        let version = if self.tensors.iter().any(|t| t.stored_as == StoredAs::I4F16) { FORMAT_VERSION } else { OLDEST_VERSION };
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&payload));
        bytes.extend_from_slice(&payload);
        bytes
    }

    /// The catalog as the file stores it, a list or packed, and the ID
    /// table's rows in the order it stores them (`None`: as they are).
    /// Packed, the ids are sorted and front-coded, and the rows follow
    /// them: the shipped model's catalog took 5.4 KB less, gzipped.
    fn stored_items(&self) -> (Vec<String>, String, Option<Vec<usize>>) {
        let n = self.items.len();
        let table = self.tensors.iter().any(|t| t.name == ITEM_IDS && t.shape == [n + 1, self.config.dim]);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| self.items[a].cmp(&self.items[b]));
        let sorted: Vec<&str> = order.iter().map(|&i| self.items[i].as_str()).collect();
        let packable = sorted.windows(2).all(|w| w[0] != w[1]) && sorted.iter().all(|id| !id.is_empty() && !id.contains(' '));
        if n == 0 || !packable || (!table && order.iter().enumerate().any(|(k, &i)| k != i)) {
            return (self.items.clone(), String::new(), None);
        }
        let rows = std::iter::once(0).chain(order.iter().map(|&i| i + 1)).collect();
        (Vec::new(), pack_items(&sorted), table.then_some(rows))
    }

    /// The tokenizer and vocabulary as the file stores them, and the token
    /// table's rows in the order it stores them (`None`: as they are).
    /// A packed tokenizer whose ids are the vocabulary is stored with
    /// implicit ids (see [`PackedWordPiece`]): the table's rows in the
    /// order of its entries, and neither list of ids.
    fn stored_tokenizer(&self) -> (Option<PackedWordPiece>, Vec<u32>, Option<Vec<usize>>) {
        let n = self.vocab.len();
        let table = self.tensors.iter().any(|t| t.name == TOKENS && t.shape == [n + 1, self.config.dim]);
        match &self.wordpiece {
            Some(packed) if packed.implicit_ids => (Some(packed.clone()), Vec::new(), None),
            Some(packed) if table && sorted(&packed.ids) == self.vocab => {
                let (implicit, ids) = packed.with_implicit_ids().expect("explicit ids");
                // `vocab` is sorted: a tokenizer id's row is its place in it, plus one.
                let rows = std::iter::once(0).chain(ids.iter().map(|id| self.vocab.binary_search(id).expect("a kept id") + 1)).collect();
                (Some(implicit), Vec::new(), Some(rows))
            }
            Some(packed) if sorted(&packed.ids) == self.vocab => (Some(packed.clone()), Vec::new(), None),
            other => (other.clone(), self.vocab.clone(), None),
        }
    }

    /// Reads every parameter of `model` (a synchronous readback: native
    /// tools only, never in the browser).
    #[cfg(feature = "device")]
    pub fn capture(model: &SessionRanker, stored_as: StoredAs) -> Vec<TensorEntry> {
        let mut reader = ParamReader { path: Vec::new(), tensors: Vec::new(), stored_as };
        model.visit(&mut reader);
        reader.tensors
    }

    /// Builds the network on `device` from the stored tensors. Every
    /// parameter must be present with its exact shape.
    #[cfg(feature = "device")]
    pub fn build(&self, device: &Device) -> Result<SessionRanker> {
        let model = self.config.init(device);
        let by_name: HashMap<&str, &TensorEntry> = self.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut writer = ParamWriter { path: Vec::new(), tensors: by_name, device, problem: None };
        let model = model.map(&mut writer);
        if let Some(problem) = writer.problem {
            return err(ErrorKind::ModelFile, problem);
        }
        if let Some(extra) = writer.tensors.keys().next() {
            return err(
                ErrorKind::ModelFile,
                format!("the model file has a tensor '{extra}' this network does not use; it was made for another model version"),
            );
        }
        Ok(model)
    }

    /// The same weights as they will be after a save and load in `stored_as`.
    pub fn quantised(&self, stored_as: StoredAs) -> ModelFile {
        let mut file = self.clone();
        for tensor in &mut file.tensors {
            tensor.stored_as = if tensor.shape.len() >= 2 { stored_as } else { StoredAs::F32 };
            let mut buffer = Vec::new();
            encode_values(tensor, &mut buffer);
            let record =
                TensorRecord { name: tensor.name.clone(), shape: tensor.shape.clone(), stored_as: tensor.stored_as, bytes: buffer.len() };
            (tensor.values, tensor.int8) = decode_values(&record, &buffer, tensor.name == TOKENS).expect("round trip of own encoding");
        }
        file
    }
}

/// The most leading characters a packed id says it shares with the one
/// before (the length characters stay within 'a'..='z').
const MAX_SHARED_ID: usize = 25;

/// Sorted, distinct ids without spaces, front-coded as the tokenizer's
/// pieces are: separated by spaces, each starting with one character,
/// `'a' + n`, saying how many leading characters it shares with the one
/// before, then the rest.
fn pack_items(sorted: &[&str]) -> String {
    let mut packed = String::with_capacity(sorted.len() * 8);
    let mut previous = "";
    for id in sorted {
        let (shared, rest) = front_code(previous, id, MAX_SHARED_ID);
        if !packed.is_empty() {
            packed.push(' ');
        }
        packed.push(char::from(b'a' + shared as u8));
        packed.push_str(rest);
        previous = id;
    }
    packed
}

/// The ids [`pack_items`] packed, checked: in increasing order, so never
/// repeated or empty.
fn unpack_items(packed: &str) -> Result<Vec<String>> {
    let mut items: Vec<String> = Vec::with_capacity(packed.len() / 6);
    for (i, entry) in packed.split(' ').enumerate() {
        let damaged = |what: &str| err(ErrorKind::ModelFile, format!("the model file's catalog is damaged at item {}: {what}", i + 1));
        let mut chars = entry.chars();
        let shared = match chars.next() {
            Some(c @ 'a'..='z') => c as usize - 'a' as usize,
            _ => return damaged("no valid shared-prefix length"),
        };
        let previous = items.last().map_or("", String::as_str);
        let mut id = previous.to_owned();
        if !front_decode(&mut id, shared, chars.as_str()) {
            return damaged("it shares more characters than the id before has");
        }
        if id.as_str() <= previous {
            return damaged("the ids are not in increasing order");
        }
        items.push(id);
    }
    Ok(items)
}

fn sorted(ids: &[u32]) -> Vec<u32> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

fn row_len(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1).max(1)
}

fn encode_values(tensor: &TensorEntry, out: &mut Vec<u8>) {
    match tensor.stored_as {
        StoredAs::F32 => tensor.values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        StoredAs::I8 | StoredAs::I8F16 | StoredAs::I4F16 => {
            let levels = tensor.stored_as.levels().expect("a quantised format");
            let rows: Vec<&[f32]> = tensor.values.chunks(row_len(&tensor.shape)).collect();
            let mut scales: Vec<f32> = rows.iter().map(|r| r.iter().fold(0f32, |m, v| m.max(v.abs())) / levels).collect();
            if tensor.stored_as != StoredAs::I8 {
                for scale in &mut scales {
                    let half = f16_at_least(*scale);
                    out.extend_from_slice(&half.to_le_bytes());
                    *scale = half.to_f32();
                }
            } else {
                scales.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
            }
            let quantised = rows.iter().zip(&scales).flat_map(|(row, &scale)| {
                row.iter().map(move |&v| if scale > 0.0 { (v / scale).round().clamp(-levels, levels) as i8 } else { 0 })
            });
            if tensor.stored_as == StoredAs::I4F16 {
                let quantised: Vec<i8> = quantised.collect();
                out.extend(quantised.chunks(2).map(|pair| (pair[0] as u8 & 0x0f) | ((*pair.get(1).unwrap_or(&0) as u8) << 4)));
            } else {
                out.extend(quantised.map(|q| q as u8));
            }
        }
    }
}

/// The smallest finite f16 at or above `scale` (a non-negative row scale),
/// so that no value of the row quantises past ±127; the largest f16 where
/// none is.
fn f16_at_least(scale: f32) -> half::f16 {
    let half = half::f16::from_f32(scale);
    if !half.is_finite() {
        half::f16::MAX
    } else if half.to_f32() < scale {
        half::f16::from_bits(half.to_bits() + 1).min(half::f16::MAX)
    } else {
        half
    }
}

/// A tensor's f32 values, and for an int8 tensor where `keep_int8` asks,
/// its int8 values and row scales as well.
fn decode_values(record: &TensorRecord, chunk: &[u8], keep_int8: bool) -> Result<(Vec<f32>, Option<Int8Rows>)> {
    let count = record.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(count) = count.filter(|&c| c <= 1 << 30) else {
        return err(ErrorKind::ModelFile, format!("tensor '{}' has an impossible shape", record.name));
    };
    let bad_size = || Error::new(ErrorKind::ModelFile, format!("tensor '{}' has the wrong number of bytes for its shape", record.name));
    match record.stored_as {
        StoredAs::F32 => {
            if chunk.len() != count * 4 {
                return Err(bad_size());
            }
            Ok((chunk.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(), None))
        }
        StoredAs::I8 | StoredAs::I8F16 | StoredAs::I4F16 => {
            let width = row_len(&record.shape);
            let rows = count / width;
            let scale_bytes = if record.stored_as == StoredAs::I8 { 4 } else { 2 };
            let value_bytes = if record.stored_as == StoredAs::I4F16 { count.div_ceil(2) } else { count };
            if chunk.len() != rows * scale_bytes + value_bytes {
                return Err(bad_size());
            }
            let (scales, values) = chunk.split_at(rows * scale_bytes);
            let scales: Vec<f32> = if record.stored_as == StoredAs::I8 {
                scales.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
            } else {
                scales.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            };
            if scales.iter().any(|s| !s.is_finite()) {
                return err(ErrorKind::ModelFile, format!("tensor '{}' has a row scale that is not a finite number", record.name));
            }
            // Each nibble sign-extended: shifted to a byte's top, then back.
            let dequantise = |(i, q): (usize, i8)| q as f32 * scales[i / width];
            let quantised: Option<Vec<i8>> = match record.stored_as {
                StoredAs::I4F16 => Some(values.iter().flat_map(|&b| [(b << 4) as i8 >> 4, b as i8 >> 4]).take(count).collect()),
                _ => keep_int8.then(|| values.iter().map(|&q| q as i8).collect()),
            };
            let decoded = match &quantised {
                Some(q) => q.iter().copied().enumerate().map(dequantise).collect(),
                None => values.iter().map(|&q| q as i8).enumerate().map(dequantise).collect(),
            };
            let int8 = quantised.filter(|_| keep_int8).map(|values| Int8Rows { values, scales });
            Ok((decoded, int8))
        }
    }
}

#[cfg(feature = "device")]
struct ParamReader {
    path: Vec<String>,
    tensors: Vec<TensorEntry>,
    stored_as: StoredAs,
}

#[cfg(feature = "device")]
impl ModuleVisitor for ParamReader {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor.into_data().try_into_vec_as::<f32>().expect("f32 parameters");
        let stored_as = if D >= 2 { self.stored_as } else { StoredAs::F32 };
        self.tensors.push(TensorEntry { name: self.path.join("."), shape, values, stored_as, int8: None });
    }
}

#[cfg(feature = "device")]
struct ParamWriter<'a> {
    path: Vec<String>,
    tensors: HashMap<&'a str, &'a TensorEntry>,
    device: &'a Device,
    problem: Option<String>,
}

#[cfg(feature = "device")]
impl ModuleMapper for ParamWriter<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some(entry) = self.tensors.remove(name.as_str()) else {
            self.problem.get_or_insert_with(|| format!("the model file lacks tensor '{name}'; it was made for another model version"));
            return param;
        };
        let expected: Vec<usize> = param.lazy_shape().dims::<D>().to_vec();
        if entry.shape != expected {
            self.problem.get_or_insert_with(|| {
                format!("tensor '{name}' has shape {:?} in the model file but the network expects {expected:?}", entry.shape)
            });
            return param;
        }
        let tensor = Tensor::<D>::from_data(TensorData::new(entry.values.clone(), entry.shape.clone()), self.device);
        Param::initialized(param.id, tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_ids_round_trip_and_damaged_ones_are_refused() {
        let ids = ["B00A1", "B00A12", "B01", "gid://x/Product/1", "gid://x/Product/10", "日本1", "日本2"];
        let packed = pack_items(&ids);
        assert_eq!(packed, "aB00A1 f2 c1 agid://x/Product/1 r0 a日本1 c2");
        assert_eq!(unpack_items(&packed).unwrap(), ids);
        let long: Vec<String> = (0..3).map(|i| format!("{}{i}", "x".repeat(40))).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(unpack_items(&pack_items(&long)).unwrap(), long, "prefixes longer than one character can say");
        for bad in ["", "a", "ab ab", "ab ac aa", "ab dc", "Ab", "ab  ab", "ab b"] {
            assert_eq!(unpack_items(bad).unwrap_err().kind(), ErrorKind::ModelFile, "{bad:?}");
        }
    }

    #[test]
    fn an_f16_row_scale_is_the_nearest_f16_at_or_above_the_scale() {
        let mut scale = 1e-7f32;
        while scale < 7e4 {
            let half = f16_at_least(scale);
            assert!(half.is_finite());
            if scale <= half::f16::MAX.to_f32() {
                assert!(half.to_f32() >= scale, "{scale}: {half}");
                let below = half::f16::from_bits(half.to_bits() - 1);
                assert!(below.to_f32() < scale, "{scale}: {below} is at or above it too");
            } else {
                assert_eq!(half, half::f16::MAX);
            }
            scale *= 1.0007;
        }
        assert_eq!(f16_at_least(0.0), half::f16::ZERO);
    }

    /// int4: every value within half a step of its row's scale, both
    /// nibbles of a byte and their signs in the right place, an odd count
    /// ending in a zero nibble, the int8 rows kept as read, and a chunk of
    /// the wrong length refused.
    #[test]
    fn int4_tensors_round_trip_within_half_a_step() {
        let values = vec![0.7, -0.7, 0.1, -0.35, 0.0, 0.5, 0.3, -0.2, 0.05, 0.0, 0.0, 0.0, 1e-3, -2e-3, 3e-3];
        let tensor = TensorEntry { name: TOKENS.into(), shape: vec![5, 3], values: values.clone(), stored_as: StoredAs::I4F16, int8: None };
        let mut bytes = Vec::new();
        encode_values(&tensor, &mut bytes);
        assert_eq!(bytes.len(), 5 * 2 + 8, "five f16 scales, fifteen nibbles in eight bytes");
        assert_eq!(bytes.last().unwrap() >> 4, 0, "the odd count's last nibble is zero");
        let record = TensorRecord { name: TOKENS.into(), shape: vec![5, 3], stored_as: StoredAs::I4F16, bytes: bytes.len() };
        let (decoded, int8) = decode_values(&record, &bytes, true).unwrap();
        let int8 = int8.unwrap();
        assert!(int8.matches(&decoded, 3));
        assert_eq!(&int8.values[..3], &[7, -7, 1], "0.7 / 0.1 is 7 steps; 0.1 one");
        assert_eq!(int8.values[9..12], [0, 0, 0], "a zero row stays zero");
        for (row, (got, want)) in decoded.chunks(3).zip(values.chunks(3)).enumerate() {
            let step = want.iter().fold(0f32, |m, v| m.max(v.abs())) / 7.0 * (1.0 + 1.0 / 1024.0);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= step * 0.5 + 1e-7, "row {row}: {g} vs {w}");
            }
        }
        let short = TensorRecord { bytes: bytes.len() - 1, ..record };
        assert!(decode_values(&short, &bytes[..bytes.len() - 1], false).is_err());
    }
}

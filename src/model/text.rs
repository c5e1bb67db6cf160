//! Item and query text → token rows of the model's (pruned) vocabulary.
//!
//! The tokenizer is all-MiniLM-L6-v2's WordPiece, read by our own
//! [`WordPiece`] once per ranker: packed inside the model file, or from a
//! `tokenizer.json` (training, and files that predate the packed one). The
//! model keeps embedding rows only for the tokens its training catalog
//! used, and tokenises with those pieces alone; a word they cannot spell
//! maps to row 0 ("unknown").

use super::file::{ModelFile, sha256_hex};
use super::wordpiece::WordPiece;
use crate::error::{ErrorKind, Result, err};

/// Token rows of many texts, padded to one length, with a 0/1 mask.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemText {
    /// `[n, len]` embedding rows, row-major.
    pub rows: Vec<i64>,
    /// `[n, len]` 1.0 for a real token, 0.0 for padding.
    pub mask: Vec<f32>,
    pub n: usize,
    pub len: usize,
}

impl ItemText {
    /// Pads token-row lists into one batch. Empty texts get one unknown
    /// token so that every item has a defined text vector.
    pub fn from_rows(texts: &[Vec<u32>]) -> ItemText {
        ItemText::from_rows_min_len(texts, 1)
    }

    /// [`ItemText::from_rows`] with at least `min_len` token columns (a
    /// fixed shape when `min_len` is the longest text allowed).
    pub fn from_rows_min_len(texts: &[Vec<u32>], min_len: usize) -> ItemText {
        let len = texts.iter().map(|t| t.len()).max().unwrap_or(0).max(min_len).max(1);
        let mut rows = vec![0i64; texts.len() * len];
        let mut mask = vec![0f32; texts.len() * len];
        for (i, text) in texts.iter().enumerate() {
            if text.is_empty() {
                mask[i * len] = 1.0;
            }
            for (j, &row) in text.iter().enumerate() {
                rows[i * len + j] = row as i64;
                mask[i * len + j] = 1.0;
            }
        }
        ItemText { rows, mask, n: texts.len(), len }
    }
}

impl ItemText {
    /// The first `n` texts and the rest, each trimmed to its own longest text.
    pub fn split_at(&self, n: usize) -> (ItemText, ItemText) {
        let part = |range: std::ops::Range<usize>| ItemText::from_rows(&range.map(|i| self.text(i)).collect::<Vec<_>>());
        (part(0..n), part(n..self.n))
    }

    /// The texts at `items`, in that order, trimmed to their own longest.
    pub fn select(&self, items: &[u32]) -> ItemText {
        ItemText::from_rows(&items.iter().map(|&i| self.text(i as usize)).collect::<Vec<_>>())
    }

    /// Text `i`'s token rows, without padding.
    fn text(&self, i: usize) -> Vec<u32> {
        let row = &self.rows[i * self.len..(i + 1) * self.len];
        let mask = &self.mask[i * self.len..(i + 1) * self.len];
        row.iter().zip(mask).filter(|(_, m)| **m > 0.0).map(|(r, _)| *r as u32).collect()
    }
}

/// Tokenizer plus the model's vocabulary map.
#[derive(Clone)]
pub struct TextEncoder {
    tokenizer: WordPiece,
    /// Embedding row of each tokenizer id (0: not kept).
    rows: Vec<u32>,
    max_tokens: usize,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("vocabulary", &self.rows.len()).field("max_tokens", &self.max_tokens).finish()
    }
}

impl TextEncoder {
    /// `vocab[i]` is the tokenizer id that owns embedding row `i + 1`.
    pub fn new(tokenizer_json: &[u8], vocab: &[u32], max_tokens: usize) -> Result<TextEncoder> {
        Ok(TextEncoder::with_tokenizer(WordPiece::from_json(tokenizer_json)?, vocab, max_tokens))
    }

    /// The text encoder of a model file: with `tokenizer_json` when one is
    /// given (it must be the one the model was trained with), else with the
    /// tokenizer the file carries. A file whose tokenizer numbers its
    /// pieces by token row (implicit ids) tokenises with its own copy
    /// either way: it is that `tokenizer.json`, restricted to the kept
    /// pieces (checked by hash), and the json's own ids are not its rows.
    pub fn for_model(file: &ModelFile, tokenizer_json: Option<&[u8]>) -> Result<TextEncoder> {
        let tokenizer = match (tokenizer_json, &file.wordpiece) {
            (Some(json), _) => {
                let sha = sha256_hex(json);
                if file.tokenizer_sha256.is_empty() {
                    return err(
                        ErrorKind::ModelFile,
                        "the model file does not name the tokenizer it was trained with (no tokenizerSha256)",
                    );
                }
                if file.tokenizer_sha256 != sha {
                    return err(
                        ErrorKind::Tokenizer,
                        format!(
                            "this tokenizer.json (sha256 {sha}) is not the one the model was trained with (sha256 {}): leave the tokenizer out to use the one the model file carries",
                            file.tokenizer_sha256
                        ),
                    );
                }
                match &file.wordpiece {
                    Some(packed) if packed.implicit_ids => WordPiece::from_packed(packed)?,
                    _ => WordPiece::from_json(json)?,
                }
            }
            (None, Some(packed)) => WordPiece::from_packed(packed)?,
            (None, None) => {
                return err(
                    ErrorKind::Tokenizer,
                    "this model file carries no tokenizer (it predates carrying one): pass the tokenizer.json it was trained with",
                );
            }
        };
        Ok(TextEncoder::with_tokenizer(tokenizer, &file.vocab, file.config.max_text_tokens))
    }

    /// The model tokenises with the pieces it keeps rows for only (see
    /// [`PackedWordPiece`](super::wordpiece::PackedWordPiece)), from the
    /// packed copy and the full `tokenizer.json` alike.
    fn with_tokenizer(mut tokenizer: WordPiece, vocab: &[u32], max_tokens: usize) -> TextEncoder {
        tokenizer.restrict(vocab);
        let mut rows = vec![0; vocab.iter().map(|&id| id as usize + 1).max().unwrap_or(0)];
        for (i, &id) in vocab.iter().enumerate() {
            rows[id as usize] = i as u32 + 1;
        }
        TextEncoder { tokenizer, rows, max_tokens }
    }

    /// Embedding rows of `text`'s tokens, at most `max_tokens` of them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.tokenizer.encode_first(text, self.max_tokens);
        ids.iter_mut().for_each(|id| *id = self.rows.get(*id as usize).copied().unwrap_or(0));
        Ok(ids)
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

/// The tokenizer's own ids for `text` (for choosing a model's vocabulary).
pub fn vocabulary_ids(tokenizer_json: &[u8], texts: &[&str]) -> Result<Vec<u32>> {
    let tokenizer = WordPiece::from_json(tokenizer_json)?;
    let mut ids: Vec<u32> = texts.iter().flat_map(|t| tokenizer.encode(t)).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Parses a `tokenizer.json` with the full `tokenizers` crate (native only:
/// the MiniLM teacher), switching off its fixed padding and truncation.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_tokenizer(tokenizer_json: &[u8]) -> Result<tokenizers::Tokenizer> {
    use crate::error::{Error, ErrorKind};
    use tokenizers::Tokenizer;
    let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
        .map_err(|e| Error::new(ErrorKind::Tokenizer, format!("the tokenizer bytes are not a usable tokenizer.json: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| Error::new(ErrorKind::Tokenizer, format!("cannot configure the tokenizer: {e}")))?;
    Ok(tokenizer)
}

/// The full tokenizer's ids for `text`, without special tokens (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn token_ids(tokenizer: &tokenizers::Tokenizer, text: &str) -> Result<Vec<u32>> {
    use crate::error::{Error, ErrorKind};
    let encoding = tokenizer.encode(text, false).map_err(|e| Error::new(ErrorKind::Tokenizer, format!("cannot tokenize text: {e}")))?;
    Ok(encoding.get_ids().to_vec())
}

/// The text tower's token table on the host. The tower's first step, the
/// mean of a text's token rows, is a gather and a sum: done here it builds
/// no `[texts, tokens, dim]` tensor and costs no backend ops, and the
/// device receives `[texts, dim]` means for the tower's linear map
/// ([`super::SessionRanker::project_text`]). The same numbers as
/// [`super::SessionRanker::text_vectors`], to float rounding.
#[derive(Debug, Clone)]
pub struct TokenTable {
    rows: TokenRows,
    dim: usize,
}

/// The table's values, `[rows, dim]`, row 0 the unknown token.
#[derive(Debug, Clone)]
enum TokenRows {
    F32(Vec<f32>),
    /// As the file stores it (int8, a scale per row): a quarter of the
    /// memory, and of the bytes each text's mean reads. Every value is
    /// `q as f32 * scale`, exactly the f32 the file decodes to.
    I8 { values: Vec<i8>, scales: Vec<f32> },
}

impl TokenTable {
    /// The table of a model file (`tokens.weight`). Takes the int8 rows
    /// the file kept as read ([`super::TensorEntry::int8`]) rather than
    /// copying them: at load, memory peaks while the file is still whole.
    pub fn from_file(file: &mut super::ModelFile) -> Result<TokenTable> {
        let (dim, n_tokens) = (file.config.dim, file.config.n_tokens);
        let entry = file.tensors.iter_mut().find(|t| t.name == "tokens.weight");
        match entry {
            Some(t) if t.shape.len() == 2 && t.shape[1] == dim && t.shape[0] == n_tokens + 1 => {
                let rows = match (t.int8.take(), t.stored_as) {
                    // As read from the file, checked to still give `values`.
                    (Some(int8), _) if int8.matches(&t.values, dim) => TokenRows::I8 { values: int8.values, scales: int8.scales },
                    (_, super::StoredAs::I8F16) => int8_rows(&t.values, dim).unwrap_or_else(|| TokenRows::F32(t.values.clone())),
                    _ => TokenRows::F32(t.values.clone()),
                };
                Ok(TokenTable { rows, dim })
            }
            _ => err(ErrorKind::ModelFile, "the model file lacks a token table of the configured shape ('tokens.weight')"),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each text's mean token row, `[texts.len() * dim]`, appended to `out`.
    /// An empty text reads as one unknown token, as [`ItemText`] pads it;
    /// a row outside the table reads as the unknown token.
    pub fn means_into<T: AsRef<[u32]>>(&self, texts: &[T], out: &mut Vec<f32>) {
        let dim = self.dim;
        let rows = match &self.rows {
            TokenRows::F32(values) => values.len() / dim.max(1),
            TokenRows::I8 { scales, .. } => scales.len(),
        };
        for text in texts {
            let text = text.as_ref();
            let start = out.len();
            out.resize(start + dim, 0.0);
            let sum = &mut out[start..];
            let unknown = [0u32];
            let tokens = if text.is_empty() { &unknown[..] } else { text };
            for &token in tokens {
                let row = if (token as usize) < rows { token as usize } else { 0 };
                match &self.rows {
                    TokenRows::F32(values) => {
                        for (s, v) in sum.iter_mut().zip(&values[row * dim..(row + 1) * dim]) {
                            *s += v;
                        }
                    }
                    TokenRows::I8 { values, scales } => {
                        let scale = scales[row];
                        for (s, &q) in sum.iter_mut().zip(&values[row * dim..(row + 1) * dim]) {
                            *s += q as f32 * scale;
                        }
                    }
                }
            }
            let scale = 1.0 / tokens.len() as f32;
            sum.iter_mut().for_each(|s| *s *= scale);
        }
    }
}

/// An int8 table's values and row scales from the f32 values it decoded
/// to, or `None` where they do not give back exactly those values. An f16
/// row scale `s` times an int8 value is exact in f32, and the largest value
/// of a row quantises to ±127 (the scale is the row's largest magnitude
/// over 127, rounded up to an f16 by less than 2^-10), so `s` is that
/// magnitude over 127 and each value over `s` is its int8.
fn int8_rows(values: &[f32], dim: usize) -> Option<TokenRows> {
    let mut quantised = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / dim.max(1));
    for row in values.chunks(dim.max(1)) {
        let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = largest / 127.0;
        for &v in row {
            let q = if scale > 0.0 { (v / scale).round() } else { 0.0 };
            if !(-127.0..=127.0).contains(&q) || q * scale != v {
                return None;
            }
            quantised.push(q as i8);
        }
        scales.push(scale);
    }
    Some(TokenRows::I8 { values: quantised, scales })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped model's token table stays int8 in memory, and every
    /// text's mean is bit for bit the one the decoded f32 table gives.
    #[test]
    fn an_int8_token_table_gives_the_f32_tables_means_exactly() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shelfrank-scientific.bin");
        let file = super::super::ModelFile::from_bytes(&std::fs::read(path).unwrap()).unwrap();
        let table = TokenTable::from_file(&mut file.clone()).unwrap();
        let TokenRows::I8 { values, .. } = &table.rows else { panic!("the shipped table should stay int8") };
        let decoded = &file.tensors.iter().find(|t| t.name == "tokens.weight").unwrap().values;
        assert_eq!(values.len(), decoded.len());
        let f32_table = TokenTable { rows: TokenRows::F32(decoded.clone()), dim: table.dim };
        let rows = decoded.len() / table.dim;
        let texts: Vec<Vec<u32>> = (0..200u32).map(|i| (0..1 + i % 30).map(|k| (i * 37 + k * 101) % rows as u32).collect()).collect();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        table.means_into(&texts, &mut ours);
        f32_table.means_into(&texts, &mut theirs);
        assert!(ours.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits()));
        // The int8 rows kept as read are the ones derived from the values.
        let TokenRows::I8 { values: derived, scales: derived_scales } = int8_rows(decoded, table.dim).unwrap() else { panic!() };
        let TokenRows::I8 { scales, .. } = &table.rows else { unreachable!() };
        assert!(values == &derived && scales == &derived_scales);
        // Changed values are not served from the stale int8 copy.
        let mut changed = file.clone();
        let entry = changed.tensors.iter_mut().find(|t| t.name == "tokens.weight").unwrap();
        assert!(entry.int8.as_ref().unwrap().matches(&entry.values, table.dim));
        entry.values[table.dim + 3] = 0.123_456_7;
        assert!(!entry.int8.as_ref().unwrap().matches(&entry.values, table.dim));
        let TokenRows::F32(kept) = TokenTable::from_file(&mut changed).unwrap().rows else { panic!("changed values are not int8 rows") };
        assert_eq!(kept[table.dim + 3], 0.123_456_7);
        // A table whose values are not an int8 row times its scale stays f32.
        assert!(int8_rows(&[0.1, 0.2, 0.3, 0.123_456_7], 4).is_none());
    }
}

//! A BERT WordPiece tokenizer read from a `tokenizer.json`: the BERT
//! normalizer (clean text, space out CJK characters, strip accents,
//! lowercase), the BERT pre-tokenizer (split on whitespace, isolate
//! punctuation) and greedy longest-match-first WordPiece.
//!
//! Small on purpose: the browser build carries this instead of the full
//! `tokenizers` crate (about 0.8 MB gzipped). It reads only the WordPiece
//! models the ranker is trained with and rejects any other kind of
//! `tokenizer.json` with a clear error. Its output is checked against
//! `tokenizers` on the whole catalog and on awkward text (native tests).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, ErrorKind, Result};

/// A fast, non-cryptographic string hash: a vocabulary lookup per
/// candidate piece is the tokenizer's inner loop, and the reranker's text
/// caches hash every candidate's text. (Keys come from the page's own
/// lists, so there is no one to flood the tables but the page itself.)
#[derive(Default)]
pub(crate) struct WordHasher(u64);

/// A `HashMap` with [`WordHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// A `HashSet` with [`WordHasher`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<WordHasher>>;

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ byte as u64).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Vocabulary = FastMap<String, u32>;

#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: Vocabulary,
    /// The longest vocabulary entry, in bytes: no longer piece can match.
    longest: usize,
    unk: u32,
    prefix: String,
    max_chars_per_word: usize,
    clean_text: bool,
    chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

#[derive(Deserialize)]
struct File {
    normalizer: Option<Normalizer>,
    pre_tokenizer: Option<Typed>,
    model: Model,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Normalizer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    clean_text: bool,
    #[serde(default = "yes")]
    handle_chinese_chars: bool,
    #[serde(default)]
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    lowercase: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Model {
    #[serde(rename = "type")]
    kind: String,
    vocab: Vocabulary,
    unk_token: String,
    #[serde(default = "default_prefix")]
    continuing_subword_prefix: String,
    #[serde(default = "default_max_chars")]
    max_input_chars_per_word: usize,
}

fn default_prefix() -> String {
    "##".into()
}

fn default_max_chars() -> usize {
    100
}

fn unsupported(what: String) -> Error {
    Error::new(ErrorKind::Tokenizer, format!("unsupported tokenizer.json: {what}; shelfrank reads BERT WordPiece tokenizers"))
}

impl WordPiece {
    /// Reads a BERT WordPiece `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<WordPiece> {
        let file: File = serde_json::from_slice(bytes)
            .map_err(|e| Error::new(ErrorKind::Tokenizer, format!("the tokenizer bytes are not a usable tokenizer.json: {e}")))?;
        if file.model.kind != "WordPiece" {
            return Err(unsupported(format!("model type '{}'", file.model.kind)));
        }
        if let Some(pre) = &file.pre_tokenizer
            && pre.kind != "BertPreTokenizer"
        {
            return Err(unsupported(format!("pre-tokenizer '{}'", pre.kind)));
        }
        let normalizer = match file.normalizer {
            Some(n) if n.kind == "BertNormalizer" => n,
            Some(n) => return Err(unsupported(format!("normalizer '{}'", n.kind))),
            None => Normalizer {
                kind: String::new(),
                clean_text: false,
                handle_chinese_chars: false,
                strip_accents: Some(false),
                lowercase: false,
            },
        };
        let unk = *file
            .model
            .vocab
            .get(&file.model.unk_token)
            .ok_or_else(|| unsupported(format!("the unknown token '{}' is not in the vocabulary", file.model.unk_token)))?;
        let longest = file.model.vocab.keys().map(String::len).max().unwrap_or(0);
        Ok(WordPiece {
            vocab: file.model.vocab,
            longest,
            unk,
            prefix: file.model.continuing_subword_prefix,
            max_chars_per_word: file.model.max_input_chars_per_word,
            clean_text: normalizer.clean_text,
            chinese_chars: normalizer.handle_chinese_chars,
            strip_accents: normalizer.strip_accents.unwrap_or(normalizer.lowercase),
            lowercase: normalizer.lowercase,
        })
    }

    /// How many tokens the vocabulary has.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The vocabulary ids of `text`'s tokens, without special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_first(text, usize::MAX)
    }

    /// The first `max` ids of [`WordPiece::encode`], reading no further
    /// into the text than they need.
    pub fn encode_first(&self, text: &str, max: usize) -> Vec<u32> {
        if text.is_ascii() {
            return self.encode_ascii(text, max);
        }
        let normalized = self.normalize(text);
        let mut ids = Vec::new();
        for word in pre_tokenize(&normalized) {
            if ids.len() >= max {
                break;
            }
            self.word_pieces(word, &mut ids);
        }
        ids.truncate(max);
        ids
    }

    /// [`WordPiece::encode_first`] for ASCII text (most product titles),
    /// in one pass over the bytes: the normalizer (drop control characters,
    /// tabs and newlines to spaces, lowercase), the pre-tokenizer (split on
    /// whitespace, punctuation on its own) and the word pieces of each word
    /// as it ends, with no normalised copy of the text.
    fn encode_ascii(&self, text: &str, max: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut word = String::new();
        let flush = |word: &mut String, ids: &mut Vec<u32>| {
            if !word.is_empty() && ids.len() < max {
                self.word_pieces(word, ids);
            }
            word.clear();
        };
        for &byte in text.as_bytes() {
            if ids.len() >= max {
                break;
            }
            let c = match byte {
                b'\t' | b'\n' | b'\r' if self.clean_text => ' ',
                b if self.clean_text && (b == 0 || (b as char).is_ascii_control()) => continue,
                b => b as char,
            };
            if c.is_whitespace() {
                flush(&mut word, &mut ids);
            } else if c.is_ascii_punctuation() {
                flush(&mut word, &mut ids);
                word.push(c);
                flush(&mut word, &mut ids);
            } else {
                word.push(if self.lowercase { c.to_ascii_lowercase() } else { c });
            }
        }
        flush(&mut word, &mut ids);
        ids.truncate(max);
        ids
    }

    fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if self.chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if self.strip_accents {
            out = out.nfd().filter(|&c| c.is_ascii() || !c.is_mark_nonspacing()).collect();
        }
        if self.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }

    /// Greedy longest-match-first: a word no prefix of the vocabulary can
    /// spell becomes one unknown token.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_chars_per_word {
            ids.push(self.unk);
            return;
        }
        let start_len = ids.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < word.len() {
            // No piece longer than the longest vocabulary entry can match.
            let room = self.longest.saturating_sub(if start > 0 { self.prefix.len() } else { 0 });
            let mut end = word.len().min(start + room);
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            let mut found = None;
            while start < end {
                let id = if start == 0 {
                    self.vocab.get(&word[..end])
                } else {
                    piece.clear();
                    piece.push_str(&self.prefix);
                    piece.push_str(&word[start..end]);
                    self.vocab.get(&piece)
                };
                if let Some(&id) = id {
                    found = Some(id);
                    break;
                }
                end = word[..end].char_indices().next_back().map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(start_len);
                    ids.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// Splits on whitespace (dropped) and punctuation (kept as its own word).
fn pre_tokenize(text: &str) -> impl Iterator<Item = &str> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
        } else if is_punctuation(c) {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
            words.push(&text[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words.into_iter()
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r');
    }
    c.is_other()
}

/// BERT's punctuation: every ASCII non-alphanumeric symbol, and Unicode's
/// punctuation categories (the table search only for non-ASCII).
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    c.is_punctuation()
}

fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let json = serde_json::json!({
            "normalizer": { "type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true },
            "pre_tokenizer": { "type": "BertPreTokenizer" },
            "model": { "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 10,
                       "vocab": { "[UNK]": 0, "cafe": 1, "glue": 2, "##s": 3, "un": 4, "##glue": 5, "!": 6, "中": 7, "1": 8, "##.": 9, "." : 10, "75": 11 } }
        });
        WordPiece::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn normalises_splits_and_matches_longest_pieces() {
        let wp = tiny();
        assert_eq!(wp.encode("Café GLUES!"), [1, 2, 3, 6]);
        assert_eq!(wp.encode("unglue\u{200b} 中"), [4, 5, 7]);
        assert_eq!(wp.encode("1.75"), [8, 10, 11]);
        assert_eq!(wp.encode("glux"), [0], "a word that cannot be spelt is one unknown token");
        assert_eq!(wp.encode("gluesgluesglues"), [0], "longer than max_input_chars_per_word");
        assert_eq!(wp.encode("  \t\n"), Vec::<u32>::new());
    }

    #[test]
    fn other_tokenizer_kinds_are_rejected_clearly() {
        let bpe = serde_json::json!({ "model": { "type": "BPE", "vocab": {}, "unk_token": "x" } });
        let error = WordPiece::from_json(bpe.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Tokenizer);
        assert!(error.message().contains("BPE"));
        assert_eq!(WordPiece::from_json(b"not json").unwrap_err().kind(), ErrorKind::Tokenizer);
    }
}

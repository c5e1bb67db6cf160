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

use serde::{Deserialize, Serialize};
use unicode_categories::UnicodeCategories;

use super::accents::{canonical_combining_class, decompose_canonical};
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

/// What a byte of ASCII text is to [`WordPiece::encode_ascii`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ascii {
    Space,
    /// A control character the normalizer drops (inside a word, the word
    /// goes on around it).
    Dropped,
    Punctuation,
    Word,
}

/// Each ASCII byte's [`Ascii`] class, with the normalizer's `clean_text`
/// (control characters dropped; tabs and line breaks are spaces either way)
/// or without it.
static ASCII_CLEAN: [Ascii; 128] = ascii_classes(true);
static ASCII_RAW: [Ascii; 128] = ascii_classes(false);

const fn ascii_classes(clean_text: bool) -> [Ascii; 128] {
    let mut table = [Ascii::Word; 128];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        table[b] = match byte {
            b' ' | b'\t' | b'\n' | b'\r' => Ascii::Space,
            _ if clean_text && byte.is_ascii_control() => Ascii::Dropped,
            0x0b | 0x0c => Ascii::Space, // whitespace to `char::is_whitespace`
            _ if byte.is_ascii_punctuation() => Ascii::Punctuation,
            _ => Ascii::Word,
        };
        b += 1;
    }
    table
}

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

/// A WordPiece tokenizer as a model file carries it: the pieces the model
/// keeps an embedding row for, so that a page loads one file instead of the
/// model and a 466 KB `tokenizer.json` (about 190 KB gzipped, against about
/// 26 KB for this).
///
/// A model tokenises with its tokenizer restricted to the pieces it keeps
/// ([`WordPiece::restrict`]), whether it reads this or the full
/// `tokenizer.json`. On the texts the model's vocabulary was chosen from
/// that changes nothing: every piece the full vocabulary matches there is
/// kept, so the greedy longest match finds the same pieces. On other texts
/// a word splits into pieces the model has rows for, where the full
/// vocabulary could match a longer piece that the model would score as
/// its unknown row.
///
/// `pieces` holds the entries, sorted and front-coded, separated by spaces
/// (no entry holds whitespace). An entry starts with one character saying
/// how many leading characters it shares with the entry before: `'a' + n`
/// for a kept entry, whose tokenizer id is then the next of `ids`; `'0' +
/// n` for an entry without an id, which files packed before the
/// restriction carried for the rest of the vocabulary (they load, and are
/// restricted like any other). (The characters are all printable ASCII
/// other than quote and backslash: the JSON header stores them unescaped.)
///
/// With `implicit_ids` (what model files store, see
/// [`PackedWordPiece::with_implicit_ids`]) `ids` is empty: the `k`-th kept
/// entry's id is `k`, which is also its row in the model's token table
/// (`k + 1`, after the unknown row), and `unk` is the unknown entry's id
/// in that numbering, or [`PackedWordPiece::NOT_KEPT`] when the model keeps
/// no row for it. The tokenizer's own ids were 15.5 KB of every first
/// visit's download, gzipped, and the page never needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackedWordPiece {
    pub clean_text: bool,
    pub chinese_chars: bool,
    pub strip_accents: bool,
    pub lowercase: bool,
    pub prefix: String,
    pub unk: u32,
    pub max_chars_per_word: usize,
    pub pieces: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit_ids: bool,
}

/// The most leading characters one packed entry says it shares with the
/// one before (the length characters stay within '0'..='D' and 'a'..='u').
const MAX_SHARED: usize = 20;

/// Front coding, one entry of a sorted list: how many leading characters
/// `entry` shares with `previous` (at most `max`), and the rest of it.
pub(crate) fn front_code<'a>(previous: &str, entry: &'a str, max: usize) -> (usize, &'a str) {
    let shared = previous.chars().zip(entry.chars()).take_while(|(a, b)| a == b).count().min(max);
    (shared, entry.char_indices().nth(shared).map_or("", |(i, _)| &entry[i..]))
}

/// Undoes [`front_code`] in place: `previous` becomes its first `shared`
/// characters followed by `rest`. False (and `previous` unchanged) when it
/// has fewer than `shared` characters.
pub(crate) fn front_decode(previous: &mut String, shared: usize, rest: &str) -> bool {
    let Some(end) = previous.char_indices().map(|(i, _)| i).chain([previous.len()]).nth(shared) else {
        return false;
    };
    previous.truncate(end);
    previous.push_str(rest);
    true
}

impl PackedWordPiece {
    /// The id of an entry the model keeps no row for.
    pub const NOT_KEPT: u32 = u32::MAX;

    /// The entries, in order, each with whether it is kept.
    fn entries(&self) -> impl Iterator<Item = (usize, &str, bool)> {
        let entries = (!self.pieces.is_empty()).then(|| self.pieces.split(' '));
        entries.into_iter().flatten().enumerate().map(|(i, text)| (i, text, text.starts_with(|c: char| c.is_ascii_lowercase())))
    }

    /// How many entries are kept (have an id).
    pub fn kept(&self) -> usize {
        self.entries().filter(|e| e.2).count()
    }

    /// The same tokenizer with implicit ids, and the tokenizer id each
    /// implicit id stood for (`ids`, in entry order): the model's token
    /// rows must be laid out in that order. `None` when the ids are
    /// implicit already.
    pub fn with_implicit_ids(&self) -> Option<(PackedWordPiece, Vec<u32>)> {
        if self.implicit_ids {
            return None;
        }
        let unk = self.ids.iter().position(|&id| id == self.unk).map_or(PackedWordPiece::NOT_KEPT, |k| k as u32);
        Some((PackedWordPiece { ids: Vec::new(), implicit_ids: true, unk, ..self.clone() }, self.ids.clone()))
    }
}

impl WordPiece {
    /// This tokenizer packed for a model that keeps the tokenizer ids `kept`
    /// (ids it does not know are an error: the model was made with another
    /// tokenizer): the kept entries only.
    pub fn pack(&self, kept: &[u32]) -> Result<PackedWordPiece> {
        let kept: FastSet<u32> = kept.iter().copied().collect();
        let known: FastSet<u32> = self.vocab.values().copied().collect();
        if let Some(id) = kept.iter().find(|id| !known.contains(id)) {
            return Err(Error::new(ErrorKind::Tokenizer, format!("the model keeps token id {id}, which this tokenizer does not have")));
        }
        let mut entries: Vec<(&str, u32)> =
            self.vocab.iter().filter(|(_, id)| kept.contains(id)).map(|(piece, &id)| (piece.as_str(), id)).collect();
        entries.sort_unstable();
        let mut pieces = String::with_capacity(entries.len() * 5);
        let mut ids = Vec::with_capacity(entries.len());
        let mut previous = "";
        for (piece, id) in entries {
            if piece.contains(char::is_whitespace) {
                return Err(unsupported(format!("the vocabulary entry {piece:?} holds whitespace")));
            }
            let (shared, rest) = front_code(previous, piece, MAX_SHARED);
            if !pieces.is_empty() {
                pieces.push(' ');
            }
            pieces.push(char::from(b'a' + shared as u8));
            pieces.push_str(rest);
            ids.push(id);
            previous = piece;
        }
        Ok(PackedWordPiece {
            clean_text: self.clean_text,
            chinese_chars: self.chinese_chars,
            strip_accents: self.strip_accents,
            lowercase: self.lowercase,
            prefix: self.prefix.clone(),
            unk: self.unk,
            max_chars_per_word: self.max_chars_per_word,
            pieces,
            ids,
            implicit_ids: false,
        })
    }

    /// Keeps only the vocabulary entries whose ids are in `kept` (a model's
    /// vocabulary): what the model tokenises with (see [`PackedWordPiece`]).
    /// A word no kept pieces can spell becomes the unknown token.
    pub fn restrict(&mut self, kept: &[u32]) {
        let kept: FastSet<u32> = kept.iter().copied().collect();
        self.vocab.retain(|_, id| kept.contains(id));
        self.longest = self.vocab.keys().map(String::len).max().unwrap_or(0);
    }

    /// Unpacks a model file's tokenizer (see [`PackedWordPiece`]).
    pub fn from_packed(packed: &PackedWordPiece) -> Result<WordPiece> {
        let damaged = |entry: usize, what: &str| {
            Error::new(ErrorKind::ModelFile, format!("the model file's tokenizer is damaged at entry {}: {what}", entry + 1))
        };
        if packed.implicit_ids && !packed.ids.is_empty() {
            return Err(Error::new(ErrorKind::ModelFile, "the model file's tokenizer lists ids although its ids are implicit"));
        }
        let mut vocab = Vocabulary::with_capacity_and_hasher(packed.pieces.len() / 5, Default::default());
        let mut ids = packed.ids.iter();
        let mut next_implicit = 0u32;
        let mut previous = String::new();
        for (entry, text, _) in packed.entries() {
            let mut chars = text.chars();
            let (shared, id) = match chars.next() {
                Some(c @ '0'..='D') => (c as usize - '0' as usize, PackedWordPiece::NOT_KEPT),
                Some(c @ 'a'..='u') if packed.implicit_ids => {
                    next_implicit += 1;
                    (c as usize - 'a' as usize, next_implicit - 1)
                }
                Some(c @ 'a'..='u') => {
                    let Some(&id) = ids.next() else { return Err(damaged(entry, "more kept entries than ids")) };
                    (c as usize - 'a' as usize, id)
                }
                _ => return Err(damaged(entry, "no valid shared-prefix length")),
            };
            if !front_decode(&mut previous, shared, chars.as_str()) {
                return Err(damaged(entry, "it shares more characters than the entry before has"));
            }
            if previous.is_empty() || vocab.insert(previous.clone(), id).is_some() {
                return Err(damaged(entry, "an empty or repeated entry"));
            }
        }
        if ids.next().is_some() {
            return Err(Error::new(ErrorKind::ModelFile, "the model file's tokenizer has more ids than kept entries"));
        }
        let longest = vocab.keys().map(String::len).max().unwrap_or(0);
        Ok(WordPiece {
            vocab,
            longest,
            unk: packed.unk,
            prefix: packed.prefix.clone(),
            max_chars_per_word: packed.max_chars_per_word,
            clean_text: packed.clean_text,
            chinese_chars: packed.chinese_chars,
            strip_accents: packed.strip_accents,
            lowercase: packed.lowercase,
        })
    }
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

    /// The vocabulary's entries and their ids.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u32)> {
        self.vocab.iter().map(|(piece, &id)| (piece.as_str(), id))
    }

    /// The id `piece` has in this vocabulary.
    pub fn id_of(&self, piece: &str) -> Option<u32> {
        self.vocab.get(piece).copied()
    }

    /// The vocabulary ids of `text`'s tokens, without special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_first(text, usize::MAX)
    }

    /// The first `max` ids of [`WordPiece::encode`], reading no further
    /// into the text than they need.
    pub fn encode_first(&self, text: &str, max: usize) -> Vec<u32> {
        if text.is_ascii() { self.encode_ascii(text, max) } else { self.encode_general(text, max) }
    }

    /// Normalise, pre-tokenise, split: any text.
    fn encode_general(&self, text: &str, max: usize) -> Vec<u32> {
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
    /// whitespace, punctuation on its own) and the word pieces of each word.
    /// A word is a run of bytes between spaces and punctuation, sliced from
    /// the text lowercased in one go; only a run holding a dropped control
    /// character is copied without it.
    fn encode_ascii(&self, text: &str, max: usize) -> Vec<u32> {
        // No more ids than bytes: each word or punctuation mark is at least one.
        let mut ids = Vec::with_capacity(max.min(text.len()));
        let lowered;
        let text = if self.lowercase && text.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = text.to_ascii_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let bytes = text.as_bytes();
        let table = if self.clean_text { &ASCII_CLEAN } else { &ASCII_RAW };
        let class = |b: u8| table[b as usize & 0x7f];
        let mut at = 0;
        while at < bytes.len() && ids.len() < max {
            match class(bytes[at]) {
                Ascii::Space | Ascii::Dropped => at += 1,
                Ascii::Punctuation => {
                    self.word_pieces(&text[at..at + 1], &mut ids);
                    at += 1;
                }
                Ascii::Word => {
                    let start = at;
                    let mut dropped = false;
                    while at < bytes.len() {
                        match class(bytes[at]) {
                            Ascii::Word => {}
                            Ascii::Dropped => dropped = true,
                            Ascii::Space | Ascii::Punctuation => break,
                        }
                        at += 1;
                    }
                    if dropped {
                        let word: String = text[start..at].chars().filter(|c| !c.is_ascii_control()).collect();
                        self.word_pieces(&word, &mut ids);
                    } else {
                        self.word_pieces(&text[start..at], &mut ids);
                    }
                }
            }
        }
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
            out = strip_accents(&out);
        }
        if self.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }

    /// Greedy longest-match-first: a word no prefix of the vocabulary can
    /// spell becomes one unknown token.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        // A word has no more chars than bytes: count them only when it might be too long.
        if word.len() > self.max_chars_per_word && word.chars().count() > self.max_chars_per_word {
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

/// BERT's accent stripping: the canonical decomposition (NFD) without
/// non-spacing marks. NFD is spelled out from its two parts, each
/// character's full canonical decomposition and the canonical ordering of
/// combining marks (a stable sort by combining class between starters),
/// because `str::nfd` also links the compatibility tables it never uses
/// here: that was ~50 KB of every page's gzipped wasm. Both parts come from
/// our own compact table ([`super::accents`]), not `unicode-normalization`'s:
/// its canonical tables were another ~18 KB of it.
fn strip_accents(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Combining marks since the last starter, with their classes.
    let mut marks: Vec<(u8, char)> = Vec::new();
    let keep = |c: char| c.is_ascii() || !c.is_mark_nonspacing();
    let flush = |marks: &mut Vec<(u8, char)>, out: &mut String| {
        marks.sort_by_key(|&(class, _)| class);
        out.extend(marks.drain(..).map(|(_, c)| c).filter(|&c| keep(c)));
    };
    for c in text.chars() {
        if c.is_ascii() {
            flush(&mut marks, &mut out);
            out.push(c);
            continue;
        }
        decompose_canonical(c, |d| match canonical_combining_class(d) {
            0 => {
                flush(&mut marks, &mut out);
                if keep(d) {
                    out.push(d);
                }
            }
            class => marks.push((class, d)),
        });
    }
    flush(&mut marks, &mut out);
    out
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
    fn the_ascii_pass_splits_as_the_general_path() {
        let wp = tiny();
        let texts = ["Cafe GLUES!", "un\tglue\x0b1.75", "glue\x00s\x1fun", "!!glue.. ", "cafe\r\nglux", "", "  ", "gluesgluesglues 1", "GL\x01UES\x7f!Glue", "\x7fCAFE\x0c\x0cun"];
        for text in texts {
            for max in [usize::MAX, 0, 1, 2, 3] {
                assert_eq!(wp.encode_ascii(text, max), wp.encode_general(text, max), "{text:?}, at most {max}");
            }
        }
    }

    #[test]
    fn a_packed_tokenizer_holds_the_kept_pieces_and_splits_as_the_restricted_one() {
        let wp = tiny();
        let kept = [0, 2, 3, 5, 7];
        let packed = wp.pack(&kept).unwrap();
        let unpacked = WordPiece::from_packed(&packed).unwrap();
        let mut restricted = tiny();
        restricted.restrict(&kept);
        assert_eq!(unpacked.vocab_size(), 5);
        for text in ["Café GLUES!", "unglue\u{200b} 中 glux", "glue glues unglues 1.75", ""] {
            assert_eq!(unpacked.encode(text), restricted.encode(text), "{text:?}");
        }
        // Where the full vocabulary's pieces are all kept, nothing changes.
        assert_eq!(unpacked.encode("glues 中"), wp.encode("glues 中"));
        // Elsewhere a word splits into kept pieces or is unknown as a whole:
        // "unglue" is un + ##glue in full, and "un" has no row.
        assert_eq!(wp.encode("unglue !"), [4, 5, 6]);
        assert_eq!(unpacked.encode("unglue !"), [0, 0]);
        assert_eq!(WordPiece::from_packed(&unpacked.pack(&kept).unwrap()).unwrap().pack(&kept).unwrap(), packed);
        assert!(packed.pieces.len() < 30 && packed.ids.len() == 5, "front-coded: {packed:?}");
        // With implicit ids the k-th kept entry has id k (the unknown
        // token's too): the same pieces, renumbered.
        let (implicit, stood_for) = packed.with_implicit_ids().unwrap();
        assert_eq!((implicit.ids.len(), implicit.kept(), implicit.unk), (0, 5, stood_for.iter().position(|&id| id == 0).unwrap() as u32));
        assert!(implicit.with_implicit_ids().is_none());
        let renumbered = WordPiece::from_packed(&implicit).unwrap();
        for text in ["Café GLUES!", "unglue\u{200b} 中 glux", "glue glues unglues 1.75", ""] {
            let by_old: Vec<u32> = renumbered.encode(text).iter().map(|&k| stood_for[k as usize]).collect();
            assert_eq!(by_old, unpacked.encode(text), "{text:?}");
        }
        let json: PackedWordPiece = serde_json::from_str(&serde_json::to_string(&implicit).unwrap()).unwrap();
        assert_eq!(json, implicit);
        let without_row = PackedWordPiece { unk: PackedWordPiece::NOT_KEPT, ..implicit.clone() };
        assert_eq!(WordPiece::from_packed(&without_row).unwrap().encode("glux"), [PackedWordPiece::NOT_KEPT]);
        let listing_ids = PackedWordPiece { ids: vec![1; 5], ..implicit.clone() };
        assert_eq!(WordPiece::from_packed(&listing_ids).unwrap_err().kind(), ErrorKind::ModelFile);
        assert_eq!(wp.pack(&[99]).unwrap_err().kind(), ErrorKind::Tokenizer, "an id the tokenizer lacks");
        // Files packed with the whole vocabulary ('0' entries without ids)
        // still load, and restricted they split as the new ones do.
        let mut old = WordPiece::from_packed(&PackedWordPiece { pieces: "0! a中".into(), ids: vec![7], ..packed.clone() }).unwrap();
        assert_eq!(old.encode("中 !"), [7, PackedWordPiece::NOT_KEPT]);
        old.restrict(&[7]);
        assert_eq!(old.encode("中 !"), [7, 0]);
        let damaged = |pieces: &str, ids: &[u32]| {
            let bad = PackedWordPiece { pieces: pieces.into(), ids: ids.to_vec(), ..packed.clone() };
            WordPiece::from_packed(&bad).map(|_| ()).map_err(|e| e.kind())
        };
        assert_eq!(damaged("0z a1", &[4]), Ok(()));
        assert_eq!(damaged("", &[]), Ok(()), "an empty vocabulary");
        for (pieces, ids) in [("0z a1", &[][..]), ("0z a1", &[4, 5]), ("0z ~1", &[]), ("0z 9abc", &[]), ("0z 0z", &[]), ("0z  0y", &[])] {
            assert_eq!(damaged(pieces, ids), Err(ErrorKind::ModelFile), "{pieces:?} {ids:?}");
        }
    }

    /// What `strip_accents` must equal: the crate's own NFD, then no
    /// non-spacing marks.
    fn by_nfd(text: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        text.nfd().filter(|&c| c.is_ascii() || !c.is_mark_nonspacing()).collect()
    }

    #[test]
    fn accents_are_stripped_as_nfd_then_dropping_non_spacing_marks_does() {
        // Every character alone (Hangul, singletons, multi-level decompositions).
        let all: Vec<char> = (0..=0x10FFFFu32).filter_map(char::from_u32).collect();
        let mut differ = Vec::new();
        for &c in &all {
            let text = c.to_string();
            if strip_accents(&text) != by_nfd(&text) {
                differ.push(c);
            }
        }
        assert!(differ.is_empty(), "{} characters differ, first {:?}", differ.len(), &differ[..differ.len().min(5)]);
        // Canonical ordering across characters: runs of combining marks of
        // different classes (some kept, some dropped), precomposed letters and
        // starters that are marks themselves, in a fixed pseudo-random mix.
        let marks: Vec<char> = all.iter().copied().filter(|&c| unicode_normalization::char::canonical_combining_class(c) != 0).collect();
        let others =
            ['a', 'é', 'Å', 'ǖ', 'ệ', '\u{1e69}', '\u{ac00}', '\u{0958}', '\u{0f73}', '\u{1d15e}', '\u{0300}', ' ', '\u{0903}', '\u{302e}'];
        let mut state = 0x9e3779b97f4a7c15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let pick = (state >> 32) as usize;
                text.push(if pick.is_multiple_of(3) { others[pick % others.len()] } else { marks[pick % marks.len()] });
            }
            assert_eq!(strip_accents(&text), by_nfd(&text), "{text:?}");
        }
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

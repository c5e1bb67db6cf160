//! The two parts of the canonical decomposition (NFD) that accent stripping
//! needs: each character's full canonical decomposition and its canonical
//! combining class, from a compact table of our own instead of the
//! `unicode-normalization` crate's (see `strip_accents` in
//! [`super::wordpiece`] for why).
//!
//! The table (`accents_data.rs`, generated from that crate by a native test
//! here, which also checks every lookup against it) is three byte arrays:
//! - `DECOMPOSITION_KEYS`: per decomposed character, in increasing order,
//!   the distance from the one before (LEB128) and the number of characters
//!   it decomposes to (one byte);
//! - `DECOMPOSITION_CHARS`: those characters, each as the zigzag LEB128
//!   difference from the character at the same place in the decomposition
//!   before (from 0 past its end): neighbours mostly share their base letter
//!   and marks, so most differences are 0 or small;
//! - `COMBINING_CLASSES`: runs of characters with the same non-zero class,
//!   in increasing order, each as the gap since the end of the run before
//!   (LEB128), its length less one (LEB128) and the class (one byte).
//!
//! Hangul syllables decompose algorithmically and are not in the table.
//! Both tables are decoded once, on first use, into sorted vectors searched
//! by bisection.

use std::sync::OnceLock;

include!("accents_data.rs");

/// The table is a trusted constant: decoding it cannot fail.
const TRUSTED: &str = "the accent table is well formed";

// Hangul syllable decomposition (Unicode §3.12).
const S_BASE: u32 = 0xAC00;
const L_BASE: u32 = 0x1100;
const V_BASE: u32 = 0x1161;
const T_BASE: u32 = 0x11A7;
const V_COUNT: u32 = 21;
const T_COUNT: u32 = 28;
const N_COUNT: u32 = V_COUNT * T_COUNT;
const S_COUNT: u32 = 19 * N_COUNT;

/// The decomposed characters in increasing order, each with the end of its
/// decomposition in `chars` (it starts where the one before ends).
struct Decompositions {
    index: Vec<(char, u32)>,
    chars: Vec<char>,
}

/// Calls `emit` with each character of `c`'s full canonical decomposition,
/// in order (`c` alone if it has none), as
/// `unicode_normalization::char::decompose_canonical` does.
pub(crate) fn decompose_canonical(c: char, mut emit: impl FnMut(char)) {
    let s = (c as u32).wrapping_sub(S_BASE);
    if s < S_COUNT {
        let jamo = |code: u32| char::from_u32(code).expect("Hangul jamo are characters");
        emit(jamo(L_BASE + s / N_COUNT));
        emit(jamo(V_BASE + s % N_COUNT / T_COUNT));
        if !s.is_multiple_of(T_COUNT) {
            emit(jamo(T_BASE + s % T_COUNT));
        }
        return;
    }
    let table = decompositions();
    match table.index.binary_search_by_key(&c, |&(key, _)| key) {
        Ok(i) => {
            let start = if i == 0 { 0 } else { table.index[i - 1].1 };
            table.chars[start as usize..table.index[i].1 as usize].iter().copied().for_each(emit);
        }
        Err(_) => emit(c),
    }
}

/// `c`'s canonical combining class (0 for starters), as
/// `unicode_normalization::char::canonical_combining_class` gives it.
pub(crate) fn canonical_combining_class(c: char) -> u8 {
    let runs = combining_classes();
    let c = c as u32;
    // The last run starting at or before `c`, if `c` is inside it.
    match runs.partition_point(|&(start, _, _)| start <= c).checked_sub(1).map(|i| runs[i]) {
        Some((_, end, class)) if c <= end => class,
        _ => 0,
    }
}

fn decompositions() -> &'static Decompositions {
    static TABLE: OnceLock<Decompositions> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut keys = Reader(DECOMPOSITION_KEYS);
        let mut deltas = Reader(DECOMPOSITION_CHARS);
        let mut index = Vec::new();
        let mut chars: Vec<char> = Vec::new();
        let (mut key, mut previous) = (0u32, 0..0);
        while !keys.0.is_empty() {
            key += keys.varint();
            let start = chars.len();
            for i in 0..keys.byte() as usize {
                let base = if i < previous.len() { chars[previous.start + i] as u32 } else { 0 };
                chars.push(char::from_u32(base.wrapping_add_signed(deltas.zigzag())).expect(TRUSTED));
            }
            previous = start..chars.len();
            index.push((char::from_u32(key).expect(TRUSTED), u32::try_from(chars.len()).expect(TRUSTED)));
        }
        Decompositions { index, chars }
    })
}

/// Runs `(first, last, class)` of characters with one non-zero class, in
/// increasing order.
fn combining_classes() -> &'static [(u32, u32, u8)] {
    static TABLE: OnceLock<Vec<(u32, u32, u8)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut bytes = Reader(COMBINING_CLASSES);
        let mut runs = Vec::new();
        let mut next = 0u32;
        while !bytes.0.is_empty() {
            let first = next + bytes.varint();
            let last = first + bytes.varint();
            runs.push((first, last, bytes.byte()));
            next = last + 1;
        }
        runs
    })
}

/// Reads the table's bytes front to back.
struct Reader(&'static [u8]);

impl Reader {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().expect(TRUSTED);
        self.0 = rest;
        first
    }

    /// An unsigned LEB128 number.
    fn varint(&mut self) -> u32 {
        let (mut value, mut shift) = (0u32, 0);
        loop {
            let byte = self.byte();
            value |= u32::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    /// A signed number, zigzag-coded (0, -1, 1, -2, … as 0, 1, 2, 3, …).
    fn zigzag(&mut self) -> i32 {
        let value = self.varint();
        (value >> 1) as i32 ^ -((value & 1) as i32)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    use unicode_normalization::char as crate_tables;

    /// Where the generated table lives, from the crate's root.
    const DATA_PATH: &str = "src/model/accents_data.rs";

    fn is_hangul_syllable(c: char) -> bool {
        (S_BASE..S_BASE + S_COUNT).contains(&(c as u32))
    }

    fn push_varint(out: &mut Vec<u8>, mut value: u32) {
        while value >= 0x80 {
            out.push(value as u8 | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn push_zigzag(out: &mut Vec<u8>, value: i32) {
        push_varint(out, ((value << 1) ^ (value >> 31)) as u32);
    }

    /// `name: &[u8] = &[…];`, wrapped.
    fn render(out: &mut String, doc: &str, name: &str, bytes: &[u8]) {
        out.push_str(&format!("\n/// {doc}\nconst {name}: &[u8] = &[\n"));
        let mut line = String::new();
        for byte in bytes {
            let item = format!("{byte},");
            if line.len() + 1 + item.len() > 100 {
                out.push_str(&format!("   {line}\n"));
                line.clear();
            }
            line.push(' ');
            line.push_str(&item);
        }
        if !line.is_empty() {
            out.push_str(&format!("   {line}\n"));
        }
        out.push_str("];\n");
    }

    /// `accents_data.rs` as the `unicode-normalization` crate's tables make it.
    fn generated() -> String {
        let all = || (0..=0x10FFFFu32).filter_map(char::from_u32);
        let (mut keys, mut chars) = (Vec::new(), Vec::new());
        let (mut key, mut previous) = (0u32, Vec::<char>::new());
        for c in all().filter(|&c| !is_hangul_syllable(c)) {
            let mut decomposition = Vec::new();
            crate_tables::decompose_canonical(c, |d| decomposition.push(d));
            if decomposition == [c] {
                continue;
            }
            push_varint(&mut keys, c as u32 - key);
            keys.push(u8::try_from(decomposition.len()).expect("short decompositions"));
            for (i, &d) in decomposition.iter().enumerate() {
                let base = previous.get(i).map_or(0, |&p| p as i32);
                push_zigzag(&mut chars, d as i32 - base);
            }
            (key, previous) = (c as u32, decomposition);
        }
        let mut runs: Vec<(u32, u32, u8)> = Vec::new();
        for c in all() {
            let class = crate_tables::canonical_combining_class(c);
            match runs.last_mut() {
                _ if class == 0 => {}
                Some((_, last, run_class)) if *last + 1 == c as u32 && *run_class == class => *last = c as u32,
                _ => runs.push((c as u32, c as u32, class)),
            }
        }
        let mut classes = Vec::new();
        let mut next = 0;
        for (first, last, class) in runs {
            push_varint(&mut classes, first - next);
            push_varint(&mut classes, last - first);
            classes.push(class);
            next = last + 1;
        }
        let (major, minor, patch) = unicode_normalization::UNICODE_VERSION;
        let mut out = format!(
            "// @generated from the unicode-normalization crate's tables (Unicode {major}.{minor}.{patch}) by the\n\
             // tests in accents.rs, which include this file; the format is described there. Do not edit:\n\
             // regenerate with `SHELFRANK_REGENERATE=1 cargo test --release --no-default-features --lib accents`.\n"
        );
        render(&mut out, "Decomposed characters: distance from the one before, number of characters.", "DECOMPOSITION_KEYS", &keys);
        render(
            &mut out,
            "Their decompositions' characters, each relative to the one before it at its place.",
            "DECOMPOSITION_CHARS",
            &chars,
        );
        render(&mut out, "Runs of one non-zero combining class: gap, length less one, class.", "COMBINING_CLASSES", &classes);
        out
    }

    #[test]
    fn the_committed_table_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA_PATH);
        let want = generated();
        if std::env::var_os("SHELFRANK_REGENERATE").is_some_and(|v| v == "1") {
            std::fs::write(&path, want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap();
        assert!(
            have == want,
            "{DATA_PATH} differs from what unicode-normalization's tables give: regenerate it with \
             `SHELFRANK_REGENERATE=1 cargo test --release --no-default-features --lib accents`"
        );
    }

    #[test]
    fn lookups_equal_the_crate_on_every_character() {
        let (mut decomposed_apart, mut classed_apart) = (Vec::new(), Vec::new());
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            decompose_canonical(c, |d| ours.push(d));
            crate_tables::decompose_canonical(c, |d| theirs.push(d));
            if ours != theirs {
                decomposed_apart.push(c);
            }
            if canonical_combining_class(c) != crate_tables::canonical_combining_class(c) {
                classed_apart.push(c);
            }
        }
        let first = |chars: &[char]| chars[..chars.len().min(5)].to_vec();
        assert!(decomposed_apart.is_empty(), "{} decompositions differ, first {:?}", decomposed_apart.len(), first(&decomposed_apart));
        assert!(classed_apart.is_empty(), "{} classes differ, first {:?}", classed_apart.len(), first(&classed_apart));
        // The table is really used: Hangul apart, most decompositions and
        // every class come from it.
        assert!(decompositions().index.len() > 2000 && combining_classes().len() > 400);
    }
}

//! Writes a dataset's item catalog as JSON
//! (`[{id, title, category, brand, popularity}]`) for the demo storefront
//! and the browser tests. `popularity` counts the item's interactions in
//! the training part of the sequences (what a shop's "popular" shelf would
//! know), never the validation or test targets.
//!
//! ```text
//! cargo run --release --bin catalog -- --data data/scientific --out www/demo/catalog.json
//! ```

use std::path::PathBuf;

use shelfrank::dataset::Dataset;

fn main() {
    let mut data = PathBuf::from("data/scientific");
    let mut out = PathBuf::from("www/demo/catalog.json");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--data", Some(v)) => data = v.into(),
            ("--out", Some(v)) => out = v.into(),
            _ => {
                eprintln!("usage: catalog [--data DIR] [--out FILE]");
                std::process::exit(2);
            }
        }
    }
    let dataset = match Dataset::load(&data) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("catalog: {e}");
            std::process::exit(1);
        }
    };
    let mut popularity = vec![0u32; dataset.items.len()];
    for sequence in dataset.train_sequences() {
        for &item in sequence {
            if let Some(count) = popularity.get_mut(item as usize) {
                *count += 1;
            }
        }
    }
    let items: Vec<_> = dataset
        .items
        .iter()
        .zip(&popularity)
        .map(|(i, p)| serde_json::json!({ "id": i.id, "title": i.title, "category": i.category, "brand": i.brand, "popularity": p }))
        .collect();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create the output folder");
    }
    std::fs::write(&out, serde_json::to_vec(&items).expect("serialise")).unwrap_or_else(|e| {
        eprintln!("catalog: cannot write {}: {e}", out.display());
        std::process::exit(1);
    });
    eprintln!("catalog: wrote {} items to {}", items.len(), out.display());
}

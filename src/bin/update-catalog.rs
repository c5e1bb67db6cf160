//! Brings a trained model up to date with a shop's current catalog,
//! without training: items the model already knows keep their ID rows,
//! items it has never seen (new since training, or held out of it) borrow
//! an ID row from the trained items whose text is nearest (cosine of
//! all-MiniLM-L6-v2 sentence embeddings from the `teacher` binary when
//! `--teacher` is given, which validation prefers, else of this model's
//! text vectors), and items gone from the catalog are dropped. The
//! borrowed row blends the `--neighbours K` nearest items' rows by a
//! softmax of their cosines at `--temperature T` (defaults 5 and 0.1,
//! chosen on validation by `tools/sweep-neighbours.sh`; 1 copies the
//! nearest item's row).
//! Before, a new item was scored from its text alone and ranked as if no
//! one wanted it; `eval --cold-start` measures both.
//!
//! A text-only model (no ID rows, such as the any-catalog model trained
//! with `train --vocabulary full`) keeps token rows for the catalog's
//! words only, which makes it page-sized for that shop; `--catalog-words`
//! does the same for a model with ID rows.
//!
//! ```text
//! cargo run --release --bin update-catalog -- --model FILE (--data DIR | --catalog FILE) --out FILE [--teacher FILE] [--tokenizer FILE] [--neighbours K] [--temperature T] [--catalog-words]
//! ```

use std::path::PathBuf;

use shelfrank::evaluation::{LoadedModel, Neighbours, read_tokenizer, update_manifest};
use shelfrank::model::ModelFile;
use shelfrank::teacher::TeacherEmbeddings;

struct Args {
    model: PathBuf,
    data: PathBuf,
    catalog: Option<PathBuf>,
    out: Option<PathBuf>,
    tokenizer: Option<PathBuf>,
    teacher: Option<PathBuf>,
    neighbours: Neighbours,
    /// Keep token rows for the catalog's words only (always for a
    /// text-only model).
    catalog_words: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "models/shelfrank-scientific.bin".into(),
        data: "data/scientific".into(),
        catalog: None,
        out: None,
        tokenizer: None,
        teacher: None,
        neighbours: Neighbours::default(),
        catalog_words: false,
    };
    let mut it = shelfrank::cli::args();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--data" => args.data = value()?.into(),
            "--catalog" => args.catalog = Some(value()?.into()),
            "--out" => args.out = Some(value()?.into()),
            "--tokenizer" => args.tokenizer = Some(value()?.into()),
            "--teacher" => args.teacher = Some(value()?.into()),
            "--catalog-words" => args.catalog_words = true,
            "--neighbours" => {
                args.neighbours.k = value()?.parse().ok().filter(|&k| k >= 1).ok_or("--neighbours needs a whole number of at least 1")?
            }
            "--temperature" => {
                args.neighbours.temperature =
                    value()?.parse().ok().filter(|&t: &f32| t > 0.0 && t.is_finite()).ok_or("--temperature needs a positive number")?
            }
            "--help" | "-h" => {
                return Err(
                    "usage: update-catalog --model FILE (--data DIR | --catalog FILE) --out FILE [--teacher FILE] [--tokenizer FILE] [--neighbours K] [--temperature T] [--catalog-words]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

pub fn main() {
    shelfrank::cli::finish("update-catalog", run());
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let out = args.out.clone().ok_or("--out FILE is required (the model file to write)")?;
    let tokenizer = read_tokenizer(args.tokenizer.as_deref())?;
    let data = shelfrank::shop::catalog_or_dataset(args.catalog.as_deref(), &args.data)?;
    let bytes = std::fs::read(&args.model).map_err(|e| format!("cannot read {}: {e}", args.model.display()))?;
    let file = ModelFile::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let file = if file.items.is_empty() || args.catalog_words {
        // Token rows for the catalog's words only: a model trained with its
        // tokenizer's whole vocabulary is about 2 MB; for one shop's
        // catalog it is page-sized.
        let texts: Vec<&str> = data.items.iter().map(|item| item.text.as_str()).collect();
        let (pruned, dropped) = file.for_texts(&texts).map_err(|e| format!("{}: {e}", args.model.display()))?;
        eprintln!("update-catalog: kept {} token rows for the catalog's words, dropped {dropped}", pruned.vocab.len());
        pruned
    } else {
        file
    };
    if file.items.is_empty() {
        // A text-only model scores any catalog from its text: no ID rows to lay out.
        let bytes = file.to_bytes();
        std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!("update-catalog: text-only model for {} items; wrote {} ({} bytes)", data.items.len(), out.display(), bytes.len());
        return update_manifest(&out, &bytes);
    }
    let ids: Vec<String> = data.items.iter().map(|item| item.id.clone()).collect();
    let (file, new, dropped) = file.for_catalog(&ids).map_err(|e| e.to_string())?;
    let device = shelfrank::cpu_device();
    let mut model = LoadedModel::from_file(file, tokenizer.as_deref(), &data, &device)?;
    let teacher = args.teacher.as_deref().map(TeacherEmbeddings::read).transpose()?;
    let pairs = model.borrow_id_rows(&data, tokenizer.as_deref(), teacher.as_ref(), args.neighbours, &device)?;
    let mut cosines: Vec<f32> = pairs.iter().map(|p| p.2).collect();
    cosines.sort_by(f32::total_cmp);
    let median = cosines.get(cosines.len() / 2).map(|c| format!(" (median cosine {c:.3})")).unwrap_or_default();
    let bytes = model.file.to_bytes();
    std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!(
        "update-catalog: {} items ({new} new to the model, {dropped} dropped); {} borrowed an ID row{median}; wrote {} ({} bytes)",
        ids.len(),
        pairs.len(),
        out.display(),
        bytes.len()
    );
    update_manifest(&out, &bytes)
}

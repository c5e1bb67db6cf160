//! Chooses a model file's scoring settings without touching test data:
//! for every history-affinity weight and decay given, fits the repeat
//! prior on the training sequences, then scores validation (published
//! protocol). Prints one JSON line per setting and, with `--write`, stores
//! the setting with the best validation NDCG@10 (and its prior) in the
//! model file. `tools/sweep.sh` is the committed sweep.
//!
//! ```text
//! cargo run --release --bin tune -- --model FILE --data DIR \
//!     [--weights 0.5,0.75,1] [--decays 0.6,0.7,0.8] [--tokenizer FILE] [--write]
//! ```
//!
//! `--events FILE --catalog FILE` or `--ga4 DIR` in place of `--data` tune a
//! model trained on a shop's own data (as `train` read it).
//! `--no-repeat-prior` leaves the prior out: the any-catalog model's, whose
//! shops may re-view items far more than Scientific's buyers re-buy them.
//! On a typed log the prior has a row per kind of the item's newest event;
//! `--shared-repeat-prior` fits one row for all kinds, for comparison.

use std::path::PathBuf;

use burn::tensor::Device;
use serde_json::json;
use shelfrank::evaluation::{LoadedModel, evaluate_with, fit_repeat_prior, read_tokenizer, update_manifest};
use shelfrank::model::Affinity;
use shelfrank::shop::DataSource;

struct Args {
    model: PathBuf,
    source: DataSource,
    tokenizer: Option<PathBuf>,
    weights: Vec<f32>,
    decays: Vec<f32>,
    write: bool,
    /// Fit no repeat prior (a model for catalogs whose shoppers' repeat
    /// habits this data does not tell).
    no_repeat_prior: bool,
    /// One repeat-prior row for every kind, fitted on all of them.
    shared_repeat_prior: bool,
}

fn numbers(list: &str, flag: &str) -> Result<Vec<f32>, String> {
    list.split(',').map(|v| v.trim().parse::<f32>().map_err(|_| format!("{flag} takes numbers separated by commas"))).collect()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "models/shelfrank-scientific.bin".into(),
        source: DataSource::default(),
        tokenizer: None,
        weights: Vec::new(),
        decays: Vec::new(),
        write: false,
        no_repeat_prior: false,
        shared_repeat_prior: false,
    };
    let mut it = shelfrank::cli::args();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        if args.source.take(&flag, &mut value)? {
            continue;
        }
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--tokenizer" => args.tokenizer = Some(value()?.into()),
            "--weights" => args.weights = numbers(&value()?, "--weights")?,
            "--decays" => args.decays = numbers(&value()?, "--decays")?,
            "--write" => args.write = true,
            "--no-repeat-prior" => args.no_repeat_prior = true,
            "--shared-repeat-prior" => args.shared_repeat_prior = true,
            "--help" | "-h" => {
                return Err(format!(
                    "usage: tune --model FILE {} [--tokenizer FILE] [--weights W,W,...] [--decays D,D,...] [--no-repeat-prior | --shared-repeat-prior] [--write]",
                    DataSource::USAGE
                ));
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

pub fn main() {
    shelfrank::cli::finish("tune", run());
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let (data, _) = args.source.load()?;
    let tokenizer_json = read_tokenizer(args.tokenizer.as_deref())?;
    let device = Device::flex();
    let model = LoadedModel::load(&args.model, tokenizer_json.as_deref(), &data, &device)?;
    let weights = if args.weights.is_empty() { vec![model.affinity.weight] } else { args.weights.clone() };
    let decays = if args.decays.is_empty() { vec![model.affinity.decay] } else { args.decays.clone() };
    let sequences = data.train_sequences();
    let n = data.items.len();

    let mut best: Option<(f64, Affinity, Vec<f32>, serde_json::Value)> = None;
    for &weight in &weights {
        for &decay in &decays {
            let affinity = Affinity { weight, decay, ..model.affinity };
            let mut scorer = model.scorer(affinity, false, &device);
            let (table, fit) = if args.no_repeat_prior {
                (Vec::new(), serde_json::Value::Null)
            } else {
                let (table, fit) =
                    fit_repeat_prior(&mut scorer, &sequences, model.max_events, !args.shared_repeat_prior).map_err(|e| e.to_string())?;
                (table, json!(fit))
            };
            let mut scorer = scorer.with_repeat_prior(&table);
            let valid = evaluate_with(&mut scorer, &data.valid, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            let line = json!({
                "affinityWeight": weight,
                "affinityDecay": decay,
                "repeatFit": fit,
                "valid": valid.published,
                "historyMasked": { "valid": valid.history_masked },
            });
            println!("{line}");
            if best.as_ref().is_none_or(|(score, ..)| valid.published.ndcg_10 > *score) {
                best = Some((valid.published.ndcg_10, affinity, table, line));
            }
        }
    }
    let (_, affinity, table, line) = best.ok_or("no setting to try")?;
    eprintln!("tune: best on validation: weight {} decay {}", affinity.weight, affinity.decay);
    if args.write {
        let mut file = model.file;
        file.config.affinity_weight = affinity.weight;
        file.config.affinity_decay = affinity.decay;
        file.config.repeat_prior = table;
        file.meta["tuning"] = json!({
            "weights": weights,
            "decays": decays,
            "chosen": line,
            "rule": if args.no_repeat_prior {
                "best validation NDCG@10 (published protocol); no repeat prior"
            } else {
                "best validation NDCG@10 (published protocol); repeat prior fitted on training sequences"
            },
        });
        let bytes = file.to_bytes();
        std::fs::write(&args.model, &bytes).map_err(|e| format!("cannot write {}: {e}", args.model.display()))?;
        eprintln!("tune: wrote {} ({} bytes)", args.model.display(), bytes.len());
        update_manifest(&args.model, &bytes)?;
    }
    Ok(())
}

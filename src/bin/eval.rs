//! Evaluates a model file on a RecBole/UniSRec-format dataset with the
//! literature's protocol, next to baselines, in one run.
//!
//! ```text
//! cargo run --release --bin eval -- --model models/shelfrank-scientific.bin --data data/scientific \
//!     [--ablation id-only=FILE] [--ablation text-only=FILE] [--ablation f32=FILE] [--cold-start FILE] [--json]
//! ```
//!
//! Full ranking: leave-one-out, history capped at the model's window (50),
//! the target ranked against every item (history items masked, as RecBole's
//! full-sort evaluation does), averaged over all users; validation and test.
//! Classification view: per user the target and 99 sampled untouched items
//! (fixed seed), labelled 1/0, thresholded at the best-F1 score on
//! validation. Reranking view: a 100-item server list per test user
//! (co-occurrence with the last item plus popularity), NDCG@10 in server
//! order versus reranked by shelfrank. Cold start: a model trained with 10%
//! of items held out, on users whose test target is one of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde_json::{Value, json};
use shelfrank::dataset::{Dataset, Example};
use shelfrank::evaluation::{
    Classification, IdRows, ModelScorer, RankingMetrics, Scorer, best_threshold, catalog_text, classify, evaluate_with, histories,
    ndcg10_in_list,
};
use shelfrank::model::{Affinity, ModelFile, SessionRanker, TextEncoder, sha256_hex};
use shelfrank::rank::{Candidate, RerankOptions, arrange};

struct Args {
    model: PathBuf,
    data: PathBuf,
    tokenizer: Option<PathBuf>,
    ablations: Vec<(String, PathBuf)>,
    cold_start: Option<PathBuf>,
    json: bool,
    seed: u64,
    negatives: usize,
    list_size: usize,
    max_users: Option<usize>,
    affinity_weight: Option<f32>,
    affinity_decay: Option<f32>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "models/shelfrank-scientific.bin".into(),
        data: "data/scientific".into(),
        tokenizer: None,
        ablations: Vec::new(),
        cold_start: None,
        json: false,
        seed: 2024,
        negatives: 99,
        list_size: 100,
        max_users: None,
        affinity_weight: None,
        affinity_decay: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--data" => args.data = value()?.into(),
            "--tokenizer" => args.tokenizer = Some(value()?.into()),
            "--cold-start" => args.cold_start = Some(value()?.into()),
            "--ablation" => {
                let v = value()?;
                let (name, path) = v.split_once('=').ok_or("--ablation takes NAME=FILE")?;
                args.ablations.push((name.to_owned(), path.into()));
            }
            "--json" => args.json = true,
            "--max-users" => args.max_users = Some(value()?.parse().map_err(|_| "--max-users needs an integer")?),
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed needs an integer")?,
            "--negatives" => args.negatives = value()?.parse().map_err(|_| "--negatives needs an integer")?,
            "--list-size" => args.list_size = value()?.parse().map_err(|_| "--list-size needs an integer")?,
            "--affinity-weight" => args.affinity_weight = Some(value()?.parse().map_err(|_| "--affinity-weight needs a number")?),
            "--affinity-decay" => args.affinity_decay = Some(value()?.parse().map_err(|_| "--affinity-decay needs a number")?),
            "--help" | "-h" => {
                return Err("usage: eval --model FILE --data DIR [--tokenizer FILE] [--ablation NAME=FILE]... [--cold-start FILE] [--json] [--seed N] [--negatives N] [--list-size N] [--max-users N] [--affinity-weight W] [--affinity-decay D]".into());
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(message) = run() {
        eprintln!("eval: {message}");
        std::process::exit(1);
    }
}

/// SplitMix64, seeded per user so every scorer sees the same negatives.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `count` items the user never touched (not in history, not the target).
fn negatives(example: &Example, n_items: usize, count: usize, seed: u64) -> Vec<u32> {
    let mut out = Vec::with_capacity(count);
    let mut state = mix(seed ^ (example.user as u64).wrapping_mul(0x1000_0000_01B3));
    while out.len() < count.min(n_items.saturating_sub(example.history.len() + 1)) {
        state = mix(state);
        let item = (state % n_items as u64) as u32;
        if item != example.target && !example.history.contains(&item) && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Item counts and last-item → next-item transitions from training sequences.
struct Statistics {
    popularity: Vec<f32>,
    transitions: HashMap<u32, HashMap<u32, f32>>,
}

impl Statistics {
    fn new(data: &Dataset) -> Statistics {
        let mut popularity = vec![0f32; data.items.len()];
        let mut transitions: HashMap<u32, HashMap<u32, f32>> = HashMap::new();
        for sequence in data.train_sequences() {
            for &item in sequence {
                popularity[item as usize] += 1.0;
            }
            for pair in sequence.windows(2) {
                *transitions.entry(pair[0]).or_default().entry(pair[1]).or_default() += 1.0;
            }
        }
        Statistics { popularity, transitions }
    }

    /// Co-occurrence with the last item, popularity breaking ties.
    fn cooccurrence_row(&self, history: &[u32]) -> Vec<f32> {
        let max_pop = self.popularity.iter().fold(1f32, |m, &p| m.max(p));
        let mut row: Vec<f32> = self.popularity.iter().map(|p| 0.5 * p / max_pop).collect();
        if let Some(next) = history.last().and_then(|last| self.transitions.get(last)) {
            for (&item, &count) in next {
                row[item as usize] += count;
            }
        }
        row
    }
}

struct Popularity<'a>(&'a Statistics);

impl Scorer for Popularity<'_> {
    fn score(&mut self, histories: &[&[u32]]) -> shelfrank::Result<Vec<f32>> {
        Ok(histories.iter().flat_map(|_| self.0.popularity.iter().copied()).collect())
    }
}

struct Cooccurrence<'a>(&'a Statistics);

impl Scorer for Cooccurrence<'_> {
    fn score(&mut self, histories: &[&[u32]]) -> shelfrank::Result<Vec<f32>> {
        Ok(histories.iter().flat_map(|h| self.0.cooccurrence_row(h)).collect())
    }
}

/// Ranking metrics on both splits plus the classification view.
struct Report {
    valid: RankingMetrics,
    test: RankingMetrics,
    classification: Classification,
}

impl Report {
    fn json(&self) -> Value {
        json!({ "valid": self.valid, "test": self.test, "classification": self.classification })
    }
}

/// Evaluates one scorer; `on_test` sees each test user's score row.
fn report(
    scorer: &mut dyn Scorer,
    data: &Dataset,
    max_events: usize,
    args: &Args,
    on_test: &mut dyn FnMut(usize, &[f32]),
) -> shelfrank::Result<Report> {
    let n = data.items.len();
    let pairs = |examples: &[Example], pairs: &mut Vec<(f32, bool)>, user: usize, row: &[f32]| {
        let example = &examples[user];
        pairs.push((row[example.target as usize], true));
        for item in negatives(example, n, args.negatives, args.seed) {
            pairs.push((row[item as usize], false));
        }
    };
    let mut valid_pairs = Vec::new();
    let valid = evaluate_with(scorer, &data.valid, n, max_events, &mut |user, row| pairs(&data.valid, &mut valid_pairs, user, row))?;
    let mut test_pairs = Vec::new();
    let test = evaluate_with(scorer, &data.test, n, max_events, &mut |user, row| {
        pairs(&data.test, &mut test_pairs, user, row);
        on_test(user, row);
    })?;
    let classification = classify(&test_pairs, best_threshold(&valid_pairs));
    Ok(Report { valid, test, classification })
}

struct LoadedModel {
    network: SessionRanker,
    catalog: shelfrank::model::ItemText,
    ids: IdRows,
    max_events: usize,
    file: ModelFile,
    bytes: usize,
    sha256: String,
    affinity: Affinity,
}

fn load_model(path: &Path, tokenizer_json: &[u8], data: &Dataset, device: &Device, args: &Args) -> Result<LoadedModel, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file = ModelFile::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = TextEncoder::new(tokenizer_json, &file.vocab, file.config.max_text_tokens).map_err(|e| e.to_string())?;
    let catalog = catalog_text(&data.items, &text).map_err(|e| e.to_string())?;
    // The model's catalog ids, matched to the dataset by shop id.
    let known: HashMap<&str, usize> = file.items.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let held_out: Vec<String> =
        file.meta["heldOutItems"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
    let with_ids = !file.items.is_empty();
    if with_ids && data.items.iter().enumerate().any(|(i, item)| known.get(item.id.as_str()) != Some(&i)) {
        return Err(format!("{} was trained on another catalog than {}", path.display(), data.name));
    }
    let held: Vec<u32> = data.items.iter().enumerate().filter(|(_, item)| held_out.contains(&item.id)).map(|(i, _)| i as u32).collect();
    let ids = IdRows::new(data.items.len(), with_ids, &held);
    let network = file.build(device).map_err(|e| e.to_string())?;
    let mut affinity = file.config.affinity();
    affinity.weight = args.affinity_weight.unwrap_or(affinity.weight);
    affinity.decay = args.affinity_decay.unwrap_or(affinity.decay);
    Ok(LoadedModel {
        network,
        catalog,
        ids,
        max_events: file.config.max_events,
        sha256: sha256_hex(&bytes),
        bytes: bytes.len(),
        file,
        affinity,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let mut data = Dataset::load(&args.data).map_err(|e| e.to_string())?;
    data.keep_users(args.max_users);
    let tokenizer_path = args.tokenizer.clone().unwrap_or_else(|| args.model.with_file_name("minilm-tokenizer.json"));
    let tokenizer_json = std::fs::read(&tokenizer_path).map_err(|e| format!("cannot read {}: {e}", tokenizer_path.display()))?;
    let device = Device::flex();
    let stats = Statistics::new(&data);
    let n = data.items.len();

    let main = load_model(&args.model, &tokenizer_json, &data, &device, &args)?;
    // The reranking view: a server list per test user, and where the
    // target lands in server order and after shelfrank.
    let (mut server_ndcg, mut reranked_ndcg, mut model_only_ndcg, mut in_list) = (0.0, 0.0, 0.0, 0usize);
    let test_histories = histories(&data.test, main.max_events);
    let ours = {
        let mut scorer = ModelScorer::new(&main.network, &main.catalog, main.ids.clone(), main.affinity, &device);
        report(&mut scorer, &data, main.max_events, &args, &mut |user, row| {
            let history = test_histories[user];
            let target = data.test[user].target;
            let server = server_list(&stats, history, args.list_size, args.seed ^ user as u64);
            server_ndcg += ndcg10_in_list(&server, target);
            in_list += server.contains(&target) as usize;
            let candidates: Vec<Candidate> = server.iter().map(|&i| data.items[i as usize].candidate()).collect();
            let scores: Vec<f32> = server.iter().map(|&i| row[i as usize]).collect();
            for (weight, sum) in [(RerankOptions::default().server_weight, &mut reranked_ndcg), (0.0, &mut model_only_ndcg)] {
                let ranked = arrange(&candidates, Some(&scores), &RerankOptions { server_weight: weight, ..RerankOptions::default() })
                    .expect("valid candidates");
                let order: Vec<u32> = ranked.iter().map(|r| server[r.original_position]).collect();
                *sum += ndcg10_in_list(&order, target);
            }
        })
        .map_err(|e| e.to_string())?
    };
    let users = data.test.len().max(1) as f64;

    let mut baselines = serde_json::Map::new();
    let popularity = report(&mut Popularity(&stats), &data, main.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
    baselines.insert("popularity".into(), popularity.json());
    let cooccurrence = report(&mut Cooccurrence(&stats), &data, main.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
    baselines.insert("cooccurrence".into(), cooccurrence.json());
    // The same model without the history-affinity term: the transformer alone.
    let transformer_only = Affinity { weight: 0.0, ..main.affinity };
    let mut scorer = ModelScorer::new(&main.network, &main.catalog, main.ids.clone(), transformer_only, &device);
    let no_affinity = report(&mut scorer, &data, main.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
    baselines.insert("no-affinity".into(), no_affinity.json());
    for (name, path) in &args.ablations {
        let model = load_model(path, &tokenizer_json, &data, &device, &args)?;
        let mut scorer = ModelScorer::new(&model.network, &model.catalog, model.ids.clone(), model.affinity, &device);
        let r = report(&mut scorer, &data, model.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let mut entry = r.json();
        entry["model"] = json!({ "file": path.display().to_string(), "sha256": model.sha256, "bytes": model.bytes });
        baselines.insert(name.clone(), entry);
    }

    let cold_start = match &args.cold_start {
        None => Value::Null,
        Some(path) => {
            let model = load_model(path, &tokenizer_json, &data, &device, &args)?;
            let held: std::collections::HashSet<u32> = (0..n as u32).filter(|&i| model.ids.row(i) == 0).collect();
            let cold_users: Vec<Example> = data.test.iter().filter(|e| held.contains(&e.target)).cloned().collect();
            let mut scorer = ModelScorer::new(&model.network, &model.catalog, model.ids.clone(), model.affinity, &device);
            let metrics = evaluate_with(&mut scorer, &cold_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            let warm_users: Vec<Example> = data.test.iter().filter(|e| !held.contains(&e.target)).cloned().collect();
            let warm = evaluate_with(&mut scorer, &warm_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            let mut pop = Popularity(&stats);
            let pop_cold = evaluate_with(&mut pop, &cold_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            json!({
                "model": { "file": path.display().to_string(), "sha256": model.sha256, "bytes": model.bytes },
                "heldOutItems": held.len(),
                "coldTargetUsers": cold_users.len(),
                "test": metrics,
                "warmTargetTest": warm,
                "popularityOnColdUsers": pop_cold,
            })
        }
    };

    let out = json!({
        "dataset": data.name,
        "model": {
            "file": args.model.display().to_string(),
            "sha256": main.sha256,
            "bytes": main.bytes,
            "storedAs": main.file.tensors.iter().find(|t| t.shape.len() >= 2).map(|t| format!("{:?}", t.stored_as).to_lowercase()),
            "config": main.file.config,
        },
        "protocol": {
            "split": "leave-one-out (valid = second-to-last, test = last item)",
            "maxHistory": main.max_events,
            "ranking": format!("full: target against all {n} items, history items masked"),
            "users": data.test.len(),
            "classification": format!("target + {} sampled untouched items per user (seed {}), threshold = best F1 on validation", args.negatives, args.seed),
        },
        "valid": ours.valid,
        "test": ours.test,
        "classification": ours.classification,
        "rerank": {
            "listSize": args.list_size,
            "serverList": "top items by co-occurrence with the last item, then popularity (history excluded)",
            "targetInList": in_list as f64 / users,
            "serverNdcg10": server_ndcg / users,
            "shelfrankNdcg10": reranked_ndcg / users,
            "shelfrankServerWeight": RerankOptions::default().server_weight,
            "modelOnlyNdcg10": model_only_ndcg / users,
        },
        "coldStart": cold_start,
        "baselines": baselines,
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        print_table(&out);
    }
    Ok(())
}

/// A candidate list the way a simple server would build it.
fn server_list(stats: &Statistics, history: &[u32], size: usize, seed: u64) -> Vec<u32> {
    let row = stats.cooccurrence_row(history);
    let mut items: Vec<(f32, u64, u32)> = row
        .iter()
        .enumerate()
        .filter(|(i, _)| !history.contains(&(*i as u32)))
        .map(|(i, &s)| (s, mix(seed ^ i as u64), i as u32))
        .collect();
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    items.into_iter().take(size).map(|(_, _, i)| i).collect()
}

fn print_table(out: &Value) {
    let row = |name: &str, v: &Value| {
        let t = &v["test"];
        println!(
            "{name:<14} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4}   valid N@10 {:.4}",
            t["recall@10"].as_f64().unwrap_or(0.0),
            t["recall@50"].as_f64().unwrap_or(0.0),
            t["ndcg@10"].as_f64().unwrap_or(0.0),
            t["ndcg@50"].as_f64().unwrap_or(0.0),
            t["mrr"].as_f64().unwrap_or(0.0),
            v["valid"]["ndcg@10"].as_f64().unwrap_or(0.0),
        );
    };
    println!("{} test, full ranking over all items ({} users)", out["dataset"], out["protocol"]["users"]);
    println!("{:<14} {:>8} {:>8} {:>8} {:>8} {:>8}", "model", "R@10", "R@50", "N@10", "N@50", "MRR");
    row("shelfrank", out);
    if let Some(baselines) = out["baselines"].as_object() {
        for (name, v) in baselines {
            row(name, v);
        }
    }
    let c = &out["classification"];
    println!(
        "classification (test): accuracy {:.4} precision {:.4} recall {:.4} F1 {:.4}",
        c["accuracy"], c["precision"], c["recall"], c["f1"]
    );
    let r = &out["rerank"];
    println!(
        "rerank view: server NDCG@10 {:.4} → shelfrank {:.4} (model only {:.4})",
        r["serverNdcg10"], r["shelfrankNdcg10"], r["modelOnlyNdcg10"]
    );
    if !out["coldStart"].is_null() {
        println!(
            "cold start: NDCG@10 {:.4} on {} users whose target was held out",
            out["coldStart"]["test"]["ndcg@10"], out["coldStart"]["coldTargetUsers"]
        );
    }
}

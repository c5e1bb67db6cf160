//! Evaluates a model file on a RecBole/UniSRec-format dataset with the
//! literature's protocol, next to baselines, in one run.
//!
//! ```text
//! cargo run --release --bin eval -- --model models/shelfrank-scientific.bin --data data/scientific \
//!     [--ablation id-only=FILE] [--ablation text-only=FILE] [--ablation f32=FILE] [--cold-start FILE] [--category-split FILE] [--teacher FILE] [--json]
//! ```
//!
//! `--events FILE --catalog FILE` or `--ga4 DIR` in place of `--data`
//! evaluate a model trained on a shop's own data, split as `train` split it.
//!
//! Full ranking: leave-one-out, history capped at the model's window (50),
//! the target ranked against every item, history items included (RecBole's
//! full-sort evaluation of sequential models, which the published numbers
//! use), averaged over all users; validation and test. A second, labelled
//! row masks the user's history items first. `--valid-only` prints the
//! validation figures alone (for choosing settings; see `tune`).
//! Classification view: per user the target and 99 sampled untouched items
//! (fixed seed), labelled 1/0, thresholded at the best-F1 score on
//! validation. Reranking view: a 100-item server list per test user
//! (co-occurrence with the last item plus popularity), NDCG@10 in server
//! order versus reranked by shelfrank. Cold start: a model trained with 10%
//! of items held out, on users whose test target is one of them, scored
//! from text alone and after `update-catalog` gave them borrowed ID rows
//! (nearest trained items by `--teacher` embeddings when given, else by
//! the model's text tower).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde_json::{Value, json};
use shelfrank::dataset::{Dataset, Example};
use shelfrank::evaluation::{
    Classification, Cooccurrence, LoadedModel, Neighbours, Popularity, Ranked, Scorer, Statistics, best_threshold, classify, evaluate_with,
    histories, ndcg10_in_list, read_tokenizer, target_rank,
};
use shelfrank::kinds::bootstrap;
use shelfrank::model::{Affinity, EventKind};
use shelfrank::rank::{Candidate, RerankOptions, arrange};
use shelfrank::shop::DataSource;
use shelfrank::teacher::TeacherEmbeddings;

struct Args {
    model: PathBuf,
    source: DataSource,
    tokenizer: Option<PathBuf>,
    ablations: Vec<(String, PathBuf)>,
    cold_start: Option<PathBuf>,
    category_split: Option<PathBuf>,
    teacher: Option<PathBuf>,
    json: bool,
    seed: u64,
    negatives: usize,
    list_size: usize,
    max_users: Option<usize>,
    affinity_weight: Option<f32>,
    affinity_decay: Option<f32>,
    valid_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "models/shelfrank-scientific.bin".into(),
        source: DataSource::default(),
        tokenizer: None,
        ablations: Vec::new(),
        cold_start: None,
        category_split: None,
        teacher: None,
        json: false,
        seed: 2024,
        negatives: 99,
        list_size: 100,
        max_users: None,
        affinity_weight: None,
        affinity_decay: None,
        valid_only: false,
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
            "--cold-start" => args.cold_start = Some(value()?.into()),
            "--category-split" => args.category_split = Some(value()?.into()),
            "--teacher" => args.teacher = Some(value()?.into()),
            "--ablation" => {
                let v = value()?;
                let (name, path) = v.split_once('=').ok_or("--ablation takes NAME=FILE")?;
                args.ablations.push((name.to_owned(), path.into()));
            }
            "--json" => args.json = true,
            "--valid-only" => args.valid_only = true,
            "--max-users" => args.max_users = Some(value()?.parse().map_err(|_| "--max-users needs an integer")?),
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed needs an integer")?,
            "--negatives" => args.negatives = value()?.parse().map_err(|_| "--negatives needs an integer")?,
            "--list-size" => args.list_size = value()?.parse().map_err(|_| "--list-size needs an integer")?,
            "--affinity-weight" => args.affinity_weight = Some(value()?.parse().map_err(|_| "--affinity-weight needs a number")?),
            "--affinity-decay" => args.affinity_decay = Some(value()?.parse().map_err(|_| "--affinity-decay needs a number")?),
            "--help" | "-h" => {
                return Err(format!(
                    "usage: eval --model FILE {} [--tokenizer FILE] [--ablation NAME=FILE]... [--cold-start FILE] [--category-split FILE] [--teacher FILE] [--json] [--seed N] [--negatives N] [--list-size N] [--max-users N] [--affinity-weight W] [--affinity-decay D] [--valid-only]",
                    DataSource::USAGE
                ));
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

pub fn main() {
    shelfrank::cli::finish("eval", run());
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

/// Ranking metrics on both splits plus the classification view.
struct Report {
    valid: Ranked,
    test: Ranked,
    classification: Classification,
}

impl Report {
    /// The published protocol as `valid`/`test`, the masked variant labelled.
    fn json(&self) -> Value {
        json!({
            "valid": self.valid.published,
            "test": self.test.published,
            "historyMasked": { "valid": self.valid.history_masked, "test": self.test.history_masked },
            "classification": self.classification,
        })
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

/// Catalog indices of the items `file` was trained without: still
/// untrained, or given a borrowed ID row since.
fn held_out_items(file: &shelfrank::model::ModelFile, data: &Dataset) -> std::collections::HashSet<u32> {
    let (untrained, borrowed) = (file.untrained(), file.borrowed());
    (0..data.items.len() as u32)
        .filter(|&i| untrained.contains(data.items[i as usize].id.as_str()) || borrowed.contains(data.items[i as usize].id.as_str()))
        .collect()
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let (mut data, _) = args.source.load()?;
    data.keep_users(args.max_users);
    let tokenizer_json = read_tokenizer(args.tokenizer.as_deref())?;
    let device = Device::flex();
    let stats = Statistics::new(&data);
    let n = data.items.len();

    let load = |path: &Path| -> Result<LoadedModel, String> {
        let mut model = LoadedModel::load(path, tokenizer_json.as_deref(), &data, &device)?;
        model.affinity.weight = args.affinity_weight.unwrap_or(model.affinity.weight);
        model.affinity.decay = args.affinity_decay.unwrap_or(model.affinity.decay);
        Ok(model)
    };
    let main = load(&args.model)?;
    if args.valid_only {
        let mut scorer = main.scorer(main.affinity, true, &device);
        let valid = evaluate_with(&mut scorer, &data.valid, n, main.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let mut out = json!({
            "affinityWeight": main.affinity.weight,
            "affinityDecay": main.affinity.decay,
            "valid": valid.published,
            "historyMasked": { "valid": valid.history_masked },
        });
        // A model trained without some items: also the validation users
        // whose target is one of them (for choosing how they borrow rows).
        let held = held_out_items(&main.file, &data);
        if !held.is_empty() {
            let users: Vec<Example> = data.valid.iter().filter(|e| held.contains(&e.target)).cloned().collect();
            let cold = evaluate_with(&mut scorer, &users, n, main.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            out["heldOutTargets"] = json!({ "valid": cold.published });
        }
        println!("{}", if args.json { serde_json::to_string_pretty(&out).expect("json") } else { out.to_string() });
        return Ok(());
    }
    // The reranking view: a server list per test user, and where the
    // target lands in server order and after shelfrank; the server list
    // either may hold history items (as a real one does) or leaves them out.
    let mut views = [RerankView::new(true), RerankView::new(false)];
    let test_histories = histories(&data.test, main.max_events);
    // Each test user's NDCG@10 (published protocol) per scorer, for the
    // figures by the target's kind on a typed log.
    let mut per_user: Vec<(String, Vec<f64>)> = Vec::new();
    let user_ndcg = |user: usize, row: &[f32]| {
        let rank = target_rank(row, data.test[user].target as usize, test_histories[user].items, false);
        if rank < 10 { 1.0 / ((rank + 2) as f64).log2() } else { 0.0 }
    };
    let mut main_ndcg = vec![0.0; data.test.len()];
    let ours = {
        let mut scorer = main.scorer(main.affinity, true, &device);
        report(&mut scorer, &data, main.max_events, &args, &mut |user, row| {
            main_ndcg[user] = user_ndcg(user, row);
            let history = test_histories[user];
            let target = data.test[user].target;
            for view in &mut views {
                let server = server_list(&stats, history.items, args.list_size, args.seed ^ user as u64, view.with_history);
                view.add(&data, &server, history.items, target, row);
            }
        })
        .map_err(|e| e.to_string())?
    };
    per_user.push(("shelfrank".into(), main_ndcg));
    let users = data.test.len().max(1) as f64;
    // The fixed sample `npm test` holds the shipped model to.
    let sample: Vec<Example> = data.test.iter().step_by(QUALITY_SAMPLE_STEP).cloned().collect();
    let sampled = evaluate_with(&mut main.scorer(main.affinity, true, &device), &sample, n, main.max_events, &mut |_, _| {})
        .map_err(|e| e.to_string())?;

    let mut baselines = serde_json::Map::new();
    let mut figures = vec![0.0; data.test.len()];
    let popularity = report(&mut Popularity(&stats), &data, main.max_events, &args, &mut |u, row| figures[u] = user_ndcg(u, row))
        .map_err(|e| e.to_string())?;
    baselines.insert("popularity".into(), popularity.json());
    per_user.push(("popularity".into(), std::mem::take(&mut figures)));
    let mut figures = vec![0.0; data.test.len()];
    let cooccurrence = report(&mut Cooccurrence(&stats), &data, main.max_events, &args, &mut |u, row| figures[u] = user_ndcg(u, row))
        .map_err(|e| e.to_string())?;
    baselines.insert("cooccurrence".into(), cooccurrence.json());
    per_user.push(("cooccurrence".into(), figures));
    // The same model without its learned repeat prior.
    let mut scorer = main.scorer(main.affinity, false, &device);
    let no_prior = report(&mut scorer, &data, main.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
    baselines.insert("no-repeat-prior".into(), no_prior.json());
    // The same model without the history-affinity term: the transformer (and the prior).
    let transformer_only = Affinity { weight: 0.0, ..main.affinity };
    let mut scorer = main.scorer(transformer_only, true, &device);
    let no_affinity = report(&mut scorer, &data, main.max_events, &args, &mut |_, _| {}).map_err(|e| e.to_string())?;
    baselines.insert("no-affinity".into(), no_affinity.json());
    for (name, path) in &args.ablations {
        let model = load(path)?;
        let mut scorer = model.scorer(model.affinity, true, &device);
        let mut figures = vec![0.0; data.test.len()];
        let r =
            report(&mut scorer, &data, model.max_events, &args, &mut |u, row| figures[u] = user_ndcg(u, row)).map_err(|e| e.to_string())?;
        per_user.push((name.clone(), figures));
        let mut entry = r.json();
        entry["model"] = json!({ "file": path.display().to_string(), "sha256": model.sha256, "bytes": model.bytes });
        baselines.insert(name.clone(), entry);
    }

    // Items the model never saw in training (its file lists them): the
    // users whose test target is one of them, and the rest.
    let teacher = args.teacher.as_deref().map(TeacherEmbeddings::read).transpose()?;
    let held_out_report = |path: &Path| -> Result<Value, String> {
        let mut model = load(path)?;
        let file_facts = json!({ "file": path.display().to_string(), "sha256": model.sha256, "bytes": model.bytes });
        // Items training never saw: still untrained, or given a borrowed ID row since.
        let held = held_out_items(&model.file, &data);
        let cold_users: Vec<Example> = data.test.iter().filter(|e| held.contains(&e.target)).cloned().collect();
        let warm_users: Vec<Example> = data.test.iter().filter(|e| !held.contains(&e.target)).cloned().collect();
        let both = |model: &shelfrank::evaluation::LoadedModel| -> Result<(Ranked, Ranked), String> {
            let mut scorer = model.scorer(model.affinity, true, &device);
            let cold = evaluate_with(&mut scorer, &cold_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            let warm = evaluate_with(&mut scorer, &warm_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
            Ok((cold, warm))
        };
        // As trained: unseen items scored from their text alone (ID row 0).
        let text_only = both(&model)?;
        // As `update-catalog` writes it: each borrows an ID row from its nearest trained items.
        let pairs = model.borrow_id_rows(&data, tokenizer_json.as_deref(), teacher.as_ref(), Neighbours::default(), &device)?;
        let (metrics, warm) = both(&model)?;
        let mut cosines: Vec<f32> = pairs.iter().map(|p| p.2).collect();
        cosines.sort_by(f32::total_cmp);
        // The shipped model on the same users, for reference (it saw these items).
        let mut shipped = main.scorer(main.affinity, true, &device);
        let shipped_cold = evaluate_with(&mut shipped, &cold_users, n, main.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        // The baselines learn from a log without the held-out items, as the model did.
        let stats = Statistics::without(&data, &held);
        let mut pop = Popularity(&stats);
        let pop_cold = evaluate_with(&mut pop, &cold_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let mut co = Cooccurrence(&stats);
        let co_cold = evaluate_with(&mut co, &cold_users, n, model.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        Ok(json!({
            "model": file_facts,
            "heldOutItems": held.len(),
            "heldOutCategories": model.file.meta["heldOutCategories"],
            "idDropout": model.file.meta["idDropout"],
            "coldTargetUsers": cold_users.len(),
            "borrowedIdRows": { "items": pairs.len(), "by": model.file.meta["borrowedBy"], "medianCosine": cosines.get(cosines.len() / 2), "from": model.file.meta["borrowedFrom"] },
            "test": metrics.published,
            "warmTargetTest": warm.published,
            "textOnly": { "test": text_only.0.published, "warmTargetTest": text_only.1.published },
            "shippedOnColdUsers": shipped_cold.published,
            "popularityOnColdUsers": pop_cold.published,
            "cooccurrenceOnColdUsers": co_cold.published,
            "historyMasked": { "test": metrics.history_masked, "warmTargetTest": warm.history_masked },
        }))
    };
    let cold_start = args.cold_start.as_deref().map(held_out_report).transpose()?.unwrap_or(Value::Null);
    let category_split = args.category_split.as_deref().map(held_out_report).transpose()?.unwrap_or(Value::Null);

    let out = json!({
        "dataset": data.name,
        "model": {
            "file": args.model.display().to_string(),
            "sha256": main.sha256,
            "bytes": main.bytes,
            "storedAs": stored_as(&main.file),
            "config": main.file.config,
        },
        "protocol": {
            "split": "leave-one-out (valid = second-to-last, test = last item)",
            "maxHistory": main.max_events,
            "ranking": format!("full: target against all {n} items, history items included (RecBole's full sort for sequential models, as published); historyMasked: the user's history items removed first"),
            "users": data.test.len(),
            "classification": format!("target + {} sampled untouched items per user (seed {}), threshold = best F1 on validation", args.negatives, args.seed),
        },
        "valid": ours.valid.published,
        "test": ours.test.published,
        "historyMasked": { "valid": ours.valid.history_masked, "test": ours.test.history_masked },
        "classification": ours.classification,
        "rerank": views[0].json(args.list_size, users),
        "rerankHistoryExcluded": views[1].json(args.list_size, users),
        "qualitySample": {
            "rule": format!("every {QUALITY_SAMPLE_STEP}th test user, from the first"),
            "step": QUALITY_SAMPLE_STEP,
            "users": sample.len(),
            "ndcg@10": sampled.published.ndcg_10,
            "recall@10": sampled.published.recall_10,
        },
        "coldStart": cold_start,
        "categorySplit": category_split,
        "baselines": baselines,
        "byTargetKind": by_target_kind(&data, &per_user),
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        print_table(&out);
    }
    Ok(())
}

/// On a typed log: test NDCG@10 (published protocol) of each scorer over
/// the users whose test event is of each kind (and over all), with 95%
/// intervals from 1,000 bootstrap draws over those users, paired, so that
/// each scorer's difference from shelfrank has its own interval. Null on
/// one-kind data.
fn by_target_kind(data: &Dataset, per_user: &[(String, Vec<f64>)]) -> Value {
    if !data.typed() {
        return Value::Null;
    }
    let mut out = serde_json::Map::new();
    let groups = std::iter::once(None).chain(EventKind::ALL.iter().copied().filter(|&k| k != EventKind::Search).map(Some));
    for kind in groups {
        let users: Vec<usize> = (0..data.test.len()).filter(|&u| kind.is_none() || data.test[u].target_kind == kind).collect();
        if users.is_empty() {
            continue;
        }
        let figures: Vec<Vec<(f64, u32)>> = per_user.iter().map(|(_, f)| users.iter().map(|&u| (f[u], 1)).collect()).collect();
        let (levels, gaps) = bootstrap(&figures, 1000, 7);
        let scorers: serde_json::Map<String, Value> = per_user
            .iter()
            .zip(levels.iter().zip(&gaps))
            .enumerate()
            .map(|(i, ((name, _), (level, gap)))| {
                let mut entry = json!({ "ndcg@10": level });
                if i > 0 {
                    entry["minusShelfrank"] = json!(gap);
                }
                (name.clone(), entry)
            })
            .collect();
        out.insert(kind.map_or("any", EventKind::name).to_owned(), json!({ "users": users.len(), "scorers": scorers }));
    }
    Value::Object(out)
}

/// Every this-many test users form the quality sample `npm test` checks.
const QUALITY_SAMPLE_STEP: usize = 16;

/// The reranking view's sums over test users for one kind of server list.
struct RerankView {
    with_history: bool,
    server: f64,
    reranked: f64,
    model_only: f64,
    in_list: usize,
    /// History items in the top 10 after reranking, summed.
    history_in_top: usize,
    /// History items in the server list, summed.
    history_in_list: usize,
}

impl RerankView {
    fn new(with_history: bool) -> RerankView {
        RerankView { with_history, server: 0.0, reranked: 0.0, model_only: 0.0, in_list: 0, history_in_top: 0, history_in_list: 0 }
    }

    fn add(&mut self, data: &Dataset, server: &[u32], history: &[u32], target: u32, row: &[f32]) {
        self.server += ndcg10_in_list(server, target);
        self.in_list += server.contains(&target) as usize;
        self.history_in_list += server.iter().filter(|i| history.contains(i)).count();
        let candidates: Vec<Candidate> = server.iter().map(|&i| data.items[i as usize].candidate()).collect();
        let scores: Vec<f32> = server.iter().map(|&i| row[i as usize]).collect();
        let default = RerankOptions::default();
        for (weight, sum) in [(default.server_weight, &mut self.reranked), (0.0, &mut self.model_only)] {
            let ranked = arrange(&candidates, Some(&scores), &RerankOptions { server_weight: weight, ..RerankOptions::default() })
                .expect("valid candidates");
            let order: Vec<u32> = ranked.iter().map(|r| server[r.original_position]).collect();
            *sum += ndcg10_in_list(&order, target);
            if weight == default.server_weight {
                self.history_in_top += order.iter().take(10).filter(|i| history.contains(i)).count();
            }
        }
    }

    fn json(&self, list_size: usize, users: f64) -> Value {
        json!({
            "listSize": list_size,
            "serverList": if self.with_history {
                "top items by co-occurrence with the last item, then popularity (history items allowed)"
            } else {
                "top items by co-occurrence with the last item, then popularity (history items excluded)"
            },
            "targetInList": self.in_list as f64 / users,
            "historyItemsInList": self.history_in_list as f64 / users,
            "historyItemsInTop10": self.history_in_top as f64 / users,
            "serverNdcg10": self.server / users,
            "shelfrankNdcg10": self.reranked / users,
            "shelfrankServerWeight": RerankOptions::default().server_weight,
            "modelOnlyNdcg10": self.model_only / users,
        })
    }
}

/// A candidate list the way a simple server would build it, with or
/// without the user's history items.
fn server_list(stats: &Statistics, history: &[u32], size: usize, seed: u64, with_history: bool) -> Vec<u32> {
    let row = stats.cooccurrence_row(history);
    let mut items: Vec<(f32, u64, u32)> = row
        .iter()
        .enumerate()
        .filter(|(i, _)| with_history || !history.contains(&(*i as u32)))
        .map(|(i, &s)| (s, mix(seed ^ i as u64), i as u32))
        .collect();
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    items.into_iter().take(size).map(|(_, _, i)| i).collect()
}

fn print_table(out: &Value) {
    let row = |name: &str, v: &Value| {
        let t = &v["test"];
        println!(
            "{name:<16} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4}   valid N@10 {:.4}",
            t["recall@10"].as_f64().unwrap_or(0.0),
            t["recall@50"].as_f64().unwrap_or(0.0),
            t["ndcg@10"].as_f64().unwrap_or(0.0),
            t["ndcg@50"].as_f64().unwrap_or(0.0),
            t["mrr"].as_f64().unwrap_or(0.0),
            v["valid"]["ndcg@10"].as_f64().unwrap_or(0.0),
        );
    };
    println!(
        "{} test, full ranking over all items, history items included (published protocol; {} users)",
        out["dataset"], out["protocol"]["users"]
    );
    println!("{:<16} {:>8} {:>8} {:>8} {:>8} {:>8}", "model", "R@10", "R@50", "N@10", "N@50", "MRR");
    row("shelfrank", out);
    if let Some(baselines) = out["baselines"].as_object() {
        for (name, v) in baselines {
            row(name, v);
        }
    }
    println!("history items masked (not the published protocol):");
    row("shelfrank", &out["historyMasked"]);
    if let Some(kinds) = out["byTargetKind"].as_object() {
        println!("test N@10 by the kind of the test event [95% bootstrap interval over users; minus shelfrank, paired]:");
        let interval = |v: &Value| {
            format!(
                "{:.4} [{:.4}, {:.4}]",
                v["value"].as_f64().unwrap_or(0.0),
                v["low"].as_f64().unwrap_or(0.0),
                v["high"].as_f64().unwrap_or(0.0)
            )
        };
        for (kind, group) in kinds {
            println!("  next {kind} ({} users)", group["users"]);
            for (name, v) in group["scorers"].as_object().into_iter().flatten() {
                let gap = if v["minusShelfrank"].is_null() {
                    String::new()
                } else {
                    format!("   minus shelfrank {}", interval(&v["minusShelfrank"]))
                };
                println!("    {name:<16} {}{gap}", interval(&v["ndcg@10"]));
            }
        }
    }
    let c = &out["classification"];
    println!(
        "classification (test): accuracy {:.4} precision {:.4} recall {:.4} F1 {:.4}",
        c["accuracy"], c["precision"], c["recall"], c["f1"]
    );
    for (label, r) in [("history allowed", &out["rerank"]), ("history excluded", &out["rerankHistoryExcluded"])] {
        println!(
            "rerank view ({label}): server NDCG@10 {:.4} → shelfrank {:.4} (model only {:.4}); history items in the top 10 {:.2}",
            r["serverNdcg10"], r["shelfrankNdcg10"], r["modelOnlyNdcg10"], r["historyItemsInTop10"]
        );
    }
    if !out["coldStart"].is_null() {
        println!(
            "cold start: NDCG@10 {:.4} on {} users whose target was held out",
            out["coldStart"]["test"]["ndcg@10"], out["coldStart"]["coldTargetUsers"]
        );
    }
}

/// How the file stores its weights: the matrices' format, and each table
/// stored otherwise (`i8f16, item_ids.weight i4f16`).
fn stored_as(file: &shelfrank::model::ModelFile) -> String {
    let name = |t: &shelfrank::model::TensorEntry| format!("{:?}", t.stored_as).to_lowercase();
    let matrices: Vec<_> = file.tensors.iter().filter(|t| t.shape.len() >= 2).collect();
    let Some(common) = matrices.iter().find(|t| !t.name.ends_with("_ids.weight") && t.name != "tokens.weight").or(matrices.first()) else {
        return "f32".into();
    };
    let mut out = name(common);
    for t in matrices.iter().filter(|t| t.stored_as != common.stored_as) {
        out += &format!(", {} {}", t.name, name(t));
    }
    out
}

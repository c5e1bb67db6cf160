//! Trains the ranker and writes a model file, its manifest and (for a
//! shop's own data) a model card evaluated on each user's held-out last
//! event. It reads a RecBole/UniSRec-format dataset, a plain events file
//! with a catalog, or a GA4 BigQuery export (see `shelfrank::shop`).
//!
//! ```text
//! cargo run --release --bin train -- --data data/scientific \
//!     --tokenizer models/minilm-tokenizer.json --out models/shelfrank-scientific.bin
//! cargo run --release --bin train -- --events events.csv --catalog catalog.csv --out shop/shelfrank.bin
//! cargo run --release --bin train -- --ga4 ga4-export/ --out shop/shelfrank.bin
//! ```
//!
//! Objective: next-item prediction at every position of each user's
//! training sequence (SASRec), with full softmax cross-entropy over the
//! whole catalog, or with `--negatives N` a sampled softmax (the batch's
//! targets and N items drawn uniformly each step, and text vectors only
//! for the items a step reads), whose step cost does not grow with the
//! catalog (without `--negatives`, a catalog of more than 20,000 items
//! gets 2,048: `dataset::default_negatives`); each logit is corrected by the log of its item's chance of
//! being sampled (logQ; `--no-logq` leaves it out, for comparison). Scientific's events are reviews (one kind): each training
//! event is shown to the model as a random event kind. A shop's typed log
//! (`--events`, `--ga4`) shows each event as its own kind, so the
//! transformer learns what a view, a click, an add-to-cart and a purchase
//! say about the next item (`--random-kinds` trains as for one-kind data,
//! for comparison). One event in ten is shown as a text-only search, so
//! that all kinds and ID-less items share the item space. Early stopping on
//! validation NDCG@10.
//!
//! `--minutes M` (default 12) is a budget for the whole run, kept within an
//! epoch: steps stop early enough for the validation pass after them (its
//! length measured before training and after each pass), so a large
//! shop's first epoch ends on time, part-trained, rather than running on.
//! The budget also holds the model card of a shop's model. Where a pass
//! (and the card) over every user would take more than half of the time
//! left, both read fewer users, spread evenly (at least 256).
//!
//! `--item-features TEACHER_FILE` starts each item's ID vector from its
//! teacher embedding (fixed) through a learned map, so the ID rows learn
//! what the events add to what the item is; the map is folded into the ID
//! table before writing, so the file's layout does not change. With
//! `--features-only` the ID rows stay zero, so each item's ID vector is its
//! mapped features alone (measured and not kept: models/README.md).
//!
//! The ID table is stored int4 (`--id-table int8` keeps it int8), the
//! other matrices int8 (`--f32`: everything f32).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use shelfrank::dataset::{Dataset, Example, History, default_negatives, sample_inclusion};
use shelfrank::evaluation::{IdRows, ModelScorer, catalog_text, catalog_vectors, evaluate, evaluate_with, session_input};
use shelfrank::model::EventKind;
use shelfrank::model::wordpiece::WordPiece;
use shelfrank::model::{Affinity, ItemText, ModelFile, RankerConfig, SessionRanker, StoredAs, TextEncoder, sha256_hex};
use shelfrank::shop::DataSource;
use shelfrank::teacher::TeacherEmbeddings;

/// Validation during training reads at most this many users (all of
/// Scientific's 8,442), spread evenly, so that a large shop's pass stays short.
const VALID_USERS: usize = 20_000;
/// Users timed before training to size a validation pass; also the fewest
/// a tight budget cuts validation to.
const PROBE_USERS: usize = 256;

struct Args {
    source: DataSource,
    out_given: bool,
    tokenizer: PathBuf,
    out: PathBuf,
    epochs: usize,
    minutes: f64,
    batch: usize,
    lr: f64,
    seed: u64,
    max_users: Option<usize>,
    int8: bool,
    /// The ID table as int4 (with `int8`): half its bytes; on Scientific
    /// validation NDCG@10 moved by −0.0004 to +0.0001 (README.md).
    int4_ids: bool,
    /// `--id-table` was given (it needs int8 storage).
    id_table_given: bool,
    dim: usize,
    variant: Variant,
    holdout_items: f64,
    id_dropout: f64,
    layers: usize,
    holdout_categories: f64,
    also_f32: Option<PathBuf>,
    manifest: bool,
    teacher: Option<PathBuf>,
    /// Teacher embeddings used as fixed item features, mapped into the ID
    /// space by a learned map and added to each item's ID row (folded into
    /// the ID table for the file).
    item_features: Option<PathBuf>,
    /// With `item_features`: no learned ID rows (they stay zero), so every
    /// item's ID vector is its mapped features alone, a function of its
    /// text that any catalog's items get the same way.
    features_only: bool,
    distill: f64,
    dropout: f64,
    weight_decay: f64,
    /// A pretrained model's word embeddings (all-MiniLM-L6-v2's
    /// `model.safetensors`): the token table, fixed, with a learned
    /// projection (see `RankerConfig::init_with_tokens`).
    word_embeddings: Option<PathBuf>,
    /// Keep token rows for every word of the tokenizer, not only the
    /// catalog's (with `word_embeddings`): a model for any catalog.
    full_vocabulary: bool,
    /// Learned per-word offsets on top of the fixed word embeddings.
    word_offsets: bool,
    /// Sampled softmax with this many negatives a step (0: full softmax;
    /// unset: `dataset::default_negatives` for the catalog's size).
    negatives: Option<usize>,
    /// Show random event kinds in training even where the log has kinds
    /// (as one-kind data always does): the comparison for learned kinds.
    random_kinds: bool,
    /// Sampled softmax without the logQ correction (for comparison).
    no_logq: bool,
    /// The learning rate falls from `lr` towards 0 over `epochs` epochs
    /// along a half cosine.
    cosine: bool,
}

/// Which item signals the model may use (the ablations).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    /// ID embedding and text vector.
    Both,
    /// ID embedding only: an empty vocabulary makes every text vector the same.
    Ids,
    /// Text only: no catalog IDs.
    Text,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        source: DataSource::default(),
        out_given: false,
        tokenizer: "models/minilm-tokenizer.json".into(),
        out: "models/shelfrank-scientific.bin".into(),
        epochs: 30,
        minutes: 12.0,
        batch: 128,
        lr: 1e-3,
        seed: 7,
        max_users: None,
        int8: true,
        int4_ids: true,
        id_table_given: false,
        dim: 64,
        variant: Variant::Both,
        holdout_items: 0.0,
        id_dropout: 0.0,
        layers: 2,
        holdout_categories: 0.0,
        also_f32: None,
        manifest: true,
        teacher: None,
        item_features: None,
        features_only: false,
        distill: 10.0,
        // Chosen on validation NDCG@10 among 0.2 / 0.35 / 0.5 (with the teacher).
        dropout: 0.5,
        weight_decay: 0.01,
        word_embeddings: None,
        full_vocabulary: false,
        word_offsets: false,
        negatives: None,
        random_kinds: false,
        no_logq: false,
        cosine: false,
    };
    let mut it = shelfrank::cli::args();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        if args.source.take(&flag, &mut value)? {
            continue;
        }
        let number = |v: String| v.parse::<f64>().map_err(|_| format!("{flag} needs a number"));
        match flag.as_str() {
            "--tokenizer" => args.tokenizer = value()?.into(),
            "--out" => {
                args.out = value()?.into();
                args.out_given = true;
            }
            "--epochs" => args.epochs = number(value()?)? as usize,
            "--minutes" => args.minutes = number(value()?)?,
            "--batch" => args.batch = number(value()?)? as usize,
            "--lr" => args.lr = number(value()?)?,
            "--seed" => args.seed = number(value()?)? as u64,
            "--max-users" => args.max_users = Some(number(value()?)? as usize),
            "--dim" => args.dim = number(value()?)? as usize,
            "--f32" => args.int8 = false,
            "--id-table" => {
                args.id_table_given = true;
                args.int4_ids = match value()?.as_str() {
                    "int4" => true,
                    "int8" => false,
                    other => return Err(format!("unknown ID table storage {other}; use int4 or int8")),
                }
            }
            "--no-manifest" => args.manifest = false,
            "--teacher" => args.teacher = Some(value()?.into()),
            "--item-features" => args.item_features = Some(value()?.into()),
            "--features-only" => args.features_only = true,
            "--distill" => args.distill = number(value()?)?,
            "--dropout" => args.dropout = number(value()?)?,
            "--weight-decay" => args.weight_decay = number(value()?)?,
            "--also-f32" => args.also_f32 = Some(value()?.into()),
            "--holdout-items" => args.holdout_items = number(value()?)?,
            "--id-dropout" => args.id_dropout = number(value()?)?,
            "--layers" => args.layers = number(value()?)? as usize,
            "--holdout-categories" => args.holdout_categories = number(value()?)?,
            "--word-embeddings" => args.word_embeddings = Some(value()?.into()),
            "--word-offsets" => args.word_offsets = true,
            "--random-kinds" => args.random_kinds = true,
            "--no-logq" => args.no_logq = true,
            "--cosine" => args.cosine = true,
            "--negatives" => args.negatives = Some(number(value()?)? as usize),
            "--vocabulary" => {
                args.full_vocabulary = match value()?.as_str() {
                    "catalog" => false,
                    "full" => true,
                    other => return Err(format!("unknown vocabulary {other}; use catalog or full")),
                }
            }
            "--variant" => {
                args.variant = match value()?.as_str() {
                    "both" => Variant::Both,
                    "ids" => Variant::Ids,
                    "text" => Variant::Text,
                    other => return Err(format!("unknown variant {other}; use both, ids or text")),
                }
            }
            "--help" | "-h" => {
                return Err(format!(
                    "usage: train {} [--tokenizer FILE] [--out FILE] [--epochs N] [--minutes M] [--batch N] [--lr X] [--cosine] [--seed N] [--max-users N] [--dim N] [--f32] [--id-table int4|int8] [--also-f32 FILE] [--variant both|ids|text] [--holdout-items FRACTION] [--id-dropout P] [--layers N] [--holdout-categories FRACTION] [--teacher FILE] [--item-features TEACHER_FILE [--features-only]] [--distill WEIGHT] [--dropout P] [--weight-decay W] [--word-embeddings model.safetensors [--vocabulary catalog|full] [--word-offsets]] [--negatives N [--no-logq]] [--random-kinds] [--no-manifest]",
                    DataSource::USAGE
                ));
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    if args.id_table_given && !args.int8 {
        return Err("--id-table chooses int4 or int8 for the ID table; with --f32 every tensor is f32: drop one of them".into());
    }
    if args.full_vocabulary && args.word_embeddings.is_none() {
        return Err("--vocabulary full needs --word-embeddings (rows for words training never reads come from them)".into());
    }
    if args.word_embeddings.is_some() && args.variant == Variant::Ids {
        return Err("--word-embeddings needs a text tower: use --variant both or text".into());
    }
    if args.item_features.is_some() && args.variant == Variant::Text {
        return Err("--item-features adds to the ID rows, and --variant text has none: use --variant both or ids".into());
    }
    if args.features_only && args.item_features.is_none() {
        return Err("--features-only keeps only the mapped item features in the ID rows: give --item-features TEACHER_FILE".into());
    }
    if args.source.is_shop() && !args.out_given {
        return Err("--out FILE is required with --events or --ga4 (the default is the shipped model's path)".into());
    }
    Ok(args)
}

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

pub fn main() {
    shelfrank::cli::finish("train", run());
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let (mut data, import) = args.source.load()?;
    if let Some(report) = &import {
        eprintln!("train: {}", report.summary());
    }
    data.keep_users(args.max_users);
    let tokenizer_json = std::fs::read(&args.tokenizer).map_err(|e| format!("cannot read {}: {e}", args.tokenizer.display()))?;
    let mut rng = Rng(args.seed);

    // Cold start: a seeded fraction of items never seen in training.
    let mut held_out: Vec<u32> = Vec::new();
    if args.holdout_items > 0.0 {
        let mut all: Vec<u32> = (0..data.items.len() as u32).collect();
        rng.shuffle(&mut all);
        held_out = all[..(args.holdout_items.clamp(0.0, 0.9) * all.len() as f64) as usize].to_vec();
        held_out.sort_unstable();
    }
    // A catalog the model has not seen: whole (leaf) categories, in seeded
    // order, until they hold the given fraction of the items.
    let mut held_out_categories: Vec<String> = Vec::new();
    if args.holdout_categories > 0.0 {
        let mut categories: Vec<&str> = data.items.iter().filter_map(|i| i.category.as_deref()).collect();
        categories.sort_unstable();
        categories.dedup();
        rng.shuffle(&mut categories);
        let want = (args.holdout_categories.clamp(0.0, 0.9) * data.items.len() as f64) as usize;
        let mut chosen = std::collections::HashSet::new();
        for category in categories {
            if held_out.len() >= want {
                break;
            }
            chosen.insert(category);
            held_out.extend((0..data.items.len() as u32).filter(|&i| data.items[i as usize].category.as_deref() == Some(category)));
        }
        held_out.sort_unstable();
        held_out.dedup();
        eprintln!("train: holding out {} categories ({} items)", chosen.len(), held_out.len());
        held_out_categories = chosen.into_iter().map(str::to_owned).collect();
        held_out_categories.sort();
    }
    let is_held_out = |item: u32| held_out.binary_search(&item).is_ok();

    // Keep embedding rows only for tokens the catalog uses.
    let vocab: Vec<u32> = if args.variant == Variant::Ids {
        Vec::new()
    } else {
        let texts: Vec<&str> = data.items.iter().map(|i| i.text.as_str()).collect();
        shelfrank::model::text::vocabulary_ids(&tokenizer_json, &texts).map_err(|e| e.to_string())?
    };
    let with_ids = args.variant != Variant::Text;
    let catalog_ids: Vec<String> = if with_ids { data.items.iter().map(|i| i.id.clone()).collect() } else { Vec::new() };

    let mut config = RankerConfig::new(catalog_ids.len(), vocab.len());
    config.dim = args.dim;
    config.ff_dim = 2 * args.dim;
    config.layers = args.layers;
    config.dropout = args.dropout;
    let text = TextEncoder::new(&tokenizer_json, &vocab, config.max_text_tokens).map_err(|e| e.to_string())?;
    let wordpiece = WordPiece::from_json(&tokenizer_json).map_err(|e| e.to_string())?;
    let catalog = catalog_text(&data.items, &text).map_err(|e| e.to_string())?;
    let ids = IdRows::new(data.items.len(), with_ids, &held_out);
    eprintln!(
        "train: {} items ({} held out), {} users, variant {:?}, vocabulary {} of the tokenizer's {}, config {:?}",
        data.items.len(),
        held_out.len(),
        data.valid.len(),
        args.variant,
        vocab.len(),
        wordpiece.vocab_size(),
        config
    );

    let eval_device = Device::flex();
    // `--minutes` is a budget for the whole run, kept within an epoch too:
    // steps stop early enough for the validation pass after them, whose
    // length is measured on a slice of users before training, then on each
    // pass. Validation reads at most VALID_USERS users (spread evenly), and
    // fewer where a pass (and a shop's model card) would take more than
    // half of what is left of the budget.
    let budget = args.minutes * 60.0;
    // What must still fit in the budget after the last step: a validation
    // pass, and for a shop's data the model card (as many test users, and
    // the popularity and co-occurrence baselines on them, after decoding
    // the written file: 1.04 passes' time on 100,000 items × 1M users,
    // 1.7 on 100,000 items × 20,000 users).
    let after_steps = |valid_seconds: f64| valid_seconds * if import.is_some() { 3.0 } else { 1.0 };
    let mut valid_users = spread(&data.valid, VALID_USERS);
    let mut valid_seconds = {
        // The catalog's text vectors once, then a share per user, timed
        // on two chunks of users.
        let probe = &valid_users[..valid_users.len().min(2 * PROBE_USERS)];
        // A throwaway model, before the seed: timing it draws nothing from
        // the random stream training uses.
        let inference: SessionRanker = config.init(&eval_device);
        let at = Instant::now();
        let mut scorer = ModelScorer::new(&inference, &catalog, ids.clone(), Affinity { weight: 0.0, ..config.affinity() }, &eval_device);
        let mut fixed = at.elapsed().as_secs_f64();
        let (first, second) = probe.split_at(probe.len().min(PROBE_USERS));
        let at = Instant::now();
        evaluate_with(&mut scorer, first, catalog.n, config.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let first_seconds = at.elapsed().as_secs_f64();
        let at = Instant::now();
        evaluate_with(&mut scorer, second, catalog.n, config.max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let second_seconds = at.elapsed().as_secs_f64();
        // The first chunk of a pass often costs more than the next (0.9 to
        // 1.6 times on 100,000 items x 1M users): its excess counts once,
        // with the fixed part, and the second chunk gives the cost per user.
        // On an idle machine that timed a 20,000-user pass at 16.7 s (the
        // margin below included) against 14.6 s taken; with a compile on
        // the other core, at 30.5 s against 18.0 s.
        let per_user = if second.is_empty() { first_seconds / first.len().max(1) as f64 } else { second_seconds / second.len() as f64 };
        fixed += (first_seconds - per_user * first.len() as f64).max(0.0);
        let pass = |users: usize| (fixed + per_user * users as f64) * 1.2;
        let share = (budget - started.elapsed().as_secs_f64()).max(0.0) / 2.0;
        if after_steps(pass(valid_users.len())) > share {
            let fits = ((share / after_steps(1.0) / 1.2 - fixed) / per_user.max(1e-9)).max(0.0) as usize;
            if fits.max(PROBE_USERS) < valid_users.len() {
                valid_users = spread(&data.valid, fits.max(PROBE_USERS));
                eprintln!(
                    "train: validation (and the model card) read {} users, not more, to keep within --minutes {}",
                    valid_users.len(),
                    args.minutes
                );
            }
        }
        pass(valid_users.len())
    };
    eprintln!("train: a validation pass over {} users should take about {valid_seconds:.1}s", valid_users.len());
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    // Pretrained word embeddings: read once, the catalog's rows used in
    // training, the file's rows (the catalog's or the whole vocabulary)
    // folded in at the end.
    let word_embeddings = match &args.word_embeddings {
        None => None,
        Some(path) => Some(WordEmbeddings::read(path, &wordpiece)?),
    };
    let mut model: SessionRanker = match &word_embeddings {
        None => config.init(&device),
        Some(words) => config.init_with_tokens(words.table(&vocab, &device), args.word_offsets, &device),
    };
    if let Some(path) = &args.item_features {
        // One feature row per ID row: row 0 (no ID) zero, then each item's.
        let embeddings = read_teacher(path, &data)?;
        let width = embeddings.dim;
        let mut table = vec![0.0f32; width];
        table.extend_from_slice(&embeddings.values);
        model = model.with_item_features(Tensor::from_data(TensorData::new(table, [data.items.len() + 1, width]), &device), &device);
        if args.features_only {
            model = model.without_learned_id_rows();
        }
    }
    let mut optim = AdamWConfig::new().with_weight_decay(args.weight_decay as f32).init();

    // Training sequences without held-out items; the softmax runs over the
    // items training may see.
    // Each event keeps its kind where the data has kinds (unless
    // --random-kinds: then, as with one-kind data, training shows random kinds).
    let sequences: Vec<(Vec<u32>, Vec<EventKind>)> = data
        .train_sequences()
        .into_iter()
        .map(|s| {
            let kept: Vec<usize> = (0..s.len()).filter(|&t| !is_held_out(s.items[t])).collect();
            let kinds = if s.typed() && !args.random_kinds { kept.iter().map(|&t| s.kind(t)).collect() } else { Vec::new() };
            (kept.iter().map(|&t| s.items[t]).collect::<Vec<u32>>(), kinds)
        })
        .filter(|(s, _)| s.len() >= 2)
        .collect();
    if data.typed() {
        eprintln!(
            "train: {}",
            if args.random_kinds { "event kinds shown at random (--random-kinds)" } else { "event kinds as the log gives them" }
        );
    }
    let seen: Vec<u32> = (0..data.items.len() as u32).filter(|&i| !is_held_out(i)).collect();
    let negatives = args.negatives.unwrap_or_else(|| {
        let chosen = default_negatives(seen.len());
        if chosen > 0 {
            eprintln!(
                "train: {} items: a sampled softmax with {chosen} negatives a step (--negatives 0 for the full softmax)",
                seen.len()
            );
        }
        chosen
    });
    if negatives == 0 && args.no_logq {
        return Err(format!(
            "--no-logq changes a sampled softmax, and this run uses the full softmax ({} items{}); add --negatives N or drop --no-logq",
            seen.len(),
            if args.negatives == Some(0) { ", --negatives 0" } else { "" }
        ));
    }
    let mut softmax_index = vec![0i64; data.items.len()];
    for (k, &item) in seen.iter().enumerate() {
        softmax_index[item as usize] = k as i64;
    }
    // Each item's share of the training targets (every event after the
    // first of the window a step reads: a sequence's last `max_events + 1`
    // events): how often the batch's own targets bring it into a sampled
    // softmax, for the logQ correction.
    let target_share: Vec<f64> = {
        let mut counts = vec![0u64; data.items.len()];
        for (items, kinds) in &sequences {
            for &item in History::new(items, kinds).recent(config.max_events + 1).items.iter().skip(1) {
                counts[item as usize] += 1;
            }
        }
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect()
    };
    // The pretrained teacher's item embeddings, distilled into the text tower.
    let teacher = match &args.teacher {
        None => None,
        Some(path) => {
            let embeddings = read_teacher(path, &data)?;
            let dim = embeddings.dim;
            Some(Tensor::<2>::from_data(TensorData::new(embeddings.values, [data.items.len(), dim]), &device))
        }
    };
    let batch_context = BatchContext {
        catalog: &catalog,
        ids: &ids,
        seen: &seen,
        softmax_index: &softmax_index,
        teacher: teacher.as_ref().map(|t| (t, args.distill)),
        negatives,
        target_share: (negatives > 0 && !args.no_logq).then_some(&target_share[..]),
        device: &device,
    };

    // Early stopping looks at the transformer alone; the affinity term's
    // weight and decay and the repeat prior (stored in the config) are
    // chosen afterwards by `tune` (affinity on validation, the prior fitted
    // on training sequences).
    let transformer_alone = Affinity { weight: 0.0, ..config.affinity() };
    let mut best: Option<(f64, usize, SessionRanker)> = None;
    let mut history_log = Vec::new();
    let mut stale = 0;
    let mut out_of_time = false;
    for epoch in 1..=args.epochs {
        let epoch_start = Instant::now();
        // Batches of similar length (little padding), in random order.
        let mut order: Vec<(usize, u64)> = (0..sequences.len()).map(|i| (i, rng.next())).collect();
        order.sort_by_key(|&(i, key)| (sequences[i].0.len().min(config.max_events + 1), key));
        let order: Vec<usize> = order.into_iter().map(|(i, _)| i).collect();
        let mut batches: Vec<&[usize]> = order.chunks(args.batch).collect();
        rng.shuffle(&mut batches);
        let total_steps = batches.len();
        let (mut loss_sum, mut steps) = (0.0, 0);
        for chunk in batches {
            if steps > 0 && started.elapsed().as_secs_f64() + after_steps(valid_seconds) > budget {
                out_of_time = true;
                break;
            }
            let cut = config.max_events + 1;
            let seqs: Vec<History> = chunk.iter().map(|&i| History::new(&sequences[i].0, &sequences[i].1).recent(cut)).collect();
            let lr = if args.cosine {
                args.lr * 0.5 * (1.0 + (std::f64::consts::PI * (epoch - 1) as f64 / args.epochs as f64).cos())
            } else {
                args.lr
            };
            let (loss, new_model) = step(model, &mut optim, &mut rng, &seqs, &batch_context, lr, with_ids, args.id_dropout);
            model = new_model;
            loss_sum += loss;
            steps += 1;
        }
        // The transformer alone has no repeat prior yet (`tune` fits it
        // afterwards), so it is judged with history items masked, the
        // closest stand-in for the prior it will get.
        let valid_start = Instant::now();
        let valid = evaluate(&model.valid(), &catalog, ids.clone(), &valid_users, config.max_events, transformer_alone, &eval_device)
            .map_err(|e| e.to_string())?
            .history_masked;
        valid_seconds = valid_start.elapsed().as_secs_f64();
        let elapsed = started.elapsed().as_secs_f64();
        let part = if out_of_time { format!(", {steps} of {total_steps} steps: out of time") } else { String::new() };
        eprintln!(
            "epoch {epoch}: loss {:.4}, valid NDCG@10 {:.4} Recall@10 {:.4} ({:.0}s epoch, {:.0}s total{part})",
            loss_sum / steps as f64,
            valid.ndcg_10,
            valid.recall_10,
            epoch_start.elapsed().as_secs_f64(),
            elapsed
        );
        history_log.push(serde_json::json!({"epoch": epoch, "loss": loss_sum / steps as f64, "validNdcg10": valid.ndcg_10, "steps": steps, "of": total_steps}));
        if best.as_ref().is_none_or(|(score, _, _)| valid.ndcg_10 > *score) {
            best = Some((valid.ndcg_10, epoch, model.clone()));
            stale = 0;
        } else {
            stale += 1;
        }
        // The next epoch's validation must fit too (its first step always runs).
        if stale >= 3 || out_of_time || elapsed + after_steps(valid_seconds) > budget {
            break;
        }
    }
    let (best_ndcg, best_epoch, best_model) = best.ok_or("no epoch ran")?;
    let mut inference = best_model.valid();
    let (mut catalog, mut vocab) = (catalog, vocab);
    if let Some(words) = &word_embeddings {
        // Offsets by tokenizer id, for laying them out over the file's rows.
        let learned = match inference.token_offsets() {
            Some(o) => Some((read_f32(o)?, vocab.clone())),
            None => None,
        };
        let before = read_f32(inference.text_vectors(&catalog, &eval_device))?;
        if args.full_vocabulary {
            vocab = words.vocabulary(&wordpiece);
            config.n_tokens = vocab.len();
            let text = TextEncoder::new(&tokenizer_json, &vocab, config.max_text_tokens).map_err(|e| e.to_string())?;
            catalog = catalog_text(&data.items, &text).map_err(|e| e.to_string())?;
        }
        let offsets = learned.map(|(values, trained)| {
            let dim = config.dim;
            let mut out = vec![0.0f32; (vocab.len() + 1) * dim];
            out[..dim].copy_from_slice(&values[..dim]);
            for (k, id) in trained.iter().enumerate() {
                if let Ok(row) = vocab.binary_search(id) {
                    out[(row + 1) * dim..(row + 2) * dim].copy_from_slice(&values[(k + 1) * dim..(k + 2) * dim]);
                }
            }
            Tensor::<2>::from_data(TensorData::new(out, [vocab.len() + 1, dim]), &eval_device)
        });
        inference = inference.fold_tokens(words.table(&vocab, &eval_device), offsets);
        // Folding must not move any catalog item's text vector.
        let after = read_f32(inference.text_vectors(&catalog, &eval_device))?;
        let worst = before.iter().zip(&after).map(|(a, b)| (a - b).abs() / (1.0 + a.abs())).fold(0.0f32, f32::max);
        if worst > 1e-4 {
            return Err(format!("folding the word embeddings moved a text vector by {worst}"));
        }
        eprintln!("train: word embeddings folded into {} token rows (text vectors within {worst:.1e})", vocab.len() + 1);
    }
    if args.item_features.is_some() {
        // Folded into the ID rows (held-out items keep only their mapped
        // features); no item vector may move.
        // (The fold leaves the text tower alone: one set of text vectors serves both.)
        let text_vectors = inference.text_vectors(&catalog, &eval_device);
        let before = read_f32(catalog_vectors(&inference, text_vectors.clone(), &ids, &eval_device))?;
        let untrained: Vec<i64> = held_out.iter().map(|&i| i as i64 + 1).collect();
        inference = inference.fold_item_features(&untrained);
        let after = read_f32(catalog_vectors(&inference, text_vectors, &ids, &eval_device))?;
        let worst = before.iter().zip(&after).map(|(a, b)| (a - b).abs() / (1.0 + a.abs())).fold(0.0f32, f32::max);
        if worst > 1e-4 {
            return Err(format!("folding the item features moved an item vector by {worst}"));
        }
        eprintln!("train: item features folded into the ID rows (item vectors within {worst:.1e})");
    }
    let stored_as = if args.int8 { StoredAs::I8F16 } else { StoredAs::F32 };
    // The page tokenises with the copy of the tokenizer the file carries.
    let wordpiece = wordpiece.pack(&vocab).map_err(|e| e.to_string())?;
    let file = ModelFile {
        config,
        items: catalog_ids,
        vocab,
        tokenizer_sha256: sha256_hex(&tokenizer_json),
        wordpiece: Some(wordpiece),
        meta: serde_json::json!({
            "dataset": data.name,
            "variant": format!("{:?}", args.variant).to_lowercase(),
            "teacher": args.teacher.as_ref().map(|p| p.display().to_string()),
            "wordEmbeddings": args.word_embeddings.as_ref().map(|p| p.display().to_string()),
            "vocabulary": if args.full_vocabulary { "full" } else { "catalog" },
            "itemFeatures": args.item_features.as_ref().map(|p| p.display().to_string()),
            "featuresOnly": args.features_only,
            "distill": args.teacher.as_ref().map(|_| args.distill),
            "idDropout": args.id_dropout,
            "heldOutCategories": held_out_categories,
            "heldOutItems": held_out.iter().map(|&i| data.items[i as usize].id.clone()).collect::<Vec<_>>(),
            "trainedUsers": data.valid.len(),
            "bestEpoch": best_epoch,
            "validNdcg10": best_ndcg,
            "epochs": history_log,
            "seed": args.seed,
            "negatives": negatives,
            "lrSchedule": if args.cosine { "cosine" } else { "constant" },
            "logq": negatives > 0 && !args.no_logq,
            "trainingSeconds": started.elapsed().as_secs_f64().round(),
            "import": import,
        }),
        tensors: ModelFile::capture(&inference, stored_as)
            .into_iter()
            .map(|mut t| {
                if args.int8 && args.int4_ids && t.name == "item_ids.weight" {
                    t.stored_as = StoredAs::I4F16;
                }
                t
            })
            .collect(),
    };
    let bytes = file.to_bytes();
    write_file(&args.out, &bytes)?;
    if let Some(path) = &args.also_f32 {
        let f32_file = ModelFile { tensors: ModelFile::capture(&inference, StoredAs::F32), ..file.clone() };
        write_file(path, &f32_file.to_bytes())?;
    }
    if args.manifest {
        write_manifest(&args.out, &bytes)?;
    }
    if let Some(report) = &import {
        // A shop's model gets a card: test figures on each user's held-out
        // last event, next to popularity and co-occurrence.
        // The card measures the weights as stored (int8, the ID table int4).
        let card_start = Instant::now();
        let stored = ModelFile::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let model = stored.build(&eval_device).map_err(|e| e.to_string())?;
        let card = model_card(&stored, &model, &catalog, &ids, &data, report, valid_users.len(), &eval_device)?;
        let path = args.out.with_file_name("model-card.md");
        std::fs::write(&path, card).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "train: wrote {} ({:.1}s; the last validation pass took {valid_seconds:.1}s)",
            path.display(),
            card_start.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "train: wrote {} ({} bytes, {stored_as:?}{}), best epoch {best_epoch} valid NDCG@10 {best_ndcg:.4}, {:.0}s",
        args.out.display(),
        bytes.len(),
        if args.int8 && args.int4_ids { ", the ID table I4F16" } else { "" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `most` of `users` (all of them, where they are fewer), spread evenly.
fn spread(users: &[Example], most: usize) -> Vec<Example> {
    let n = users.len();
    if n <= most {
        return users.to_vec();
    }
    (0..most).map(|k| users[k * n / most].clone()).collect()
}

/// The model card of a model trained on a shop's data (markdown).
#[allow(clippy::too_many_arguments)]
fn model_card(
    file: &ModelFile,
    model: &SessionRanker,
    catalog: &ItemText,
    ids: &IdRows,
    data: &Dataset,
    report: &shelfrank::shop::ImportReport,
    users: usize,
    device: &Device,
) -> Result<String, String> {
    use shelfrank::evaluation::{Cooccurrence, Popularity, Statistics, evaluate_with};
    let n = data.items.len();
    let max_events = file.config.max_events;
    // As many test users as validation reads, so that a large shop's card
    // takes minutes.
    let test = spread(&data.test, users);
    let ours = evaluate(model, catalog, ids.clone(), &test, max_events, file.config.affinity(), device).map_err(|e| e.to_string())?;
    let stats = Statistics::new(data);
    let pop = evaluate_with(&mut Popularity(&stats), &test, n, max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
    let co = evaluate_with(&mut Cooccurrence(&stats), &test, n, max_events, &mut |_, _| {}).map_err(|e| e.to_string())?;
    let mut out = String::from("# Model card\n\n");
    out += &format!("Trained on {}.\n\n```text\n{}\n```\n\n", report.source, report.summary());
    out += &format!(
        "Test: the last item event of {} of the {} users (spread evenly), ranked against all {n} catalog items with the user's history left in (the published protocol); validation (the event before it) chose the epoch.\n\n",
        test.len(),
        data.test.len()
    );
    out += "| model | NDCG@10 | Recall@10 | NDCG@50 | Recall@50 | MRR |\n|---|---|---|---|---|---|\n";
    for (name, r) in [("shelfrank", ours.published), ("popularity", pop.published), ("co-occurrence", co.published)] {
        out += &format!("| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n", r.ndcg_10, r.recall_10, r.ndcg_50, r.recall_50, r.mrr);
    }
    out += &format!(
        "\nThe affinity weight and decay are the defaults ({} / {}) and there is no repeat prior yet: `tune --write` chooses both on validation.\n\nConfig: {}. Best epoch {}.\n",
        file.config.affinity_weight,
        file.config.affinity_decay,
        serde_json::to_string(&file.config).map_err(|e| e.to_string())?,
        file.meta["bestEpoch"]
    );
    Ok(out)
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `manifest.json` beside the model: the file the JS shim and the
/// tools load by default, with its sha256 and size (it carries its
/// tokenizer).
fn write_manifest(model_path: &std::path::Path, model: &[u8]) -> Result<(), String> {
    let dir = model_path.parent().unwrap_or(std::path::Path::new("."));
    let name = model_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest = serde_json::json!({
        "model": { "file": name, "sha256": sha256_hex(model), "bytes": model.len() },
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).expect("json") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What every training step reads.
struct BatchContext<'a> {
    catalog: &'a ItemText,
    ids: &'a IdRows,
    /// Items training may see, in softmax order.
    seen: &'a [u32],
    /// Item index → position in `seen`.
    softmax_index: &'a [i64],
    /// Teacher embeddings `[n_items, 384]` and the distillation weight.
    teacher: Option<(&'a Tensor<2>, f64)>,
    /// Sampled softmax: negatives drawn per step (0: full softmax).
    negatives: usize,
    /// Sampled softmax's logQ correction: each item's share of all
    /// training targets (by item index), or `None` for none.
    target_share: Option<&'a [f64]>,
    device: &'a Device,
}

/// One optimiser step on a batch of sequences (each predicts its own next
/// items); returns the mean loss.
#[allow(clippy::too_many_arguments)]
fn step(
    model: SessionRanker,
    optim: &mut burn::optim::ModuleOptimizer,
    rng: &mut Rng,
    sequences: &[History],
    context: &BatchContext,
    lr: f64,
    with_ids: bool,
    id_dropout: f64,
) -> (f64, SessionRanker) {
    let device = context.device;
    let inputs: Vec<&[u32]> = sequences.iter().map(|s| &s.items[..s.len() - 1]).collect();
    // Each event's kind, decided up front so the closure stays pure: one in
    // ten a text-only search; the others their own kind where the log has
    // kinds, else a random one.
    let kinds: Vec<Vec<(EventKind, bool)>> = sequences
        .iter()
        .map(|s| {
            (0..s.len() - 1)
                .map(|t| match (rng.below(10) == 0, s.typed()) {
                    (true, _) => (EventKind::Search, false),
                    (false, true) => (s.kind(t), with_ids),
                    (false, false) => (EventKind::ALL[rng.below(4)], with_ids),
                })
                .collect()
        })
        .collect();
    let (input, items) = session_input(&inputs, context.ids, &|b, t| kinds[b][t]);
    let len = input.len;
    // The next item at every real (non-padding) position.
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (b, seq) in sequences.iter().enumerate() {
        let offset = len - (seq.len() - 1);
        for t in 0..seq.len() - 1 {
            positions.push((b * len + offset + t) as i64);
            targets.push(seq.items[t + 1]);
        }
    }
    let (n, m) = (items.len(), positions.len());
    // ID dropout: a random share of the catalog is scored from its text
    // alone in this step, as items the model has no ID row for (new to the
    // catalog) always are.
    let ids = if id_dropout > 0.0 {
        let cut = (id_dropout * 1_000_000.0) as usize;
        let dropped: Vec<u32> = context.seen.iter().copied().filter(|_| rng.below(1_000_000) < cut).collect();
        context.ids.without(&dropped)
    } else {
        context.ids.clone()
    };
    let n_items = context.ids.all().len();
    let int = |values: Vec<i64>| {
        let k = values.len();
        Tensor::<1, Int>::from_data(TensorData::new(values, [k]), device)
    };
    let (log_probs, text_vectors, distilled, targets) = if context.negatives == 0 {
        // Full softmax over every item training may see.
        let text_vectors = model.text_vectors(context.catalog, device); // [n_items, dim]
        let history_text = text_vectors.clone().select(0, int(items));
        let states = model.encode_session(&input, history_text, device).reshape([n, model.dim()]); // [batch*len, dim]
        let states = states.select(0, int(positions)); // [m, dim]
        let all_items = catalog_vectors(&model, text_vectors.clone(), &ids, device); // [n_items, dim]
        let seen: Vec<i64> = context.seen.iter().map(|&i| i as i64).collect();
        let softmax_items = all_items.select(0, int(seen)); // [n_seen, dim]
        let targets: Vec<i64> = targets.iter().map(|&item| context.softmax_index[item as usize]).collect();
        let sample: Vec<i64> = if context.teacher.is_some() { (0..256).map(|_| rng.below(n_items) as i64).collect() } else { Vec::new() };
        (log_softmax(states.matmul(softmax_items.transpose()), 1), text_vectors, (sample.clone(), sample), targets)
    } else {
        // Sampled softmax: the batch's targets and `negatives` items drawn
        // uniformly from those training may see. Only the items the step
        // reads get text vectors, so a step's cost does not grow with the
        // catalog.
        let sample: Vec<u32> = if context.teacher.is_some() { (0..256).map(|_| rng.below(n_items) as u32).collect() } else { Vec::new() };
        let mut candidates: Vec<u32> = targets.clone();
        candidates.extend((0..context.negatives).map(|_| context.seen[rng.below(context.seen.len())]));
        candidates.sort_unstable();
        candidates.dedup();
        let mut needed: Vec<u32> =
            items.iter().map(|&i| i as u32).chain(candidates.iter().copied()).chain(sample.iter().copied()).collect();
        needed.sort_unstable();
        needed.dedup();
        let local = |item: u32| needed.binary_search(&item).expect("a needed item") as i64;
        let text_vectors = model.text_vectors(&context.catalog.select(&needed), device); // [needed, dim]
        let history_text = text_vectors.clone().select(0, int(items.iter().map(|&i| local(i as u32)).collect()));
        let states = model.encode_session(&input, history_text, device).reshape([n, model.dim()]);
        let states = states.select(0, int(positions)); // [m, dim]
        let candidate_text = text_vectors.clone().select(0, int(candidates.iter().map(|&i| local(i)).collect()));
        let id_rows = int(candidates.iter().map(|&i| ids.row(i)).collect());
        let softmax_items = model.item_vectors(id_rows, candidate_text); // [candidates, dim]
        let targets: Vec<i64> = targets.iter().map(|&item| candidates.binary_search(&item).expect("a candidate") as i64).collect();
        let rows: Vec<i64> = sample.iter().map(|&i| local(i)).collect();
        let sample: Vec<i64> = sample.iter().map(|&i| i as i64).collect();
        let mut logits = states.matmul(softmax_items.transpose()); // [m, candidates]
        if let Some(share) = context.target_share {
            // logQ correction: popular items enter the sample through the
            // batch's own targets far more often than the rest, and a
            // sampled softmax left alone learns to push them down. Each
            // logit loses the log of its item's chance of being in the
            // sample (as one of the m targets, or one of the uniform draws).
            let log_q: Vec<f32> = candidates
                .iter()
                .map(|&i| sample_inclusion(share[i as usize], m, context.negatives, context.seen.len()).max(1e-12).ln() as f32)
                .collect();
            let c = log_q.len();
            logits = logits - Tensor::<2>::from_data(TensorData::new(log_q, [1, c]), device);
        }
        (log_softmax(logits, 1), text_vectors, (rows, sample), targets)
    };
    let picked = log_probs.gather(1, Tensor::<2, Int>::from_data(TensorData::new(targets, [m, 1]), device)); // [m, 1]
    let mut loss = picked.mean().neg();
    if let Some((teacher, weight)) = context.teacher {
        // Relational distillation: the cosine similarities between sampled
        // items' text vectors should match the teacher's. Every catalog
        // item's text is known, held-out items' too (a shop has the text of
        // items no one has bought yet), so the sample covers the catalog.
        // (Rows of `text_vectors`, and the same items' catalog indices.)
        let (rows, sample) = distilled;
        let student = text_vectors.select(0, int(rows));
        let student = student.clone() / (student.clone() * student).sum_dim(1).sqrt().clamp_min(1e-6);
        let target = teacher.clone().select(0, int(sample));
        let gap = student.clone().matmul(student.transpose()) - target.clone().matmul(target.transpose());
        loss = loss + (gap.clone() * gap).mean().mul_scalar(weight);
    }
    let loss_value = shelfrank::read_scores(loss.clone().into_data()).map(|v| v[0] as f64).unwrap_or(f64::NAN);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (loss_value, optim.step(lr, model, grads))
}

/// A pretrained model's word embeddings (`embeddings.word_embeddings.weight`
/// of a BERT-family `model.safetensors`, such as all-MiniLM-L6-v2's), by
/// tokenizer id.
struct WordEmbeddings {
    values: Vec<f32>,
    width: usize,
    unknown: u32,
}

impl WordEmbeddings {
    fn read(path: &std::path::Path, wordpiece: &WordPiece) -> Result<WordEmbeddings, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let tensors = shelfrank::teacher::SafeTensors::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = "embeddings.word_embeddings.weight";
        let (shape, values) = tensors.table(name).ok_or_else(|| format!("{} has no f32 tensor '{name}'", path.display()))?;
        let &[rows, width] = shape else { return Err(format!("{}: '{name}' is not a table", path.display())) };
        if rows < wordpiece.vocab_size() {
            return Err(format!("{} has {rows} word embeddings; the tokenizer has {} words", path.display(), wordpiece.vocab_size()));
        }
        let unknown = wordpiece.id_of("[UNK]").ok_or("the tokenizer has no [UNK] token")?;
        Ok(WordEmbeddings { values: values.to_vec(), width, unknown })
    }

    /// The token table for `vocab`: row 0 the unknown token, then a row per id.
    fn table(&self, vocab: &[u32], device: &Device) -> Tensor<2> {
        let rows = std::iter::once(self.unknown).chain(vocab.iter().copied());
        let values: Vec<f32> =
            rows.flat_map(|id| self.values[id as usize * self.width..(id as usize + 1) * self.width].iter().copied()).collect();
        Tensor::from_data(TensorData::new(values, [vocab.len() + 1, self.width]), device)
    }

    /// Every word a text can tokenise to: the tokenizer's vocabulary less
    /// its special and unused entries (the unknown token stays: a catalog's
    /// vocabulary has it when a word could not be split, and it has its
    /// own learned offset), in id order.
    fn vocabulary(&self, wordpiece: &WordPiece) -> Vec<u32> {
        let special = |piece: &str| piece.starts_with('[') && piece.ends_with(']') && piece != "[UNK]";
        let mut ids: Vec<u32> = wordpiece.entries().filter(|(piece, _)| !special(piece)).map(|(_, id)| id).collect();
        ids.sort_unstable();
        ids
    }
}

/// Teacher embeddings for `data`'s catalog, in its item order.
fn read_teacher(path: &std::path::Path, data: &Dataset) -> Result<TeacherEmbeddings, String> {
    let embeddings = TeacherEmbeddings::read(path)?;
    if embeddings.items.iter().ne(data.items.iter().map(|i| &i.id)) {
        return Err(format!("{} was computed for another catalog", path.display()));
    }
    Ok(embeddings)
}

fn read_f32(tensor: Tensor<2>) -> Result<Vec<f32>, String> {
    shelfrank::read_scores(tensor.into_data()).map_err(|e| e.to_string())
}

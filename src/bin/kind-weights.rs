//! Learns how much a view, an add-to-cart and a purchase should each count
//! in the history-affinity profile, from a shop's typed event log, and
//! reports it against the weights the package first guessed (view 1, cart
//! and purchase 2), every kind counting the same, and the weights it ships
//! (learned this way on Taobao and REES46), with bootstrap intervals over
//! users (see `shelfrank::kinds` for the method).
//!
//! ```text
//! cargo run --release --bin kind-weights -- (--events FILE --catalog FILE | --ga4 DIR) [--model FILE [--write]] [--json]
//! ```
//!
//! `--write` stores the weights learned for the next event of any kind in
//! the model's configuration (`kind_weights`), so the page scores with the
//! shop's own weights; a search keeps the package's weight (logs rarely
//! have searches).
//!
//! Three targets: the next event of any kind, the next add-to-cart, the
//! next purchase. Weights are fitted on half the users (even positions in
//! the file's user order) and reported on the other half.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use shelfrank::kinds::{Setting, Target, TypedSequence, bootstrap, fit, per_user, popularity_rank};
use shelfrank::model::{EventKind, ModelFile};
use shelfrank::shop::DataSource;

const GRID: [f32; 7] = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
const RESAMPLES: usize = 1000;
const SEED: u64 = 2024;

struct Args {
    source: DataSource,
    model: PathBuf,
    model_given: bool,
    write: bool,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        source: DataSource::default(),
        model: "models/shelfrank-scientific.bin".into(),
        model_given: false,
        write: false,
        json: false,
    };
    let mut it = shelfrank::cli::args();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        if args.source.take(&flag, &mut value)? {
            continue;
        }
        match flag.as_str() {
            "--model" => {
                args.model = value()?.into();
                args.model_given = true;
            }
            "--write" => args.write = true,
            "--json" => args.json = true,
            "--help" | "-h" => {
                return Err("usage: kind-weights (--events FILE --catalog FILE | --ga4 DIR) [--model FILE [--write]] [--json]".into());
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    if args.write && !args.model_given {
        return Err("--write needs --model FILE: the shop's model to store the weights in".into());
    }
    Ok(args)
}

pub fn main() {
    shelfrank::cli::finish("kind-weights", run());
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let import = args.source.load_typed()?;
    eprintln!("{}", import.report.summary());
    let bytes = std::fs::read(&args.model).map_err(|e| format!("cannot read {}: {e}", args.model.display()))?;
    let file = ModelFile::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let (decay, max_events) = (file.config.affinity().decay, file.config.max_events);

    // An item is its category; an item without one is a category of its own.
    let data = &import.dataset;
    let mut names: HashMap<String, u32> = HashMap::new();
    let category: Vec<u32> = data
        .items
        .iter()
        .map(|item| {
            let name = item.category.clone().unwrap_or_else(|| format!("item {}", item.id));
            let next = names.len() as u32;
            *names.entry(name).or_insert(next)
        })
        .collect();
    let sequences: Vec<TypedSequence> = data
        .test
        .iter()
        .zip(&import.kinds)
        .map(|(example, kinds)| TypedSequence {
            categories: example.history.iter().chain([&example.target]).map(|&i| category[i as usize]).collect(),
            kinds: kinds.clone(),
        })
        .collect();
    let fitting: Vec<&TypedSequence> = sequences.iter().step_by(2).collect();
    let reported: Vec<&TypedSequence> = sequences.iter().skip(1).step_by(2).collect();
    let rank = popularity_rank(&fitting, names.len());

    let mut targets = Vec::new();
    let mut for_any = None;
    for target in [Target::Any, Target::Kind(EventKind::AddToCart), Target::Kind(EventKind::Purchase)] {
        let learned = fit(&fitting, target, decay, max_events, &rank, &GRID);
        if target == Target::Any {
            for_any = Some(learned);
        }
        let settings = [
            ("guessed", Setting::guessed(decay)),
            ("uniform", Setting::uniform(decay)),
            ("shipped", Setting::shipped(decay)),
            ("learned", learned),
        ];
        let figures: Vec<Vec<(f64, u32)>> = settings.iter().map(|(_, s)| per_user(&reported, s, target, max_events, &rank)).collect();
        let events: u64 = figures[0].iter().map(|f| f.1 as u64).sum();
        let users = figures[0].iter().filter(|f| f.1 > 0).count();
        let (levels, gaps) = bootstrap(&figures, RESAMPLES, SEED);
        let rows: Vec<Value> = settings
            .iter()
            .zip(levels.iter().zip(&gaps))
            .map(|((name, s), (level, gap))| {
                json!({
                    "setting": name,
                    "weights": { "view": s.weight(EventKind::View), "add_to_cart": s.weight(EventKind::AddToCart), "purchase": s.weight(EventKind::Purchase) },
                    "ndcg@10": level,
                    "minusGuessed": gap,
                })
            })
            .collect();
        targets.push(json!({ "target": target.name(), "events": events, "users": users, "settings": rows }));
    }
    let out = json!({
        "source": import.report.source,
        "kinds": import.report.kinds,
        "users": sequences.len(),
        "categories": names.len(),
        "decay": decay,
        "maxEvents": max_events,
        "grid": GRID,
        "fittedOn": fitting.len(),
        "reportedOn": reported.len(),
        "bootstrap": { "resamples": RESAMPLES, "seed": SEED },
        "targets": targets,
    });
    if args.write {
        let mut file = file;
        let mut weights = for_any.ok_or("no weights were fitted")?.weights;
        weights[EventKind::Search.index()] = EventKind::Search.affinity_weight();
        file.config.kind_weights = weights.to_vec();
        file.meta["kindWeights"] = json!({
            "rule": "fitted for the next event of any kind on half the users (kind-weights); search keeps the package's weight",
            "source": import.report.source,
            "weights": EventKind::ALL.iter().map(|k| (k.name().to_owned(), json!(weights[k.index()]))).collect::<serde_json::Map<_, _>>(),
        });
        let bytes = file.to_bytes();
        std::fs::write(&args.model, &bytes).map_err(|e| format!("cannot write {}: {e}", args.model.display()))?;
        eprintln!("kind-weights: wrote {} with kind weights {:?}", args.model.display(), weights);
        shelfrank::evaluation::update_manifest(&args.model, &bytes)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return Ok(());
    }
    println!("| next event | setting | view / cart / purchase | NDCG@10 [95% CI] | minus guessed [95% CI] | events (users) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for t in out["targets"].as_array().expect("targets") {
        for s in t["settings"].as_array().expect("settings") {
            let w = &s["weights"];
            let ci = |v: &Value| {
                format!(
                    "{:.4} [{:.4}, {:.4}]",
                    v["value"].as_f64().unwrap_or(0.0),
                    v["low"].as_f64().unwrap_or(0.0),
                    v["high"].as_f64().unwrap_or(0.0)
                )
            };
            println!(
                "| {} | {} | {} / {} / {} | {} | {} | {} ({}) |",
                t["target"].as_str().unwrap_or(""),
                s["setting"].as_str().unwrap_or(""),
                w["view"],
                w["add_to_cart"],
                w["purchase"],
                ci(&s["ndcg@10"]),
                ci(&s["minusGuessed"]),
                t["events"],
                t["users"]
            );
        }
    }
    Ok(())
}

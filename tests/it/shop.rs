//! A shop's own data: the events + catalog files and the GA4 export read
//! into the same dataset, bad input reported with its lines, and `train`
//! end to end on the fixtures (tools/shop-fixtures.mjs, from the real
//! REES46 log).

use std::path::{Path, PathBuf};

use shelfrank::shop::{read_events_and_catalog, read_ga4};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop")
}

/// A scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shelfrank-shop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_events_file_and_the_ga4_export_give_the_same_dataset() {
    let csv = read_events_and_catalog(&fixtures().join("events.csv"), &fixtures().join("catalog.csv")).unwrap();
    let ga4 = read_ga4(&fixtures().join("ga4")).unwrap();
    let r = &csv.report;
    assert_eq!((r.users, r.items, r.events_read, r.events_used), (300, 1048, 2082, 2082), "{}", r.summary());
    assert!(r.kinds["view"] > 1900 && r.kinds["purchase"] > 0 && r.kinds["add_to_cart"] > 0, "{:?}", r.kinds);
    // REES46 has no titles; items with neither category nor brand have no text at all.
    assert!(r.items_without_text > 0 && r.items_without_text < r.items);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(ga4.report.kinds, r.kinds);
    let (a, b) = (&csv.dataset, &ga4.dataset);
    assert_eq!(a.items, b.items);
    assert_eq!(a.valid, b.valid);
    assert_eq!(a.test, b.test);
    // Leave-one-out: test holds each user's last event, validation the one before.
    for (v, t) in a.valid.iter().zip(&a.test) {
        assert_eq!(t.history[..t.history.len() - 1], v.history[..]);
        assert_eq!(*t.history.last().unwrap(), v.target);
    }
    assert!(a.items.iter().any(|i| i.text == "appliances environment water heater. aqua"));
}

#[test]
fn bad_rows_are_counted_with_their_lines_and_bad_files_are_refused_clearly() {
    let dir = scratch("bad");
    let catalog = dir.join("catalog.csv");
    std::fs::write(&catalog, "id,title,category,brand,price\na,\"Gloves, nitrile\",Lab,Acme,3\nb,Tape,,,\nc,,,,\n").unwrap();
    let events = dir.join("events.csv");
    std::fs::write(
        &events,
        "user,item,kind,timestamp\n\
         u1,a,view,1\nu1,b,cart,2\nu1,a,purchase,3\n\
         u2,a,view,1\nu2,zz,view,2\nu2,b,wishlist,3\n\
         u3,c,click,2019-10-01T00:00:05Z\nu3,a,view,2019-10-01 00:00:01 UTC\nu3,b,view,2019-10-01 00:00:09 UTC\n",
    )
    .unwrap();
    let import = read_events_and_catalog(&events, &catalog).unwrap();
    let r = &import.report;
    assert_eq!((r.events_read, r.events_used, r.users, r.items, r.items_without_text), (9, 6, 2, 3, 1), "{}", r.summary());
    let warning =
        |what: &str| r.warnings.iter().find(|w| w.what.contains(what)).unwrap_or_else(|| panic!("no '{what}' in {}", r.summary()));
    assert_eq!(warning("unknown kind").count, 1);
    assert!(warning("unknown kind").lines[0].ends_with("events.csv:7"), "{:?}", warning("unknown kind"));
    assert!(warning("missing from the catalog").lines[0].ends_with("events.csv:6"));
    assert_eq!(warning("fewer than 3").count, 1, "u2 keeps one usable event");
    // u3's events are put in time order (ISO date-times), whatever the file order.
    let u3 = &import.dataset.test[1];
    assert_eq!(u3.history, vec![0, 2]);
    assert_eq!(u3.target, 1);
    assert!(r.summary().contains("warning: 1 × rows of unknown kind"));

    let refused = |events_text: &[u8], catalog_text: &[u8]| -> String {
        std::fs::write(&events, events_text).unwrap();
        std::fs::write(&catalog, catalog_text).unwrap();
        read_events_and_catalog(&events, &catalog).unwrap_err().to_string()
    };
    let good_catalog = b"id,title\na,Gloves\n";
    let e = refused(b"user,item,when\nu1,a,1\n", good_catalog);
    assert!(e.contains("no column kind, timestamp"), "{e}");
    let e = refused(b"user,item,kind,timestamp\nu1,a,view,1\n", b"id,title\na,Gloves\nb,Tape\na,Other\n");
    assert!(e.contains("repeats item id 'a' (first at line 2)") && e.contains("catalog.csv:4"), "{e}");
    let e = refused(b"user,item,kind,timestamp\nu1,a,view,1\nu1,a,view,\xff\xfe\n", good_catalog);
    assert!(e.contains("events.csv:3 is not valid UTF-8"), "{e}");
    let e = refused(b"user,item,kind,timestamp\nu1,a,view,yesterday\n", good_catalog);
    assert!(e.contains("events.csv:2") && e.contains("'yesterday'"), "{e}");
}

#[test]
fn a_ga4_export_counts_events_without_item_interactions_and_refuses_parquet() {
    let dir = scratch("ga4");
    let line = |name: &str, user: &str, t: u64, items: &str| {
        format!(r#"{{"event_name":"{name}","event_timestamp":"{t}","user_pseudo_id":"{user}","items":[{items}]}}"#)
    };
    let item = |id: &str, name: &str| {
        format!(r#"{{"item_id":"{id}","item_name":"{name}","item_category":"Lab","item_category2":"Gloves","item_brand":"Acme"}}"#)
    };
    let text = [
        line("page_view", "u1", 1, ""),
        line("view_item", "u1", 2, &item("a", "Nitrile gloves")),
        line("view_item_list", "u1", 3, &[item("a", ""), item("b", "")].join(",")),
        line("add_to_cart", "u1", 4, &item("b", "Latex gloves")),
        line("purchase", "u1", 5, &[item("a", ""), item("b", "")].join(",")),
        line("purchase", "u1", 6, ""),
    ]
    .join("\n");
    std::fs::write(dir.join("events_20261130.json"), text).unwrap();
    let import = read_ga4(&dir).unwrap();
    let r = &import.report;
    assert_eq!(r.ignored_event_names.get("page_view"), Some(&1));
    assert_eq!(r.ignored_event_names.get("view_item_list"), Some(&1));
    assert_eq!((r.events_used, r.users), (4, 1), "{}", r.summary());
    assert!(r.warnings.iter().any(|w| w.what.contains("purchase events without items") && w.lines[0].ends_with(":6")));
    assert_eq!(import.dataset.items[0].text, "Nitrile gloves. Lab Gloves. Acme", "the first non-empty name wins");
    std::fs::write(dir.join("events_20261201.parquet"), b"PAR1").unwrap();
    let e = read_ga4(&dir).unwrap_err().to_string();
    assert!(e.contains("Parquet") && e.contains("newline-delimited JSON"), "{e}");
}

/// `shelfrank train` on the fixtures, both ways in: a model file, its
/// manifest and a model card with test figures next to popularity; the
/// model loads in the page's reranker and ranks the shop's items. `eval`
/// and `update-catalog` follow, as their own binaries and as `shelfrank`
/// commands.
#[test]
fn train_runs_end_to_end_on_a_shops_events_and_on_its_ga4_export() {
    let train = env!("CARGO_BIN_EXE_train");
    let shelfrank = env!("CARGO_BIN_EXE_shelfrank");
    // The same tool as its own binary or as a `shelfrank` command.
    let tool = |name: &str, as_command: bool| {
        if as_command {
            let mut command = std::process::Command::new(shelfrank);
            command.arg(name);
            command
        } else {
            std::process::Command::new(match name {
                "eval" => env!("CARGO_BIN_EXE_eval"),
                _ => env!("CARGO_BIN_EXE_update-catalog"),
            })
        }
    };
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/minilm-tokenizer.json");
    for (name, input) in [
        (
            "csv",
            vec![
                "--events".to_string(),
                fixtures().join("events.csv").display().to_string(),
                "--catalog".into(),
                fixtures().join("catalog.csv").display().to_string(),
            ],
        ),
        ("ga4", vec!["--ga4".to_string(), fixtures().join("ga4").display().to_string()]),
    ] {
        let dir = scratch(&format!("train-{name}"));
        let out = dir.join("shelfrank.bin");
        let as_command = name == "ga4";
        let status = std::process::Command::new(shelfrank)
            .arg("train")
            .args(&input)
            .args(["--epochs", "2", "--dim", "16", "--tokenizer"])
            .arg(&tokenizer)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&status.stderr);
        assert!(status.status.success(), "{log}");
        assert!(log.contains("300 users, 1048 items"), "{log}");
        let card = std::fs::read_to_string(dir.join("model-card.md")).unwrap();
        assert!(card.contains("| shelfrank |") && card.contains("| popularity |") && card.contains("300 users"), "{card}");
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["model"]["file"], "shelfrank.bin");
        let bytes = std::fs::read(&out).unwrap();
        let file = shelfrank::model::ModelFile::from_bytes(&bytes).unwrap();
        assert_eq!(file.items.len(), 1048);
        assert_eq!(file.meta["import"]["users"], 300);
        let mut ranker = shelfrank::Reranker::load(&bytes, None, shelfrank::Backend::Host, Default::default()).unwrap();
        let data = read_events_and_catalog(&fixtures().join("events.csv"), &fixtures().join("catalog.csv")).unwrap().dataset;
        ranker.record(data.items[0].event(shelfrank::model::EventKind::View, None), 1e12).unwrap();
        let list: Vec<_> = data.items[1..30].iter().map(|i| i.candidate()).collect();
        let ranked = ranker.rerank_blocking(&list, &Default::default(), 1e12).unwrap();
        assert_eq!(ranked.len(), list.len());
        // eval reads the same input and scores the same held-out events.
        let report = tool("eval", as_command)
            .args(["--model"])
            .arg(&out)
            .args(&input)
            .args(["--json", "--tokenizer"])
            .arg(&tokenizer)
            .output()
            .unwrap();
        assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
        let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
        assert_eq!(report["test"]["users"], 300);
        assert!(report["baselines"]["popularity"]["test"]["ndcg@10"].is_number());
        // A new item in the shop's catalog file borrows a trained row.
        let catalog = std::fs::read_to_string(fixtures().join("catalog.csv")).unwrap();
        let copied = catalog.lines().nth(3).unwrap().split_once(',').unwrap().1.to_owned();
        let grown = dir.join("catalog-grown.csv");
        std::fs::write(&grown, format!("{catalog}new-1,{copied}\n")).unwrap();
        let updated = dir.join("updated.bin");
        let run = tool("update-catalog", as_command)
            .arg("--model")
            .arg(&out)
            .arg("--catalog")
            .arg(&grown)
            .arg("--out")
            .arg(&updated)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success() && log.contains("1 new to the model") && log.contains("1 borrowed"), "{log}");
        let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&updated).unwrap()).unwrap();
        assert_eq!(file.items.len(), 1049);
        assert_ne!(file.catalog_rows::<std::collections::HashMap<String, i64>>()["new-1"], 0);
    }
    // Without --out it refuses rather than overwrite the shipped model.
    let status = std::process::Command::new(train).args(["--ga4"]).arg(fixtures().join("ga4")).output().unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("--out FILE is required"));
}

/// `kind-weights` on the shop's typed events: each user's kinds line up
/// with their sequence, and the report covers the three targets with the
/// guessed, uniform, shipped and learned weights; a dataset folder (one
/// kind only) is refused.
#[test]
fn kind_weights_are_learned_from_a_shops_typed_events() {
    let mut source = shelfrank::shop::DataSource::default();
    let (events, catalog) = (fixtures().join("events.csv"), fixtures().join("catalog.csv"));
    for (flag, path) in [("--events", &events), ("--catalog", &catalog)] {
        assert!(source.take(flag, &mut || Ok(path.display().to_string())).unwrap());
    }
    let import = source.load_typed().unwrap();
    assert_eq!(import.kinds.len(), import.dataset.test.len());
    for (kinds, example) in import.kinds.iter().zip(&import.dataset.test) {
        assert_eq!(kinds.len(), example.history.len() + 1);
    }
    let mut counts = std::collections::BTreeMap::new();
    for kind in import.kinds.iter().flatten() {
        *counts.entry(kind.name().to_owned()).or_insert(0usize) += 1;
    }
    assert_eq!(counts, import.report.kinds);

    let run = |args: &[&std::ffi::OsStr]| std::process::Command::new(env!("CARGO_BIN_EXE_kind-weights")).args(args).output().unwrap();
    let out = run(&["--events".as_ref(), events.as_os_str(), "--catalog".as_ref(), catalog.as_os_str(), "--json".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["users"], 300);
    assert_eq!(report["fittedOn"].as_u64().unwrap() + report["reportedOn"].as_u64().unwrap(), 300);
    let targets = report["targets"].as_array().unwrap();
    let names: Vec<&str> = targets.iter().map(|t| t["target"].as_str().unwrap()).collect();
    assert_eq!(names, ["any", "add_to_cart", "purchase"]);
    for t in targets {
        let settings = t["settings"].as_array().unwrap();
        let names: Vec<&str> = settings.iter().map(|s| s["setting"].as_str().unwrap()).collect();
        assert_eq!(names, ["guessed", "uniform", "shipped", "learned"]);
        assert_eq!(settings[0]["minusGuessed"]["value"], 0.0);
        assert_eq!(settings[2]["weights"]["purchase"], 0.25);
        for s in settings {
            let v = &s["ndcg@10"];
            let (value, low, high) = (v["value"].as_f64().unwrap(), v["low"].as_f64().unwrap(), v["high"].as_f64().unwrap());
            assert!((0.0..=1.0).contains(&value) && low <= value + 1e-12 && value <= high + 1e-12, "{s}");
        }
    }
    assert!(targets[0]["events"].as_u64().unwrap() > 500, "every event after a user's first is predicted");
    // --write stores the weights learned for the next event of any kind in the shop's model.
    let dir = scratch("kind-weights");
    let model = dir.join("shop.bin");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shelfrank-scientific.bin"), &model).unwrap();
    let written = run(&[
        "--events".as_ref(),
        events.as_os_str(),
        "--catalog".as_ref(),
        catalog.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
        "--write".as_ref(),
    ]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    let learned = &targets[0]["settings"][3]["weights"];
    let weight = |kind: shelfrank::model::EventKind| file.config.kind_weights[kind.index()] as f64;
    use shelfrank::model::EventKind::{AddToCart, Purchase, Search, View};
    assert_eq!(
        (weight(View), weight(AddToCart), weight(Purchase)),
        (learned["view"].as_f64().unwrap(), learned["add_to_cart"].as_f64().unwrap(), learned["purchase"].as_f64().unwrap())
    );
    assert_eq!(weight(Search), 0.5);
    assert_eq!(file.config.affinity().kinds.to_vec(), file.config.kind_weights);
    let unnamed = run(&["--events".as_ref(), events.as_os_str(), "--catalog".as_ref(), catalog.as_os_str(), "--write".as_ref()]);
    assert!(!unnamed.status.success(), "--write without --model would overwrite the shipped model");
    let refused = run(&["--data".as_ref(), Path::new(env!("CARGO_MANIFEST_DIR")).join("data/scientific").as_os_str()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("typed events"), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// `train --minutes` is kept within an epoch: with a budget smaller than
/// one epoch, training stops after its first step, still validates and
/// writes a model, and says so; validation and the model card read only
/// as many users as the budget allows (here the fewest, 256).
#[test]
fn train_keeps_its_time_budget_within_an_epoch() {
    let dir = scratch("budget");
    let out = dir.join("shelfrank.bin");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--events")
        .arg(fixtures().join("events.csv"))
        .arg("--catalog")
        .arg(fixtures().join("catalog.csv"))
        .args(["--dim", "16", "--batch", "32", "--minutes", "0.0001", "--no-manifest", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let epochs = file.meta["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 1, "{log}");
    assert_eq!(epochs[0]["steps"], 1);
    let of = epochs[0]["of"].as_u64().unwrap();
    assert!(of > 1, "an epoch of the fixture has several steps at batch 32");
    assert!(log.contains(&format!("1 of {of} steps: out of time")), "{log}");
    // A pass over every user would not fit: validation and the card read the fewest the budget allows.
    assert!(log.contains("validation (and the model card) read 256 users, not more"), "{log}");
    let card = std::fs::read_to_string(dir.join("model-card.md")).unwrap();
    assert!(card.contains("the last item event of 256 of the 300 users"), "{card}");
}

/// Sampled softmax (`train --negatives N`, for catalogs too large to score
/// whole at every step) learns as well as the full softmax on a generated
/// shop with structure to learn: both train with the same seed and epochs,
/// and the sampled model's validation NDCG@10 is within 20% of the full one's.
#[test]
fn sampled_softmax_learns_as_well_as_the_full_softmax_on_a_generated_shop() {
    let dir = scratch("sampled");
    let generated = std::process::Command::new("node")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tools/generate-shop.mjs", "--items", "2000", "--users", "3000", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let valid = |negatives: &str| {
        let out = dir.join(format!("negatives-{negatives}.bin"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .arg("--events")
            .arg(dir.join("events.csv"))
            .arg("--catalog")
            .arg(dir.join("catalog.csv"))
            .args(["--epochs", "3", "--negatives", negatives, "--no-manifest", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
        file.meta["validNdcg10"].as_f64().unwrap()
    };
    let (full, sampled) = (valid("0"), valid("256"));
    assert!(full > 0.02, "the generated shop has structure to learn: {full}");
    assert!(sampled >= 0.8 * full, "sampled {sampled} against full {full}");
}

/// Without `--negatives`, a catalog too large for a full softmax at every
/// step trains with a sampled one (logQ-corrected) by itself, and says so;
/// `--negatives 0` still asks for the full softmax.
#[test]
fn a_large_catalog_trains_with_a_sampled_softmax_unless_told_otherwise() {
    let dir = scratch("large");
    let items = shelfrank::dataset::FULL_SOFTMAX_ITEMS + 1;
    let generated = std::process::Command::new("node")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tools/generate-shop.mjs", "--items", &items.to_string(), "--users", "400", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let train = |extra: &[&str]| {
        let out = dir.join("shelfrank.bin");
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .arg("--events")
            .arg(dir.join("events.csv"))
            .arg("--catalog")
            .arg(dir.join("catalog.csv"))
            .args(["--epochs", "1", "--dim", "16", "--no-manifest", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success(), "{log}");
        let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
        (file.meta["negatives"].as_u64().unwrap(), file.meta["logq"].as_bool().unwrap(), log)
    };
    let (negatives, logq, log) = train(&[]);
    let used = shelfrank::dataset::default_negatives(items) as u64;
    assert!(used > 0);
    assert_eq!((negatives, logq), (used, true), "{log}");
    assert!(log.contains(&format!("a sampled softmax with {used} negatives a step")), "{log}");
    let (negatives, logq, _) = train(&["--negatives", "0"]);
    assert_eq!((negatives, logq), (0, false));
    let (negatives, logq, _) = train(&["--no-logq"]);
    assert_eq!((negatives, logq), (used, false));
    // --no-logq with the full softmax has nothing to change: said, not ignored.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--events")
        .arg(dir.join("events.csv"))
        .arg("--catalog")
        .arg(dir.join("catalog.csv"))
        .args(["--epochs", "1", "--dim", "16", "--no-manifest", "--negatives", "0", "--no-logq", "--out"])
        .arg(dir.join("refused.bin"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && log.contains("--no-logq changes a sampled softmax"), "{log}");
    assert!(!dir.join("refused.bin").exists());
}

/// On a typed log, training shows each event as its own kind, so the
/// transformer learns what a kind says about the next item. A generated
/// shop where only the kind decides it: every item has two successors, the
/// next item after a view and the next after an add-to-cart (kinds at
/// random, texts alike), so a model shown random kinds can at best rank
/// both successors on top, and one shown the log's kinds can pick the
/// right one. Validation NDCG@10 (the transformer alone) of each.
#[test]
fn training_on_a_typed_log_learns_what_each_event_kind_says_about_the_next_item() {
    let dir = scratch("kinds");
    let items = 60u32;
    let mut state = 7u64;
    let mut next = |n: u32| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as u32
    };
    let successors: Vec<(u32, u32)> = (0..items)
        .map(|i| {
            let a = (i + 1 + next(items - 1)) % items;
            let mut b = (i + 1 + next(items - 1)) % items;
            if b == a {
                b = (a + 1) % items;
            }
            (a, if b == i { (b + 1) % items } else { b })
        })
        .collect();
    let mut catalog = String::from("id,title,category,brand,price\n");
    for i in 0..items {
        catalog += &format!("item{i},Garden tool {i},Garden,,\n");
    }
    let mut events = String::from("user,item,kind,timestamp\n");
    for user in 0..800 {
        let mut item = next(items);
        for t in 0..8 {
            let cart = next(2) == 1;
            events += &format!("u{user},item{item},{},{}\n", if cart { "cart" } else { "view" }, 1_000 + t);
            item = if cart { successors[item as usize].1 } else { successors[item as usize].0 };
        }
    }
    std::fs::write(dir.join("events.csv"), events).unwrap();
    std::fs::write(dir.join("catalog.csv"), catalog).unwrap();
    let valid = |random_kinds: bool| {
        let out = dir.join(format!("random-{random_kinds}.bin"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_train"));
        command.arg("--events").arg(dir.join("events.csv")).arg("--catalog").arg(dir.join("catalog.csv"));
        command.args(["--epochs", "25", "--lr", "0.01", "--dropout", "0.1", "--no-manifest", "--out"]).arg(&out);
        if random_kinds {
            command.arg("--random-kinds");
        }
        let run = command.output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let file = shelfrank::model::ModelFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
        file.meta["validNdcg10"].as_f64().unwrap()
    };
    let (learned, random) = (valid(false), valid(true));
    eprintln!("kinds as logged {learned}, random kinds {random}");
    assert!(learned > random + 0.1, "kinds as logged {learned} against random kinds {random}");
}

/// sql/ga4-events.sql and sql/ga4-catalog.sql (the same SQL runs in
/// BigQuery), run by DuckDB through tools/ga4-prepare.py over the GA4
/// fixture as newline-delimited JSON and as Parquet (written with GA4's
/// full item schema, as BigQuery exports it), give the files `train
/// --events --catalog` reads, and those give the dataset `train --ga4`
/// reads from the export itself: the same users, histories, targets,
/// kinds and item texts. Skipped where DuckDB for Python is missing,
/// unless SHELFRANK_REQUIRE_DUCKDB is set (npm test installs it).
#[test]
fn the_ga4_sql_run_by_duckdb_gives_the_dataset_train_reads_from_the_export() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = |args: &[&std::ffi::OsStr]| std::process::Command::new("python3").current_dir(root).args(args).output();
    match python(&["-c".as_ref(), "import duckdb".as_ref()]) {
        Ok(out) if out.status.success() => {}
        _ if std::env::var_os("SHELFRANK_REQUIRE_DUCKDB").is_none() => {
            eprintln!("skipping: no DuckDB for Python (pip install duckdb); set SHELFRANK_REQUIRE_DUCKDB=1 to make this a failure");
            return;
        }
        other => panic!("DuckDB for Python is missing: {other:?}"),
    }
    let dir = scratch("ga4-sql");
    let export = fixtures().join("ga4");
    let parquet = dir.join("parquet");
    std::fs::create_dir_all(&parquet).unwrap();
    // The fixture as BigQuery writes Parquet: every item field present.
    let to_parquet = format!(
        "import duckdb, sys; c = duckdb.connect(); c.execute(\"COPY (SELECT * FROM read_json('{}', columns = {{'event_name': 'VARCHAR', 'event_timestamp': 'BIGINT', 'user_pseudo_id': 'VARCHAR', 'items': 'STRUCT(item_id VARCHAR, item_name VARCHAR, item_category VARCHAR, item_category2 VARCHAR, item_category3 VARCHAR, item_category4 VARCHAR, item_category5 VARCHAR, item_brand VARCHAR, price DOUBLE)[]'}})) TO '{}' (FORMAT parquet)\")",
        export.join("events.jsonl").display(),
        parquet.join("events.parquet").display()
    );
    let out = python(&["-c".as_ref(), to_parquet.as_ref()]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let direct = read_ga4(&export).unwrap();
    let named = |data: &shelfrank::dataset::Dataset| {
        let id = |i: u32| data.items[i as usize].id.clone();
        let mut users: Vec<(Vec<String>, String, Vec<&str>)> = data
            .test
            .iter()
            .map(|e| (e.history.iter().map(|&i| id(i)).collect(), id(e.target), e.kinds.iter().map(|k| k.name()).collect()))
            .collect();
        users.sort();
        let mut texts: Vec<(String, String)> = data.items.iter().map(|i| (i.id.clone(), i.text.clone())).collect();
        texts.sort();
        (users, texts)
    };
    for (name, input) in [("json", export.clone()), ("parquet", parquet.clone())] {
        let out_dir = dir.join(name);
        let run = python(&["tools/ga4-prepare.py".as_ref(), input.as_os_str(), out_dir.as_os_str()]).unwrap();
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        let prepared = read_events_and_catalog(&out_dir.join("events.csv"), &out_dir.join("catalog.csv")).unwrap();
        assert_eq!(prepared.report.users, direct.report.users, "{name}");
        assert_eq!(prepared.report.kinds, direct.report.kinds, "{name}");
        assert_eq!(named(&prepared.dataset), named(&direct.dataset), "{name}");
    }
    // A folder with neither kind of file is refused with a clear message.
    let run = python(&["tools/ga4-prepare.py".as_ref(), dir.join("json").as_os_str(), dir.join("again").as_os_str()]).unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("has no .parquet"), "{}", String::from_utf8_lossy(&run.stderr));
}

/// `--id-table` chooses the ID table's storage among int4 and int8; with
/// `--f32` there is nothing to choose, and training says so rather than
/// ignoring it.
#[test]
fn id_table_storage_with_f32_is_refused_clearly() {
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--events")
        .arg(fixtures().join("events.csv"))
        .arg("--catalog")
        .arg(fixtures().join("catalog.csv"))
        .args(["--f32", "--id-table", "int4", "--no-manifest", "--out"])
        .arg(scratch("id-table").join("refused.bin"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && log.contains("with --f32 every tensor is f32"), "{log}");
}

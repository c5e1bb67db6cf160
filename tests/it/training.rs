//! Training smoke test: the real training and evaluation binaries on a tiny
//! slice of the real dataset, end to end, in seconds.

use std::process::Command;

use shelfrank::model::ModelFile;

#[test]
fn training_on_a_small_subset_writes_a_model_that_evaluates() {
    let dir = std::env::temp_dir().join(format!("shelfrank-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("smoke.bin");
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(env!("CARGO_BIN_EXE_train"))
        .current_dir(root)
        .args([
            "--max-users",
            "120",
            "--epochs",
            "1",
            "--dim",
            "16",
            "--no-manifest",
            "--teacher",
            "data/scientific/minilm-teacher.bin",
            "--out",
        ])
        .arg(&model)
        .status()
        .unwrap();
    assert!(status.success(), "train failed");
    let file = ModelFile::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!(file.config.dim, 16);
    assert_eq!(file.items.len(), 4385);
    assert!(file.meta["teacher"].is_string());

    let output = Command::new(env!("CARGO_BIN_EXE_eval"))
        .current_dir(root)
        .args(["--max-users", "120", "--json", "--tokenizer", "models/minilm-tokenizer.json", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "eval failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in ["ndcg@10", "recall@10", "ndcg@50", "recall@50", "mrr"] {
        let value = report["test"][key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&value), "test {key} = {value}");
    }
    assert!(report["valid"]["ndcg@10"].is_number());
    for baseline in ["popularity", "cooccurrence"] {
        assert!(report["baselines"][baseline]["test"]["ndcg@10"].is_number(), "{baseline} missing");
    }
    assert!(report["classification"]["f1"].is_number());
    assert!(report["rerank"]["serverNdcg10"].is_number());
    std::fs::remove_dir_all(&dir).ok();
}

/// A `model.safetensors` holding only a word-embedding table, `[rows, width]`,
/// of fixed pseudo-random values (the real one is all-MiniLM-L6-v2's,
/// 90 MB, not in the repository; training reads nothing else from it).
fn word_embeddings_file(path: &std::path::Path, rows: usize, width: usize) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut data = Vec::with_capacity(rows * width * 4);
    for _ in 0..rows * width {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let value = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        data.extend_from_slice(&value.to_le_bytes());
    }
    let header = serde_json::json!({
        "embeddings.word_embeddings.weight": { "dtype": "F32", "shape": [rows, width], "data_offsets": [0, data.len()] }
    })
    .to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn training_over_fixed_word_embeddings_writes_a_model_for_every_word() {
    let dir = std::env::temp_dir().join(format!("shelfrank-words-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let words = dir.join("model.safetensors");
    word_embeddings_file(&words, 30522, 24);
    let model = dir.join("any.bin");
    let root = env!("CARGO_MANIFEST_DIR");
    let train = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_train"))
            .current_dir(root)
            .args(["--max-users", "120", "--epochs", "1", "--dim", "16", "--no-manifest", "--variant", "text", "--out"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };
    // A full vocabulary needs rows for the words training never reads.
    let refused = train(&["--vocabulary", "full"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--word-embeddings"), "{}", String::from_utf8_lossy(&refused.stderr));

    let words = words.to_str().unwrap();
    // A large step size makes the learned offsets large, so that folding
    // one into the wrong row would show.
    let output = train(&["--word-embeddings", words, "--vocabulary", "full", "--word-offsets", "--lr", "0.05"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "train failed: {log}");
    // train checks that folding the table moved no catalog text vector.
    assert!(log.contains("word embeddings folded"), "{log}");
    let file = ModelFile::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert!(file.items.is_empty(), "a text-only model has no catalog IDs");
    assert!(file.config.n_tokens > 29_000, "every word keeps a row: {}", file.config.n_tokens);
    assert_eq!(file.meta["vocabulary"], "full");

    let report = evaluate_small(&model);
    assert!((0.0..=1.0).contains(&report["test"]["ndcg@10"].as_f64().unwrap_or(-1.0)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn training_with_item_features_folds_them_into_the_id_table() {
    let dir = std::env::temp_dir().join(format!("shelfrank-features-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("features.bin");
    let root = env!("CARGO_MANIFEST_DIR");
    let teacher = "data/scientific/minilm-teacher.bin";
    let train = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_train"))
            .current_dir(root)
            .args(["--max-users", "120", "--epochs", "1", "--dim", "16", "--no-manifest", "--out"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };
    // A text-only model has no ID rows to add features to.
    let refused = train(&["--variant", "text", "--item-features", teacher]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--item-features"), "{}", String::from_utf8_lossy(&refused.stderr));

    // A large step size makes the learned map large, so that a fold that
    // moved an item vector would show; held-out items exercise the rows
    // that keep only their mapped features.
    let output = train(&["--item-features", teacher, "--holdout-items", "0.1", "--lr", "0.05"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "train failed: {log}");
    // train checks that folding moved no catalog item vector.
    assert!(log.contains("item features folded"), "{log}");
    let file = ModelFile::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert!(file.tensors.iter().all(|t| !t.name.starts_with("item_features")), "the file keeps the usual layout");
    assert_eq!(file.meta["itemFeatures"], teacher);
    let ids = file.tensors.iter().find(|t| t.name == "item_ids.weight").unwrap();
    assert_eq!(ids.shape, vec![4386, 16]);

    let report = evaluate_small(&model);
    assert!((0.0..=1.0).contains(&report["test"]["ndcg@10"].as_f64().unwrap_or(-1.0)));

    // Items whose teacher embeddings are equal (Scientific has 17 such
    // pairs: the same text) get equal ID rows only when the rows hold the
    // mapped features alone (`--features-only`): a learned row differs.
    let embeddings = shelfrank::teacher::TeacherEmbeddings::read(&std::path::Path::new(root).join(teacher)).unwrap();
    let by_id: std::collections::HashMap<&str, &[f32]> =
        embeddings.items.iter().map(String::as_str).zip(embeddings.values.chunks_exact(embeddings.dim)).collect();
    let twins = |file: &ModelFile| -> Vec<(Vec<f32>, Vec<f32>)> {
        let ids = file.tensors.iter().find(|t| t.name == "item_ids.weight").unwrap();
        let dim = ids.shape[1];
        let row = |i: usize| ids.values[(i + 1) * dim..(i + 2) * dim].to_vec();
        let mut pairs = Vec::new();
        for (i, a) in file.items.iter().enumerate() {
            for (j, b) in file.items.iter().enumerate().skip(i + 1) {
                if by_id[a.as_str()] == by_id[b.as_str()] {
                    pairs.push((row(i), row(j)));
                }
            }
        }
        pairs
    };
    let learned = twins(&file);
    assert!(!learned.is_empty() && learned.iter().any(|(a, b)| a != b), "learned rows tell same-text items apart");
    let refused = train(&["--features-only"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--item-features"), "{}", String::from_utf8_lossy(&refused.stderr));
    let output = train(&["--item-features", teacher, "--features-only", "--lr", "0.05"]);
    assert!(output.status.success(), "train failed: {}", String::from_utf8_lossy(&output.stderr));
    let file = ModelFile::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!(file.meta["featuresOnly"], true);
    let mapped = twins(&file);
    assert_eq!(mapped.len(), learned.len());
    assert!(mapped.iter().all(|(a, b)| a == b && a.iter().any(|v| *v != 0.0)), "rows are the mapped features alone");
    std::fs::remove_dir_all(&dir).ok();
}

/// `eval --json` of `model` on 120 users, with the tokenizer the file carries.
fn evaluate_small(model: &std::path::Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_eval"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--max-users", "120", "--json", "--model"])
        .arg(model)
        .output()
        .unwrap();
    assert!(output.status.success(), "eval failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

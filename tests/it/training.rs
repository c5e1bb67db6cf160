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

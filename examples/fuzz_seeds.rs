//! Writes the fuzzers' seed inputs to `fuzz/seeds/<target>/`:
//! `cargo run --release --example fuzz_seeds`. The seeds are committed;
//! run this again after the model file format or the request types change.

use shelfrank::fuzzing::tiny_model_file;

fn main() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = format!("fuzz/seeds/{target}");
        std::fs::create_dir_all(&dir).expect("a seeds folder");
        std::fs::write(format!("{dir}/{name}"), bytes).expect("a seed file");
    };
    // model_file: the payload of a small valid file (the target hashes it).
    let file = tiny_model_file().to_bytes();
    write("model_file", "tiny-model-payload", &file[44..]);
    write("model_file", "tiny-model-whole", &file);

    let candidates = r#"[{"id":"a1","title":"Nitrile gloves","serverScore":2.5},{"id":"b2","title":"Goggles","category":"Safety","brand":"Acme","price":9.5,"pinned":true},{"id":"zz","title":"","extra":{"x":[1,2]}}]"#;
    let events = r#"[{"type":"view","id":"a1","title":"Nitrile gloves","timestamp":1700000000000},{"type":"search","query":"safety tape"},{"type":"add_to_cart","id":"B0000223UV"},{"type":"purchase","id":"x","title":"Duct tape","category":"Tapes"}]"#;
    write("requests", "candidates.json", candidates.as_bytes());
    write("requests", "events.json", events.as_bytes());
    write("requests", "options.json", br#"{"serverWeight":0.5,"explain":true}"#);

    let data = shelfrank::dataset::Dataset::load("data/scientific".as_ref()).expect("the dataset");
    let catalog: Vec<serde_json::Value> = data.items[..12]
        .iter()
        .enumerate()
        .map(|(i, item)| serde_json::json!({ "id": item.id, "title": item.title, "category": item.category, "pinned": i == 2, "serverScore": 12 - i }))
        .collect();
    let history: Vec<serde_json::Value> = data.items[20..26]
        .iter()
        .map(|item| serde_json::json!({ "type": "view", "id": item.id, "title": item.title }))
        .chain([serde_json::json!({ "type": "search", "query": "pipette tips" })])
        .collect();
    for (name, fixed, explain) in
        [("shop.json", false, false), ("shop-explained.json", false, true), ("shop-fixed-shapes.json", true, true)]
    {
        let request =
            serde_json::json!({ "events": history, "candidates": catalog, "options": { "explain": explain }, "fixed_shapes": fixed });
        write("rerank", name, request.to_string().as_bytes());
    }
    let unknown = serde_json::json!({ "events": [{ "type": "view", "id": "not-in-catalog", "title": "Mystery item" }], "candidates": [{ "id": "q", "title": "Q" }, { "id": "r" }] });
    write("rerank", "unknown-items.json", unknown.to_string().as_bytes());
    println!("seeds written under fuzz/seeds/");
}

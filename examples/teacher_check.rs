//! Checks the burn port of all-MiniLM-L6-v2 against similarities the
//! sentence-transformers documentation prints for this model:
//! `cargo run --release --example teacher_check -- MODEL_DIR`.

use burn::tensor::Device;
use shelfrank::model::text::load_tokenizer;
use shelfrank::teacher::MiniLm;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("model dir"));
    let tokenizer = load_tokenizer(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    let model = MiniLm::load(&std::fs::read(dir.join("model.safetensors")).unwrap(), &Device::flex()).unwrap();
    let pairs = [
        ("The new movie is awesome", "The new movie is so great", 0.8939),
        ("The cat sits outside", "The cat plays in the garden", 0.6788),
        ("I love pasta", "Do you like pizza?", 0.5096),
    ];
    for (a, b, documented) in pairs {
        let ids: Vec<Vec<u32>> = [a, b].iter().map(|s| tokenizer.encode(*s, true).unwrap().get_ids().to_vec()).collect();
        let e = shelfrank::read_scores(model.embed(&ids).into_data()).unwrap();
        let cos: f32 = e[..384].iter().zip(&e[384..]).map(|(x, y)| x * y).sum();
        println!("{a} | {b}: {cos:.4} (documented {documented})");
    }
}

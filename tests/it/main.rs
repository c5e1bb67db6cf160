//! Native integration tests: the model, its file format and the reranker,
//! through the public API.

mod fuzz;
mod properties;
mod shop;
mod training;

use burn::tensor::Device;
use shelfrank::model::{
    ItemText, ModelFile, RankerConfig, SessionInput, StoredAs, sha256_hex, text::load_tokenizer, text::token_ids, text::vocabulary_ids,
};
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits, SessionEvent};
use shelfrank::{Backend, ErrorKind, Reranker};

const TOKENIZER: &[u8] = include_bytes!("../../models/minilm-tokenizer.json");

const ITEMS: [(&str, &str); 6] = [
    ("g1", "Nitrile exam gloves, powder free. Lab Supplies Gloves"),
    ("g2", "Latex gloves, large. Lab Supplies Gloves"),
    ("s1", "Safety glasses, anti fog. Safety Eyewear"),
    ("s2", "Safety goggles with strap. Safety Eyewear"),
    ("t1", "Teflon tape 1/2 inch. Tapes Adhesives"),
    ("t2", "Duct tape, silver. Tapes Adhesives"),
];

/// A small, randomly initialised model over `ITEMS` (shape tests only:
/// the shipped model comes from training).
fn tiny_model_file(seed: u64) -> ModelFile {
    let texts: Vec<&str> = ITEMS.iter().map(|(_, text)| *text).collect();
    let vocab = vocabulary_ids(TOKENIZER, &texts).unwrap();
    let mut config = RankerConfig::new(ITEMS.len(), vocab.len());
    config.dim = 16;
    config.ff_dim = 32;
    config.max_events = 8;
    let device = Device::flex();
    device.seed(seed);
    let model = config.init(&device);
    ModelFile {
        tensors: ModelFile::capture(&model, StoredAs::F32),
        config,
        items: ITEMS.iter().map(|(id, _)| id.to_string()).collect(),
        vocab,
        tokenizer_sha256: sha256_hex(TOKENIZER),
        wordpiece: None,
        meta: serde_json::json!({ "purpose": "test" }),
    }
}

fn event(kind: EventKind, id: &str) -> SessionEvent {
    let title = ITEMS.iter().find(|(i, _)| *i == id).map(|(_, t)| t.to_string());
    SessionEvent { kind, id: Some(id.into()), title, category: None, brand: None, query: None, timestamp: None }
}

fn candidates(pinned: &[usize]) -> Vec<Candidate> {
    ITEMS
        .iter()
        .enumerate()
        .map(|(i, (id, text))| Candidate {
            id: id.to_string(),
            title: text.to_string(),
            category: None,
            brand: None,
            price: Some(9.5),
            server_score: None,
            pinned: pinned.contains(&i),
        })
        .collect()
}

#[test]
fn model_outputs_have_the_documented_shapes() {
    let file = tiny_model_file(1);
    let device = Device::flex();
    let model = file.build(&device).unwrap();
    let text = ItemText::from_rows(&[vec![1, 2, 3], vec![4], vec![]]);
    assert_eq!(model.text_vectors(&text, &device).dims(), [3, 16]);
    let session = SessionInput { batch: 1, len: 2, item_rows: vec![1, 0], kinds: vec![0, 4], padding: vec![false, false] };
    let text = ItemText::from_rows(&[vec![1], vec![2, 3], vec![4], vec![5], vec![6]]);
    assert_eq!(model.score(&session, &[1, 2, 0], &text, file.config.affinity(), &device).dims(), [3]);
    let batch = SessionInput {
        batch: 2,
        len: 3,
        item_rows: vec![0, 1, 2, 3, 4, 5],
        kinds: vec![0; 6],
        padding: vec![true, false, false, false, false, false],
    };
    let states = model.encode_session(&batch, model.text_vectors(&ItemText::from_rows(&vec![vec![1]; 6]), &device), &device);
    assert_eq!(states.dims(), [2, 3, 16]);
}

#[test]
fn the_encoder_is_causal() {
    // A state must not change when later events change.
    let file = tiny_model_file(2);
    let device = Device::flex();
    let model = file.build(&device).unwrap();
    let text = model.text_vectors(&ItemText::from_rows(&[vec![1], vec![2], vec![3], vec![1], vec![2], vec![5]]), &device);
    let input =
        SessionInput { batch: 2, len: 3, item_rows: vec![1, 2, 3, 1, 2, 6], kinds: vec![0, 1, 2, 0, 1, 3], padding: vec![false; 6] };
    let states = model.encode_session(&input, text, &device).into_data().try_into_vec_as::<f32>().unwrap();
    // Two sessions of equal length that differ only in their last event:
    // the states after the first two events must be identical.
    let (a, b) = states.split_at(3 * 16);
    for t in 0..2 {
        for d in 0..16 {
            assert!((a[t * 16 + d] - b[t * 16 + d]).abs() < 1e-5, "state {t} saw the future");
        }
    }
}

#[test]
fn the_newest_state_alone_equals_the_full_encoders_last_column() {
    // `encode_last` (what scoring uses) runs the last layer for one
    // position only; it must give `encode`'s last column, with padding and
    // on a trained model's weights too.
    let shipped = ModelFile::from_bytes(include_bytes!("../../models/shelfrank-scientific.bin")).unwrap();
    for file in [tiny_model_file(12), shipped] {
        let device = Device::flex();
        let model = file.build(&device).unwrap();
        let (batch, len, dim) = (3, 7, file.config.dim);
        let input = SessionInput {
            batch,
            len,
            item_rows: (0..batch * len).map(|i| (i % 5) as i64).collect(),
            kinds: (0..batch * len).map(|i| (i % 5) as i64).collect(),
            // Row 0 full, row 1 with three padding events, row 2 one event.
            padding: (0..batch * len).map(|i| (i / len == 1 && i % len < 3) || (i / len == 2 && i % len < len - 1)).collect(),
        };
        let text =
            model.text_vectors(&ItemText::from_rows(&(0..batch * len).map(|i| vec![(i % 4) as u32 + 1]).collect::<Vec<_>>()), &device);
        let full = model.encode_session(&input, text.clone(), &device).into_data().try_into_vec_as::<f32>().unwrap();
        let ids = burn::tensor::Tensor::<1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(input.item_rows.clone(), [batch * len]),
            &device,
        );
        let events = model.item_vectors(ids, text).reshape([batch, len, dim]);
        let kinds = burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(input.kinds.clone(), [batch, len]),
            &device,
        );
        let padding = burn::tensor::Tensor::<2, burn::tensor::Bool>::from_data(
            burn::tensor::TensorData::new(input.padding.clone(), [batch, len]),
            &device,
        );
        let last = model.encode_last(events, kinds, padding).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(last.len(), batch * dim);
        for b in 0..batch {
            for d in 0..dim {
                let (x, y) = (full[(b * len + len - 1) * dim + d], last[b * dim + d]);
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "session {b}, dim {d}: {x} vs {y}");
            }
        }
    }
}

/// The page scores on the CPU through the host network (plain Rust);
/// training, `eval` and WebGPU through the burn module. On random and
/// trained weights, every kind, sessions of one event to the longest, ID
/// rows known and unknown, the two must compute the same session state,
/// scores and explanations.
#[test]
fn the_host_network_computes_what_the_burn_module_computes() {
    use shelfrank::model::{HostNetwork, TokenTable};
    let shipped = ModelFile::from_bytes(include_bytes!("../../models/shelfrank-scientific.bin")).unwrap();
    // Int4 tables as a file stores them (the token table then kept int4 on the host, as read).
    let mut int4 = tiny_model_file(23).quantised(StoredAs::I8F16);
    int4.tensors.iter_mut().filter(|t| t.name.ends_with("_ids.weight") || t.name == "tokens.weight").for_each(|t| t.stored_as = StoredAs::I4F16);
    let int4 = ModelFile::from_bytes(&int4.to_bytes()).unwrap();
    assert!(int4.tensors.iter().any(|t| t.name == "tokens.weight" && t.stored_as == StoredAs::I4F16 && t.int8.is_some()));
    for file in [tiny_model_file(21), tiny_model_file(22), shipped, int4] {
        let device = Device::flex();
        let model = file.build(&device).unwrap();
        let host = HostNetwork::from_file(&file).unwrap();
        let table = TokenTable::from_file(&mut file.clone()).unwrap();
        let (config, dim) = (&file.config, file.config.dim);
        let affinity = config.affinity();
        let texts = |n: usize, salt: usize| -> Vec<Vec<u32>> {
            (0..n).map(|i| (0..1 + (i * 7 + salt) % 9).map(|j| ((i * 31 + j * 17 + salt) % config.n_tokens) as u32 + 1).collect()).collect()
        };
        for len in [1, 3, config.max_events] {
            let session = SessionInput {
                batch: 1,
                len,
                item_rows: (0..len).map(|t| if t % 4 == 3 { 0 } else { ((t * 13) % config.n_items) as i64 + 1 }).collect(),
                kinds: (0..len).map(|t| (t % 5) as i64).collect(),
                padding: vec![false; len],
            };
            let mut means = Vec::new();
            table.means_into(&texts(len, 1), &mut means);
            let burn_text =
                model.project_text(burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(means.clone(), [len, dim]), &device));
            let host_text = host.project_text(&means);
            assert_close("text vectors", &host_text, &burn_text.clone().into_data().try_to_vec::<f32>().unwrap(), 1e-5);
            let burn_state = model.session_states(&session, burn_text, affinity, &device);
            let host_state = host.session_state(&session, &host_text, affinity).unwrap();
            let read = |t: burn::tensor::Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
            assert_close("state", &host_state.state, &read(burn_state.state.clone()), 1e-4);
            assert_close("profile", &host_state.profile, &read(burn_state.profile.clone()), 1e-5);
            assert_close("event units", &host_state.event_units, &read(burn_state.event_units.clone()), 1e-5);
            assert_close("log weights", &host_state.log_weights, &read(burn_state.log_weights.clone()), 1e-6);

            let n = 37;
            let rows: Vec<i64> = (0..n).map(|i| if i % 6 == 0 { 0 } else { ((i * 29) % config.n_items) as i64 + 1 }).collect();
            let mut means = Vec::new();
            table.means_into(&texts(n, 5), &mut means);
            let burn_vectors =
                model.project_text(burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(means.clone(), [n, dim]), &device));
            let (burn_scores, burn_attention) =
                model.score_candidate_vectors(&burn_state, &rows, burn_vectors, affinity, &device, true, None);
            let (host_scores, host_attention) = host.score(&host_state, &rows, &host.project_text(&means), affinity, true);
            // Random weights score every candidate nearly alike, and the
            // standardisation magnifies rounding (states agree to within 5e-7).
            let tolerance = if file.meta["purpose"] == "test" { 1e-3 } else { 1e-4 };
            assert_close("scores", &host_scores, &read(burn_scores), tolerance);
            assert_close("attention", &host_attention.unwrap(), &read(burn_attention.unwrap()), 1e-4);
        }
        // Padding, batches and empty sessions are the burn module's.
        let padded = SessionInput { batch: 1, len: 2, item_rows: vec![0, 1], kinds: vec![0, 0], padding: vec![true, false] };
        assert!(host.session_state(&padded, &vec![0.0; 2 * dim], affinity).is_err());
    }
}

#[test]
fn model_file_round_trips_exactly_in_f32_and_closely_in_int8_and_int4() {
    let file = tiny_model_file(3);
    let bytes = file.to_bytes();
    let loaded = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.config, file.config);
    assert_eq!(loaded.items, file.items);
    assert_eq!(loaded.tensors, file.tensors);

    // f32 row scales (older files) and f16 row scales (what training writes).
    for (stored_as, scale_bytes) in [(StoredAs::I8, 4), (StoredAs::I8F16, 2), (StoredAs::I4F16, 2)] {
        let int8_bytes = file.quantised(stored_as).to_bytes();
        let int8 = ModelFile::from_bytes(&int8_bytes).unwrap();
        // Int4 needs format version 2; anything else stays version 1, which older builds read.
        let version = u32::from_le_bytes(int8_bytes[8..12].try_into().unwrap());
        assert_eq!(version, if stored_as == StoredAs::I4F16 { 2 } else { 1 });
        assert!(int8_bytes.len() < bytes.len() / 2, "int8 file is not smaller");
        for (q, f) in int8.tensors.iter().zip(&file.tensors) {
            if f.shape.len() >= 2 {
                assert_eq!(q.stored_as, stored_as);
            }
            let width = *f.shape.last().unwrap();
            for (row_q, row_f) in q.values.chunks(width).zip(f.values.chunks(width)) {
                let max = row_f.iter().fold(0f32, |m, v| m.max(v.abs()));
                // Half a step of the row's scale (an f16 scale is rounded up: at most 2^-10 larger).
                let levels = if stored_as == StoredAs::I4F16 { 7.0 } else { 127.0 };
                let step = max / levels * if stored_as == StoredAs::I8 { 1.0 } else { 1.0 + 1.0 / 1024.0 };
                for (a, b) in row_q.iter().zip(row_f) {
                    assert!((a - b).abs() <= step * 0.5 + 1e-6, "{}: {a} vs {b}", f.name);
                }
            }
        }
        let f16_rows: usize = file.tensors.iter().filter(|t| t.shape.len() >= 2).map(|t| t.values.len() / t.shape.last().unwrap()).sum();
        let f32_size = file.quantised(StoredAs::I8).to_bytes().len();
        if stored_as == StoredAs::I4F16 {
            // Two values a byte: half of each matrix's int8 bytes fewer (the header's storage names are as
            // long; a tensor's byte count may be written with a digit fewer).
            let halved: usize = file.tensors.iter().filter(|t| t.shape.len() >= 2).map(|t| t.values.len() / 2).sum();
            let i8f16 = file.quantised(StoredAs::I8F16).to_bytes().len();
            assert!(int8_bytes.len() + halved <= i8f16 && i8f16 <= int8_bytes.len() + halved + file.tensors.len(), "{} vs {i8f16}", int8_bytes.len());
        }
        if stored_as == StoredAs::I8F16 {
            // 2 bytes a row fewer (the header names the storage in 3 more characters a tensor).
            assert!(
                int8_bytes.len() + f16_rows * (4 - scale_bytes) <= f32_size + 3 * file.tensors.len(),
                "{} vs {f32_size}",
                int8_bytes.len()
            );
        }
    }
}

#[test]
fn corrupted_truncated_or_foreign_files_are_rejected_clearly() {
    let bytes = tiny_model_file(4).to_bytes();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let error = ModelFile::from_bytes(&flipped).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelFile);
    assert!(error.message().contains("sha256"), "{error}");

    let error = ModelFile::from_bytes(&bytes[..bytes.len() - 10]).unwrap_err();
    assert!(error.message().contains("sha256"), "{error}");

    let mut future = bytes.clone();
    future[8] = 99;
    let error = ModelFile::from_bytes(&future).unwrap_err();
    assert!(error.message().contains("version 99"), "{error}");
    // An int4 file relabelled version 1 (the hash covers the payload only) is refused by name.
    let mut relabelled = tiny_model_file(4).quantised(StoredAs::I4F16).to_bytes();
    relabelled[8..12].copy_from_slice(&1u32.to_le_bytes());
    let error = ModelFile::from_bytes(&relabelled).unwrap_err();
    assert!(error.message().contains("is int4, which format version 1 cannot hold"), "{error}");

    let error = ModelFile::from_bytes(b"<html>not found</html>").unwrap_err();
    assert!(error.message().contains("magic"), "{error}");
    assert!(ModelFile::from_bytes(&[]).is_err());

    // The page passes the digest the browser computed: the digest of the
    // bytes it has, checked against the stored hash, as if hashed here.
    let digest =
        |b: &[u8]| -> Vec<u8> { (0..32).map(|i| u8::from_str_radix(&sha256_hex(&b[44..])[2 * i..2 * i + 2], 16).unwrap()).collect() };
    assert!(ModelFile::from_bytes_digested(&bytes, Some(&digest(&bytes))).is_ok());
    let error = ModelFile::from_bytes_digested(&flipped, Some(&digest(&flipped))).unwrap_err();
    assert!(error.message().contains("sha256"), "{error}");
    let error = ModelFile::from_bytes_digested(&bytes, Some(&[0; 32])).unwrap_err();
    assert!(error.message().contains("sha256"), "{error}");
}

#[test]
fn every_truncation_and_bit_flip_is_rejected_by_the_hash_before_parsing() {
    let bytes = tiny_model_file(4).to_bytes();
    for len in (0..bytes.len()).step_by(7) {
        let error = ModelFile::from_bytes(&bytes[..len]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ModelFile);
    }
    // Past the 44-byte prefix every damaged byte is caught by the sha256,
    // which is checked before the header or any tensor is parsed.
    for at in (44..bytes.len()).step_by(13) {
        for bit in [0x01u8, 0x80] {
            let mut flipped = bytes.clone();
            flipped[at] ^= bit;
            let error = ModelFile::from_bytes(&flipped).unwrap_err();
            assert!(error.message().contains("sha256"), "byte {at}: {error}");
        }
    }
}

#[test]
fn a_file_from_a_different_configuration_or_naming_no_tokenizer_is_rejected() {
    // Same tensors, header claiming a wider model: the build refuses.
    let mut file = tiny_model_file(5);
    file.config.dim = 32;
    file.config.ff_dim = 64;
    let error = Reranker::load(&file.to_bytes(), Some(TOKENIZER), Backend::Host, HistoryLimits::default()).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::ModelFile, "{error}");
    // A configuration out of range is refused while parsing.
    let mut file = tiny_model_file(5);
    file.config.heads = 3; // 16 is not divisible by 3
    let error = ModelFile::from_bytes(&file.to_bytes()).unwrap_err();
    assert!(error.message().contains("configuration"), "{error}");
    // A file must say which tokenizer it was trained with.
    let mut file = tiny_model_file(5);
    file.tokenizer_sha256.clear();
    let error = Reranker::load(&file.to_bytes(), Some(TOKENIZER), Backend::Host, HistoryLimits::default()).err().unwrap();
    assert!(error.message().contains("tokenizer"), "{error}");
}

#[test]
fn a_model_with_a_different_shape_is_rejected_before_use() {
    let mut file = tiny_model_file(5);
    let tensor = file.tensors.iter_mut().find(|t| t.shape.len() == 2).unwrap();
    tensor.shape.reverse();
    let error = file.build(&Device::flex()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelFile);
    assert!(error.message().contains("shape"), "{error}");
}

#[test]
fn the_wrong_tokenizer_is_rejected() {
    let mut file = tiny_model_file(6);
    file.tokenizer_sha256 = "0".repeat(64);
    let error = Reranker::load(&file.to_bytes(), Some(TOKENIZER), Backend::Host, HistoryLimits::default()).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Tokenizer);
    let error = Reranker::load(&tiny_model_file(6).to_bytes(), Some(b"{not json"), Backend::Host, HistoryLimits::default()).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Tokenizer);
}

#[test]
fn rerank_is_a_deterministic_permutation_that_keeps_pinned_slots() {
    let bytes = tiny_model_file(7).to_bytes();
    let mut ranker = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    let list = candidates(&[1, 4]);
    // No history: server order.
    let ranked = ranker.rerank_blocking(&list, &RerankOptions::default(), 1e12).unwrap();
    assert!(ranked.iter().enumerate().all(|(slot, r)| r.original_position == slot));

    ranker.record(event(EventKind::View, "s1"), 1e12).unwrap();
    ranker.record(event(EventKind::AddToCart, "s2"), 1e12).unwrap();
    let options = RerankOptions { server_weight: 0.0, ..RerankOptions::default() };
    let first = ranker.rerank_blocking(&list, &options, 1e12).unwrap();
    let second = ranker.rerank_blocking(&list, &options, 1e12).unwrap();
    assert_eq!(first, second);
    let mut ids: Vec<_> = first.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["g1", "g2", "s1", "s2", "t1", "t2"]);
    assert_eq!(first[1].id, "g2");
    assert_eq!(first[4].id, "t1");
    assert!(first.iter().all(|r| r.model_score.is_some_and(f32::is_finite)));
}

#[test]
fn wgpu_and_cpu_backends_agree() {
    // Native wgpu runs on whatever adapter exists (Mesa's llvmpipe in CI).
    let device = Device::wgpu_options().init();
    let device = match device {
        Ok(device) => device,
        Err(e) if std::env::var_os("SHELFRANK_REQUIRE_WGPU").is_none() => {
            eprintln!("skipping: no wgpu adapter ({e:?}); set SHELFRANK_REQUIRE_WGPU=1 to make this a failure");
            return;
        }
        Err(e) => panic!("no wgpu adapter: {e:?}"),
    };
    let bytes = tiny_model_file(8).to_bytes();
    let scores = |device: Device, fixed_shapes: bool| {
        let mut ranker = Reranker::load(&bytes, Some(TOKENIZER), device, HistoryLimits::default()).unwrap();
        ranker.set_fixed_shapes(fixed_shapes);
        ranker.record(event(EventKind::View, "g1"), 1e12).unwrap();
        ranker
            .record(
                SessionEvent {
                    kind: EventKind::Search,
                    id: None,
                    title: None,
                    category: None,
                    brand: None,
                    query: Some("tape".into()),
                    timestamp: None,
                },
                1e12,
            )
            .unwrap();
        ranker.rerank_blocking(&candidates(&[]), &RerankOptions { server_weight: 0.0, ..RerankOptions::default() }, 1e12).unwrap()
    };
    // The GPU pads to fixed shapes, as the page does on WebGPU.
    let (gpu, cpu) = (scores(device, true), scores(Device::flex(), false));
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(g.id, c.id);
        let (g, c) = (g.model_score.unwrap(), c.model_score.unwrap());
        assert!((g - c).abs() <= 1e-4 * (1.0 + c.abs()), "wgpu {g} vs cpu {c}");
    }
}

#[test]
fn explanations_name_the_history_event_each_item_is_most_like() {
    // The shipped model: the reasons must make sense to a shopper.
    let model = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shelfrank-scientific.bin")).unwrap();
    let mut ranker = Reranker::load(&model, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    let viewed = |id: &str, title: &str| SessionEvent {
        kind: EventKind::View,
        id: Some(id.into()),
        title: Some(title.into()),
        category: None,
        brand: None,
        query: None,
        timestamp: None,
    };
    ranker.record(viewed("shop-filament", "PLA 3D printer filament 1.75 mm, 1 kg spool, red"), 1e12).unwrap();
    ranker.record(viewed("shop-gloves", "Nitrile examination gloves, powder free, box of 100, medium"), 1e12).unwrap();
    let candidate = |id: &str, title: &str, pinned: bool| Candidate {
        id: id.into(),
        title: title.into(),
        category: None,
        brand: None,
        price: None,
        server_score: None,
        pinned,
    };
    let list = [
        candidate("c-filament", "PETG filament for 3D printers, 1.75mm, 1kg, black", false),
        candidate("c-gloves", "Disposable nitrile gloves, large, 100 count", false),
        candidate("c-campaign", "Digital caliper, stainless steel", true),
    ];
    let plain = ranker.rerank_blocking(&list, &RerankOptions::default(), 1e12).unwrap();
    assert!(plain.iter().all(|r| r.reason.is_none()), "reasons only when asked for");

    let explained = ranker.rerank_blocking(&list, &RerankOptions { explain: true, ..RerankOptions::default() }, 1e12).unwrap();
    let reason_of = |id: &str| explained.iter().find(|r| r.id == id).unwrap().reason.clone();
    assert_eq!(reason_of("c-filament").unwrap().id.as_deref(), Some("shop-filament"));
    assert_eq!(reason_of("c-gloves").unwrap().id.as_deref(), Some("shop-gloves"));
    assert!(reason_of("c-campaign").is_none(), "pinned items are not explained");
    for r in explained.iter().filter_map(|r| r.reason.as_ref()) {
        assert!(r.weight > 0.5 && r.weight <= 1.0, "the top event of two holds most of the attention: {}", r.weight);
        assert_eq!(r.kind, EventKind::View);
    }
    // Explaining does not change the order or the scores.
    let strip = |items: &[shelfrank::rank::RankedItem]| items.iter().map(|r| (r.id.clone(), r.score)).collect::<Vec<_>>();
    assert_eq!(strip(&plain), strip(&explained));
}

#[test]
fn our_wordpiece_matches_the_tokenizers_crate_on_the_catalog_and_on_awkward_text() {
    use shelfrank::model::wordpiece::WordPiece;
    let ours = WordPiece::from_json(TOKENIZER).unwrap();
    let reference = load_tokenizer(TOKENIZER).unwrap();
    let catalog = shelfrank::dataset::Dataset::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/scientific").as_ref()).unwrap();
    let awkward = [
        "Café Crème brûlée — naïve façade, ÅNGSTRÖM",
        "3/4\" x 66' UL/CSA; 1.75mm±0.05 (PLA+) 100% #1 [new]",
        "日本語のテキスト 中文 한국어 текст Ελληνικά עברית العربية हिन्दी",
        "emoji 🧪🔬 zero\u{200b}width soft\u{ad}hyphen bidi\u{202e}x private\u{e000}use",
        "tabs\tand\nnewlines\r\n and\u{3000}ideographic\u{a0}spaces",
        "control\u{7}bell \u{0}nul \u{fffd}replacement",
        "ﬁligree ﬂow ™ ® © ½ ² µm Ω °C",
        "supercalifragilisticexpialidocious-and-a-very-long-word-that-goes-on-and-on-for-more-than-one-hundred-characters-without-stopping",
        "",
        "   ",
    ];
    // The tokenizer the shipped model file carries (what the page uses)
    // holds the pieces the model keeps. On the catalog its vocabulary was
    // chosen from, it splits every text as the full one does; on any text
    // it splits as the full tokenizer restricted to those pieces, and the
    // packed copy and the full `tokenizer.json` give the model the same rows.
    // The file numbers its pieces by token row (implicit ids): `to_ours`
    // reads them as the tokenizer's own ids, by piece.
    let shipped = ModelFile::from_bytes(shelfrank::fuzzing::MODEL).unwrap();
    let carried = shipped.wordpiece.as_ref().expect("the shipped model carries its tokenizer");
    assert!(carried.implicit_ids && carried.ids.is_empty(), "the shipped model stores no tokenizer ids");
    let packed = WordPiece::from_packed(carried).unwrap();
    assert_eq!(packed.vocab_size(), shipped.vocab.len(), "the packed tokenizer holds the kept pieces only");
    let mut own_ids = vec![u32::MAX; packed.vocab_size()];
    for (piece, k) in packed.entries() {
        own_ids[k as usize] = ours.id_of(piece).unwrap_or_else(|| panic!("{piece:?} is in the tokenizer"));
    }
    let to_ours = |ks: Vec<u32>| ks.iter().map(|&k| own_ids.get(k as usize).copied().unwrap_or(u32::MAX)).collect::<Vec<_>>();
    let mut restricted = WordPiece::from_json(TOKENIZER).unwrap();
    restricted.restrict(&own_ids);
    let rows_packed = shelfrank::model::TextEncoder::for_model(&shipped, None).unwrap();
    let rows_json = shelfrank::model::TextEncoder::for_model(&shipped, Some(TOKENIZER)).unwrap();
    let mut checked = 0;
    for (text, in_catalog) in catalog.items.iter().map(|i| (i.text.as_str(), true)).chain(awkward.map(|t| (t, false))) {
        let ids = ours.encode(text);
        assert_eq!(ids, token_ids(&reference, text).unwrap(), "tokenizing {text:?}");
        if in_catalog {
            assert_eq!(to_ours(packed.encode(text)), ids, "the packed tokenizer on the catalog's {text:?}");
        }
        assert_eq!(to_ours(packed.encode(text)), restricted.encode(text), "the packed tokenizer on {text:?}");
        assert_eq!(rows_packed.encode(text).unwrap(), rows_json.encode(text).unwrap(), "embedding rows of {text:?}");
        checked += 1;
    }
    assert!(checked > 4000);
}

#[test]
fn a_file_stores_its_catalog_sorted_and_packed_and_each_id_keeps_its_row() {
    let dim = 16;
    let table = |f: &ModelFile| f.tensors.iter().find(|t| t.name == "item_ids.weight").unwrap().values.clone();
    let row_of = |f: &ModelFile, id: &str| {
        let rows: std::collections::HashMap<String, i64> = f.catalog_rows();
        table(f)[rows[id] as usize * dim..][..dim].to_vec()
    };
    for ids in [["t2", "g1", "s2", "sku 7", "é1", "g10"], ["t2", "g1", "s2", "sku-7", "é1", "g10"]] {
        let mut file = tiny_model_file(5);
        file.items = ids.map(String::from).to_vec();
        let stored = ModelFile::from_bytes(&file.to_bytes()).unwrap();
        if ids.iter().any(|id| id.contains(' ')) {
            assert_eq!(stored.items, file.items, "an id with a space: the list as it is");
        } else {
            assert_eq!(stored.items, ["g1", "g10", "s2", "sku-7", "t2", "é1"], "sorted");
        }
        for id in ids {
            assert_eq!(row_of(&stored, id), row_of(&file, id), "{id} keeps its row");
        }
        assert_eq!(table(&stored)[..dim], table(&file)[..dim], "the unknown row stays first");
        assert_eq!(ModelFile::from_bytes(&stored.to_bytes()).unwrap().tensors, stored.tensors, "stored again as it is");
    }
}

#[test]
fn a_file_stores_its_tokenizer_with_implicit_ids_and_scores_as_before() {
    // A model as training leaves it: token rows in the order of the
    // tokenizer's ids, the packed tokenizer listing them.
    let mut file = tiny_model_file(4);
    file.wordpiece = Some(shelfrank::model::wordpiece::WordPiece::from_json(TOKENIZER).unwrap().pack(&file.vocab).unwrap());
    let bytes = file.to_bytes();
    let stored = ModelFile::from_bytes(&bytes).unwrap();
    let carried = stored.wordpiece.as_ref().unwrap();
    assert!(carried.implicit_ids && carried.ids.is_empty());
    assert_eq!(stored.vocab, (0..file.vocab.len() as u32).collect::<Vec<_>>());
    assert_ne!(stored.tensors, file.tensors, "the token table's rows are laid out in the tokenizer's order");
    assert_eq!(ModelFile::from_bytes(&stored.to_bytes()).unwrap().tensors, stored.tensors, "stored again as it is");
    // The same text vectors, through the packed tokenizer and the full one,
    // so the same ranking.
    let list = candidates(&[]);
    let options = RerankOptions { server_weight: 0.0, ..RerankOptions::default() };
    let mut scores = Vec::new();
    for (file, json) in [(file.clone(), None), (stored.clone(), None), (stored, Some(TOKENIZER)), (file, Some(TOKENIZER))] {
        let mut ranker = Reranker::from_file(file, json, Backend::Host, HistoryLimits::default()).unwrap();
        ranker.record(event(EventKind::View, "g1"), 1e12).unwrap();
        ranker.record(SessionEvent { title: Some("gloves for the lab, café".into()), ..event(EventKind::AddToCart, "s2") }, 1e12).unwrap();
        scores.push(ranker.rerank_blocking(&list, &options, 1e12).unwrap());
    }
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:?}");
}

#[test]
fn the_cached_session_state_gives_the_same_scores_as_a_fresh_ranker() {
    let bytes = tiny_model_file(9).to_bytes();
    let list = candidates(&[]);
    let options = RerankOptions { server_weight: 0.0, ..RerankOptions::default() };
    let mut warm = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    warm.record(event(EventKind::View, "g1"), 1e12).unwrap();
    let first = warm.rerank_blocking(&list, &options, 1e12).unwrap();
    let again = warm.rerank_blocking(&list, &options, 1e12).unwrap(); // from the cache
    assert_eq!(first, again);
    warm.record(event(EventKind::AddToCart, "t2"), 1e12).unwrap(); // the cache must not survive this
    let after = warm.rerank_blocking(&list, &options, 1e12).unwrap();
    let mut fresh = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    fresh.record(event(EventKind::View, "g1"), 1e12).unwrap();
    fresh.record(event(EventKind::AddToCart, "t2"), 1e12).unwrap();
    assert_eq!(after, fresh.rerank_blocking(&list, &options, 1e12).unwrap());
    assert_ne!(first, after);
}

#[test]
fn cached_candidate_text_vectors_give_the_same_scores_across_lists() {
    let bytes = tiny_model_file(10).to_bytes();
    let options = RerankOptions { server_weight: 0.0, ..RerankOptions::default() };
    let mut ranker = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    ranker.record(event(EventKind::View, "s1"), 1e12).unwrap();
    let all = candidates(&[]);
    // Warm the cache with part of the list, then rank overlapping and reordered lists.
    ranker.rerank_blocking(&all[..3], &options, 1e12).unwrap();
    let reversed: Vec<_> = all.iter().rev().cloned().collect();
    let cached = ranker.rerank_blocking(&reversed, &options, 1e12).unwrap();
    let mut fresh = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
    fresh.record(event(EventKind::View, "s1"), 1e12).unwrap();
    let expected = fresh.rerank_blocking(&reversed, &options, 1e12).unwrap();
    for (a, b) in cached.iter().zip(&expected) {
        assert_eq!(a.id, b.id);
        assert!((a.model_score.unwrap() - b.model_score.unwrap()).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn fixed_shapes_give_the_same_ranking_reasons_and_scores() {
    // Padding the history, the candidate list and new texts to fixed shapes
    // (for WebGPU) must not change anything: the shipped model, on the CPU.
    let model = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shelfrank-scientific.bin")).unwrap();
    let data = shelfrank::dataset::Dataset::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/scientific").as_ref()).unwrap();
    let load = |fixed: bool| {
        // Fixed shapes are for burn devices; the plain ranker is the page's
        // CPU path (the host network), so this also holds the two together.
        let backend = if fixed { Backend::Device(Device::flex()) } else { Backend::Host };
        let mut ranker = Reranker::load(&model, Some(TOKENIZER), backend, HistoryLimits::default()).unwrap();
        ranker.set_fixed_shapes(fixed);
        if fixed {
            ranker.warm_up().unwrap(); // must leave no trace in what follows
        }
        for (i, item) in data.items[40..47].iter().enumerate() {
            let kind = [EventKind::View, EventKind::AddToCart, EventKind::Click][i % 3];
            ranker.record(SessionEvent { title: Some(item.title.clone()), ..event(kind, &item.id) }, 1e12).unwrap();
        }
        ranker
    };
    let (mut plain, mut fixed) = (load(false), load(true));
    let options = RerankOptions { explain: true, server_weight: 0.0, ..RerankOptions::default() };
    // 70 candidates pad to 128; 300 more new texts fill two chunks.
    for list in [&data.items[100..170], &data.items[100..400], &data.items[390..395]] {
        let mut list: Vec<Candidate> = list.iter().map(|i| i.candidate()).collect();
        list[3].pinned = true;
        let (a, b) = (plain.rerank_blocking(&list, &options, 1e12).unwrap(), fixed.rerank_blocking(&list, &options, 1e12).unwrap());
        assert_eq!(a.len(), b.len());
        for a in &a {
            let b = b.iter().find(|b| b.id == a.id).unwrap();
            assert_eq!(a.pinned, b.pinned);
            let (x, y) = (a.model_score.unwrap(), b.model_score.unwrap());
            assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            assert_eq!(a.reason.as_ref().map(|r| &r.id), b.reason.as_ref().map(|r| &r.id));
            if let (Some(p), Some(q)) = (&a.reason, &b.reason) {
                assert!((p.weight - q.weight).abs() < 1e-4, "{} vs {}", p.weight, q.weight);
            }
        }
        // Near-ties may swap; the orders agree at the top.
        assert_eq!(a[..3].iter().map(|r| &r.id).collect::<Vec<_>>(), b[..3].iter().map(|r| &r.id).collect::<Vec<_>>());
    }
}

/// `eval` and the page score through the same two model calls; on the
/// shipped model, for the same sessions and the whole catalog as the
/// candidate list, they must give the same scores. Several users go
/// through the evaluation scorer in one padded batch, as `eval` runs them.
/// (The page takes the text tower's token means on the host, `eval` with
/// burn ops: this also checks the two agree.)
#[test]
fn the_evaluation_scorer_and_the_page_reranker_give_the_same_scores() {
    use shelfrank::evaluation::{IdRows, ModelScorer, Scorer, catalog_text, histories};
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shelfrank-scientific.bin")).unwrap();
    let data = shelfrank::dataset::Dataset::load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/scientific").as_ref()).unwrap();
    let stored = ModelFile::from_bytes(&bytes).unwrap();
    let ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
    assert!(stored.items.is_sorted() && stored.items.len() == ids.len(), "the shipped model stores the dataset's catalog, sorted");
    let (file, new, dropped) = stored.for_catalog(&ids).unwrap();
    assert_eq!((new, dropped), (0, 0), "the shipped model's catalog is the dataset's");
    let device = Device::flex();
    let network = file.build(&device).unwrap();
    let text = shelfrank::model::TextEncoder::for_model(&file, Some(TOKENIZER)).unwrap();
    let catalog = catalog_text(&data.items, &text).unwrap();
    let mut scorer = ModelScorer::new(&network, &catalog, IdRows::new(data.items.len(), true, &[]), file.config.affinity(), &device)
        .with_repeat_prior(&file.config.repeat_prior);
    // Short and long histories in one batch (padding differs per row).
    let mut by_length: Vec<_> = data.test.iter().collect();
    by_length.sort_by_key(|e| e.history.len());
    let examples: Vec<_> = [0, 1, by_length.len() / 2, by_length.len() - 1].map(|i| by_length[i].clone()).into();
    assert!(examples[0].history.len() < examples[3].history.len());
    let sessions = histories(&examples, file.config.max_events);
    let evaluated = scorer.score(&sessions).unwrap();
    let n = data.items.len();
    let list: Vec<Candidate> = data.items.iter().map(|i| i.candidate()).collect();
    for (b, session) in sessions.iter().enumerate() {
        let mut ranker = Reranker::load(&bytes, Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
        for &item in examples[b].history.iter() {
            ranker.record(data.items[item as usize].event(EventKind::Purchase, None), 1e12).unwrap();
        }
        // The page adds the repeat prior's offsets after reading back (`finish`).
        let pending = ranker.start(&list, &RerankOptions::default(), 1e12).unwrap();
        let offsets = pending.repeat_offsets.clone();
        assert_eq!(offsets.len(), n);
        let sunk = examples[b].history.iter().filter(|&&item| offsets[item as usize] < 0.0).count();
        assert!(file.config.repeat_prior.is_empty() || sunk > 0, "the shipped prior moves the history's items");
        let raw = pending.scores.unwrap().read_blocking().unwrap();
        let page: Vec<f32> = raw.iter().zip(&offsets).map(|(s, o)| s + o).collect();
        let row = &evaluated[b * n..(b + 1) * n];
        let worst = page.iter().zip(row).map(|(p, e)| (p - e).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "user {b} ({} events): scores differ by up to {worst}", session.len());
    }
}

/// The quality test: the shipped model, scored as `eval` scores it (the
/// published protocol, every catalog item competing), on the fixed sample
/// of test users that `models/eval.json` records (`qualitySample`), must
/// keep its NDCG@10 and Recall@10 within the stated tolerance. A change to
/// the scoring path, the model file or the tokenizer that moves ranking
/// quality fails here.
#[test]
fn the_shipped_model_keeps_its_measured_quality_on_a_fixed_sample_of_users() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("models/eval.json")).unwrap()).unwrap();
    let bytes = std::fs::read(root.join("models/shelfrank-scientific.bin")).unwrap();
    keeps_its_quality(ModelFile::from_bytes(&bytes).unwrap(), &report, Some(&bytes));
}

/// The any-catalog model keeps the quality `models/any-eval.json` records
/// on Scientific, as shipped and kept to the Scientific catalog's words
/// (what `update-catalog` does for a shop): a 2.2 MB file becomes page-sized
/// and scores the same.
#[test]
fn the_any_catalog_model_keeps_its_measured_quality_whole_and_kept_to_one_catalogs_words() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("models/any-eval.json")).unwrap()).unwrap();
    let report = &report["scientific"];
    let bytes = std::fs::read(root.join("models/shelfrank-any.bin")).unwrap();
    let file = ModelFile::from_bytes(&bytes).unwrap();
    assert!(file.items.is_empty(), "the any-catalog model knows no catalog's IDs");
    keeps_its_quality(file.clone(), report, Some(&bytes));
    let data = shelfrank::dataset::Dataset::load(&root.join("data/scientific")).unwrap();
    let texts: Vec<&str> = data.items.iter().map(|i| i.text.as_str()).collect();
    let (kept, _) = file.for_texts(&texts).unwrap();
    let kept_bytes = kept.to_bytes();
    assert!(kept_bytes.len() * 3 < bytes.len(), "kept to one catalog: {} bytes of {}", kept_bytes.len(), bytes.len());
    keeps_its_quality(kept, report, None);
}

/// `file` scores every 16th-or-so test user (the sample `report` records)
/// within a tolerance of `report`'s figures; `bytes`, when given, are the
/// file `report` describes (checked by hash).
fn keeps_its_quality(file: ModelFile, report: &serde_json::Value, bytes: Option<&[u8]>) {
    use shelfrank::evaluation::{LoadedModel, evaluate_with};
    const TOLERANCE: f64 = 0.002;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = &report["qualitySample"];
    let step = sample["step"].as_u64().expect("the report records the sample's step") as usize;
    let data = shelfrank::dataset::Dataset::load(&root.join("data/scientific")).unwrap();
    let users: Vec<_> = data.test.iter().step_by(step).cloned().collect();
    assert!(users.len() >= 500, "the sample holds at least 500 users");
    assert_eq!(users.len() as u64, sample["users"].as_u64().unwrap());
    if let Some(bytes) = bytes {
        assert_eq!(report["model"]["sha256"], sha256_hex(bytes).as_str(), "the report describes this model file");
    }
    // A file's catalog is stored sorted; the dataset's order is the one it scores in.
    let ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
    let file = if file.items.is_empty() { file } else { file.for_catalog(&ids).unwrap().0 };
    let device = Device::flex();
    let model = LoadedModel::from_file(file, None, &data, &device).unwrap();
    let mut scorer = model.scorer(model.affinity, true, &device);
    let measured = evaluate_with(&mut scorer, &users, data.items.len(), model.max_events, &mut |_, _| {}).unwrap().published;
    for (key, value) in [("ndcg@10", measured.ndcg_10), ("recall@10", measured.recall_10)] {
        let recorded = sample[key].as_f64().unwrap();
        assert!(
            (value - recorded).abs() <= TOLERANCE,
            "{key} on the sample is {value:.4}, the report says {recorded:.4} (tolerance {TOLERANCE})"
        );
    }
}

/// The demo shop's catalog comes from `tools/catalog.mjs` (plain Node, so
/// `npm start` needs no native build); it must read the dataset exactly as
/// the Rust reader that training and evaluation use.
#[test]
fn the_demo_catalog_script_reads_the_dataset_as_training_does() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("data/scientific");
    let out = std::env::temp_dir().join(format!("shelfrank-catalog-{}.json", std::process::id()));
    let status = std::process::Command::new("node")
        .arg(root.join("tools/catalog.mjs"))
        .args(["--data".as_ref(), data.as_os_str(), "--out".as_ref(), out.as_os_str()])
        .status()
        .expect("node runs (npm test needs Node.js anyway)");
    assert!(status.success(), "tools/catalog.mjs failed");
    let written: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).ok();

    let dataset = shelfrank::dataset::Dataset::load(&data).unwrap();
    let mut popularity = vec![0u64; dataset.items.len()];
    for sequence in dataset.train_sequences() {
        for &item in sequence.items {
            popularity[item as usize] += 1;
        }
    }
    assert_eq!(written.len(), dataset.items.len());
    for ((item, count), json) in dataset.items.iter().zip(&popularity).zip(&written) {
        let expected =
            serde_json::json!({ "id": item.id, "title": item.title, "category": item.category, "brand": item.brand, "popularity": count });
        assert_eq!(json, &expected);
    }
    assert!(popularity.iter().sum::<u64>() > 10_000, "popularity counts the training sequences");
}

/// `update-catalog`: a model brought to a shop's current catalog keeps
/// the rows of items it knew, drops items gone from the catalog, scores a
/// new item as unknown (text alone, ID row 0) until it borrows the row of
/// its nearest trained item, and the page then scores it as that item.
#[test]
fn a_catalog_update_keeps_known_rows_and_new_items_borrow_their_nearest_items_row() {
    use shelfrank::evaluation::{LoadedModel, Neighbours};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join("models/shelfrank-scientific.bin")).unwrap();
    let shipped = ModelFile::from_bytes(&bytes).unwrap();
    let mut data = shelfrank::dataset::Dataset::load(&root.join("data/scientific")).unwrap();
    // The same catalog changes nothing.
    let (same, new, dropped) = shipped.for_catalog(&shipped.items).unwrap();
    assert_eq!((new, dropped), (0, 0));
    assert!(same.to_bytes() == bytes, "an update to the same catalog rewrites the file byte for byte");
    // The shop drops its first item and adds a copy of item 7 under a new id.
    let gone = data.items.remove(0);
    let twin = data.items[6].clone();
    data.items.push(shelfrank::dataset::CatalogItem { id: "new-twin".into(), ..twin.clone() });
    let ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
    let (file, new, dropped) = shipped.for_catalog(&ids).unwrap();
    assert_eq!((new, dropped), (1, 1));
    assert_eq!(file.items, ids);
    let rows: std::collections::HashMap<String, i64> = file.catalog_rows();
    assert_eq!(rows["new-twin"], 0, "a new item is unknown until it borrows a row");
    assert!(!rows.contains_key(&gone.id));
    let dim = shipped.config.dim;
    let table = |f: &ModelFile| f.tensors.iter().find(|t| t.name == "item_ids.weight").unwrap().values.clone();
    let (before, after) = (table(&shipped), table(&file));
    let was: std::collections::HashMap<String, i64> = shipped.catalog_rows();
    assert_eq!(&after[(rows[&twin.id] as usize) * dim..][..dim], &before[(was[&twin.id] as usize) * dim..][..dim], "item 7 keeps its row");
    let twice = [ids.clone(), vec![ids[3].clone()]].concat();
    let e = shipped.for_catalog(&twice).unwrap_err();
    assert!(e.message().contains("twice"), "{e}");

    let device = Device::flex();
    let score = |file: &ModelFile, ids: [&str; 3]| -> Vec<f32> {
        let mut ranker = Reranker::load(&file.to_bytes(), Some(TOKENIZER), Backend::Host, HistoryLimits::default()).unwrap();
        ranker.record(data.items[20].event(EventKind::View, None), 1e12).unwrap();
        let list: Vec<Candidate> = ids.iter().map(|id| Candidate { id: id.to_string(), ..twin.candidate() }).collect();
        let mut list = list;
        list.push(data.items[40].candidate());
        let pending = ranker.start(&list, &RerankOptions::default(), 1e12).unwrap();
        pending.scores.unwrap().read_blocking().unwrap()
    };
    // Before borrowing: the new item is scored as an item no catalog knows.
    let s = score(&file, [&twin.id, "new-twin", "nowhere"]);
    assert!((s[1] - s[2]).abs() < 1e-5 && (s[0] - s[1]).abs() > 1e-3, "{s:?}");

    let mut blended = LoadedModel::from_file(file.clone(), Some(TOKENIZER), &data, &device).unwrap();
    let mut model = LoadedModel::from_file(file, Some(TOKENIZER), &data, &device).unwrap();
    let one = Neighbours { k: 1, ..Neighbours::default() };
    let pairs = model.borrow_id_rows(&data, Some(TOKENIZER), None, one, &device).unwrap();
    assert_eq!(pairs.len(), 1);
    let (item, from, cosine) = pairs[0];
    assert_eq!(data.items[item as usize].id, "new-twin");
    assert_eq!(data.items[from as usize].text, twin.text, "the nearest trained item has the same text");
    assert!(cosine > 0.999);
    assert_eq!(model.file.meta["borrowedIdRows"], serde_json::json!(["new-twin"]));
    assert_eq!(model.file.untrained().len(), 0);
    let reread = ModelFile::from_bytes(&model.file.to_bytes()).unwrap();
    let s = score(&reread, [data.items[from as usize].id.as_str(), "new-twin", "nowhere"]);
    assert!((s[0] - s[1]).abs() < 1e-5 && (s[1] - s[2]).abs() > 1e-3, "{s:?}");

    // Two neighbours (the default): the same nearest item, and a row that
    // leans towards the second one's.
    let two = blended.borrow_id_rows(&data, Some(TOKENIZER), None, Neighbours::default(), &device).unwrap();
    assert_eq!(two, pairs, "the report names the nearest item either way");
    let row = |f: &ModelFile, i: usize| table(f)[(i + 1) * dim..(i + 2) * dim].to_vec();
    let (copied, mixed) = (row(&model.file, item as usize), row(&blended.file, item as usize));
    assert!(copied.iter().zip(&mixed).any(|(a, b)| (a - b).abs() > 1e-4), "the second neighbour moves the row");
}

/// How a borrowed ID row blends its sources: weighted, at the sources'
/// mean length, and without a source whose row points away from the
/// nearest's.
#[test]
fn a_borrowed_row_blends_agreeing_rows_at_their_mean_length() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut file = ModelFile::from_bytes(&std::fs::read(root.join("models/shelfrank-scientific.bin")).unwrap()).unwrap();
    let dim = file.config.dim;
    let entry = file.tensors.iter_mut().find(|t| t.name == "item_ids.weight").unwrap();
    let mut set = |item: usize, f: &dyn Fn(usize) -> f32| (0..dim).for_each(|j| entry.values[(item + 1) * dim + j] = f(j));
    set(1, &|j| if j == 0 { 3.0 } else { 0.0 }); // length 3 along axis 0
    set(2, &|j| [0.6, 0.8].get(j).copied().unwrap_or(0.0)); // length 1, agreeing with item 1
    set(3, &|j| if j == 0 { -2.0 } else { 0.0 }); // opposed to item 1
    file.borrow_id_rows(&[(10, vec![(1, 0.5), (2, 0.5)]), (11, vec![(1, 0.5), (3, 0.5)]), (12, vec![(2, 1.0)])]).unwrap();
    let values = &file.tensors.iter().find(|t| t.name == "item_ids.weight").unwrap().values;
    let row = |item: usize| &values[(item + 1) * dim..(item + 2) * dim];
    let length = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((length(row(10)) - 2.0).abs() < 1e-5, "mean of the lengths 3 and 1");
    assert!((row(10)[0] / row(10)[1] - 4.5).abs() < 1e-4, "the direction of the weighted mean (1.8, 0.4)");
    assert_eq!(row(11), row(1), "the opposed row is left out");
    assert_eq!(row(12), row(2), "one source is copied");
    let e = file.borrow_id_rows(&[(10, vec![])]).unwrap_err();
    assert!(e.message().contains("no row to borrow"), "{e}");
    let e = file.borrow_id_rows(&[(10, vec![(file.items.len(), 1.0)])]).unwrap_err();
    assert!(e.message().contains("outside the catalog"), "{e}");
}

#[test]
fn a_fixed_wide_token_table_folds_into_the_usual_layout_for_any_vocabulary() {
    // A network trained over a fixed 24-wide table for three words, folded
    // into the 16-wide layout the file, the host and the page read, first
    // with the same three words, then with a larger vocabulary in which
    // those words sit at other rows: every text vector stays the same.
    let device = Device::flex();
    device.seed(3);
    let mut config = RankerConfig::new(0, 3);
    config.dim = 16;
    config.ff_dim = 32;
    let random = |rows: usize| burn::tensor::Tensor::<2>::random([rows, 24], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let small = random(4);
    let model = config.init_with_tokens(small.clone(), false, &device);
    let texts = [vec![1, 2], vec![3], vec![0, 3, 1], vec![]];
    let before = model.text_vectors(&ItemText::from_rows(&texts), &device).into_data().try_to_vec::<f32>().unwrap();

    let same = model.clone().fold_tokens(small.clone(), None);
    let after = same.text_vectors(&ItemText::from_rows(&texts), &device).into_data().try_to_vec::<f32>().unwrap();
    assert_close("folded", &after, &before, 1e-4);

    // The larger vocabulary: the small table's rows 0..=3 at rows 0, 2, 4, 5.
    let at = [0usize, 2, 4, 5];
    let mut big = random(6).into_data().try_to_vec::<f32>().unwrap();
    let small_values = small.into_data().try_to_vec::<f32>().unwrap();
    for (k, &row) in at.iter().enumerate() {
        big[row * 24..(row + 1) * 24].copy_from_slice(&small_values[k * 24..(k + 1) * 24]);
    }
    let big = burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(big, [6, 24]), &device);
    let folded = model.fold_tokens(big, None);
    let moved: Vec<Vec<u32>> = texts.iter().map(|t| t.iter().map(|&r| at[r as usize] as u32).collect()).collect();
    let after = folded.text_vectors(&ItemText::from_rows(&moved), &device).into_data().try_to_vec::<f32>().unwrap();
    assert_close("folded over a larger vocabulary", &after, &before, 1e-4);

    // The folded network is the usual layout: it saves, loads and scores.
    config.n_tokens = 5;
    let file = ModelFile {
        tensors: ModelFile::capture(&folded, StoredAs::F32),
        config,
        items: Vec::new(),
        vocab: vec![10, 11, 12, 13, 14],
        tokenizer_sha256: sha256_hex(TOKENIZER),
        wordpiece: None,
        meta: serde_json::json!({ "purpose": "test" }),
    };
    let loaded = ModelFile::from_bytes(&file.to_bytes()).unwrap().build(&device).unwrap();
    let reloaded = loaded.text_vectors(&ItemText::from_rows(&moved), &device).into_data().try_to_vec::<f32>().unwrap();
    assert_close("saved and loaded", &reloaded, &before, 1e-4);
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tolerance * (1.0 + y.abs()), "{what}[{i}]: {x} against {y}");
    }
}

#[test]
fn a_model_kept_to_one_catalogs_words_gives_its_texts_the_same_vectors() {
    let shipped = ModelFile::from_bytes(include_bytes!("../../models/shelfrank-scientific.bin")).unwrap();
    let texts: Vec<&str> = ITEMS.iter().map(|(_, text)| *text).collect();
    let (pruned, dropped) = shipped.for_texts(&texts).unwrap();
    assert_eq!(pruned.vocab.len() + dropped, shipped.vocab.len());
    assert!(pruned.vocab.len() < 60, "six short texts use few words: {}", pruned.vocab.len());
    let bytes = pruned.to_bytes();
    assert!(bytes.len() * 2 < shipped.to_bytes().len(), "the token table is most of the file");
    let pruned = ModelFile::from_bytes(&bytes).unwrap();

    let device = Device::flex();
    let vectors = |file: &ModelFile, texts: &[&str]| {
        let encoder = shelfrank::model::TextEncoder::for_model(file, None).unwrap();
        let rows: Vec<Vec<u32>> = texts.iter().map(|t| encoder.encode(t).unwrap()).collect();
        let text = ItemText::from_rows(&rows);
        (rows, file.build(&device).unwrap().text_vectors(&text, &device).into_data().try_to_vec::<f32>().unwrap())
    };
    let (_, before) = vectors(&shipped, &texts);
    let (_, after) = vectors(&pruned, &texts);
    assert_close("catalog text vectors", &after, &before, 1e-2);
    // A word no catalog text used is unknown to the pruned model.
    let (rows, _) = vectors(&pruned, &["oscilloscope"]);
    assert!(rows[0].iter().all(|&r| r == 0), "{rows:?}");
}

/// A shop's model carries its own kind weights (`kind-weights --write`),
/// and the page scores with them: with purchases weighted 0, a session of
/// purchases has an empty affinity profile and ranks exactly as with no
/// affinity term at all; with the package's weights it does not. Both the
/// page's CPU network and burn's.
#[test]
fn a_models_own_kind_weights_are_what_the_page_scores_with() {
    let list = candidates(&[]);
    let options = RerankOptions { server_weight: 0.0, ..RerankOptions::default() };
    let backends: Vec<Box<dyn Fn() -> Backend>> = vec![Box::new(|| Backend::Host), Box::new(|| Backend::Device(Device::flex()))];
    for backend in &backends {
        let scores = |edit: &dyn Fn(&mut ModelFile)| {
            let mut file = tiny_model_file(5);
            file.config.affinity_weight = 3.0;
            edit(&mut file);
            let bytes = file.to_bytes();
            let mut ranker = Reranker::load(&bytes, Some(TOKENIZER), backend(), HistoryLimits::default()).unwrap();
            ranker.record(event(EventKind::Purchase, "g1"), 1e12).unwrap();
            ranker.record(event(EventKind::Purchase, "s2"), 1e12).unwrap();
            ranker.rerank_blocking(&list, &options, 1e12).unwrap().iter().map(|r| r.model_score.unwrap()).collect::<Vec<f32>>()
        };
        let no_purchases = scores(&|f| f.config.kind_weights = vec![1.0, 1.0, 1.0, 0.0, 0.5]);
        let no_affinity = scores(&|f| f.config.affinity_weight = 0.0);
        let package = scores(&|_| {});
        assert_close("purchases weighted 0 against no affinity term", &no_purchases, &no_affinity, 1e-5);
        assert!(package.iter().zip(&no_affinity).any(|(a, b)| (a - b).abs() > 1e-3), "{package:?} {no_affinity:?}");
    }
    // Out of range or of the wrong length: the file is refused.
    for bad in [vec![1.0; 4], vec![1.0, 1.0, 1.0, -1.0, 0.5], vec![1.0, 1.0, 1.0, f32::NAN, 0.5]] {
        let mut file = tiny_model_file(5);
        file.config.kind_weights = bad;
        assert!(Reranker::load(&file.to_bytes(), Some(TOKENIZER), Backend::Host, HistoryLimits::default()).is_err());
    }
}

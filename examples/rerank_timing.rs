//! Times `rerank` of 100 catalog candidates after 20 events, natively, on
//! the CPU backend or on wgpu (`-- wgpu`, whatever adapter wgpu finds):
//! `cargo run --release --example rerank_timing [-- wgpu]`; `SHAPES=20x100,7x37`
//! times the first reranks at other events × candidates shapes (on wgpu with
//! fixed shapes unless `FIXED_SHAPES=0`).

use std::time::Instant;

use shelfrank::dataset::Dataset;
use shelfrank::rank::{Candidate, RerankOptions};
use shelfrank::session::{EventKind, HistoryLimits};
use shelfrank::{Reranker, cpu_device};

fn main() {
    let model = std::fs::read("models/shelfrank-scientific.bin").expect("model");
    let data = Dataset::load(std::path::Path::new("data/scientific")).expect("data");
    let started = Instant::now();
    let wgpu = std::env::args().nth(1).as_deref() == Some("wgpu");
    let device = if wgpu {
        let (device, setup) = burn::tensor::Device::wgpu_options().init_with_setup().expect("a wgpu adapter");
        println!("adapter: {:?}", setup.adapter.get_info());
        device
    } else {
        println!("backend: flex (CPU)");
        cpu_device()
    };
    let mut ranker = Reranker::load(&model, None, device, HistoryLimits::default()).expect("load");
    println!("load: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    if wgpu {
        ranker.set_fixed_shapes(std::env::var("FIXED_SHAPES").as_deref() != Ok("0"));
    }
    let t = Instant::now();
    let warm = ranker.warm_up().expect("warm-up");
    warm.scores.into_iter().for_each(|t| drop(t.read_blocking()));
    warm.attention.into_iter().for_each(|t| drop(t.read_blocking()));
    println!("warm-up: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let now = 1.7e12;
    let record = |ranker: &mut Reranker, events: usize| {
        ranker.forget();
        for i in 0..events {
            let event = data.items[(i * 37) % data.items.len()].event(EventKind::View, Some(now));
            ranker.record(event, now).expect("record");
        }
    };
    // SHAPES="20x100,7x37": the first and a second rerank at each
    // events × candidates shape, new candidate texts each time (on wgpu a
    // new shape can mean new kernels).
    let shapes = std::env::var("SHAPES").unwrap_or_else(|_| "20x100".into());
    let mut offset = 1000;
    for shape in shapes.split(',') {
        let (events, n) = shape.split_once('x').expect("SHAPES like 20x100");
        let (events, n): (usize, usize) = (events.parse().expect("events"), n.parse().expect("candidates"));
        record(&mut ranker, events);
        let candidates: Vec<Candidate> = data.items[offset..offset + n].iter().map(|i| i.candidate()).collect();
        offset += n;
        for round in 0..3 {
            let t = Instant::now();
            ranker.rerank_blocking(&candidates, &RerankOptions::default(), now).expect("rerank");
            println!("{events} events x {n} candidates, rerank {round}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
        }
    }
}

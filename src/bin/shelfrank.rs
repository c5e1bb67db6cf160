//! `shelfrank <command> [flags]`: the training tools under one name, for a
//! shop that installs them once (`cargo install --path . --bin shelfrank`)
//! and then runs `shelfrank train --ga4 export/ --out shop/shelfrank.bin`.
//! Each command is the binary of the same name, compiled in here.

#[path = "eval.rs"]
mod eval;
#[path = "kind-weights.rs"]
mod kind_weights;
#[path = "teacher.rs"]
mod teacher;
#[path = "train.rs"]
mod train;
#[path = "tune.rs"]
mod tune;
#[path = "update-catalog.rs"]
mod update_catalog;

const USAGE: &str = "usage: shelfrank <command> [flags]   (each command's --help lists its flags)

  train           train a model on a dataset folder, a shop's events + catalog, or a GA4 export
  tune            choose the scoring settings on validation (--write stores them in the model)
  eval            the full report: test and validation figures against baselines
  update-catalog  bring a trained model to the shop's current catalog, without retraining
  teacher         MiniLM embeddings of a catalog's texts (for train, eval and update-catalog)
  kind-weights    learn from a typed event log what a view, a cart and a purchase are worth";

fn main() {
    let command = std::env::args().nth(1);
    shelfrank::cli::run_as_subcommand();
    match command.as_deref() {
        Some("train") => train::main(),
        Some("tune") => tune::main(),
        Some("eval") => eval::main(),
        Some("update-catalog") => update_catalog::main(),
        Some("teacher") => teacher::main(),
        Some("kind-weights") => kind_weights::main(),
        Some("--help" | "-h" | "help") => println!("{USAGE}"),
        Some(other) => {
            eprintln!("shelfrank: unknown command '{other}'\n\n{USAGE}");
            std::process::exit(2);
        }
        None => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

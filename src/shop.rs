//! Reading a shop's own data for training: a GA4 BigQuery export
//! (newline-delimited JSON, the `events_*` schema) or a plain events file
//! (`user,item,kind,timestamp`) with a catalog file
//! (`id,title,category,brand,price`). Both become a [`Dataset`]: each
//! user's item events in time order, the last one held out for test and
//! the one before it for validation, as the Scientific data is split.
//!
//! Nothing is dropped silently: a malformed file is an error naming the
//! file and line; rows that cannot be used (unknown kinds, items missing
//! from the catalog, users with too few events) are counted in the
//! [`ImportReport`] with the first lines they came from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dataset::{CatalogItem, Dataset, Example};
use crate::error::{Error, ErrorKind, Result, err};
use crate::model::EventKind;

/// Users need this many item events: one to learn from, one for
/// validation, one for test.
pub const MIN_EVENTS: usize = 3;
/// How many source lines a warning quotes.
const QUOTED_LINES: usize = 5;

/// A shop's data read into a [`Dataset`], and what happened to every row.
#[derive(Debug, Clone)]
pub struct Import {
    pub dataset: Dataset,
    pub report: ImportReport,
    /// Each user's event kinds in time order, aligned with
    /// `dataset.test[user]`'s history followed by its target.
    pub kinds: Vec<Vec<EventKind>>,
}

/// Counts of what was read and used, and warnings for what was not.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub source: String,
    /// Item events read (a GA4 event with three items counts three).
    pub events_read: usize,
    /// Item events in users' sequences.
    pub events_used: usize,
    /// Used events per kind.
    pub kinds: BTreeMap<String, usize>,
    /// Users with at least [`MIN_EVENTS`] item events.
    pub users: usize,
    pub items: usize,
    /// Catalog items with neither title, category nor brand: the model
    /// knows them by ID only.
    pub items_without_text: usize,
    /// GA4 events that carry no item interaction (page_view,
    /// view_item_list, ...), by name: read and not used.
    pub ignored_event_names: BTreeMap<String, usize>,
    pub warnings: Vec<Warning>,
}

/// Rows of one kind that could not be used.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub what: String,
    pub count: usize,
    /// The first few, as `file:line`.
    pub lines: Vec<String>,
}

impl ImportReport {
    fn warn(&mut self, what: &str, at: String) {
        match self.warnings.iter_mut().find(|w| w.what == what) {
            Some(w) => {
                w.count += 1;
                if w.lines.len() < QUOTED_LINES {
                    w.lines.push(at);
                }
            }
            None => self.warnings.push(Warning { what: what.to_owned(), count: 1, lines: vec![at] }),
        }
    }

    /// One line per count and warning, for the tools to print.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let mut out = format!(
            "{}: {} item events read, {} used ({}), {} users, {} items ({} without text)",
            self.source,
            self.events_read,
            self.events_used,
            kinds.join(", "),
            self.users,
            self.items,
            self.items_without_text
        );
        if !self.ignored_event_names.is_empty() {
            let names: Vec<String> = self.ignored_event_names.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out += &format!("\n  events without an item interaction, not used: {}", names.join(", "));
        }
        for w in &self.warnings {
            out += &format!("\n  warning: {} × {} (first at {})", w.count, w.what, w.lines.join(", "));
        }
        out
    }
}

/// One item event as read, before grouping by user.
#[derive(Debug, Clone)]
struct RawEvent {
    user: String,
    item: String,
    kind: EventKind,
    time: f64,
    /// Where it came from, `file:line`, and its order in the input.
    at: String,
    order: usize,
}

/// What an events file's `kind` column may say, and what it means.
pub fn parse_kind(kind: &str) -> Option<EventKind> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "view" | "pv" | "view_item" | "detail" | "page_view_item" => Some(EventKind::View),
        "click" | "clicks" | "select_item" | "select_promotion" => Some(EventKind::Click),
        "cart" | "carts" | "add_to_cart" | "addtocart" => Some(EventKind::AddToCart),
        "purchase" | "buy" | "order" | "orders" | "transaction" => Some(EventKind::Purchase),
        _ => None,
    }
}

/// A timestamp as a number of seconds: Unix seconds, milliseconds or
/// microseconds (any consistent unit orders events), or an ISO 8601 /
/// SQL date-time (`2019-10-01 00:00:00 UTC`, `2019-10-01T00:00:00Z`).
pub fn parse_time(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        return number.is_finite().then_some(number);
    }
    let text = text.trim_end_matches(" UTC").trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut t = time.split(':');
    let hours: f64 = t.next()?.parse().ok()?;
    let minutes: f64 = t.next().unwrap_or("0").parse().ok()?;
    let seconds: f64 = t.next().unwrap_or("0").parse().ok()?;
    // Days from 1970-01-01 in the proleptic Gregorian calendar.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

fn data_error(message: String) -> Error {
    Error::new(ErrorKind::Data, message)
}

/// A CSV file's rows as strings, with its header's column positions.
struct Csv {
    path: PathBuf,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

fn read_csv(path: &Path, required: &[&str]) -> Result<Csv> {
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| data_error(format!("cannot read {}: {e}", path.display())))?;
    let utf8 = |e: csv::Error, path: &Path| -> Error {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => data_error(format!("{}:{line} is not valid UTF-8; export the file as UTF-8", path.display())),
            _ => data_error(format!("{}:{line}: {e}", path.display())),
        }
    };
    let header = reader.headers().map_err(|e| utf8(e, path))?.clone();
    let columns: HashMap<String, usize> = header.iter().enumerate().map(|(i, name)| (name.trim().to_ascii_lowercase(), i)).collect();
    let missing: Vec<&str> = required.iter().copied().filter(|c| !columns.contains_key(*c)).collect();
    if !missing.is_empty() {
        return err(
            ErrorKind::Data,
            format!(
                "{} has no column {} (its header is '{}'; expected {})",
                path.display(),
                missing.join(", "),
                header.iter().collect::<Vec<_>>().join(","),
                required.join(",")
            ),
        );
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| utf8(e, path))?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(Csv { path: path.to_owned(), columns, rows })
}

impl Csv {
    fn get<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        self.columns.get(column).and_then(|&i| row.get(i)).map(|s| s.trim()).unwrap_or("")
    }

    fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.path.display())
    }
}

/// Where the native tools (`train`, `tune`, `eval`) read their data: a
/// RecBole/UniSRec folder (`--data`, the default `data/scientific`), a
/// shop's events file with its catalog (`--events`, `--catalog`), or a GA4
/// export (`--ga4`).
#[derive(Debug, Clone)]
pub struct DataSource {
    data: PathBuf,
    events: Option<PathBuf>,
    catalog: Option<PathBuf>,
    ga4: Option<PathBuf>,
}

impl Default for DataSource {
    fn default() -> DataSource {
        DataSource { data: "data/scientific".into(), events: None, catalog: None, ga4: None }
    }
}

impl DataSource {
    /// The flags, for usage lines.
    pub const USAGE: &'static str = "[--data DIR | --events FILE --catalog FILE | --ga4 DIR]";

    /// Takes `flag` (reading its value) when it names the data; returns
    /// whether it did.
    pub fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> std::result::Result<String, String>,
    ) -> std::result::Result<bool, String> {
        match flag {
            "--data" => self.data = value()?.into(),
            "--events" => self.events = Some(value()?.into()),
            "--catalog" => self.catalog = Some(value()?.into()),
            "--ga4" => self.ga4 = Some(value()?.into()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether this is a shop's own data (not a RecBole/UniSRec folder).
    pub fn is_shop(&self) -> bool {
        self.events.is_some() || self.catalog.is_some() || self.ga4.is_some()
    }

    /// The dataset and, for a shop's data, its import report.
    pub fn load(&self) -> std::result::Result<(Dataset, Option<ImportReport>), String> {
        match self.import()? {
            Some(Import { dataset, report, .. }) => Ok((dataset, Some(report))),
            None => Dataset::load(&self.data).map(|d| (d, None)).map_err(|e| e.to_string()),
        }
    }

    /// A shop's data with each user's event kinds (see [`Import::kinds`]);
    /// a RecBole/UniSRec folder has one kind only, so it is refused.
    pub fn load_typed(&self) -> std::result::Result<Import, String> {
        self.import()?.ok_or_else(|| "needs a shop's typed events: --events FILE --catalog FILE, or --ga4 DIR".into())
    }

    /// The shop's data when the flags name it (`None` for a dataset folder),
    /// with at least one user to learn from.
    fn import(&self) -> std::result::Result<Option<Import>, String> {
        let import = match (&self.events, &self.catalog, &self.ga4) {
            (Some(_), Some(_), Some(_)) => return Err("give either --events with --catalog, or --ga4, not both".into()),
            (Some(events), Some(catalog), None) => read_events_and_catalog(events, catalog),
            (Some(_), None, _) => return Err("--events needs --catalog FILE (id,title,category,brand,price) beside it".into()),
            (None, Some(_), _) => return Err("--catalog needs --events FILE (user,item,kind,timestamp) beside it".into()),
            (None, None, Some(ga4)) => read_ga4(ga4),
            (None, None, None) => return Ok(None),
        }
        .map_err(|e| e.to_string())?;
        if import.dataset.valid.is_empty() {
            return Err(format!(
                "{}: no user has {MIN_EVENTS} or more item events, so there is nothing to learn from\n{}",
                import.report.source,
                import.report.summary()
            ));
        }
        Ok(Some(import))
    }
}

/// A shop's catalog alone (no events), for the tools that need only its
/// items: `update-catalog` and `teacher`.
pub fn catalog_dataset(path: &Path) -> Result<Dataset> {
    let items = read_catalog(path)?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "catalog".into());
    Ok(Dataset { name, items, valid: Vec::new(), test: Vec::new() })
}

/// The items of a shop's catalog file when given, else of a dataset folder
/// (`--catalog FILE` or `--data DIR`, for `update-catalog` and `teacher`).
pub fn catalog_or_dataset(catalog: Option<&Path>, data: &Path) -> std::result::Result<Dataset, String> {
    match catalog {
        Some(catalog) => catalog_dataset(catalog),
        None => Dataset::load(data),
    }
    .map_err(|e| e.to_string())
}

/// A catalog file: `id,title` and optionally `category,brand,price`.
pub fn read_catalog(path: &Path) -> Result<Vec<CatalogItem>> {
    let csv = read_csv(path, &["id", "title"])?;
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut items = Vec::with_capacity(csv.rows.len());
    for (line, row) in &csv.rows {
        let id = csv.get(row, "id");
        if id.is_empty() {
            return err(ErrorKind::Data, format!("{} has an empty id", csv.at(*line)));
        }
        if let Some(earlier) = first_line.insert(id.to_owned(), *line) {
            return err(ErrorKind::Data, format!("{} repeats item id '{id}' (first at line {earlier}); ids must be unique", csv.at(*line)));
        }
        let optional = |column: &str| Some(csv.get(row, column)).filter(|s| !s.is_empty()).map(str::to_owned);
        items.push(catalog_item(id, csv.get(row, "title"), optional("category"), optional("brand")));
    }
    Ok(items)
}

fn catalog_item(id: &str, title: &str, category: Option<String>, brand: Option<String>) -> CatalogItem {
    let text = crate::session::item_text(title, category.as_deref(), brand.as_deref());
    CatalogItem { id: id.to_owned(), title: title.to_owned(), category, brand, text }
}

/// An events file (`user,item,kind,timestamp`) and its catalog file.
pub fn read_events_and_catalog(events: &Path, catalog: &Path) -> Result<Import> {
    let mut report = ImportReport { source: format!("{} with {}", events.display(), catalog.display()), ..Default::default() };
    let items = read_catalog(catalog)?;
    let csv = read_csv(events, &["user", "item", "kind", "timestamp"])?;
    let mut raw = Vec::with_capacity(csv.rows.len());
    for (order, (line, row)) in csv.rows.iter().enumerate() {
        report.events_read += 1;
        let (user, item, kind, time) = (csv.get(row, "user"), csv.get(row, "item"), csv.get(row, "kind"), csv.get(row, "timestamp"));
        let Some(kind) = parse_kind(kind) else {
            report.warn(&format!("rows of unknown kind (not view, click, cart or purchase), e.g. '{kind}'"), csv.at(*line));
            continue;
        };
        if user.is_empty() || item.is_empty() {
            report.warn("rows without a user or an item", csv.at(*line));
            continue;
        }
        let Some(time) = parse_time(time) else {
            return err(ErrorKind::Data, format!("{}: timestamp '{time}' is neither a number nor a date-time", csv.at(*line)));
        };
        raw.push(RawEvent { user: user.to_owned(), item: item.to_owned(), kind, time, at: csv.at(*line), order });
    }
    let name = events.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "events".into());
    Ok(build(name, items, raw, report))
}

/// A GA4 BigQuery export as newline-delimited JSON: one file, or every
/// `.json` / `.jsonl` / `.ndjson` file in a folder (in name order).
pub fn read_ga4(path: &Path) -> Result<Import> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| data_error(format!("cannot read {}: {e}", path.display())))?;
        entries.flatten().map(|e| e.path()).collect()
    } else {
        vec![path.to_owned()]
    };
    if files.iter().any(|f| f.extension().is_some_and(|e| e == "parquet")) {
        return err(
            ErrorKind::Data,
            format!(
                "{} holds Parquet files, which `train --ga4` does not read: prepare them with `python3 tools/ga4-prepare.py {} OUT` (DuckDB) and train with --events OUT/events.csv --catalog OUT/catalog.csv, or export the events as newline-delimited JSON (BigQuery: EXPORT DATA ... format = 'JSON')",
                path.display(),
                path.display()
            ),
        );
    }
    files.retain(|f| f.extension().is_some_and(|e| e == "json" || e == "jsonl" || e == "ndjson"));
    files.sort();
    if files.is_empty() {
        return err(ErrorKind::Data, format!("{} has no .json, .jsonl or .ndjson files", path.display()));
    }
    let mut report = ImportReport { source: format!("GA4 export {}", path.display()), ..Default::default() };
    let mut raw = Vec::new();
    // The catalog, from the items' fields: the first non-empty value wins.
    let mut catalog: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    let mut catalog_index: HashMap<String, usize> = HashMap::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| data_error(format!("cannot read {}: {e}", file.display())))?;
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let at = format!("{}:{}", file.display(), n + 1);
            let line = std::str::from_utf8(line).map_err(|_| data_error(format!("{at} is not valid UTF-8; export the file as UTF-8")))?;
            if line.trim().is_empty() {
                continue;
            }
            let event: serde_json::Value = serde_json::from_str(line).map_err(|e| data_error(format!("{at} is not a JSON object: {e}")))?;
            let name = event["event_name"].as_str().ok_or_else(|| data_error(format!("{at} has no event_name")))?;
            let kind = match name {
                "view_item" => EventKind::View,
                "select_item" | "select_promotion" => EventKind::Click,
                "add_to_cart" => EventKind::AddToCart,
                "purchase" => EventKind::Purchase,
                other => {
                    *report.ignored_event_names.entry(other.to_owned()).or_default() += 1;
                    continue;
                }
            };
            let user = event["user_pseudo_id"].as_str().or_else(|| event["user_id"].as_str()).unwrap_or("");
            let time = match &event["event_timestamp"] {
                serde_json::Value::String(s) => parse_time(s),
                serde_json::Value::Number(n) => n.as_f64(),
                _ => None,
            };
            let Some(time) = time else {
                return err(ErrorKind::Data, format!("{at}: event_timestamp is missing or not a number"));
            };
            let items = event["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if items.is_empty() {
                report.events_read += 1;
                report.warn(&format!("{name} events without items"), at.clone());
                continue;
            }
            for item in items {
                report.events_read += 1;
                let text = |key: &str| item[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
                let Some(id) = text("item_id") else {
                    report.warn("items without an item_id", at.clone());
                    continue;
                };
                if user.is_empty() {
                    report.warn("events without a user_pseudo_id", at.clone());
                    continue;
                }
                let category: Vec<String> = ["item_category", "item_category2", "item_category3", "item_category4", "item_category5"]
                    .iter()
                    .filter_map(|k| text(k))
                    .collect();
                let category = (!category.is_empty()).then(|| category.join(" "));
                match catalog_index.get(&id) {
                    Some(&i) => {
                        let entry = &mut catalog[i];
                        if entry.1.is_empty() {
                            entry.1 = text("item_name").unwrap_or_default();
                        }
                        entry.2 = entry.2.take().or(category);
                        entry.3 = entry.3.take().or(text("item_brand"));
                    }
                    None => {
                        catalog_index.insert(id.clone(), catalog.len());
                        catalog.push((id.clone(), text("item_name").unwrap_or_default(), category, text("item_brand")));
                    }
                }
                let order = raw.len();
                raw.push(RawEvent { user: user.to_owned(), item: id, kind, time, at: at.clone(), order });
            }
        }
    }
    let items = catalog.into_iter().map(|(id, title, category, brand)| catalog_item(&id, &title, category, brand)).collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "ga4".into());
    Ok(build(name, items, raw, report))
}

/// Groups events by user in time order (ties keep input order) and splits
/// each user's sequence: the last event is the test target, the one
/// before it the validation target, the rest history.
fn build(name: String, items: Vec<CatalogItem>, raw: Vec<RawEvent>, mut report: ImportReport) -> Import {
    let index: HashMap<&str, u32> = items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
    let mut users: Vec<(String, Vec<&RawEvent>)> = Vec::new();
    let mut user_index: HashMap<&str, usize> = HashMap::new();
    for event in &raw {
        if !index.contains_key(event.item.as_str()) {
            report.warn("events on items missing from the catalog", event.at.clone());
            continue;
        }
        let slot = *user_index.entry(event.user.as_str()).or_insert_with(|| {
            users.push((event.user.clone(), Vec::new()));
            users.len() - 1
        });
        users[slot].1.push(event);
    }
    let (mut valid, mut test, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for (_, events) in &mut users {
        if events.len() < MIN_EVENTS {
            report.warn(
                &format!("users with fewer than {MIN_EVENTS} item events (too few to learn from and hold out two)"),
                events[0].at.clone(),
            );
            continue;
        }
        events.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.order.cmp(&b.order)));
        let sequence: Vec<u32> = events.iter().map(|e| index[e.item.as_str()]).collect();
        for e in events.iter() {
            *report.kinds.entry(e.kind.name().to_owned()).or_default() += 1;
        }
        report.events_used += events.len();
        let user = test.len() as u32;
        let n = sequence.len();
        let sequence_kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        let example = |end: usize| Example {
            user,
            history: sequence[..end].to_vec(),
            target: sequence[end],
            kinds: sequence_kinds[..end].to_vec(),
            target_kind: Some(sequence_kinds[end]),
        };
        valid.push(example(n - 2));
        test.push(example(n - 1));
        kinds.push(sequence_kinds);
    }
    report.users = test.len();
    report.items = items.len();
    report.items_without_text = items.iter().filter(|i| i.text.is_empty()).count();
    Import { dataset: Dataset { name, items, valid, test }, report, kinds }
}

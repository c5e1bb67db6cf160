//! The shopper's session history: typed events, bounded in count and age.
//!
//! Owns what is remembered and for how long. It never scores, never touches
//! the model, and never leaves the device: the wasm layer keeps it in memory,
//! the JS shim decides whether to persist it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result, err};

pub use crate::model::EventKind;

/// One thing the shopper did. Item events name the item (`id`, and `title`
/// for items the model's catalog does not know); a search names its `query`.
/// Unknown extra fields are ignored, so newer pages can send more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Milliseconds since the Unix epoch; filled in with "now" when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

/// Longest id, title or query kept, in bytes; longer text is cut at a
/// character boundary rather than rejected.
pub const MAX_TEXT_BYTES: usize = 1024;

impl SessionEvent {
    /// Checks the event and normalises it: trims text, cuts overlong text,
    /// stamps `now_ms` when the timestamp is missing.
    pub fn normalised(mut self, now_ms: f64) -> Result<SessionEvent> {
        for field in [&mut self.id, &mut self.title, &mut self.category, &mut self.brand, &mut self.query] {
            if let Some(text) = field.take() {
                let text = clip(text.trim(), MAX_TEXT_BYTES);
                if !text.is_empty() {
                    *field = Some(text.to_owned());
                }
            }
        }
        match self.kind {
            EventKind::Search if self.query.is_none() => {
                return err(ErrorKind::InvalidEvent, "a 'search' event needs a non-empty 'query' string");
            }
            EventKind::Search => {}
            kind if self.id.is_none() && self.title.is_none() => {
                return err(
                    ErrorKind::InvalidEvent,
                    format!("a '{}' event needs the item's 'id' (and its 'title' for items outside the model's catalog)", kind.name()),
                );
            }
            _ => {}
        }
        let stamp = self.timestamp.unwrap_or(now_ms);
        if !stamp.is_finite() {
            return err(ErrorKind::InvalidEvent, "'timestamp' must be a finite number of milliseconds since the epoch");
        }
        // A clock in the future cannot make an event outlive its max age.
        self.timestamp = Some(stamp.min(now_ms));
        Ok(self)
    }

    /// The text the model reads for this event: the query, or the item's
    /// "title. category. brand" in the catalog's own format.
    pub fn text(&self) -> String {
        match self.kind {
            EventKind::Search => self.query.clone().unwrap_or_default(),
            _ => item_text(self.title.as_deref().unwrap_or(""), self.category.as_deref(), self.brand.as_deref()),
        }
    }
}

/// Joins an item's text the way the training catalog writes it.
pub fn item_text(title: &str, category: Option<&str>, brand: Option<&str>) -> String {
    [Some(title), category, brand].into_iter().flatten().map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(". ")
}

pub(crate) fn clip(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistoryLimits {
    /// Most events kept; the oldest go first.
    pub max_events: usize,
    /// Events older than this are forgotten.
    pub max_age_ms: f64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits { max_events: 200, max_age_ms: 30.0 * 24.0 * 3600.0 * 1000.0 }
    }
}

/// The bounded, oldest-first list of a shopper's events.
#[derive(Debug, Clone, Default)]
pub struct History {
    limits: HistoryLimits,
    events: VecDeque<SessionEvent>,
    /// Bumped on every change, so derived state can be cached.
    version: u64,
}

impl History {
    pub fn new(limits: HistoryLimits) -> Result<History> {
        if limits.max_events == 0 || limits.max_events > 10_000 {
            return err(ErrorKind::InvalidOption, "history 'maxEvents' must be between 1 and 10000");
        }
        if !(limits.max_age_ms > 0.0) {
            return err(ErrorKind::InvalidOption, "history 'maxAgeMs' must be a positive number");
        }
        Ok(History { limits, events: VecDeque::new(), version: 0 })
    }

    pub fn limits(&self) -> HistoryLimits {
        self.limits
    }

    /// Adds an event (validated and normalised) and enforces the limits.
    /// A search repeating one of the last few, within half an hour (going
    /// back to the results, paging them), is the same search: it is not
    /// added again.
    pub fn record(&mut self, event: SessionEvent, now_ms: f64) -> Result<()> {
        let event = event.normalised(now_ms)?;
        if self.repeats_recent_search(&event) {
            return Ok(());
        }
        // Keep the list in time order even when events arrive late.
        let stamp = event.timestamp.unwrap_or(now_ms);
        let at = self.events.iter().rposition(|e| e.timestamp.unwrap_or(0.0) <= stamp).map_or(0, |i| i + 1);
        self.events.insert(at, event);
        self.version += 1;
        self.expire(now_ms);
        Ok(())
    }

    fn repeats_recent_search(&self, event: &SessionEvent) -> bool {
        const RECENT_EVENTS: usize = 8;
        const WINDOW_MS: f64 = 30.0 * 60.0 * 1000.0;
        let (EventKind::Search, Some(query), Some(at)) = (event.kind, &event.query, event.timestamp) else {
            return false;
        };
        self.events.iter().rev().take(RECENT_EVENTS).any(|e| {
            e.kind == EventKind::Search
                && e.query.as_deref().is_some_and(|q| q.eq_ignore_ascii_case(query))
                && e.timestamp.is_some_and(|t| (at - t).abs() <= WINDOW_MS)
        })
    }

    /// Drops events past the max age and beyond the max count.
    pub fn expire(&mut self, now_ms: f64) {
        let oldest_allowed = now_ms - self.limits.max_age_ms;
        while self.events.front().is_some_and(|e| e.timestamp.unwrap_or(0.0) < oldest_allowed) {
            self.events.pop_front();
            self.version += 1;
        }
        while self.events.len() > self.limits.max_events {
            self.events.pop_front();
            self.version += 1;
        }
    }

    /// The live events, oldest first.
    pub fn events(&self) -> impl ExactSizeIterator<Item = &SessionEvent> + DoubleEndedIterator {
        self.events.iter()
    }

    /// The most recent `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Vec<&SessionEvent> {
        let skip = self.events.len().saturating_sub(n);
        self.events.iter().skip(skip).collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Changes whenever the events do.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Erases every event.
    pub fn forget(&mut self) {
        self.events.clear();
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, at: f64) -> SessionEvent {
        SessionEvent {
            kind: EventKind::View,
            id: Some(id.into()),
            title: None,
            category: None,
            brand: None,
            query: None,
            timestamp: Some(at),
        }
    }

    #[test]
    fn history_keeps_at_most_max_events_newest_last() {
        let mut history = History::new(HistoryLimits { max_events: 3, max_age_ms: 1e12 }).unwrap();
        for i in 0..10 {
            history.record(view(&format!("item{i}"), 1000.0 + i as f64), 2000.0).unwrap();
        }
        let ids: Vec<_> = history.events().map(|e| e.id.clone().unwrap()).collect();
        assert_eq!(ids, ["item7", "item8", "item9"]);
    }

    #[test]
    fn history_forgets_events_past_max_age() {
        let mut history = History::new(HistoryLimits { max_events: 50, max_age_ms: 100.0 }).unwrap();
        history.record(view("old", 0.0), 50.0).unwrap();
        history.record(view("new", 140.0), 150.0).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history.events().next().unwrap().id.as_deref(), Some("new"));
    }

    #[test]
    fn a_repeated_recent_search_is_recorded_once() {
        let mut history = History::new(HistoryLimits::default()).unwrap();
        let search = |query: &str, at: f64| SessionEvent { kind: EventKind::Search, id: None, query: Some(query.into()), ..view("x", at) };
        history.record(search("tape", 1000.0), 1e6).unwrap();
        history.record(view("a", 2000.0), 1e6).unwrap();
        history.record(search("Tape ", 3000.0), 1e6).unwrap();
        assert_eq!(history.len(), 2, "back to the same results: no new search");
        history.record(search("gloves", 4000.0), 1e6).unwrap();
        history.record(search("tape", 4000.0 + 31.0 * 60_000.0), 1e7).unwrap();
        assert_eq!(history.len(), 4, "another query, or the same one much later, is a new search");
    }

    #[test]
    fn future_timestamps_are_clamped_to_now() {
        let mut history = History::new(HistoryLimits::default()).unwrap();
        history.record(view("a", 9e15), 1000.0).unwrap();
        assert_eq!(history.events().next().unwrap().timestamp, Some(1000.0));
    }

    #[test]
    fn late_events_are_kept_in_time_order() {
        let mut history = History::new(HistoryLimits::default()).unwrap();
        history.record(view("b", 20.0), 100.0).unwrap();
        history.record(view("a", 10.0), 100.0).unwrap();
        let ids: Vec<_> = history.events().map(|e| e.id.clone().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn malformed_events_are_rejected_with_a_reason() {
        let mut history = History::new(HistoryLimits::default()).unwrap();
        let mut search = view("x", 1.0);
        search.kind = EventKind::Search;
        search.id = None;
        let error = history.record(search, 1.0).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidEvent);
        assert!(error.message().contains("query"));
        let mut blank = view("  ", 1.0);
        blank.kind = EventKind::Click;
        assert_eq!(history.record(blank, 1.0).unwrap_err().kind(), ErrorKind::InvalidEvent);
        assert!(history.is_empty());
    }

    #[test]
    fn a_flood_of_events_stays_bounded() {
        let mut history = History::new(HistoryLimits::default()).unwrap();
        for i in 0..20_000 {
            history.record(view(&format!("i{i}"), i as f64), 20_000.0).unwrap();
        }
        assert_eq!(history.len(), HistoryLimits::default().max_events);
    }

    #[test]
    fn item_text_matches_the_catalog_format() {
        assert_eq!(item_text("Glue", Some("Adhesives"), Some("Gorilla")), "Glue. Adhesives. Gorilla");
        assert_eq!(item_text("Glue", None, Some(" ")), "Glue");
    }
}

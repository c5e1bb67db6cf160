//! What each event kind is worth in the history-affinity profile, learned
//! from a typed event log rather than guessed.
//!
//! The profile sums the shopper's past events, each weighted by its kind
//! and by `decay` per newer event ([`crate::model::Affinity`]); a candidate
//! scores by how close it is to that sum. Here an item is its category (the
//! likeness the text tower mostly carries), so the profile is a weighted
//! count of categories, and a setting is judged by how well it ranks the
//! category of the shopper's next event: NDCG@10 over every event after the
//! first, with the history the page would keep (the newest `max_events`),
//! ties broken by category popularity. The next event may be of any kind
//! (what a list page is for) or of one kind (a next add-to-cart or
//! purchase, what a cart page is for).
//!
//! Weights are fitted on one half of the users and reported on the other,
//! with 95% intervals from a bootstrap over the reported users, paired so
//! that the difference between two settings has its own interval.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::EventKind;

/// One user's events in time order: each event's category and kind.
#[derive(Debug, Clone, Default)]
pub struct TypedSequence {
    pub categories: Vec<u32>,
    pub kinds: Vec<EventKind>,
}

/// Which events are predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The next event, whatever its kind.
    Any,
    /// The next event of this kind (with every earlier event as history).
    Kind(EventKind),
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Any => "any",
            Target::Kind(kind) => kind.name(),
        }
    }

    fn wants(self, kind: EventKind) -> bool {
        match self {
            Target::Any => true,
            Target::Kind(k) => k == kind,
        }
    }
}

/// Kind weights (indexed by [`EventKind::index`]) and the per-event decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Setting {
    pub weights: [f32; 5],
    pub decay: f32,
}

impl Setting {
    /// The weights the package uses ([`EventKind::affinity_weight`]).
    pub fn shipped(decay: f32) -> Setting {
        Setting { weights: crate::model::Affinity::PACKAGE_KINDS, decay }
    }

    /// The weights the package used before they were learned: view and
    /// click 1, add-to-cart and purchase 2, search 0.5.
    pub fn guessed(decay: f32) -> Setting {
        Setting { weights: [1.0, 1.0, 2.0, 2.0, 0.5], decay }
    }

    /// Every kind counting the same.
    pub fn uniform(decay: f32) -> Setting {
        Setting { weights: [1.0; 5], decay }
    }

    pub fn weight(&self, kind: EventKind) -> f32 {
        self.weights[kind.index()]
    }
}

/// Categories ranked by how many events fall in them, most first:
/// `rank[category]`, 0 the most popular; the tie-break of every ranking.
pub fn popularity_rank(sequences: &[&TypedSequence], n_categories: usize) -> Vec<u32> {
    let mut counts = vec![0u64; n_categories];
    for s in sequences {
        for &c in &s.categories {
            counts[c as usize] += 1;
        }
    }
    let mut order: Vec<usize> = (0..n_categories).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let mut rank = vec![0u32; n_categories];
    for (r, c) in order.into_iter().enumerate() {
        rank[c] = r as u32;
    }
    rank
}

/// One user's NDCG@10 summed over the predicted events, and their count.
pub fn user_ndcg(sequence: &TypedSequence, setting: &Setting, target: Target, max_events: usize, rank: &[u32]) -> (f64, u32) {
    let (mut sum, mut count) = (0.0, 0u32);
    let mut profile: HashMap<u32, f32> = HashMap::new();
    for t in 1..sequence.categories.len() {
        if !target.wants(sequence.kinds[t]) {
            continue;
        }
        profile.clear();
        let mut scale = 1.0f32;
        for j in (t.saturating_sub(max_events)..t).rev() {
            *profile.entry(sequence.categories[j]).or_default() += setting.weight(sequence.kinds[j]) * scale;
            scale *= setting.decay;
        }
        let wanted = sequence.categories[t];
        let score = profile.get(&wanted).copied().unwrap_or(0.0);
        let ahead = |c: u32, s: f32| s > score || (s == score && rank[c as usize] < rank[wanted as usize]);
        let position = if score > 0.0 {
            1 + profile.iter().filter(|&(&c, &s)| c != wanted && ahead(c, s)).count()
        } else {
            // Behind every category in the profile, then by popularity.
            let positive: Vec<u32> = profile.iter().filter(|&(_, &s)| s > 0.0).map(|(&c, _)| c).collect();
            let more_popular_positive = positive.iter().filter(|&&c| rank[c as usize] < rank[wanted as usize]).count();
            1 + positive.len() + rank[wanted as usize] as usize - more_popular_positive
        };
        if position <= 10 {
            sum += 1.0 / ((position + 1) as f64).log2();
        }
        count += 1;
    }
    (sum, count)
}

/// NDCG@10 pooled over users' predicted events: `Σ sum / Σ count`.
pub fn pooled(per_user: &[(f64, u32)]) -> f64 {
    let (sum, count) = per_user.iter().fold((0.0, 0u64), |(s, c), &(us, uc)| (s + us, c + uc as u64));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Per-user figures of `setting` on `sequences`.
pub fn per_user(sequences: &[&TypedSequence], setting: &Setting, target: Target, max_events: usize, rank: &[u32]) -> Vec<(f64, u32)> {
    sequences.iter().map(|s| user_ndcg(s, setting, target, max_events, rank)).collect()
}

/// The kind weights a grid search finds best for `target` on `sequences`,
/// view (and click, which these logs seldom have) held at 1 since only
/// ratios matter; add-to-cart and purchase each over `grid`.
pub fn fit(sequences: &[&TypedSequence], target: Target, decay: f32, max_events: usize, rank: &[u32], grid: &[f32]) -> Setting {
    let mut best = (f64::NEG_INFINITY, Setting::uniform(decay));
    for &cart in grid {
        for &purchase in grid {
            let mut setting = Setting::guessed(decay);
            setting.weights[EventKind::View.index()] = 1.0;
            setting.weights[EventKind::Click.index()] = 1.0;
            setting.weights[EventKind::AddToCart.index()] = cart;
            setting.weights[EventKind::Purchase.index()] = purchase;
            let figure = pooled(&per_user(sequences, &setting, target, max_events, rank));
            // Strictly better only: ties keep the earlier (smaller) weights.
            if figure > best.0 + 1e-12 {
                best = (figure, setting);
            }
        }
    }
    best.1
}

/// A figure with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Pooled NDCG@10 of each of `settings` with paired bootstrap intervals
/// over users (`resamples` draws, seeded), and the interval of each
/// setting's difference from the first.
pub fn bootstrap(figures: &[Vec<(f64, u32)>], resamples: usize, seed: u64) -> (Vec<Interval>, Vec<Interval>) {
    let users = figures.first().map_or(0, Vec::len);
    let mut state = seed;
    let mut next = || {
        // SplitMix64: small, seeded, reproducible.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); figures.len()];
    let mut differences: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); figures.len()];
    let mut picked = vec![0usize; users];
    for _ in 0..resamples {
        picked.iter_mut().for_each(|p| *p = (next() % users.max(1) as u64) as usize);
        let values: Vec<f64> = figures.iter().map(|f| pooled(&picked.iter().map(|&u| f[u]).collect::<Vec<_>>())).collect();
        for (i, v) in values.iter().enumerate() {
            draws[i].push(*v);
            differences[i].push(v - values[0]);
        }
    }
    let interval = |value: f64, mut draws: Vec<f64>| {
        draws.sort_by(f64::total_cmp);
        let at = |q: f64| draws.get(((draws.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(value);
        Interval { value, low: at(0.025), high: at(0.975) }
    };
    let values: Vec<f64> = figures.iter().map(|f| pooled(f)).collect();
    let levels = values.iter().zip(draws).map(|(&v, d)| interval(v, d)).collect();
    let gaps = values.iter().zip(differences).map(|(&v, d)| interval(v - values[0], d)).collect();
    (levels, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(events: &[(u32, EventKind)]) -> TypedSequence {
        TypedSequence { categories: events.iter().map(|e| e.0).collect(), kinds: events.iter().map(|e| e.1).collect() }
    }

    #[test]
    fn the_next_category_is_ranked_by_the_weighted_profile_then_by_popularity() {
        use EventKind::{AddToCart as Cart, View};
        // Popularity: category 3 first, then 2, 1, 0.
        let rank = vec![3, 2, 1, 0];
        let setting = Setting::uniform(1.0);
        // History {0, 0, 1}, next 1: category 0 (2 events) is ahead, so rank 2.
        let s = sequence(&[(0, View), (0, View), (1, View), (1, View)]);
        let (sum, count) = user_ndcg(&s, &setting, Target::Kind(View), 50, &rank);
        // t=1: 0 after {0}: rank 1. t=2: 1 after {0,0}: not in the profile,
        // behind 0, then by popularity among the rest (3, 2, 1): rank 4.
        // t=3: 1 after {0,0,1}: rank 2.
        let expected = 1.0 + 1.0 / 5f64.log2() + 1.0 / 3f64.log2();
        assert_eq!(count, 3);
        assert!((sum - expected).abs() < 1e-9, "{sum} vs {expected}");
        // Only add-to-carts predicted: none here.
        assert_eq!(user_ndcg(&s, &setting, Target::Kind(Cart), 50, &rank), (0.0, 0));
        // The history window: with one event kept, t=3 sees {1} only.
        let (sum, _) = user_ndcg(&s, &setting, Target::Any, 1, &rank);
        assert!((sum - (1.0 + 1.0 / 5f64.log2() + 1.0)).abs() < 1e-9);
    }

    #[test]
    fn fitting_finds_that_a_purchase_ends_interest_when_the_log_says_so() {
        use EventKind::{AddToCart as Cart, Purchase, View};
        // Shoppers browse a category, buy in it, then browse another one:
        // after a purchase the next event is never in its category, while
        // a cart is followed by more of its category.
        let users: Vec<TypedSequence> = (0..40u32)
            .map(|u| {
                let (a, b, c) = (u % 7, 7 + u % 5, 12 + u % 3);
                sequence(&[
                    (a, View),
                    (b, View),
                    (a, Cart),
                    (a, View),
                    (b, View),
                    (a, Purchase),
                    (b, View),
                    (c, View),
                    (b, View),
                    (c, View),
                ])
            })
            .collect();
        let all: Vec<&TypedSequence> = users.iter().collect();
        let rank = popularity_rank(&all, 15);
        let learned = fit(&all, Target::Any, 0.7, 50, &rank, &[0.0, 0.25, 0.5, 1.0, 2.0, 4.0]);
        assert!(learned.weight(Purchase) < learned.weight(View), "{learned:?}");
        let better = pooled(&per_user(&all, &learned, Target::Any, 50, &rank));
        let guessed = pooled(&per_user(&all, &Setting::guessed(0.7), Target::Any, 50, &rank));
        assert!(better > guessed, "{better} vs {guessed}");
        // Paired intervals: a setting minus itself is exactly 0.
        let figures = vec![per_user(&all, &learned, Target::Any, 50, &rank), per_user(&all, &learned, Target::Any, 50, &rank)];
        let (levels, gaps) = bootstrap(&figures, 200, 1);
        assert!(levels[0].low <= levels[0].value && levels[0].value <= levels[0].high);
        assert_eq!((gaps[1].low, gaps[1].high), (0.0, 0.0));
    }
}

//! The network's scoring pass for one session, in plain Rust on the host:
//! what the page runs on the CPU. It reads the same model file as
//! [`super::SessionRanker`] and computes the same numbers (a test holds the
//! two to 1e-4 on the shipped model), without a tensor library: for a
//! network this small (width 64, 50 events) a tensor backend's per-operation
//! cost is most of a rerank, and its kernels are most of the page's
//! download. Training, evaluation and WebGPU use the burn module; this file
//! mirrors its inference path, operation for operation:
//! [`super::SessionRanker::session_states`] (one session, no padding) and
//! [`super::SessionRanker::score_candidate_vectors`].

use super::{Affinity, EventKind, ModelFile, SessionInput};
use crate::error::{ErrorKind, Result, err};

/// burn's `LayerNorm` default.
const LAYER_NORM_EPSILON: f32 = 1e-5;
/// What `unit` and the standardisation clamp a length or deviation to.
const TINY: f32 = 1e-6;
/// Log weight of an event with no weight (burn's path clamps the same way).
const MIN_WEIGHT: f32 = 1e-6;

/// `y = x · weight + bias`, weight `[inputs, outputs]` row-major (burn's layout).
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    inner: Linear,
    outer: Linear,
    /// Before the feed-forward block (burn's `norm_1` in pre-norm order).
    norm_ff: Norm,
    /// Before attention (burn's `norm_2`).
    norm_attention: Norm,
}

/// The network's weights as plain arrays, for scoring on the host.
pub struct HostNetwork {
    dim: usize,
    heads: usize,
    /// `[n_items + 1, dim]`.
    item_ids: Vec<f32>,
    text_proj: Linear,
    /// `[kinds, dim]`.
    event_kinds: Vec<f32>,
    /// `[max_events, dim]`, row 0 the newest event.
    positions: Vec<f32>,
    layers: Vec<Layer>,
    norm: Norm,
}

/// One session's scoring state on the host (see
/// [`super::SessionState`], the device's equivalent, `batch == 1`).
#[derive(Debug, Clone)]
pub struct HostState {
    /// `[dim]`: the encoder's state after the newest event.
    pub state: Vec<f32>,
    /// `[dim]`: the unit-length affinity profile.
    pub profile: Vec<f32>,
    /// `[events * dim]`: each event's unit text vector.
    pub event_units: Vec<f32>,
    /// `[events]`: ln of each event's affinity weight.
    pub log_weights: Vec<f32>,
}

impl HostNetwork {
    /// The network of a decoded model file; every tensor must have the
    /// shape its configuration gives.
    pub fn from_file(file: &ModelFile) -> Result<HostNetwork> {
        let config = &file.config;
        let dim = config.dim;
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            match file.tensors.iter().find(|t| t.name == name) {
                Some(t) if t.shape == shape => Ok(t.values.clone()),
                Some(t) => err(
                    ErrorKind::ModelFile,
                    format!("tensor '{name}' has shape {:?} in the model file but the network expects {shape:?}", t.shape),
                ),
                None => err(ErrorKind::ModelFile, format!("the model file lacks tensor '{name}'; it was made for another model version")),
            }
        };
        let linear = |name: &str, inputs: usize, outputs: usize| -> Result<Linear> {
            Ok(Linear {
                weight: tensor(&format!("{name}.weight"), &[inputs, outputs])?,
                bias: tensor(&format!("{name}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let norm = |name: &str| -> Result<Norm> {
            Ok(Norm { gamma: tensor(&format!("{name}.gamma"), &[dim])?, beta: tensor(&format!("{name}.beta"), &[dim])? })
        };
        let layers = (0..config.layers)
            .map(|i| {
                let name = |part: &str| format!("encoder.layers.{i}.{part}");
                Ok(Layer {
                    query: linear(&name("mha.query"), dim, dim)?,
                    key: linear(&name("mha.key"), dim, dim)?,
                    value: linear(&name("mha.value"), dim, dim)?,
                    output: linear(&name("mha.output"), dim, dim)?,
                    inner: linear(&name("pwff.linear_inner"), dim, config.ff_dim)?,
                    outer: linear(&name("pwff.linear_outer"), config.ff_dim, dim)?,
                    norm_ff: norm(&name("norm_1"))?,
                    norm_attention: norm(&name("norm_2"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(HostNetwork {
            dim,
            heads: config.heads,
            item_ids: tensor("item_ids.weight", &[config.n_items + 1, dim])?,
            text_proj: linear("text_proj", dim, dim)?,
            event_kinds: tensor("event_kinds.weight", &[EventKind::ALL.len(), dim])?,
            positions: tensor("positions.weight", &[config.max_events, dim])?,
            layers,
            norm: norm("norm")?,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The text tower's second step: mean token rows `[n * dim]` → text
    /// vectors `[n * dim]`.
    pub fn project_text(&self, means: &[f32]) -> Vec<f32> {
        self.text_proj.forward(means)
    }

    /// ID row `row` (row 0, "unknown", for a row outside the table).
    fn id_row(&self, row: i64) -> &[f32] {
        let rows = self.item_ids.len() / self.dim;
        let row = usize::try_from(row).ok().filter(|&r| r < rows).unwrap_or(0);
        &self.item_ids[row * self.dim..(row + 1) * self.dim]
    }

    /// The session state of one session (`batch == 1`, no padding, at most
    /// `max_events` events) whose events' text vectors are `event_text`,
    /// `[len * dim]`.
    pub fn session_state(&self, session: &SessionInput, event_text: &[f32], affinity: Affinity) -> Result<HostState> {
        let (dim, len) = (self.dim, session.len);
        let max_events = self.positions.len() / dim;
        if session.batch != 1 || len == 0 || len > max_events || session.padding.iter().any(|&p| p) || event_text.len() != len * dim {
            return err(ErrorKind::Backend, format!("the host network scores one unpadded session of 1 to {max_events} events"));
        }
        // The encoder's input: scaled event vectors plus kind and recency rows.
        let scale = (dim as f32).sqrt();
        let mut x = vec![0f32; len * dim];
        for t in 0..len {
            let kind = usize::try_from(session.kinds[t]).ok().filter(|&k| k < EventKind::ALL.len()).unwrap_or(0);
            let id = self.id_row(session.item_rows[t]);
            let text = &event_text[t * dim..(t + 1) * dim];
            let kind = &self.event_kinds[kind * dim..(kind + 1) * dim];
            let position = &self.positions[(len - 1 - t) * dim..(len - t) * dim];
            for (j, out) in x[t * dim..(t + 1) * dim].iter_mut().enumerate() {
                *out = (id[j] + text[j]) * scale + kind[j] + position[j];
            }
        }
        let (last, earlier) = self.layers.split_last().expect("a validated configuration has a layer");
        for layer in earlier {
            x = layer.forward(&x, len, self.heads);
        }
        let state = self.norm.forward(&last.forward_newest(&x, len, self.heads));

        let weights = session.affinity_weights(affinity.decay, &affinity.kinds);
        let log_weights = weights.iter().map(|w| w.max(MIN_WEIGHT).ln()).collect();
        let mut event_units = event_text.to_vec();
        event_units.chunks_mut(dim).for_each(unit);
        let mut profile = vec![0f32; dim];
        for (row, &w) in event_units.chunks(dim).zip(&weights) {
            profile.iter_mut().zip(row).for_each(|(p, v)| *p += w * v);
        }
        unit(&mut profile);
        Ok(HostState { state, profile, event_units, log_weights })
    }

    /// Scores candidates (ID rows and text vectors `[n * dim]`) against a
    /// session: the transformer's score blended with the affinity, each
    /// standardised over the candidates, `[n]`; with `explain`, each
    /// event's share of each candidate's affinity, `[n * events]`.
    pub fn score(
        &self,
        session: &HostState,
        candidate_rows: &[i64],
        candidate_text: &[f32],
        affinity: Affinity,
        explain: bool,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let dim = self.dim;
        let n = candidate_rows.len();
        let events = session.log_weights.len();
        let mut model = Vec::with_capacity(n);
        let mut near = Vec::with_capacity(n);
        let mut attention = explain.then(|| Vec::with_capacity(n * events));
        let mut unit_text = vec![0f32; dim];
        for (row, text) in candidate_rows.iter().zip(candidate_text.chunks_exact(dim)) {
            let id = self.id_row(*row);
            model.push(id.iter().zip(text).zip(&session.state).map(|((a, b), s)| (a + b) * s).sum::<f32>());
            unit_text.copy_from_slice(text);
            unit(&mut unit_text);
            near.push(dot(&session.profile, &unit_text));
            if let Some(attention) = attention.as_mut() {
                let start = attention.len();
                attention.extend(
                    session.event_units.chunks_exact(dim).zip(&session.log_weights).map(|(event, lw)| dot(&unit_text, event) * 10.0 + lw),
                );
                softmax(&mut attention[start..]);
            }
        }
        standardise(&mut model);
        standardise(&mut near);
        let scores = model.iter().zip(&near).map(|(m, a)| m + a * affinity.weight).collect();
        (scores, attention)
    }
}

impl Linear {
    /// `[rows * inputs]` → `[rows * outputs]`. Each output sums from its
    /// bias through the inputs in order, as a plain loop would; the rows go
    /// four at a time (see [`Linear::rows_into`]).
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (inputs, outputs) = (self.inputs, self.outputs);
        let rows = x.len() / inputs;
        let mut out = vec![0f32; rows * outputs];
        if outputs % BLOCK != 0 {
            for (input, y) in x.chunks_exact(inputs).zip(out.chunks_exact_mut(outputs)) {
                y.copy_from_slice(&self.bias);
                for (&a, w) in input.iter().zip(self.weight.chunks_exact(outputs)) {
                    y.iter_mut().zip(w).for_each(|(y, w)| *y += a * w);
                }
            }
            return out;
        }
        let whole = rows / 4 * 4;
        for first in (0..whole).step_by(4) {
            self.rows_into::<4>(x, first, &mut out);
        }
        for row in whole..rows {
            self.rows_into::<1>(x, row, &mut out);
        }
        out
    }

    /// Rows `first..first + R` of [`Linear::forward`], through blocks of
    /// [`BLOCK`] outputs kept in registers, so that each weight is loaded
    /// once for `R` rows.
    fn rows_into<const R: usize>(&self, x: &[f32], first: usize, out: &mut [f32]) {
        let (inputs, outputs) = (self.inputs, self.outputs);
        let rows = &x[first * inputs..(first + R) * inputs];
        for col in (0..outputs).step_by(BLOCK) {
            let bias: [f32; BLOCK] = self.bias[col..col + BLOCK].try_into().expect("a whole block");
            let mut acc = [bias; R];
            for k in 0..inputs {
                let w: &[f32; BLOCK] = self.weight[k * outputs + col..][..BLOCK].try_into().expect("a whole block");
                for (i, acc) in acc.iter_mut().enumerate() {
                    let a = rows[i * inputs + k];
                    for j in 0..BLOCK {
                        acc[j] += a * w[j];
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                out[(first + i) * outputs + col..][..BLOCK].copy_from_slice(acc);
            }
        }
    }
}

/// Outputs per register block in [`Linear::forward`]: 16 floats, four
/// 128-bit vectors a row.
const BLOCK: usize = 16;

impl Norm {
    /// Each `dim`-wide row normalised to mean 0 and variance 1, then scaled
    /// and shifted.
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let dim = self.gamma.len();
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(dim) {
            let mean = row.iter().sum::<f32>() / dim as f32;
            let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
            let inverse = 1.0 / (variance + LAYER_NORM_EPSILON).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inverse * g + b;
            }
        }
        out
    }
}

impl Layer {
    /// One pre-norm encoder layer over every event, causal.
    fn forward(&self, x: &[f32], len: usize, heads: usize) -> Vec<f32> {
        let normed = self.norm_attention.forward(x);
        let (k, v) = (self.key.forward(&normed), self.value.forward(&normed));
        let q = self.query.forward(&normed);
        let context = attend(&q, &k, &v, len, heads, |query| query + 1);
        let mut x = add(x, &self.output.forward(&context));
        self.feed_forward(&mut x);
        x
    }

    /// The layer for the newest event only (its keys and values still
    /// cover every event, and nothing is later than it): `[dim]`.
    fn forward_newest(&self, x: &[f32], len: usize, heads: usize) -> Vec<f32> {
        let dim = x.len() / len;
        let normed = self.norm_attention.forward(x);
        let (k, v) = (self.key.forward(&normed), self.value.forward(&normed));
        let q = self.query.forward(&normed[(len - 1) * dim..]);
        let context = attend(&q, &k, &v, len, heads, |_| len);
        let mut x = add(&x[(len - 1) * dim..], &self.output.forward(&context));
        self.feed_forward(&mut x);
        x
    }

    /// `x += outer(gelu(inner(norm(x))))`.
    fn feed_forward(&self, x: &mut [f32]) {
        let mut hidden = self.inner.forward(&self.norm_ff.forward(x));
        hidden.iter_mut().for_each(|h| *h = gelu(*h));
        x.iter_mut().zip(self.outer.forward(&hidden)).for_each(|(x, y)| *x += y);
    }
}

/// Multi-head attention of `q` (`[queries * dim]`) over the first
/// `visible(query)` of `len` keys and values (`[len * dim]`), heads side by
/// side in each row: `[queries * dim]`.
fn attend(q: &[f32], k: &[f32], v: &[f32], len: usize, heads: usize, visible: impl Fn(usize) -> usize) -> Vec<f32> {
    let dim = k.len() / len;
    let width = dim / heads;
    let scale = 1.0 / (width as f32).sqrt();
    let mut context = vec![0f32; q.len()];
    let mut weights = vec![0f32; len];
    for (i, query) in q.chunks_exact(dim).enumerate() {
        let seen = visible(i).min(len);
        for h in 0..heads {
            let part = h * width..(h + 1) * width;
            let weights = &mut weights[..seen];
            for (j, w) in weights.iter_mut().enumerate() {
                *w = dot(&query[part.clone()], &k[j * dim..][part.clone()]) * scale;
            }
            softmax(weights);
            let out = &mut context[i * dim..][part.clone()];
            for (j, &w) in weights.iter().enumerate() {
                out.iter_mut().zip(&v[j * dim..][part.clone()]).for_each(|(o, v)| *o += w * v);
            }
        }
    }
    context
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Scales a row to unit length (a zero row stays zero).
fn unit(row: &mut [f32]) {
    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(TINY);
    row.iter_mut().for_each(|v| *v /= norm);
}

fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut total = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        total += *v;
    }
    x.iter_mut().for_each(|v| *v /= total);
}

/// To mean 0 and standard deviation 1 (population), the deviation clamped
/// to [`TINY`].
fn standardise(x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    x.iter_mut().for_each(|v| *v -= mean);
    let std = (x.iter().map(|v| v * v).sum::<f32>() / n).sqrt().max(TINY);
    x.iter_mut().for_each(|v| *v /= std);
}

/// The exact GELU, `x Φ(x)`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// The error function, to about 1.5e-7 (Abramowitz & Stegun 7.1.26), in
/// f32: the feed-forward blocks call it for every hidden unit.
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { erf } else { -erf }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, expected) in [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.5, 0.999_999_26)] {
            assert!((erf(x) - expected).abs() < 1e-6, "erf({x}) = {} not {expected}", erf(x));
        }
    }

    #[test]
    fn standardise_and_softmax_by_hand() {
        let mut x = [1.0, 2.0, 3.0];
        standardise(&mut x);
        let s = (2.0f32 / 3.0).sqrt();
        assert!(x.iter().zip([-1.0 / s, 0.0, 1.0 / s]).all(|(a, b)| (a - b).abs() < 1e-6), "{x:?}");
        let mut w = [0.0, 2f32.ln()];
        softmax(&mut w);
        assert!((w[0] - 1.0 / 3.0).abs() < 1e-6 && (w[1] - 2.0 / 3.0).abs() < 1e-6, "{w:?}");
        let mut same = [5.0, 5.0];
        standardise(&mut same);
        assert_eq!(same, [0.0, 0.0]);
    }
}

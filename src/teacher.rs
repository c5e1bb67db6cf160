//! The pretrained teacher: all-MiniLM-L6-v2 (a 6-layer BERT) run in burn,
//! read from its `model.safetensors`, producing the sentence embeddings
//! (masked mean of the last layer, L2-normalised) that training distils into
//! the small text tower. Native and offline only; never shipped.

use std::collections::HashMap;

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, ErrorKind, Result, err};

/// The tensors of a `.safetensors` file (f32 only), by name.
pub struct SafeTensors {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl SafeTensors {
    pub fn parse(bytes: &[u8]) -> Result<SafeTensors> {
        let bad = |why: &str| Error::new(ErrorKind::Data, format!("not a usable safetensors file: {why}"));
        if bytes.len() < 8 {
            return Err(bad("too short"));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header: serde_json::Value =
            serde_json::from_slice(bytes.get(8..8 + n).ok_or_else(|| bad("header length"))?).map_err(|_| bad("header"))?;
        let data = &bytes[8 + n..];
        let mut tensors = HashMap::new();
        for (name, info) in header.as_object().ok_or_else(|| bad("header is not an object"))? {
            if name == "__metadata__" || info["dtype"] != "F32" {
                continue;
            }
            let shape: Vec<usize> =
                info["shape"].as_array().ok_or_else(|| bad("shape"))?.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect();
            let offsets = info["data_offsets"].as_array().ok_or_else(|| bad("offsets"))?;
            let (start, end) = (offsets[0].as_u64().unwrap_or(0) as usize, offsets[1].as_u64().unwrap_or(0) as usize);
            let raw = data.get(start..end).ok_or_else(|| bad("offsets out of range"))?;
            let values = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            tensors.insert(name.clone(), (shape, values));
        }
        Ok(SafeTensors { tensors })
    }

    fn take<const D: usize>(&mut self, name: &str, device: &Device) -> Result<Tensor<D>> {
        let Some((shape, values)) = self.tensors.remove(name) else {
            return err(ErrorKind::Data, format!("the teacher weights lack '{name}'"));
        };
        if shape.len() != D {
            return err(ErrorKind::Data, format!("'{name}' has rank {} not {D}", shape.len()));
        }
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// A `[rows, cols]` table as plain numbers.
    pub fn table(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors.get(name).map(|(s, v)| (s.as_slice(), v.as_slice()))
    }
}

struct Dense {
    /// `[in, out]` (PyTorch stores `[out, in]`).
    weight: Tensor<2>,
    bias: Tensor<1>,
}

impl Dense {
    fn load(st: &mut SafeTensors, prefix: &str, device: &Device) -> Result<Dense> {
        Ok(Dense {
            weight: st.take::<2>(&format!("{prefix}.weight"), device)?.transpose(),
            bias: st.take(&format!("{prefix}.bias"), device)?,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let out = self.weight.dims()[1];
        x.matmul(self.weight.clone().unsqueeze::<3>()) + self.bias.clone().reshape([1, 1, out]).expand([b, t, out])
    }
}

struct Norm {
    weight: Tensor<1>,
    bias: Tensor<1>,
}

impl Norm {
    fn load(st: &mut SafeTensors, prefix: &str, device: &Device) -> Result<Norm> {
        Ok(Norm { weight: st.take(&format!("{prefix}.weight"), device)?, bias: st.take(&format!("{prefix}.bias"), device)? })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, d] = x.dims();
        let centred = x.clone() - x.mean_dim(2);
        let var = (centred.clone() * centred.clone()).mean_dim(2);
        centred / (var + 1e-12).sqrt() * self.weight.clone().reshape([1, 1, d]) + self.bias.clone().reshape([1, 1, d])
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// all-MiniLM-L6-v2.
pub struct MiniLm {
    words: Tensor<2>,
    positions: Tensor<2>,
    token_type: Tensor<2>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    device: Device,
}

impl MiniLm {
    pub fn load(safetensors: &[u8], device: &Device) -> Result<MiniLm> {
        let mut st = SafeTensors::parse(safetensors)?;
        let mut layers = Vec::new();
        for l in 0..6 {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                query: Dense::load(&mut st, &format!("{p}.attention.self.query"), device)?,
                key: Dense::load(&mut st, &format!("{p}.attention.self.key"), device)?,
                value: Dense::load(&mut st, &format!("{p}.attention.self.value"), device)?,
                attention_out: Dense::load(&mut st, &format!("{p}.attention.output.dense"), device)?,
                attention_norm: Norm::load(&mut st, &format!("{p}.attention.output.LayerNorm"), device)?,
                intermediate: Dense::load(&mut st, &format!("{p}.intermediate.dense"), device)?,
                output: Dense::load(&mut st, &format!("{p}.output.dense"), device)?,
                output_norm: Norm::load(&mut st, &format!("{p}.output.LayerNorm"), device)?,
            });
        }
        Ok(MiniLm {
            words: st.take("embeddings.word_embeddings.weight", device)?,
            positions: st.take("embeddings.position_embeddings.weight", device)?,
            token_type: st.take("embeddings.token_type_embeddings.weight", device)?,
            embedding_norm: Norm::load(&mut st, "embeddings.LayerNorm", device)?,
            layers,
            heads: 12,
            device: device.clone(),
        })
    }

    /// Sentence embeddings `[batch, 384]` of token-id rows (with [CLS] and
    /// [SEP]), padded with 0 and masked.
    pub fn embed(&self, ids: &[Vec<u32>]) -> Tensor<2> {
        let device = &self.device;
        let (b, t) = (ids.len(), ids.iter().map(Vec::len).max().unwrap_or(1).max(1));
        let mut flat = vec![0i64; b * t];
        let mut mask = vec![0f32; b * t];
        for (i, row) in ids.iter().enumerate() {
            for (j, &id) in row.iter().enumerate() {
                flat[i * t + j] = id as i64;
                mask[i * t + j] = 1.0;
            }
        }
        let d = self.words.dims()[1];
        let words = self.words.clone().select(0, Tensor::<1, Int>::from_data(TensorData::new(flat, [b * t]), device)).reshape([b, t, d]);
        let positions = self.positions.clone().slice([0..t, 0..d]).reshape([1, t, d]).expand([b, t, d]);
        let token_type = self.token_type.clone().slice([0..1, 0..d]).reshape([1, 1, d]).expand([b, t, d]);
        let mut x = self.embedding_norm.forward(words + positions + token_type);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), device);
        // Additive attention mask over keys: 0 for tokens, -10000 for padding.
        let key_mask = (mask.clone() - 1.0).mul_scalar(10_000.0).reshape([b, 1, 1, t]).expand([b, self.heads, t, t]);
        let head = d / self.heads;
        for layer in &self.layers {
            let split = |y: Tensor<3>| y.reshape([b, t, self.heads, head]).swap_dims(1, 2); // [b, heads, t, head]
            let (q, k, v) =
                (split(layer.query.forward(x.clone())), split(layer.key.forward(x.clone())), split(layer.value.forward(x.clone())));
            let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((head as f32).sqrt()) + key_mask.clone();
            let context = softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, t, d]);
            x = layer.attention_norm.forward(layer.attention_out.forward(context) + x);
            let hidden = gelu(layer.intermediate.forward(x.clone()));
            x = layer.output_norm.forward(layer.output.forward(hidden) + x);
        }
        let mask3 = mask.clone().reshape([b, t, 1]);
        let pooled = (x * mask3).sum_dim(1).reshape([b, d]) / mask.sum_dim(1).clamp_min(1.0);
        let norm = (pooled.clone() * pooled.clone()).sum_dim(1).sqrt().clamp_min(1e-12);
        pooled / norm
    }
}

/// Teacher embeddings of a catalog, one row per item in dataset order.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherEmbeddings {
    pub items: Vec<String>,
    pub dim: usize,
    /// `[items.len() * dim]`, rows L2-normalised.
    pub values: Vec<f32>,
    /// sha256 of the teacher's `model.safetensors`.
    pub teacher_sha256: String,
}

const TEACHER_MAGIC: &[u8; 8] = b"SRTEACH1";

impl TeacherEmbeddings {
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&serde_json::json!({ "items": self.items, "dim": self.dim, "teacherSha256": self.teacher_sha256 }))
            .expect("json");
        let mut out = Vec::with_capacity(12 + header.len() + self.values.len() * 4);
        out.extend_from_slice(TEACHER_MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        self.values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        out
    }

    /// Reads an embeddings file (the `teacher` binary's output); errors name the file.
    pub fn read(path: &std::path::Path) -> std::result::Result<TeacherEmbeddings, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        TeacherEmbeddings::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TeacherEmbeddings> {
        let bad = || Error::new(ErrorKind::Data, "not a shelfrank teacher-embeddings file");
        if bytes.len() < 12 || &bytes[..8] != TEACHER_MAGIC {
            return Err(bad());
        }
        let n = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let header: serde_json::Value = serde_json::from_slice(bytes.get(12..12 + n).ok_or_else(bad)?).map_err(|_| bad())?;
        let items: Vec<String> = serde_json::from_value(header["items"].clone()).map_err(|_| bad())?;
        let dim = header["dim"].as_u64().ok_or_else(bad)? as usize;
        let values: Vec<f32> = bytes[12 + n..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        if values.len() != items.len() * dim {
            return Err(bad());
        }
        Ok(TeacherEmbeddings { items, dim, values, teacher_sha256: header["teacherSha256"].as_str().unwrap_or("").to_owned() })
    }
}

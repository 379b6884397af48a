//! Named parameters on the device, under PyTorch's state_dict names, and their
//! gradients. Loading checks every name and shape and reports all problems at once.

use std::collections::BTreeMap;
use std::path::Path;

use crate::tensor_file::{write_atomic, HostTensor, Stored, TensorFile};
use crate::{Device, Error, Result, Tensor};

/// Gradients by parameter name.
pub type Grads = BTreeMap<String, Tensor>;

/// Adds `g` into `grads[name]` (creating it), so shared weights accumulate.
pub fn accumulate(s: &mut crate::Step<'_>, grads: &mut Grads, name: &str, g: Tensor) -> Result<()> {
    let g = match grads.remove(name) {
        Some(prev) => crate::ops::elementwise::add(s, &prev, &g.reshape(prev.shape())?)?,
        None => g,
    };
    grads.insert(name.to_string(), g);
    Ok(())
}

/// How a parameter starts when a model is trained from scratch (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as nn.Linear / nn.Conv weights and biases.
    Uniform {
        fan_in: usize,
    },
    /// N(0, std²) truncated to [−2, 2] (timm's `trunc_normal_`, as Point-MAE uses it).
    TruncNormal {
        std: f32,
    },
    Ones,
    Zeros,
    /// An integer counter kept on the host (BatchNorm's `num_batches_tracked`).
    Counter,
}

/// One expected parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// False for buffers (running statistics, counters): saved and loaded, never trained.
    pub trainable: bool,
    /// Set when this entry holds rows of a larger state_dict tensor (a weight above the
    /// 128 MiB one binding may take, kept as row blocks): files see only the whole.
    pub block: Option<RowBlock>,
}

/// Rows `first_row ..` of the state_dict tensor `name` of shape `full_shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowBlock {
    pub name: String,
    pub first_row: usize,
    pub full_shape: Vec<usize>,
}

impl ParamSpec {
    /// The name this entry's values have in a file (the whole tensor's, for a block).
    pub fn file_name(&self) -> &str {
        self.block.as_ref().map_or(&self.name, |b| &b.name)
    }

    /// The file tensor's shape (the whole tensor's, for a block).
    pub fn file_shape(&self) -> &[usize] {
        self.block.as_ref().map_or(&self.shape, |b| &b.full_shape)
    }

    /// This entry's values out of the file tensor's (its rows, for a block).
    fn take_rows<'a>(&self, data: &'a [f32]) -> &'a [f32] {
        match &self.block {
            Some(b) => {
                let row: usize = b.full_shape[1..].iter().product();
                &data[b.first_row * row..(b.first_row + self.shape[0]) * row]
            }
            None => data,
        }
    }
}

/// What a model expects, in state_dict order.
pub type Spec = Vec<ParamSpec>;

fn entry(name: String, shape: Vec<usize>, init: Init, trainable: bool) -> ParamSpec {
    ParamSpec {
        name,
        shape,
        init,
        trainable,
        block: None,
    }
}

/// A weight `(out, in…)` as row blocks of at most `max_floats` values each when the
/// whole is larger (entries named `prefix.weight[a:b]`); one entry otherwise. Returns
/// the entries' names in row order.
pub fn blocked_weight_spec(
    spec: &mut Spec,
    prefix: &str,
    out: usize,
    in_shape: &[usize],
    max_floats: usize,
) -> Vec<String> {
    let fan_in: usize = in_shape.iter().product();
    let name = format!("{prefix}.weight");
    let mut full = vec![out];
    full.extend_from_slice(in_shape);
    let rows = (max_floats / fan_in.max(1)).max(1);
    if out <= rows {
        spec.push(entry(name.clone(), full, Init::Uniform { fan_in }, true));
        return vec![name];
    }
    let mut names = Vec::new();
    for first in (0..out).step_by(rows) {
        let last = (first + rows).min(out);
        let mut shape = vec![last - first];
        shape.extend_from_slice(in_shape);
        let part = format!("{name}[{first}:{last}]");
        spec.push(ParamSpec {
            block: Some(RowBlock {
                name: name.clone(),
                first_row: first,
                full_shape: full.clone(),
            }),
            ..entry(part.clone(), shape, Init::Uniform { fan_in }, true)
        });
        names.push(part);
    }
    names
}

/// Spec entries of a linear layer `prefix.weight (out, in…)` and optional `prefix.bias`.
pub fn linear_spec(spec: &mut Spec, prefix: &str, out: usize, in_shape: &[usize], bias: bool) {
    let fan_in = in_shape.iter().product();
    let mut shape = vec![out];
    shape.extend_from_slice(in_shape);
    spec.push(entry(
        format!("{prefix}.weight"),
        shape,
        Init::Uniform { fan_in },
        true,
    ));
    if bias {
        spec.push(entry(
            format!("{prefix}.bias"),
            vec![out],
            Init::Uniform { fan_in },
            true,
        ));
    }
}

/// Spec entries of a LayerNorm `prefix.{weight,bias}`.
pub fn norm_spec(spec: &mut Spec, prefix: &str, dim: usize) {
    spec.push(entry(
        format!("{prefix}.weight"),
        vec![dim],
        Init::Ones,
        true,
    ));
    spec.push(entry(
        format!("{prefix}.bias"),
        vec![dim],
        Init::Zeros,
        true,
    ));
}

/// Spec entries of a BatchNorm: `prefix.{weight,bias}` and the buffers
/// `prefix.{running_mean,running_var,num_batches_tracked}`.
pub fn batchnorm_spec(spec: &mut Spec, prefix: &str, dim: usize) {
    norm_spec(spec, prefix, dim);
    spec.push(entry(
        format!("{prefix}.running_mean"),
        vec![dim],
        Init::Zeros,
        false,
    ));
    spec.push(entry(
        format!("{prefix}.running_var"),
        vec![dim],
        Init::Ones,
        false,
    ));
    spec.push(entry(
        format!("{prefix}.num_batches_tracked"),
        vec![],
        Init::Counter,
        false,
    ));
}

/// A model's parameters on the device.
pub struct ParamStore {
    tensors: BTreeMap<String, Tensor>,
    counters: std::sync::Mutex<BTreeMap<String, i64>>,
    spec: Spec,
}

impl ParamStore {
    /// Loads every tensor of `spec` from `file`, reading `prefix + name`
    /// (prefix "" for ordinary checkpoints). Missing, misshaped and (when
    /// `allow_extra` is false) unexpected tensors are all named in one error.
    pub fn load(
        dev: &Device,
        spec: Spec,
        file: &TensorFile,
        prefix: &str,
        allow_extra: bool,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut tensors = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for p in &spec {
            let (name, init) = (&p.name, &p.init);
            let (key, shape) = (format!("{prefix}{}", p.file_name()), p.file_shape());
            if !file.contains(&key) {
                if p.block.as_ref().is_none_or(|b| b.first_row == 0) {
                    problems.push(format!("missing {key} {shape:?}"));
                }
                continue;
            }
            if *init == Init::Counter {
                match file.i64(&key) {
                    Ok((v, _)) if v.len() == 1 => {
                        counters.insert(name.clone(), v[0]);
                    }
                    _ => problems.push(format!("{key} should be one integer")),
                }
                continue;
            }
            let h = file.f32(&key)?;
            if h.shape != shape {
                if p.block.as_ref().is_none_or(|b| b.first_row == 0) {
                    problems.push(format!(
                        "{key} has shape {:?}, the model needs {shape:?}",
                        h.shape
                    ));
                }
                continue;
            }
            tensors.insert(
                name.clone(),
                upload_named(dev, file, &key, p.take_rows(&h.data), &p.shape)?,
            );
        }
        if !allow_extra {
            for key in file.names() {
                if let Some(name) = key.strip_prefix(prefix) {
                    if !spec.iter().any(|p| p.file_name() == name) {
                        problems.push(format!("unexpected {key} (not a parameter of this model)"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::TensorFile {
                path: file.path().to_string(),
                detail: format!(
                    "weights do not match the model config ({} problems):\n  {}",
                    problems.len(),
                    problems.join("\n  ")
                ),
            });
        }
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(counters),
            spec,
        })
    }

    /// Parameters initialised as PyTorch initialises them by default: weights and
    /// biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm weights 1 and biases 0.
    pub fn init(dev: &Device, spec: Spec, seed: u64) -> Result<Self> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut tensors = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for p in &spec {
            let n: usize = p.shape.iter().product();
            let data: Vec<f32> = match p.init {
                Init::Counter => {
                    counters.insert(p.name.clone(), 0);
                    continue;
                }
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
                Init::Uniform { fan_in } => {
                    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                    (0..n).map(|_| (2.0 * next() - 1.0) * bound).collect()
                }
                Init::TruncNormal { std } => (0..n)
                    .map(|_| loop {
                        // Box–Muller; redraw the rare value outside [−2, 2].
                        let (u1, u2) = (next().max(f32::MIN_POSITIVE), next());
                        let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                        if (z * std).abs() <= 2.0 {
                            break z * std;
                        }
                    })
                    .collect(),
            };
            tensors.insert(p.name.clone(), dev.upload(&data, &p.shape)?);
        }
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(counters),
            spec,
        })
    }

    /// Replaces every parameter `file` holds under the same name (for `--init` from a
    /// pre-trained or differently headed model): returns the store, how many tensors
    /// were loaded and the names kept as initialised. Tensors the model lacks are
    /// ignored; a tensor of the wrong shape, or a file with no usable tensor, is an
    /// error naming the file.
    pub fn load_matching(
        mut self,
        dev: &Device,
        file: &TensorFile,
    ) -> Result<(Self, usize, Vec<String>)> {
        let mut loaded = 0;
        let mut kept = Vec::new();
        let mut problems = Vec::new();
        for p in self.spec.clone() {
            let (name, init, shape) = (p.name.clone(), p.init, p.file_shape().to_vec());
            let Some(source) = source_names(p.file_name())
                .into_iter()
                .find(|n| file.contains(n))
            else {
                kept.push(name);
                continue;
            };
            if init == Init::Counter {
                if let Ok((v, _)) = file.i64(&source) {
                    if let Some(&c) = v.first() {
                        self.counters
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.clone(), c);
                    }
                }
                loaded += 1;
                continue;
            }
            let h = file.f32(&source)?;
            if h.shape != shape {
                problems.push(format!(
                    "{source} has shape {:?}, the model's {} needs {shape:?}",
                    h.shape,
                    p.file_name()
                ));
                continue;
            }
            let rows = p.take_rows(&h.data);
            self.tensors
                .insert(name, upload_named(dev, file, &source, rows, &p.shape)?);
            loaded += 1;
        }
        if !problems.is_empty() || loaded == 0 {
            if loaded == 0 {
                problems.push("no tensor matches a parameter of this model".into());
            }
            return Err(Error::TensorFile {
                path: file.path().to_string(),
                detail: format!(
                    "cannot initialise the model from it:\n  {}",
                    problems.join("\n  ")
                ),
            });
        }
        Ok((self, loaded, kept))
    }

    /// Writes every parameter under `rename(name)` (e.g. the official pre-training
    /// checkpoint's `model.` prefix on backbone names).
    pub fn save_renamed(
        &self,
        dev: &Device,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
        rename: impl Fn(&str) -> String,
    ) -> Result<()> {
        let tensors: Vec<(String, Stored)> = self
            .stored(dev)?
            .into_iter()
            .map(|(name, t)| (rename(&name), t))
            .collect();
        write_atomic(path, &tensors, metadata)
    }

    /// An independent copy on the device (e.g. one per stream that fine-tunes its own).
    pub fn duplicate(&self, dev: &Device) -> Result<Self> {
        let tensors = self
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.clone(), dev.upload(&dev.read(t)?, t.shape())?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(
                self.counters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            ),
            spec: self.spec.clone(),
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::InvalidArgument {
                op: "params",
                detail: format!("no parameter named {name:?}"),
            })
    }

    /// A weight viewed as a matrix (out, in), dropping PyTorch's trailing 1×1 conv dims.
    pub fn matrix(&self, name: &str) -> Result<Tensor> {
        let t = self.get(name)?;
        let out = t.shape()[0];
        t.reshape(&[out, t.numel() / out])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// Replaces a parameter's values (e.g. after an optimizer step wrote a new tensor).
    pub fn set(&mut self, name: &str, t: Tensor) -> Result<()> {
        let old = self.get(name)?;
        if old.shape() != t.shape() {
            return Err(Error::Shape {
                op: "params.set",
                detail: format!("{name}: {:?} vs {:?}", old.shape(), t.shape()),
            });
        }
        self.tensors.insert(name.to_string(), t);
        Ok(())
    }

    /// A host counter (BatchNorm's `num_batches_tracked`).
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// Adds `by` to a counter (a train-mode BatchNorm call counts one batch).
    pub fn bump(&self, name: &str, by: i64) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_insert(0) += by;
    }

    /// Reads every float parameter and buffer back to the host under its state_dict
    /// name (row blocks joined into their whole tensor).
    pub fn to_host(&self, dev: &Device) -> Result<Vec<(String, HostTensor)>> {
        let mut out: Vec<(String, HostTensor)> = Vec::new();
        for p in self.spec.iter().filter(|p| p.init != Init::Counter) {
            let data = dev.read(self.get(&p.name)?)?;
            match &p.block {
                Some(b) if b.first_row > 0 => match out.last_mut() {
                    Some((name, whole)) if *name == b.name => whole.data.extend(data),
                    _ => {
                        return Err(Error::InvalidArgument {
                            op: "params",
                            detail: format!("{}: a row block without the blocks before it", p.name),
                        })
                    }
                },
                Some(b) => {
                    let mut whole = HostTensor::new(data, &p.shape);
                    whole.shape = b.full_shape.clone();
                    out.push((b.name.clone(), whole));
                }
                None => out.push((p.name.clone(), HostTensor::new(data, &p.shape))),
            }
        }
        Ok(out)
    }

    /// Every parameter, buffer and counter as host values under its state_dict name.
    pub fn stored(&self, dev: &Device) -> Result<Vec<(String, Stored)>> {
        let mut tensors: Vec<(String, Stored)> = self
            .to_host(dev)?
            .into_iter()
            .map(|(n, h)| (n, Stored::F32(h)))
            .collect();
        for (name, v) in self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            tensors.push((name.clone(), Stored::I64(vec![*v], vec![])));
        }
        Ok(tensors)
    }

    /// Saves parameters, buffers and counters as a safetensors state_dict (atomically),
    /// under the same names PyTorch uses, so the file loads with `load_state_dict`.
    pub fn save(
        &self,
        dev: &Device,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<()> {
        write_atomic(path, &self.stored(dev)?, metadata)
    }
}

/// Uploads tensor `key` of `file`; a NaN or infinity is an error naming both.
fn upload_named(
    dev: &Device,
    file: &TensorFile,
    key: &str,
    data: &[f32],
    shape: &[usize],
) -> Result<Tensor> {
    dev.upload(data, shape).map_err(|e| match e {
        Error::NonFinite { index, value, .. } => Error::TensorFile {
            path: file.path().to_string(),
            detail: format!("tensor {key} holds a non-finite value ({value}) at index {index}"),
        },
        other => other,
    })
}

/// The names a parameter may have in a file, in order of preference: its own; under
/// `model.`, as the official C2P pre-training checkpoint stores its backbone
/// (`models/AS_p4_pretrain.py` wraps it in `self.model`); and a per-clip model's
/// `transformer.*` from a per-frame backbone's `transformer1.*` (§5.7 copies the
/// transformer's weights), with or without `model.`.
pub fn source_names(name: &str) -> Vec<String> {
    let mut names = vec![name.to_string(), format!("model.{name}")];
    if let Some(rest) = name.strip_prefix("transformer.") {
        names.push(format!("transformer1.{rest}"));
        names.push(format!("model.transformer1.{rest}"));
    }
    names
}
